"""The prose of every page meets the book's reading targets, and its notation is chapter 0's.

Targets (CONTRIBUTING.md): a mean sentence of at most 17 words, at most 3 % of sentences over
35 words, and at most 0.4 semicolons and colons per sentence, as ``scripts/readability.py``
measures them (code, math and directives left out). Notation: every symbol a page's
mathematics uses is in chapter 0's tables, and a chapter's own symbols reuse no shared letter
(``scripts/notation.py``).
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "index.md", *sorted((ROOT / "chapters").glob("*.md"))]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("md", PAGES, ids=lambda p: p.name)
def test_prose_meets_the_reading_targets(md):
    r = _script("readability").analyse(md)
    assert r["mean_len"] <= 17, f"mean sentence {r['mean_len']:.1f} words (longest: {r['longest'][:200]})"
    assert r["over35"] <= 0.03, f"{100 * r['over35']:.1f}% of sentences over 35 words (longest: {r['longest'][:200]})"
    assert r["clause_marks_per_sentence"] <= 0.4, f"{r['clause_marks_per_sentence']:.2f} ; and : per sentence"


@pytest.mark.parametrize("md", PAGES, ids=lambda p: p.name)
def test_every_symbol_is_in_chapter_0s_tables(md):
    found = _script("notation").problems([md])
    assert not found, "\n".join(found)


def test_the_notation_reader_finds_symbols_and_skips_names():
    n = _script("notation")
    assert n.symbols(r"\mathbf{z} = \boldsymbol\mu + \boldsymbol\sigma \odot \boldsymbol\epsilon") == \
        {"z", "mu", "sigma", "epsilon"}
    assert n.symbols(r"D_\text{KL}\big(q_\phi(\mathbf{z}\vert\mathbf{x})\,\|\,\mathcal{N}(\mathbf{0}, \mathbf{I})\big)") == \
        {"q", "phi", "z", "x"}
    assert n.symbols(r"L_\text{AE} = \mathbb{E}\,\lVert \tilde{\mathbf{x}} - \mathbf{x}' \rVert_\text{F}^2") == {"L", "x"}
    assert n.symbols(r"\mathcal{L}_S \le \log p_\theta(\mathbf{x})") == {"calL", "S", "p", "theta", "x"}
    assert n.symbols("σ(a) + β") == {"sigma", "a", "beta"}
    lines = dict(n.math_of("text $k$ more\n\n$$\nx = y\n$$\n\n```{code-cell} ipython3\n$z$\n```\n"))
    assert {k: v.strip() for k, v in lines.items()} == {1: "k", 3: "x = y"}
