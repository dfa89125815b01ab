"""Plots (:mod:`companion.viz.plots`), latent-space widgets (:mod:`companion.viz.widgets`) and
showing the package's source in a chapter (:mod:`companion.viz.source`), and publishing the
numbers a chapter's text quotes (:mod:`companion.viz.quote`)."""
from companion.viz.plots import decoded_grid, image_grid, plot_filters, plot_history, scatter_codes
from companion.viz.quote import quote
from companion.viz.source import show_source, source

__all__ = ["decoded_grid", "image_grid", "plot_filters", "plot_history", "quote", "scatter_codes", "show_source", "source"]
