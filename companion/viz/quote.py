"""Numbers a chapter's text quotes, published from the cell that computes them.

A chapter's prose says "the error drops to {glue}`ae_error`"; the code cell that computes
``ae_error`` ends with ``quote(ae_error=ae_error)``. Where the value goes depends on who runs
the cell:

* the book's build (``COMPANION_BOOK=1``, set by ``_ext/execution_cache.py``) stores it in
  the notebook's outputs in myst-nb's *glue* format, so the page shows the value of the
  build's own run, and the execution cache can keep it;
* in Jupyter or Colab it shows one line, "Your run: ae_error = 33.4", under the cell. The
  Colab edition's text holds the book's own numbers (``scripts/colab_edition.py``), so the
  reader sees their run's value beside the book's;
* outside IPython (a script) it shows nothing.

Values are shown with ``str()``, so a string appears without quotes and a number as Python
prints it; round numbers before quoting them.
"""
from __future__ import annotations

import os

#: myst-nb's mime prefix for glued values that are not displayed in the cell itself.
GLUE_PREFIX = "application/papermill.record/"


def building_book() -> bool:
    """True while the book's build executes the chapter (``COMPANION_BOOK=1``)."""
    return os.environ.get("COMPANION_BOOK", "").strip() == "1"


def quote(**values) -> None:
    """Publish ``name=value`` pairs for the text's ``{glue}`name``` roles (see the module doc).

    Raises:
        ValueError: no values, or a name that is not a Python identifier (the name a
            ``{glue}`` role of the text refers to).
    """
    if not values:
        raise ValueError("quote() needs at least one name=value pair")
    for name in values:
        if not name.isidentifier():
            raise ValueError(f"quoted names must be Python identifiers, got {name!r}")
    from IPython import get_ipython
    from IPython.display import Markdown, display

    if building_book():
        for name, value in values.items():
            display({GLUE_PREFIX + "text/plain": str(value)},
                    raw=True, metadata={"scrapbook": {"name": name, "mime_prefix": GLUE_PREFIX}})
    elif get_ipython() is not None:
        display(Markdown(_your_run(values)))


def _your_run(values: dict) -> str:
    """The line a reader's run shows under a quoting cell: ``**Your run:** `a` = 1.5 · …``."""
    return "**Your run:** " + " · ".join(f"`{name}` = {value}" for name, value in values.items())
