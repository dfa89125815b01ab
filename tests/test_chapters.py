"""The chapters: each .md has an .ipynb twin with the same cells, and the book builds.

The chapters themselves are executed by nbval (``pytest --nbval-lax chapters``, part of
``make test``); their cells end in assertions, so executing them checks their claims.
"""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.md"))


def _toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part["chapters"]]
    return files


def test_every_chapter_is_in_the_toc():
    listed = set(_toc_files())
    for md in CHAPTERS:
        assert f"chapters/{md.stem}" in listed, f"{md.name} is not in _toc.yml"


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.name)
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


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.name)
def test_chapter_shape(md):
    text = md.read_text()
    assert text.count("```{code-cell}") >= 2
    setup = re.search(r"```\{code-cell\} ipython3\n:tags: \[remove-cell\]\n(.*?)```", text, re.S)
    assert setup and "google.colab" in setup.group(1), "first cell must install companion on Colab"
    assert "## References" in text


@pytest.mark.slow
def test_book_builds_without_warnings():
    """README command (a): the whole book, executed, with warnings as errors."""
    jb = shutil.which("jupyter-book", path=str(Path(sys.executable).parent))
    assert jb, "jupyter-book is not installed in this environment"
    out = subprocess.run([jb, "build", str(ROOT), "--warningiserror", "--keep-going"],
                         capture_output=True, text=True, timeout=1800)
    log = out.stdout + out.stderr
    warnings = [l for l in log.splitlines() if "WARNING" in l and "IPKernelApp" not in l]
    assert out.returncode == 0 and not warnings, "\n".join(warnings) or log[-3000:]
    for f in _toc_files():
        assert (ROOT / "_build" / "html" / f"{f}.html").is_file()
    # the Colab button of each chapter opens its own .ipynb twin
    for md in CHAPTERS:
        page = (ROOT / "_build" / "html" / "chapters" / f"{md.stem}.html").read_text()
        links = re.findall(r'href="(https://colab\.research\.google\.com/[^"]+)"', page)
        assert links and all(l.endswith(f"/chapters/{md.stem}.ipynb") for l in links), links
