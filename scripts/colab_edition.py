"""Write the Colab edition of every page: a plain Jupyter notebook generated from its MyST source.

    python scripts/colab_edition.py            # (re)write chapters/*.ipynb and index.ipynb
    python scripts/colab_edition.py --check    # exit 1 if an edition is not current

The ``.md`` files are the source of truth and the site is built from them. Colab renders
plain Markdown only, so each page's ``.ipynb`` (what the site's launch buttons open) is made
from its ``.md`` here, the way d2l generates its notebooks:

* admonitions, definitions, theorems and proofs become blockquotes; exercises become
  headings; solutions sit behind ``<details>`` (their code as listings, not cells);
* ``{cite}`` becomes author–year text linked to the site's bibliography, ``{eq}`` the
  equation's number (the equation gets a ``\\tag``), ``{doc}`` a link to the site,
  ``{prf:ref}`` "Theorem n";
* a paragraph that quotes a computed number (``{glue}`` or ``{eval}``) becomes a hidden-code
  cell (Colab's ``#@title`` form) that renders the paragraph as Markdown from the reader's
  own run;
* the first cell installs the companion from the repository and release stated once in
  ``_config.yml`` (or from ``$COMPANION_WHEEL``), leaving Colab's own packages alone.

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
    release: str             # the tag the install cell installs
    site: str                # base URL of the published site, ending in "/"

    @property
    def install_spec(self) -> str:
        return f"companion @ git+{self.repository}@{self.release}"

    def colab_url(self, page: str) -> str:
        owner_repo = self.repository.removeprefix("https://github.com/")
        return f"https://colab.research.google.com/github/{owner_repo}/blob/{self.branch}/{page}.ipynb"


def settings(root: Path = ROOT) -> Settings:
    config = yaml.safe_load((root / "_config.yml").read_text())
    repo = config["repository"]
    return Settings(repository=repo["url"].rstrip("/"), branch=repo.get("branch", "main"),
                    release=config["colab"]["release"], site=config["html"]["baseurl"].rstrip("/") + "/")


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

    # ---- numbering, in document order (references may come before their targets)
    def number(self, markdown: list[str]) -> None:
        counts: dict[str, int] = {}
        for text in markdown:
            lines = text.splitlines()
            for i, line in enumerate(lines):
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
            url = f"{self.settings.site}bibliography.html"
            inner = "; ".join(f"[{self.cites[k]}]({url})" for k in keys)
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
        raise ValueError(f"{self.name}: no plain-Markdown translation of the role {{{name}}}")

    def inline(self, text: str) -> str:
        """Translate the roles of one piece of text; ``{glue}``/``{eval}`` become ``{expr}``
        placeholders (the caller turns the text into an f-string)."""
        def sub(m):
            if m["name"] in QUOTED:
                return "\x00" + m["content"] + "\x01"
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
            return _quote(f"**{title}**\n\n{body}")
        if name in PROOF_KINDS:
            label = options.get("label")
            number = self.proofs.get(label) if label else PROOF_KINDS[name]
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


def _quoted_paragraph(text: str) -> dict:
    """A hidden-code cell that renders ``text`` as Markdown, its placeholders from the run."""
    if '"""' in text:
        raise ValueError(f"cannot quote a paragraph containing triple quotes: {text[:60]!r}")
    body = text.replace("{", "{{").replace("}", "}}")
    body = re.sub("\x00(.*?)\x01", lambda m: "{" + m[1] + "}", body)
    source = ("#@title Numbers from your run\n"
              "from IPython.display import Markdown\n"
              f'Markdown(rf"""{body}\n""")')
    return _code_cell(source, {"cellView": "form", "tags": ["nbval-ignore-output"]})


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
    """Plain-Markdown cells for one MyST Markdown cell: quoted paragraphs become code cells."""
    text = page.blocks(text)
    cells, plain = [], []
    for block in _paragraphs(text):
        if "\x00" in block:
            if plain:
                cells.append(_markdown_cell("\n\n".join(plain)))
                plain = []
            cells.append(_quoted_paragraph(block))
        else:
            plain.append(block)
    if plain:
        cells.append(_markdown_cell("\n\n".join(plain)))
    return cells


def install_cell(s: Settings) -> dict:
    source = f'''# Colab: install the companion package ({s.release} of {s.repository}).
# It only adds what is missing and leaves Colab's own packages (torch, numpy, ipywidgets 7 …) as they are.
import importlib.util, os, subprocess, sys
COMPANION = os.environ.get("COMPANION_WHEEL", "{s.install_spec}")
if importlib.util.find_spec("companion") is None:
    if "google.colab" in sys.modules or "COMPANION_WHEEL" in os.environ:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", COMPANION], check=True)
    else:
        raise ModuleNotFoundError(f"the companion package is not installed: pip install '{{COMPANION}}'")'''
    return _code_cell(source, {"tags": ["remove-cell"]})


def header_cell(page: Page, title: str) -> dict:
    s = page.settings
    return _markdown_cell(
        f"*The Colab edition of “{title}”, from* ***Autoencoders, executably***. "
        f"*It is generated from [`{page.name}.md`]({s.repository}/blob/{s.branch}/{page.name}.md); "
        f"the [website]({s.site}{page.name}.html) shows the same page with the figures of the book's own run. "
        "Run the cells in order (Runtime → Run all): numbers in the text are filled in from your run. "
        "A GPU runtime (Runtime → Change runtime type) is used when present; the CPU takes about a minute.*")


SOLUTION_START = re.compile(r"^(`{3,}|:{3,})\{solution-start\}\s*(?P<label>[\w-]+)\s*$", re.M)
SOLUTION_END = re.compile(r"^(`{3,}|:{3,})\{solution-end\}\s*$", re.M)


def _strip_directive(text: str, match: re.Match) -> tuple[str, str]:
    """Text before a solution-start/-end directive and after it (options and closing fence dropped)."""
    before, rest = text[:match.start()], text[match.end():].lstrip("\n").splitlines()
    _, start = _options(rest, 0)
    end = _closing(rest, start, match.group(1))
    return before, "\n".join(rest[end + 1:])


def edition(md: Path, root: Path = ROOT, *, s: Settings | None = None, cites=None, titles=None) -> dict:
    """The Colab edition of one page, as an nbformat-4 JSON dict."""
    import jupytext

    s = s or settings(root)
    page = Page(name=md.relative_to(root).with_suffix("").as_posix(), settings=s,
                cites=cites if cites is not None else citations(root / "references.bib"),
                titles=titles if titles is not None else page_titles(root))
    source = _split_missed_code_cells(jupytext.read(md).cells)
    page.number([c.source for c in source if c.cell_type == "markdown"])
    cells = [header_cell(page, page.titles[page.name]), install_cell(s)]
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
                if "\x00" in body:
                    raise ValueError(f"{page.name}: a solution quotes computed numbers; move them out")
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
    args = parser.parse_args(argv)
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
