"""The chapters: each .md has an .ipynb twin with the same cells, and the book builds.

The chapters themselves are executed by nbval (``pytest --nbval-lax chapters``, part of
``make test``); their cells end in assertions, so executing them checks their claims.
"""
import json
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.md"))
NOTEBOOK_PAGES = [*CHAPTERS, ROOT / "index.md"]       # every page with code cells has a twin


def test_every_chapter_is_in_the_toc(toc):
    listed = set(toc)
    for md in CHAPTERS:
        assert f"chapters/{md.stem}" in listed, f"{md.name} is not in _toc.yml"


@pytest.mark.parametrize("md", NOTEBOOK_PAGES, ids=lambda p: p.name)
def test_md_and_ipynb_twin_are_in_sync(md):
    import jupytext

    twin = md.with_suffix(".ipynb")
    assert twin.is_file(), f"{md.name} has no .ipynb twin: run jupytext --sync {md}"
    from_md = jupytext.read(md)
    nb = json.loads(twin.read_text())
    src = lambda cells: [(c["cell_type"], "".join(c["source"]).strip()) for c in cells]
    assert src(from_md.cells) == src(nb["cells"]), f"{md.name} and its twin differ: run jupytext --sync"
    tags = lambda cells: [c.get("metadata", {}).get("tags", []) for c in cells]
    assert tags(from_md.cells) == tags(nb["cells"])


def _first_cell(md):
    import jupytext

    cell = jupytext.read(md).cells
    code = [c for c in cell if c.cell_type == "code"]
    return code[0]


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.name)
def test_chapter_shape(md):
    text = md.read_text()
    assert text.count("```{code-cell}") >= 2
    assert "remove-cell" in _first_cell(md).metadata.get("tags", [])
    assert "## References" in text


import importlib.util  # noqa: E402

_REAL_FIND_SPEC = importlib.util.find_spec


def _run_guard(md, monkeypatch, *, colab: bool, installed: bool):
    """Execute the chapter's first cell with Colab simulated or not; return pip calls."""
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    if colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    real = _REAL_FIND_SPEC
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: (real(name, *a) if installed else None) if name == "companion"
                        else real(name, *a))
    exec(compile(_first_cell(md).source, str(md), "exec"), {})
    return calls


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.name)
def test_first_cell_installs_companion_only_on_colab_when_missing(md, monkeypatch):
    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    calls = _run_guard(md, monkeypatch, colab=True, installed=False)
    assert len(calls) == 1
    cmd = calls[0]
    assert cmd[:4] == [sys.executable, "-m", "pip", "install"]
    assert f"companion @ git+{repo}" in cmd, "the install must come from the repository in _config.yml"
    assert _run_guard(md, monkeypatch, colab=True, installed=True) == []     # already there
    assert _run_guard(md, monkeypatch, colab=False, installed=False) == []   # not Colab


def _assigned_names(source: str) -> set[str]:
    """Names a code cell binds at top level (assignments, for loops, imports, defs)."""
    import ast

    lines = [l for l in source.splitlines() if not l.lstrip().startswith(("%", "!"))]
    names = set()
    for node in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.name)
def test_every_eval_name_is_defined_before_it_is_used(md):
    """The build evaluates {eval} roles where they stand: a name must be bound by an earlier
    code cell that the build runs (not a remove-cell one), or the page gets a NameError."""
    import jupytext

    known, missing = set(), []
    for cell in jupytext.read(md).cells:
        if cell.cell_type == "code":
            if "remove-cell" not in cell.metadata.get("tags", []):
                known |= _assigned_names(cell.source)
        else:
            for name in re.findall(r"\{eval\}`([A-Za-z_][A-Za-z_0-9]*)`", cell.source):
                if name not in known:
                    missing.append(name)
    assert not missing, f"{md.name}: {{eval}} of names not yet defined: {sorted(set(missing))}"


@pytest.mark.slow
def test_book_builds_without_warnings(built_site, toc):
    """README command (a): the whole book, executed, with warnings as errors."""
    site, log = built_site
    warnings = [l for l in log.splitlines() if "WARNING" in l and "IPKernelApp" not in l]
    assert not warnings, "\n".join(warnings)
    for f in toc:
        assert (site / f"{f}.html").is_file()
    assert "serving MathJax and the widget manager" in log, "offline assets were not used"
