"""Plots (:mod:`companion.viz.plots`), diagrams drawn from the models themselves
(:mod:`companion.viz.diagrams`: architectures traced from a module, graphical models, the
reparameterisation graphs), latent-space widgets (:mod:`companion.viz.widgets`), explorers
that decode in the reader's browser (:mod:`companion.viz.browser`), showing the
package's source in a chapter (:mod:`companion.viz.source`), and publishing the numbers a
chapter's text quotes (:mod:`companion.viz.quote`)."""
from companion.viz.browser import browser_explorer
from companion.viz.plots import decoded_grid, image_grid, plot_filters, plot_history, scatter_codes
from companion.viz.quote import quote
from companion.viz.source import show_source, source

__all__ = ["browser_explorer", "decoded_grid", "image_grid", "plot_filters", "plot_history", "quote", "scatter_codes", "show_source", "source"]
