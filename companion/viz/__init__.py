"""Plots (:mod:`companion.viz.plots`), latent-space widgets (:mod:`companion.viz.widgets`) and
showing the package's source in a chapter (:mod:`companion.viz.source`)."""
from companion.viz.plots import decoded_grid, image_grid, plot_filters, plot_history, scatter_codes
from companion.viz.source import show_source, source

__all__ = ["decoded_grid", "image_grid", "plot_filters", "plot_history", "scatter_codes", "show_source", "source"]
