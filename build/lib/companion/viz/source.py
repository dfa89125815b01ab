"""Show the package's own source code in a chapter, so the book never holds a second copy."""
from __future__ import annotations

import inspect
import textwrap


def source(obj) -> str:
    """The source code of a function, class or method of the companion package."""
    try:
        return textwrap.dedent(inspect.getsource(obj))
    except (TypeError, OSError) as e:
        raise TypeError(f"cannot show the source of {obj!r}: {e}") from e


def show_source(obj):
    """Display the source of ``obj`` as a highlighted code block (Markdown output).

    Rendered by Jupyter, Colab and the book's site alike.
    """
    from IPython.display import Markdown

    module = inspect.getmodule(obj)
    where = f"`{module.__name__}`" if module else "the companion package"
    return Markdown(f"From {where}:\n\n```python\n{source(obj).rstrip()}\n```")
