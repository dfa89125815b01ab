"""Colab's preinstalled packages, read from tests/data (a copy of ../shared/reference/)."""
from __future__ import annotations

import re
from pathlib import Path

from packaging.utils import canonicalize_name

FREEZE = Path(__file__).resolve().parent / "data" / "colab-gpu-pip-freeze.txt"

#: the companion's dependencies Colab does not preinstall, and why installing them there is harmless:
#: they are added beside Colab's packages and change none of them (the Colab tests check both)
NOT_ON_COLAB = {"daft-pgm": "pure Python; it needs only matplotlib and numpy, which Colab has"}


def freeze() -> dict[str, str]:
    """{canonical name: version} of every package Colab preinstalls (``name==version`` lines)."""
    return {canonicalize_name(m[1]): m[2] for line in FREEZE.read_text().splitlines()
            if (m := re.match(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", line.strip()))}
