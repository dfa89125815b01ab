"""Colab's preinstalled packages: the freeze the Colab tests pin to.

By default the copy in ``tests/data`` (Colab's published ``pip-freeze.gpu.txt``, with a header
saying when it was taken). ``pytest --colab-freeze PATH`` or ``COLAB_FREEZE=PATH`` names
another one: the weekly canary (``scripts/colab_canary.py``) passes Colab's current list.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

SHIPPED = Path(__file__).resolve().parent / "data" / "colab-gpu-pip-freeze.txt"

#: the companion's dependencies Colab does not preinstall, and why installing them there is harmless:
#: they are added beside Colab's packages and change none of them (the Colab tests check both)
NOT_ON_COLAB = {"daft-pgm": "pure Python; it needs only matplotlib and numpy, which Colab has"}


def freeze_file() -> Path:
    """The freeze in use: ``$COLAB_FREEZE`` when set (``--colab-freeze`` sets it), else the shipped one."""
    path = Path(os.environ.get("COLAB_FREEZE") or SHIPPED)
    if not path.is_file():
        raise FileNotFoundError(f"COLAB_FREEZE names {path}, which is not a file")
    return path


def _canary():
    """``scripts/colab_canary.py``, which holds the one parser of a freeze (it runs with the
    standard library alone, so it cannot import from here)."""
    path = Path(__file__).resolve().parents[1] / "scripts" / "colab_canary.py"
    if "colab_canary" not in sys.modules:
        spec = importlib.util.spec_from_file_location("colab_canary", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["colab_canary"] = module
        spec.loader.exec_module(module)
    return sys.modules["colab_canary"]


def parse(text: str) -> dict[str, str]:
    """{canonical name: version} of every ``name==version`` line of a pip freeze."""
    return _canary().pins(text)


def freeze() -> dict[str, str]:
    """{canonical name: version} of every package Colab preinstalls."""
    return parse(freeze_file().read_text())
