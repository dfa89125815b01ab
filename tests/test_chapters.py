"""The chapters: each .md (the source) has a current Colab edition (.ipynb) in plain Markdown,
whose first cell installs the companion as _config.yml says, and the book builds.

The chapters themselves are executed by nbval (``pytest --nbval-lax chapters``, part of
``make test``); their cells end in assertions, so executing them checks their claims.
"""
import importlib.util
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


def _edition_module():
    spec = importlib.util.spec_from_file_location("colab_edition", ROOT / "scripts" / "colab_edition.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module            # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def editions():
    """{.ipynb path: its text} as scripts/colab_edition.py makes them from the .md sources now."""
    return _edition_module().render_all(ROOT)


def test_every_page_with_code_has_a_current_colab_edition(editions):
    assert set(editions) == {md.with_suffix(".ipynb") for md in NOTEBOOK_PAGES}
    stale = [p.name for p, text in editions.items() if not p.is_file() or p.read_text() != text]
    assert not stale, f"stale Colab editions {stale}: run python scripts/colab_edition.py"


# MyST that Colab would show raw: roles, directive fences, targets, options, labelled equations
MYST = re.compile(r"\{[a-z][\w:-]*\}`|^\s*(`{3,}|:{3,})\{|^:{3,}|^\([\w-]+\)=\s*$|^:[\w-]+:|\$\$\s*\(", re.M)


@pytest.mark.parametrize("md", NOTEBOOK_PAGES, ids=lambda p: p.name)
def test_colab_edition_has_no_myst_in_its_markdown(md):
    nb = json.loads(md.with_suffix(".ipynb").read_text())
    found = [(i, m.group(0)) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "markdown"
             for m in MYST.finditer("".join(c["source"]))]
    assert not found, f"MyST left in Markdown cells (cell, text): {found[:10]}"


QUOTE_ROLE = re.compile(r"\{(?:eval|glue|glue:text)\}`([^`]+)`")


def _markdown(nb: dict) -> str:
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


def prose_words_in_code(source: str) -> int:
    """Words of prose a code cell holds: all of a Colab form (``#@title``), else the sentences
    among its string literals (docstrings aside): a line of a literal, its f-string fields
    left out, with at least eight words that ends like a sentence. Labels, table rows and
    table cells are not prose."""
    import ast

    if "#@title" in source or "#@markdown" in source:
        return len(source.split())
    lines = [l for l in source.splitlines() if not l.lstrip().startswith(("%", "!"))]
    tree = ast.parse("\n".join(lines))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    words = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else " " for v in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            text = node.value
        else:
            continue
        for line in text.splitlines():
            found = re.findall(r"[A-Za-z][A-Za-z'’-]*", line)
            if not line.lstrip().startswith("|") and len(found) >= 8 and re.search(r"[.!?][*_)\"”]*\s*$", line):
                words += len(found)
    return words


@pytest.mark.parametrize("md", NOTEBOOK_PAGES, ids=lambda p: p.name)
def test_colab_edition_holds_no_prose_in_code_cells(md):
    """All of an edition's prose is Markdown, readable before anything runs."""
    nb = json.loads(md.with_suffix(".ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert not [c for c in code if c["metadata"].get("cellView") == "form"], "hidden form cells"
    words = {i: n for i, c in enumerate(code) if (n := prose_words_in_code("".join(c["source"])))}
    assert not words, f"words of prose in code cells (cell: words): {words}"


def test_prose_counter_sees_forms_and_rendered_paragraphs():
    assert prose_words_in_code('#@title Numbers\nMarkdown(rf"""The error is {e}.""")') > 0
    assert prose_words_in_code('Markdown(f"The autoencoder keeps {n} of the held-out digits in its code.")') == 10
    assert prose_words_in_code('Markdown("| a | b |\\n| --- | --- |\\n" + rows)') == 0
    assert prose_words_in_code('print(f"error {e:.2f}")') == 0
    assert prose_words_in_code('def f():\n    """A docstring is documentation of the code, not prose."""') == 0


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.name)
def test_every_quoted_number_is_in_the_colab_text(md):
    """Each number the .md quotes from a computation stands in the edition's Markdown as the
    book's own run computed it, and no placeholder is left."""
    book = _edition_module().book_numbers(ROOT)["numbers"].get(f"chapters/{md.stem}", {})
    wanted = QUOTE_ROLE.findall(md.read_text())
    assert set(wanted) <= set(book), f"no book number for {sorted(set(wanted) - set(book))}"
    text = _markdown(json.loads(md.with_suffix(".ipynb").read_text()))
    assert "\x00" not in text and not QUOTE_ROLE.search(text)
    for name in wanted:
        assert book[name] in text, f"{name} = {book[name]!r} is not in the edition's text"


def test_the_book_numbers_are_those_of_the_current_code():
    """chapters/book_numbers.json was taken from a build of the code as it is now: the
    companion package and each page's code cells (python scripts/colab_edition.py --numbers
    after make book refreshes it)."""
    mod = _edition_module()
    book = mod.book_numbers(ROOT)
    quoting = {md.relative_to(ROOT).with_suffix("").as_posix(): md for md in mod.pages(ROOT)
               if QUOTE_ROLE.search(md.read_text())}
    assert set(book["keys"]) == set(quoting) == set(book["numbers"])
    stale = [name for name, md in quoting.items() if book["keys"][name] != mod.page_key(md, ROOT)]
    assert not stale, (f"the numbers of {stale} come from older code: run make book, then "
                       "python scripts/colab_edition.py --numbers")


@pytest.mark.parametrize("md", NOTEBOOK_PAGES, ids=lambda p: p.name)
def test_colab_header_states_the_pages_own_run_time(md):
    header = "".join(json.loads(md.with_suffix(".ipynb").read_text())["cells"][0]["source"])
    time = _edition_module().run_time(md.read_text())
    if md.parent.name == "chapters":
        assert time, f"{md.name} states no run time"
    assert (f"takes {time}." in header) if time else ("takes" not in header)


def test_colab_edition_translations():
    """The translation rules on a small page: numbering, citations, numbers, exercises, toggles."""
    mod = _edition_module()
    s = mod.Settings(repository="https://github.com/o/r", branch="main", ref="v9", site="https://o.example/r/")
    page = mod.Page(name="chapters/99_x", settings=s, cites={"k1": "Ng, 2011", "k2": "Kingma and Welling, 2014"},
                    titles={"chapters/99_x": "X", "bibliography": "References", "chapters/06_vae": "The VAE"},
                    numbers={"n_units": "7"})
    text = ("(ch-x)=\n# X\n\n```{prf:theorem} Big\n:label: thm-big\n\nIt holds.\n```\n\n$$\na = b\n$$ (eq-a)\n\n"
            "By {eq}`eq-a` and {prf:ref}`thm-big` {cite}`k1,k2`, see {doc}`06_vae` and "
            "{doc}`the list <../bibliography>`; we got {glue}`n_units` units.\n\n"
            ":::{admonition} Note\n:class: tip\nBody.\n:::\n\n"
            ":::{admonition} Answer\n:class: dropdown\nIt was {glue}`n_units`.\n:::\n\n"
            "(sec-y)=\n## Why\n\nSee {ref}`sec-y`.\n")
    page.number([text])
    cells = mod.markdown_cells(page, text)
    assert [c["cell_type"] for c in cells] == ["markdown"]
    md = cells[0]["source"]
    assert "> **Theorem 1 (Big).** It holds." in md and "\\tag{1}" in md and "(ch-x)=" not in md
    assert ("By (1) and Theorem 1 ([Ng, 2011](https://o.example/r/bibliography.html#cite-k1); "
            "[Kingma and Welling, 2014](https://o.example/r/bibliography.html#cite-k2))") in md
    assert "[The VAE](https://o.example/r/chapters/06_vae.html)" in md and "[the list](https://o.example/r/bibliography.html)" in md
    assert "we got 7 units" in md and "> **Note**" in md
    assert "<details>\n<summary>Answer</summary>\n\nIt was 7.\n\n</details>" in md
    assert "See [“Why”](https://o.example/r/chapters/99_x.html#sec-y)." in md and "(sec-y)=" not in md
    with pytest.raises(ValueError, match="marks no section"):
        mod.markdown_cells(page, "{ref}`nowhere`")
    with pytest.raises(ValueError, match="unknown-role"):
        mod.markdown_cells(page, "a {unknown-role}`x` b")
    with pytest.raises(ValueError, match="unknown citation"):
        mod.markdown_cells(page, "{cite}`nope`")
    with pytest.raises(ValueError, match="no book number"):
        mod.markdown_cells(page, "{glue}`not_computed`")
    with pytest.raises(ValueError, match="cite in the body"):
        mod.markdown_cells(page, "```{prf:definition} Score {cite}`k1`\nText.\n```\n")


def _first_cell(md):
    nb = json.loads(md.with_suffix(".ipynb").read_text())
    return "".join(next(c for c in nb["cells"] if c["cell_type"] == "code")["source"])


def _setup_cell(md):
    import jupytext

    return next(c for c in jupytext.read(md).cells if c.cell_type == "code")


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.name)
def test_chapter_shape(md):
    text = md.read_text()
    assert text.count("```{code-cell}") >= 2
    assert "## References" in text
    setup = _setup_cell(md)
    assert "device = companion.get_device()" in setup.source, "the setup cell picks the device"
    assert "formats:" not in text.split("---")[1], "the .ipynb is a generated Colab edition, not a jupytext twin"


_REAL_FIND_SPEC = importlib.util.find_spec


def _run_guard(md, monkeypatch, *, colab: bool, installed: bool, wheel: str | None = None):
    """Execute the Colab edition's first cell with Colab simulated or not; return pip calls."""
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    if colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    if wheel:
        monkeypatch.setenv("COMPANION_WHEEL", wheel)
    else:
        monkeypatch.delenv("COMPANION_WHEEL", raising=False)
    real = _REAL_FIND_SPEC
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: (real(name, *a) if installed else None) if name == "companion"
                        else real(name, *a))
    exec(compile(_first_cell(md), str(md), "exec"), {})
    return calls


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.name)
def test_first_cell_installs_companion_only_when_missing(md, monkeypatch):
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo, ref = config["repository"]["url"], config["colab"]["ref"]
    calls = _run_guard(md, monkeypatch, colab=True, installed=False)
    assert len(calls) == 1
    cmd = calls[0]
    assert cmd[:4] == [sys.executable, "-m", "pip", "install"]
    assert f"companion @ git+{repo}@{ref}" in cmd, "repository and ref come from _config.yml"
    assert not any(a.startswith(("-U", "--upgrade", "--force")) for a in cmd), "never upgrade Colab's packages"
    assert _run_guard(md, monkeypatch, colab=True, installed=True) == []     # already there
    assert _run_guard(md, monkeypatch, colab=False, installed=False, wheel="/tmp/w.whl")[0][-1] == "/tmp/w.whl"
    with pytest.raises(ModuleNotFoundError, match="pip install"):            # elsewhere: say how
        _run_guard(md, monkeypatch, colab=False, installed=False)


def _quoted_names(source: str) -> set[str]:
    """Names a code cell publishes with ``quote(name=...)``."""
    import ast

    lines = [l for l in source.splitlines() if not l.lstrip().startswith(("%", "!"))]
    return {kw.arg for node in ast.walk(ast.parse("\n".join(lines)))
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "quote"
            for kw in node.keywords}


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.name)
def test_every_quoted_name_is_published_before_it_is_used(md):
    """The site shows a {glue} value only if an earlier code cell quote()d it (once)."""
    import jupytext

    text = md.read_text()
    assert "{eval}" not in text, "use {glue} with quote(): {eval} needs a live kernel, which the cache has not"
    known, missing, twice = set(), [], []
    for cell in jupytext.read(md).cells:
        if cell.cell_type == "code":
            quoted = _quoted_names(cell.source)
            twice += sorted(quoted & known)
            known |= quoted
        else:
            missing += [n for n in re.findall(r"\{glue(?::text)?\}`([A-Za-z_]\w*)", cell.source) if n not in known]
    assert not missing, f"{md.name}: {{glue}} of names not yet quoted: {sorted(set(missing))}"
    assert not twice, f"{md.name}: names quoted twice (the site would show one of them): {twice}"


@pytest.mark.slow
def test_book_builds_without_warnings(built_site, toc):
    """README command (a): the whole book, executed, with warnings as errors."""
    site, log = built_site
    warnings = [l for l in log.splitlines() if "WARNING" in l and "IPKernelApp" not in l]
    assert not warnings, "\n".join(warnings)
    for f in toc:
        assert (site / f"{f}.html").is_file()
    assert "serving MathJax and the widget manager" in log, "offline assets were not used"


@pytest.mark.slow
def test_every_bibliography_entry_has_the_anchor_the_colab_editions_link_to(built_site):
    """The Colab editions link each citation to bibliography.html#cite-<key>."""
    site, _ = built_site
    mod = _edition_module()
    html = (site / "bibliography.html").read_text()
    missing = [k for k in mod.citations(ROOT / "references.bib") if f'id="{mod.cite_anchor(k)}"' not in html]
    assert not missing, missing


def _readme_run_times() -> str:
    """The README's table of run times, as the chapters state them (their **Run time:** line)."""
    mod = _edition_module()
    titles = mod.page_titles(ROOT)
    rows = []
    for md in sorted((ROOT / "chapters").glob("[0-9]*.md")):
        time = re.sub(r" on a (2-core )?laptop CPU", "", mod.run_time(md.read_text()))
        rows.append(f"| {titles[f'chapters/{md.stem}']} | {time} |")
    return "\n".join(rows)


def test_the_readme_states_the_chapters_own_run_times():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- run-times", 1)[1].split("<!-- /run-times -->", 1)[0]
    table = "\n".join(line for line in block.splitlines() if line.startswith("| ") and "---" not in line)
    assert table.splitlines()[1:] == _readme_run_times().splitlines(), \
        "the README's run times differ from the chapters'; paste:\n" + _readme_run_times()
    assert "minutes (chapter" not in readme and "chapter 9: two" not in readme


def test_the_readme_links_the_site_and_chapter_1_in_colab():
    readme = (ROOT / "README.md").read_text()
    s = _edition_module().settings(ROOT)
    assert s.site in readme and s.colab_url("chapters/01_autoencoder") in readme
    assert "pip install 'companion[download]'" not in readme, "a bare name installs PyPI's 'companion'"
    assert "../shared" not in readme and "DESIGN.md" not in readme, "the README points outside the repository"
