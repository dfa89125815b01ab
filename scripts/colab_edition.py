"""Write the Colab edition of every page: a plain Jupyter notebook generated from its MyST source.

    python scripts/colab_edition.py            # (re)write chapters/*.ipynb and index.ipynb
    python scripts/colab_edition.py --check    # exit 1 if an edition is not current

The ``.md`` files are the source of truth and the site is built from them. Colab renders
plain Markdown only, so each page's ``.ipynb`` (what the site's launch buttons open) is made
from its ``.md`` here, the way d2l generates its notebooks:

* admonitions, definitions, theorems and proofs become blockquotes; exercises become
  headings; solutions sit behind ``<details>`` (their code as listings, not cells);
* admonitions with ``:class: dropdown`` (the answers to "Predict first") also become
  ``<details>``;
* ``{cite}`` becomes author–year text linked to its entry in the site's bibliography,
  ``{eq}`` the equation's number (the equation gets a ``\\tag``), ``{doc}`` a link to the
  site, ``{ref}`` a link to the section on the site, ``{prf:ref}`` "Theorem n";
* a number the text quotes from a computation (``{glue}``) is written into the Markdown as
  the book's own run computed it (``chapters/book_numbers.json``), so that all the prose is
  readable before anything runs; the cell that computes it prints the reader's own value
  beside it (:func:`companion.viz.quote`). No prose lives in a code cell;
* the first cell installs the companion from the repository and git ref stated once in
  ``_config.yml`` (``colab.ref``; or from ``$COMPANION_WHEEL``), leaving Colab's own packages
  alone. On the published branch the ref is that branch; a release's own editions name its
  tag (``scripts/release.py``).

``chapters/book_numbers.json`` holds the numbers of the last book build, and for each page
the key of the code it was computed from (the companion package and the page's code cells).
``python scripts/colab_edition.py --numbers`` refreshes it from ``_build`` after ``make book``;
a test fails while a page's code has changed since its numbers were taken.

Anything it does not know how to translate is an error, so no MyST reaches a reader.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
NUMBERS = ROOT / "chapters" / "book_numbers.json"
CITE_ID = "cite-{key}"          # _config.yml: bibtex_cite_id, the anchor of each bibliography entry

FENCE_OPEN = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:-]+)\}\s*(?P<arg>.*?)\s*$")
PLAIN_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})(?P<info>[^`{]*)$")
OPTION = re.compile(r"^:(?P<key>[\w-]+):\s*(?P<value>.*)$")
ROLE = re.compile(r"\{(?P<name>[a-z][\w:-]*)\}`(?P<content>[^`]+)`")
TARGET = re.compile(r"^\((?P<label>[\w-]+)\)=\s*$")
EQ_LABEL = re.compile(r"^\$\$\s*\((?P<label>[\w-]+)\)\s*$")
QUOTED = ("eval", "glue", "glue:text", "glue:")
PROOF_KINDS = {"prf:definition": "Definition", "prf:theorem": "Theorem", "prf:lemma": "Lemma",
               "prf:proposition": "Proposition", "prf:corollary": "Corollary", "prf:example": "Example",
               "prf:remark": "Remark", "prf:algorithm": "Algorithm"}


# ------------------------------------------------------------------------------ settings

@dataclass(frozen=True)
class Settings:
    """What every edition needs from ``_config.yml``: where the site and the code live."""

    repository: str          # https://github.com/OWNER/REPO
    branch: str
    ref: str                 # the git ref (branch or tag) the install cell installs
    site: str                # base URL of the published site, ending in "/"

    @property
    def install_spec(self) -> str:
        return f"companion @ git+{self.repository}@{self.ref}"

    def colab_url(self, page: str) -> str:
        owner_repo = self.repository.removeprefix("https://github.com/")
        return f"https://colab.research.google.com/github/{owner_repo}/blob/{self.branch}/{page}.ipynb"


def settings(root: Path = ROOT) -> Settings:
    config = yaml.safe_load((root / "_config.yml").read_text())
    repo = config["repository"]
    return Settings(repository=repo["url"].rstrip("/"), branch=repo.get("branch", "main"),
                    ref=config["colab"]["ref"], site=config["html"]["baseurl"].rstrip("/") + "/")


# ------------------------------------------------------------------------ bibliography

def citations(bib: Path) -> dict[str, str]:
    """``{key: "Author and Author, 2006"}`` for every entry of the bibliography."""
    import latexcodec  # noqa: F401  (registers the "latex" codec)
    from pybtex.database import parse_file

    def plain(text: str) -> str:
        return text.encode("utf-8").decode("latex").replace("{", "").replace("}", "")

    out = {}
    for key, entry in parse_file(str(bib)).entries.items():
        people = entry.persons.get("author", [])
        names = [plain(" ".join(p.prelast_names + p.last_names)) for p in people]
        if not names:
            who = plain(entry.fields.get("organization", key))
        elif len(names) == 1:
            who = names[0]
        elif len(names) == 2:
            who = f"{names[0]} and {names[1]}"
        else:
            who = f"{names[0]} et al."
        out[key] = f"{who}, {entry.fields.get('year', 'n.d.')}"
    return out


def cite_anchor(key: str) -> str:
    """The id of a citation's entry on the bibliography page (sphinxcontrib-bibtex's
    ``bibtex_cite_id``, normalised as docutils does)."""
    from docutils.nodes import make_id

    return make_id(CITE_ID.format(key=key))


# ------------------------------------------------------------------------------ numbers

def page_key(md: Path, root: Path = ROOT) -> str:
    """What a page's computed numbers depend on: the companion package (as the book's
    execution cache keys it, ``_ext/execution_cache.py``) and the page's own code cells."""
    import hashlib

    import jupytext

    sys.path.insert(0, str(root / "_ext"))
    try:
        from execution_cache import execution_key
    finally:
        sys.path.pop(0)
    h = hashlib.sha256(execution_key(root).encode())
    for cell in jupytext.read(md).cells:
        if cell.cell_type == "code":
            h.update(b"\0" + cell.source.encode())
    return h.hexdigest()[:16]


def book_numbers(root: Path = ROOT) -> dict:
    """``{"keys": {page: key}, "numbers": {page: {name: value}}}`` from the committed file."""
    path = root / NUMBERS.relative_to(ROOT)
    return json.loads(path.read_text()) if path.is_file() else {"keys": {}, "numbers": {}}


def harvest(root: Path = ROOT) -> dict:
    """The numbers the last book build glued into each page (``_build/jupyter_execute``), with
    each page's key. Pages whose numbers the build did not produce are refused."""
    out = {"keys": {}, "numbers": {}}
    for md in pages(root):
        name = md.relative_to(root).with_suffix("").as_posix()
        wanted = re.findall(r"\{glue(?::text)?\}`([^`]+)`", md.read_text())
        if not wanted:
            continue
        glue = root / "_build" / "jupyter_execute" / f"{name}.glue.json"
        if not glue.is_file():
            raise FileNotFoundError(f"{glue} is missing: run make book first")
        data = json.loads(glue.read_text())
        values = {k: v["data"]["text/plain"] for k, v in data.items()}
        missing = sorted(set(wanted) - set(values))
        if missing:
            raise ValueError(f"{name}: the build glued no value for {missing}: run make book first")
        out["keys"][name] = page_key(md, root)
        out["numbers"][name] = {k: values[k] for k in sorted(values)}
    return out


# ------------------------------------------------------------------------------- pages

@dataclass
class Page:
    """One page being translated: its path (``chapters/01_autoencoder``) and its numbering."""

    name: str
    settings: Settings
    cites: dict[str, str]
    titles: dict[str, str]
    equations: dict[str, int] = field(default_factory=dict)
    proofs: dict[str, str] = field(default_factory=dict)        # label -> "Theorem 1"
    exercises: dict[str, int] = field(default_factory=dict)
    numbers: dict[str, str] = field(default_factory=dict)      # {glue name: the book's value}
    sections: dict[str, str] = field(default_factory=dict)     # {label: the title of the section it marks}

    # ---- numbering, in document order (references may come before their targets)
    def number(self, markdown: list[str]) -> None:
        counts: dict[str, int] = {}
        for text in markdown:
            lines = text.splitlines()
            for i, line in enumerate(lines):
                if (m := TARGET.match(line)) and (heading := next((l for l in lines[i + 1:] if l.strip()), "")):
                    if heading.startswith("#"):
                        self.sections[m["label"]] = self.inline(heading.lstrip("#").strip())
                if m := EQ_LABEL.match(line):
                    self.equations[m["label"]] = len(self.equations) + 1
                elif (m := FENCE_OPEN.match(line)) and (m["name"] in PROOF_KINDS or m["name"] == "exercise"):
                    label = _options(lines, i + 1)[0].get("label")
                    if m["name"] == "exercise":
                        self.exercises[label or f"_ex{len(self.exercises)}"] = len(self.exercises) + 1
                    else:
                        kind = PROOF_KINDS[m["name"]]
                        counts[kind] = counts.get(kind, 0) + 1
                        if label:
                            self.proofs[label] = f"{kind} {counts[kind]}"

    # ---- inline roles
    def link(self, target: str) -> tuple[str, str]:
        """(title, URL) of a document named relative to this page (``06_vae``, ``../bibliography``)."""
        parts = (Path(self.name).parent / target).parts
        resolved: list[str] = []
        for p in parts:
            if p == "..":
                resolved.pop()
            elif p != ".":
                resolved.append(p)
        doc = "/".join(resolved)
        if doc not in self.titles:
            raise ValueError(f"{self.name}: {{doc}} to unknown page {target!r}")
        return self.titles[doc], f"{self.settings.site}{doc}.html"

    def role(self, name: str, content: str) -> str:
        if name in ("cite", "cite:p", "cite:t"):
            keys = [k.strip() for k in content.split(",")]
            missing = [k for k in keys if k not in self.cites]
            if missing:
                raise ValueError(f"{self.name}: unknown citation keys {missing}")
            url = f"{self.settings.site}bibliography.html#"
            inner = "; ".join(f"[{self.cites[k]}]({url}{cite_anchor(k)})" for k in keys)
            return inner if name == "cite:t" else f"({inner})"
        if name == "eq":
            if content not in self.equations:
                raise ValueError(f"{self.name}: {{eq}} to unknown label {content!r}")
            return f"({self.equations[content]})"
        if name == "prf:ref":
            if content not in self.proofs:
                raise ValueError(f"{self.name}: {{prf:ref}} to unknown label {content!r}")
            return self.proofs[content]
        if name == "doc":
            m = re.match(r"^(?P<text>.*?)\s*<(?P<target>[^>]+)>$", content)
            title, url = self.link(m["target"] if m else content)
            return f"[{m['text'] if m else title}]({url})"
        if name == "ref":                        # a section of this page, on the website
            m = re.match(r"^(?P<text>.*?)\s*<(?P<target>[^>]+)>$", content)
            label = m["target"] if m else content
            if label not in self.sections:
                raise ValueError(f"{self.name}: {{ref}} to {label!r}, which marks no section of this page")
            text = m["text"] if m else f"“{self.sections[label]}”"
            return f"[{text}]({self.settings.site}{self.name}.html#{label})"
        raise ValueError(f"{self.name}: no plain-Markdown translation of the role {{{name}}}")

    def inline(self, text: str) -> str:
        """Translate the roles of one piece of text; ``{glue}`` becomes the book's number."""
        def sub(m):
            if m["name"] in QUOTED:
                if m["content"] not in self.numbers:
                    raise ValueError(f"{self.name}: no book number for {{glue}}`{m['content']}` in "
                                     f"{NUMBERS.name}: run make book, then python scripts/colab_edition.py --numbers")
                return self.numbers[m["content"]]
            return self.role(m["name"], m["content"])
        return ROLE.sub(sub, text)

    # ---- block directives
    def blocks(self, text: str) -> str:
        """Translate the MyST blocks of a Markdown text (without solution-start/-end)."""
        lines, out, i = text.splitlines(), [], 0
        while i < len(lines):
            line = lines[i]
            if m := PLAIN_FENCE.match(line):                      # a code listing: keep as is
                end = _closing(lines, i + 1, m["fence"])
                out += lines[i:end + 1]
                i = end + 1
                continue
            if TARGET.match(line):
                i += 1
                continue
            if m := EQ_LABEL.match(line):
                out += [f"\\tag{{{self.equations[m['label']]}}}", "$$"]
                i += 1
                continue
            if m := FENCE_OPEN.match(line):
                options, start = _options(lines, i + 1)
                end = _closing(lines, start, m["fence"])
                out += self.directive(m["name"], m["arg"], options, "\n".join(lines[start:end])).splitlines()
                i = end + 1
                continue
            out.append(self.inline(line))
            i += 1
        return "\n".join(out)

    def directive(self, name: str, arg: str, options: dict, body: str) -> str:
        body = self.blocks(body).strip("\n")
        if name == "admonition" or name in ("note", "tip", "important", "warning", "seealso"):
            title = self.inline(arg) if arg else name.capitalize()
            if "dropdown" in options.get("class", "").split():
                return _details(title, body)
            return _quote(f"**{title}**\n\n{body}")
        if name in PROOF_KINDS:
            label = options.get("label")
            number = self.proofs.get(label) if label else PROOF_KINDS[name]
            if "{cite" in arg:
                raise ValueError(f"{self.name}: a citation in the title of {{{name}}} {arg!r} would read "
                                 "'(… (Author, year))': cite in the body instead")
            head = f"**{number}" + (f" ({self.inline(arg)})" if arg else "") + ".**"
            return _quote(f"{head} {body}")
        if name == "prf:proof":
            return _quote(f"*Proof.* {body} ∎")
        if name == "exercise":
            n = self.exercises[options.get("label")]
            return f"### Exercise {n}: {self.inline(arg)}\n\n" + _quote(body)
        if name == "solution":
            return _details(f"Solution to exercise {self.exercises[arg]}", body)
        if name == "tableofcontents":
            return self.contents()
        if name == "nb-exec-table":
            return f"(The table of run times is on the [website]({self.settings.site}{self.name}.html).)"
        if name == "bibliography":
            return f"[The bibliography]({self.settings.site}bibliography.html)"
        raise ValueError(f"{self.name}: no plain-Markdown translation of the directive {{{name}}}")

    def contents(self) -> str:
        rows = []
        for doc, title in self.titles.items():
            if doc.startswith("chapters/"):
                rows.append(f"* [{title}]({self.settings.site}{doc}.html) · "
                            f"[open in Colab]({self.settings.colab_url(doc)})")
        return "\n".join(rows)


def _options(lines: list[str], i: int) -> tuple[dict[str, str], int]:
    """The ``:key: value`` lines of a directive starting at line ``i``, and where its body starts."""
    options = {}
    while i < len(lines) and (m := OPTION.match(lines[i])):
        options[m["key"]] = m["value"]
        i += 1
    if i < len(lines) and not lines[i].strip() and options:
        i += 1
    return options, i


def _closing(lines: list[str], i: int, fence: str) -> int:
    for j in range(i, len(lines)):
        if lines[j].rstrip() == fence:
            return j
    raise ValueError(f"unclosed {fence} block: {lines[i - 1]!r}")


def _quote(text: str) -> str:
    return "\n".join(f"> {l}" if l.strip() else ">" for l in text.splitlines())


def _details(summary: str, body: str) -> str:
    return f"<details>\n<summary>{summary}</summary>\n\n{body.strip()}\n\n</details>"


# ------------------------------------------------------------------------------- cells

def _markdown_cell(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def _code_cell(source: str, metadata: dict | None = None) -> dict:
    return {"cell_type": "code", "execution_count": None, "metadata": metadata or {}, "outputs": [],
            "source": source}


def _paragraphs(text: str) -> list[str]:
    """Split Markdown into blocks at blank lines, never inside a listing or display math."""
    blocks, current, open_fence, in_math = [], [], None, False
    for line in text.splitlines():
        if open_fence is None and not in_math and not line.strip():
            if current:
                blocks.append("\n".join(current))
                current = []
            continue
        current.append(line)
        if open_fence is not None:
            if line.rstrip() == open_fence:
                open_fence = None
        elif m := PLAIN_FENCE.match(line):
            open_fence = m["fence"]
        else:
            s = line.strip()
            one_line = s.startswith("$$") and s.endswith("$$") and len(s) > 4
            if (s.startswith("$$") or s.endswith("$$")) and not one_line:
                in_math = not in_math
    if current:
        blocks.append("\n".join(current))
    return blocks


def markdown_cells(page: Page, text: str) -> list[dict]:
    """The plain-Markdown cell of one MyST Markdown cell (its computed numbers filled in)."""
    text = page.blocks(text).strip("\n")
    return [_markdown_cell(text)] if text.strip() else []


def install_cell(s: Settings) -> dict:
    source = f'''# Colab: install the companion package ({s.ref} of {s.repository}).
# It only adds what is missing and leaves Colab's own packages (torch, numpy, ipywidgets 7 …) as they are.
import importlib.util, os, subprocess, sys
COMPANION = os.environ.get("COMPANION_WHEEL", "{s.install_spec}")
if importlib.util.find_spec("companion") is None:
    if "google.colab" in sys.modules or "COMPANION_WHEEL" in os.environ:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", COMPANION], check=True)
    else:
        raise ModuleNotFoundError(f"the companion package is not installed: pip install '{{COMPANION}}'")'''
    return _code_cell(source, {"tags": ["remove-cell"]})


RUN_TIME = re.compile(r"^\*\*Run time:\*\*\s*(?P<time>[^\n]+?)\.?\s*$", re.M)


def run_time(md_text: str) -> str | None:
    """The run time a page states in its "In this chapter" box ("about 40 seconds on …")."""
    m = RUN_TIME.search(md_text)
    return m["time"] if m else None


def header_cell(page: Page, title: str, time: str | None) -> dict:
    s = page.settings
    when = f" Run top to bottom, this page takes {time}." if time else ""
    return _markdown_cell(
        f"*The Colab edition of “{title}”, from* ***Autoencoders, executably***. "
        f"*It is generated from [`{page.name}.md`]({s.repository}/blob/{s.branch}/{page.name}.md); "
        f"the [website]({s.site}{page.name}.html) shows the same page with the figures of the book's own run. "
        "The numbers in the text are the book's own; run the cells in order (Runtime → Run all) and each "
        "cell that computes one of them prints your run's value beside it. "
        f"A GPU runtime (Runtime → Change runtime type) is used when present.{when}*")


SOLUTION_START = re.compile(r"^(`{3,}|:{3,})\{solution-start\}\s*(?P<label>[\w-]+)\s*$", re.M)
SOLUTION_END = re.compile(r"^(`{3,}|:{3,})\{solution-end\}\s*$", re.M)


def _strip_directive(text: str, match: re.Match) -> tuple[str, str]:
    """Text before a solution-start/-end directive and after it (options and closing fence dropped)."""
    before, rest = text[:match.start()], text[match.end():].lstrip("\n").splitlines()
    _, start = _options(rest, 0)
    end = _closing(rest, start, match.group(1))
    return before, "\n".join(rest[end + 1:])


def edition(md: Path, root: Path = ROOT, *, s: Settings | None = None, cites=None, titles=None,
            numbers: dict[str, str] | None = None) -> dict:
    """The Colab edition of one page, as an nbformat-4 JSON dict."""
    import jupytext

    s = s or settings(root)
    page = Page(name=md.relative_to(root).with_suffix("").as_posix(), settings=s,
                cites=cites if cites is not None else citations(root / "references.bib"),
                titles=titles if titles is not None else page_titles(root))
    source = _split_missed_code_cells(jupytext.read(md).cells)
    page.number([c.source for c in source if c.cell_type == "markdown"])
    page.numbers = numbers if numbers is not None else book_numbers(root)["numbers"].get(page.name, {})
    cells = [header_cell(page, page.titles[page.name], run_time(md.read_text())), install_cell(s)]
    solution: tuple[str, list[str]] | None = None       # (exercise label, parts of its solution)

    def add_markdown(text: str) -> None:
        nonlocal solution
        while text.strip():
            if solution is None:
                m = SOLUTION_START.search(text)
                if m is None:
                    cells.extend(markdown_cells(page, text))
                    return
                before, text = _strip_directive(text, m)
                if before.strip():
                    cells.extend(markdown_cells(page, before))
                solution = (m["label"], [])
            else:
                m = SOLUTION_END.search(text)
                part, text = _strip_directive(text, m) if m else (text, "")
                body = page.blocks(part).strip()
                if body:
                    solution[1].append(body)
                if m:
                    label, parts = solution
                    cells.append(_markdown_cell(_details(f"Solution to exercise {page.exercises[label]}",
                                                         "\n\n".join(parts))))
                    solution = None

    for cell in source:
        if cell.cell_type == "markdown":
            add_markdown(cell.source)
        elif solution is not None:                       # a solution's code: a listing, not a cell
            solution[1].append(f"```python\n{cell.source.strip()}\n```")
        else:
            tags = list(cell.metadata.get("tags", []))
            metadata = {"tags": tags} if tags else {}
            cells.append(_code_cell(cell.source, metadata))
    if solution is not None:
        raise ValueError(f"{page.name}: solution to {solution[0]!r} has no solution-end")
    return {"cells": cells, "metadata": {
        "colab": {"provenance": [], "toc_visible": True},
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 5}


CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(?P<options>(?::[\w-]+:[^\n]*\n)*)\n?(?P<source>.*?)^```$",
                       re.M | re.S)


def _split_missed_code_cells(cells: list) -> list:
    """jupytext sometimes leaves a ``{code-cell}`` inside a Markdown cell (after a directive
    that holds display math); split such cells so that every code cell is a cell."""
    from nbformat.v4 import new_code_cell, new_markdown_cell

    out = []
    for cell in cells:
        text = cell.source if cell.cell_type == "markdown" else None
        while text is not None and (m := CODE_CELL.search(text)):
            if text[:m.start()].strip():
                out.append(new_markdown_cell(text[:m.start()].strip("\n")))
            options = yaml.safe_load("\n".join(l[1:] for l in m["options"].splitlines())) or {}
            out.append(new_code_cell(m["source"].rstrip("\n"), metadata={"tags": options.get("tags", [])}
                                     if options.get("tags") else {}))
            text = text[m.end():]
        if text is None:
            out.append(cell)
        elif text.strip():
            out.append(new_markdown_cell(text.strip("\n")))
    return out


def page_titles(root: Path = ROOT) -> dict[str, str]:
    """``{"chapters/01_autoencoder": "The autoencoder", ...}`` for every page in the table of contents."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    docs = [toc["root"]] + [c["file"] for part in toc.get("parts", []) for c in part["chapters"]]
    titles = {}
    for doc in docs:
        text = (root / f"{doc}.md").read_text()
        m = re.search(r"^# (.+)$", text, re.M)
        titles[doc] = m[1].strip() if m else doc
    return titles


def pages(root: Path = ROOT) -> list[Path]:
    """Every page that has code cells: the front page and the chapters."""
    return [root / "index.md", *sorted((root / "chapters").glob("*.md"))]


def dumps(nb: dict) -> str:
    """Stable JSON text, with cell ids derived from the cell's position (deterministic)."""
    for i, cell in enumerate(nb["cells"]):
        cell["id"] = f"cell-{i:03d}"
        cell["source"] = cell["source"].splitlines(keepends=True)
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def render_all(root: Path = ROOT) -> dict[Path, str]:
    """``{path of the .ipynb: its text}`` for every page."""
    s, cites, titles = settings(root), citations(root / "references.bib"), page_titles(root)
    return {md.with_suffix(".ipynb"): dumps(edition(md, root, s=s, cites=cites, titles=titles)) for md in pages(root)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that every edition is current")
    parser.add_argument("--numbers", action="store_true",
                        help=f"first take the book's numbers from the last build into {NUMBERS.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    if args.numbers:
        NUMBERS.write_text(json.dumps(harvest(), indent=1, ensure_ascii=False) + "\n")
    stale = []
    for path, text in render_all().items():
        if not path.is_file() or path.read_text() != text:
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.write_text(text)
    if args.check and stale:
        print("stale Colab editions (run python scripts/colab_edition.py):", *stale, sep="\n  ", file=sys.stderr)
        return 1
    print(f"{'checked' if args.check else 'wrote'} {len(render_all())} editions; {len(stale)} "
          f"{'stale' if args.check else 'changed'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
