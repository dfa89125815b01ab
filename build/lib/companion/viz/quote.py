"""Numbers a chapter's text quotes, published from the cell that computes them.

A chapter's prose says "the error drops to {glue}`ae_error`"; the code cell that computes
``ae_error`` ends with ``quote(ae_error=ae_error)``. Where the value goes depends on who runs
the cell:

* the book's build (``COMPANION_BOOK=1``, set by ``_ext/execution_cache.py``) stores it in
  the notebook's outputs in myst-nb's *glue* format, so the page shows the value of the
  build's own run, and the execution cache can keep it;
* in Jupyter or Colab it shows nothing: the Colab edition renders each quoting paragraph
  from the variables of the reader's own run (``scripts/colab_edition.py``).

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
        ValueError: no values, or a name that is not a Python identifier (the Colab edition
            uses the name as a variable).
    """
    if not values:
        raise ValueError("quote() needs at least one name=value pair")
    for name, value in values.items():
        if not name.isidentifier():
            raise ValueError(f"quoted names must be Python identifiers, got {name!r}")
        if not building_book():
            continue
        from IPython.display import display

        display({GLUE_PREFIX + "text/plain": str(value)},
                raw=True, metadata={"scrapbook": {"name": name, "mime_prefix": GLUE_PREFIX}})
