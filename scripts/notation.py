"""The book's notation, checked: which symbols each chapter's mathematics uses.

    python scripts/notation.py                 # every symbol of every chapter, with where it is used
    python scripts/notation.py --check         # exit 1 if a chapter uses a symbol chapter 0 does not list

Chapter 0 holds two tables: the symbols the whole book shares, and the symbols that belong to
one chapter. A shared symbol has one meaning in every chapter; a chapter's own symbol is
introduced where it is first used and never reuses a shared letter. This script reads the
mathematics of each chapter (inline ``$...$`` and display ``$$...$$``, outside code cells),
reduces it to its symbols, and compares them with the tables.

What counts as a symbol: a Latin or Greek letter, in any of its decorated forms
(``x``, ``\\mathbf{x}``, ``\\tilde{\\mathbf{x}}``, ``x_j`` and ``x'`` are all the symbol ``x``),
and a calligraphic letter (``\\mathcal{D}``) as a symbol of its own. Not symbols: names written
upright (``\\text{...}``, ``\\mathrm{...}``, ``\\operatorname{...}``), the KL divergence
``D_\\text{KL}``, the expectation ``\\mathbb{E}``, number sets, the normal distribution
``\\mathcal{N}``, big-O ``\\mathcal{O}``, the identity matrix ``\\mathbf{I}``, and LaTeX commands such as ``\\log``.
"""
from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

GREEK = ("alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi pi rho "
         "varrho sigma tau upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Phi Psi Omega").split()
FOLD = {"varepsilon": "epsilon", "vartheta": "theta", "varrho": "rho", "varphi": "phi"}
UNICODE = dict(zip("αβγδεζηθικλμνξπρστυφχψωΓΔΘΛΞΠΣΦΨΩ",
                   "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho sigma tau "
                   "upsilon phi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Phi Psi Omega".split()))

# Upright names and operators, removed before letters are read.
NAMES = [
    r"D_\{?\\(?:text|mathrm)\{KL\}\}?",                   # the KL divergence
    r"\\(?:text|mathrm|operatorname\*?|textbf|textit|texttt|mbox)\s*\{[^{}]*\}",
    r"\\mathbb\s*\{?\w\}?",                              # expectation, number sets
    r"\\mathcal\s*\{?[NO]\}?",                           # the normal distribution, big-O
    r"\\mathbf\s*\{I\}",                                 # the identity matrix
    r"\\(?:begin|end)\{[^{}]*\}",
    r"\\tag\{[^{}]*\}",
    r"\\(?:mathbf|boldsymbol|bm|hat|tilde|bar|widehat|widetilde|overline|vec|dot|check)\b",
]


def math_of(md: str) -> list[tuple[int, str]]:
    """``(line, formula)`` for every inline and display formula outside code cells."""
    out, lines, in_code, fence, display, start = [], md.splitlines(), False, "", None, 0
    for n, line in enumerate(lines, 1):
        s = line.strip()
        if in_code:
            if s == fence:
                in_code = False
            continue
        if display is None and (m := re.match(r"^(`{3,})\s*\{?(code-cell|code)", s)):
            in_code, fence = True, m.group(1)
            continue
        if display is not None:
            if "$$" in s:
                out.append((start, " ".join(display + [s.split("$$")[0]])))
                display = None
            else:
                display.append(s)
            continue
        if s.startswith("$$") and s.count("$$") == 1:
            display, start = [s[2:]], n
            continue
        for m in re.finditer(r"\$\$(.+?)\$\$|(?<![\\$])\$([^$]+?)(?<!\\)\$", line):
            out.append((n, m.group(1) or m.group(2)))
    return out


def symbols(formula: str) -> set[str]:
    """The symbols of one formula (see the module doc)."""
    f = formula
    for pattern in NAMES:
        f = re.sub(pattern, " ", f)
    f = re.sub(r"\\mathcal\s*\{?([A-Za-z])\}?", lambda m: " cal" + m.group(1) + " ", f)
    found = {m.group(0) for m in re.finditer(r"cal[A-Z]", f)}
    f = re.sub(r"cal[A-Z]", " ", f)
    for m in re.finditer(r"\\([A-Za-z]+)", f):
        if m.group(1) in GREEK:
            found.add(FOLD.get(m.group(1), m.group(1)))
    f = re.sub(r"\\[A-Za-z]+", " ", f)                  # every other command
    for ch, name in UNICODE.items():
        if ch in f:
            found.add(name)
    found |= set(re.findall(r"(?<![A-Za-z])[A-Za-z](?![A-Za-z])", f))
    return found


def chapter_symbols(path: Path) -> dict[str, list[int]]:
    """``{symbol: [lines where it is used]}`` for one chapter, its prose and the labels and
    captions that its code cells draw (``$...$`` inside a code cell's strings)."""
    where = defaultdict(list)
    text = path.read_text()
    for line, formula in math_of(text):
        for s in symbols(formula):
            where[s].append(line)
    in_code = False
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if s.startswith("```{code-cell}"):
            in_code = True
        elif in_code and s == "```":
            in_code = False
        elif in_code:
            for m in re.finditer(r"(?<![\\$])\$([^$]+?)(?<!\\)\$", line):
                for sym in symbols(m.group(1)):
                    where[sym].append(n)
    return dict(where)


def tables(intro: Path = ROOT / "chapters" / "00_introduction.md") -> tuple[set[str], dict[int, set[str]]]:
    """Chapter 0's notation: the symbols the book shares, and ``{chapter: symbols of its own}``."""
    text = intro.read_text()
    section = text[text.index("## Notation"):]
    section = section[:section.index("\n## ", 3)]
    rows = [line for line in section.splitlines() if line.startswith("|") and not line.startswith("| ---")]
    shared, own = set(), defaultdict(set)
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        if cells[0] in ("symbol", "chapter"):
            continue
        if cells[0].isdigit():                     # the letter itself, not its subscripts
            for _, formula in math_of(cells[1]):
                own[int(cells[0])] |= symbols(re.sub(r"_(\{[^{}]*\}|\\?\w+)", " ", formula))
        else:
            for _, formula in math_of(cells[0]):
                shared |= symbols(formula)
    return shared, dict(own)


def pages() -> list[Path]:
    """The front page and every chapter."""
    return [ROOT / "index.md", *sorted((ROOT / "chapters").glob("[0-9]*.md"))]


def problems(files: list[Path] | None = None) -> list[str]:
    """What breaks the rule of one meaning per symbol: a chapter using a symbol that chapter 0
    lists neither as shared nor as that chapter's own, a chapter's own symbol that reuses a
    shared letter, and an own symbol the chapter no longer uses."""
    shared, own = tables()
    out = []
    for chapter, syms in sorted(own.items()):
        if syms & shared:
            out.append(f"chapter {chapter}: own symbols {sorted(syms & shared)} reuse letters of the shared table")
    for f in files or pages():
        number = int(f.name[:2]) if f.name[:2].isdigit() else 0     # the front page: like chapter 0
        used = chapter_symbols(f)
        allowed = shared | (set().union(*own.values()) if number == 0 else own.get(number, set()))
        for s in sorted(set(used) - allowed):
            out.append(f"{f.name}: {s} (lines {', '.join(map(str, sorted(set(used[s]))[:8]))}) is not in chapter 0's "
                       f"tables for this chapter")
        for s in sorted(own.get(number, set()) - set(used)):
            out.append(f"{f.name}: chapter 0 lists {s} as this chapter's own, but the chapter does not use it")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--check", action="store_true", help="compare with chapter 0's tables; exit 1 on a problem")
    args = parser.parse_args(argv)
    files = [f.resolve() for f in args.files] or pages()
    if args.check:
        found = problems(files)
        print("\n".join(found) or "every symbol is in chapter 0's tables")
        return 1 if found else 0
    shared, own = tables()
    for f in files:
        used = chapter_symbols(f)
        mine = own.get(int(f.name[:2]), set()) if f.name[:2].isdigit() else set().union(*own.values())
        print(f"{f.name}:")
        for s, lines in sorted(used.items()):
            kind = "shared" if s in shared else "own" if s in mine else "NOT LISTED"
            print(f"  {s:8} {kind:10} lines {', '.join(map(str, sorted(set(lines))[:12]))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
