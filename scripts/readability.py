#!/usr/bin/env python3
"""Prose statistics for chapters and tutorials: MyST .md, Jupyter .ipynb, plain .txt.

The project's shared measuring tool, kept here so that the book checks itself
(tests/test_prose.py holds every chapter to the targets of CONTRIBUTING.md).

    python readability.py chapters/01_autoencoder.md anchor.ipynb seed.txt [--json] [--dump DIR]

Per file it prints: prose words, sentences, mean sentence length (words), share of sentences over
35 words, Flesch reading ease, figures, tables, and two density measures: inline formulas per 100
prose words, and semicolons + colons per sentence (clauses chained inside one sentence).
Standard library only; uses `textstat` for the Flesch score if it can be imported, else
206.835 - 1.015 words/sentence - 84.6 syllables/word with a heuristic syllable counter.

What counts as prose (so that book, survey and notebooks are measured the same way):
* removed: YAML front matter; code cells and fenced code (```{code-cell}, ```python, ```); directive
  fence lines and their `:option:` lines (the *body* of a definition, theorem, exercise, solution or
  admonition is kept: the reader reads it); MyST labels `(name)=`; headings; Markdown tables;
  display math ($$...$$, \\[...\\], \\begin{equation}...); HTML tags; images and badges;
  {cite} roles.
* inline math ($...$, \\(...\\)) is dropped (and counted for math/100w); `--math token` keeps each
  formula as one one-syllable word "x" instead.
* replaced by one token: {glue}`name` -> "7" (a number, as the built page shows); {eq} -> "(1)";
  {doc}/{ref}/{numref}/{prf:ref} -> "section"; `code` -> "Code". [text](url) keeps its text.
* kept: figure captions written in a code cell's `mystnb: figure: caption:` metadata (the reader
  sees them, and the survey's captions are prose too).
Sentences: paragraphs and list items are units; a unit is split after . ! ? followed by a space
(abbreviations such as e.g., i.e., et al., Fig., vs. are protected). A unit without final
punctuation (a bullet, a caption) is one sentence. A unit starting in lower case after one that did
not end a sentence continues it (text resumed after a display equation). Units of fewer than 3
words (headings in plain text, bare list labels, "Click for solution") are left out.
For .txt (the survey): one unit per line; "[n] ..." references, "[Updated on ...]" notes and the
"Cited as" block are left out; short lines without final punctuation are headings or alt text.

Figures: Markdown/HTML images and {figure} directives; plus, for code, one per cell that draws
(executed notebooks: a cell with an image output; otherwise a top-level plotting call in its
source); for .txt, caption lines "Fig. N.". Tables: Markdown tables in prose, plus code cells that
render one (`Markdown("| ...`).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys

# ---------------------------------------------------------------- cleaning helpers

ABBREV = ["e.g.", "i.e.", "et al.", "Fig.", "fig.", "Eq.", "eq.", "vs.", "cf.", "etc.", "approx.",
          "resp.", "Dr.", "Mr.", "No.", "Sec.", "Ch.", "al.", "w.r.t."]
DRAWS = re.compile(
    r"plt\.|\bax\w*(\[\w+\])?\.(plot|bar|imshow|scatter|hist)\(|\bfigh?\s*(,|=)|image_grid\(|\.plot\(|"
    r"architecture\(|_graph\(|graphical_model\(|scatter_codes\(|static_interact\(|latent_map\(|"
    r"imshow\(|interact\(|interactive(_output)?\(|\bplot_\w+\(|visualize_\w+\(|\bshow_\w*images?\w*\(|"
    r"find_similar_images\(")
TOP_LEVEL_DRAW = re.compile(r"^(?!\s)(?!def |class |#|@|from |import ).*(" + DRAWS.pattern + ")", re.M)


MARK = "\u2206"          # marks where an inline formula stood; never part of a word
MATH_TOKEN = MARK        # --math drop: MARK alone; --math token: "x" + MARK, a one-syllable word


def _inline(text: str) -> str:
    """Roles, code spans, inline math, links, HTML in one paragraph of Markdown."""
    text = re.sub(r"\{cite(:\w+)?\}`[^`]*`", "", text)
    text = re.sub(r"\{glue(:\w+)?\}`[^`]*`", "7", text)
    text = re.sub(r"\{eq\}`[^`]*`", "(1)", text)
    text = re.sub(r"\{(doc|ref|numref|prf:ref|term|download)\}`[^`]*`", "section", text)
    text = re.sub(r"\{[\w:-]+\}`([^`]*)`", r"\1", text)           # any other role: its text
    text = re.sub(r"``[^`]+``|`[^`]+`", "Code", text)
    text = re.sub(r"\$\$.+?\$\$", " ", text)                         # display math on one line
    text = re.sub(r"(?<!\\)\$[^$]+?(?<!\\)\$", MATH_TOKEN, text)     # inline math
    text = re.sub(r"\\\(.+?\\\)", MATH_TOKEN, text)
    text = re.sub(r"\\\[.+?\\\]", " ", text)
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", text)                 # images
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)             # links keep their text
    text = re.sub(r"<[^>]+>", " ", text)                             # HTML tags
    text = re.sub(r"&nbsp;|&deg;", " ", text)
    text = re.sub(r"\*{1,3}|(?<!\w)_{1,3}|_{1,3}(?!\w)", "", text)  # emphasis markers
    return re.sub(r"\s+", " ", text).strip()


BADGE = re.compile(r"shields\.io|badge|colab|kaggle|sponsors|binder", re.I)


def _count_images(md: str) -> int:
    """Markdown and HTML images that are not badges, plus {figure} directives."""
    urls = re.findall(r"!\[[^\]]*\]\(([^)]*)\)", md) + re.findall(r"<img[^>]*?src=[\"']([^\"']*)", md, re.I)
    return (sum(not BADGE.search(u) for u in urls)
            + len(re.findall(r"^\s*(```+|:::+)\{figure\}", md, re.M)))


def _caption_from_yaml(lines: list[str]) -> str:
    """The `caption:` block of a code cell's YAML header."""
    out, indent = [], None
    for line in lines:
        m = re.match(r"^(\s*)caption:\s*(\|?>?-?)\s*(.*)$", line)
        if m and indent is None:
            indent = len(m.group(1))
            if m.group(3):
                out.append(m.group(3))
            continue
        if indent is not None:
            if line.strip() and len(line) - len(line.lstrip()) <= indent:
                break
            out.append(line.strip())
    return " ".join(out).strip()


def _add(units: list[str], text: str, is_item: bool) -> None:
    """Append a prose unit. A unit that starts in lower case after one that did not end a sentence
    continues it (text resumed after a display equation); a unit of fewer than 3 words is a label
    (a heading, a bare list entry, "Click for solution") and is left out."""
    text = text.strip()
    if not re.search(r"\w", text):
        return
    if (not is_item and units and re.match(r"^[a-z]", text)
            and not re.search(r"[.!?][\"”’)]?$", units[-1])):
        units[-1] = units[-1] + " " + text
        return
    if len(re.findall(r"\w[\w'’\-]*", text)) >= 3:
        units.append(text)


def markdown_units(md: str, stats: dict) -> list[str]:
    """Prose units (paragraphs, list items, captions) of a MyST / Markdown text; counts figures and
    tables into `stats` as it goes."""
    lines = md.splitlines()
    if lines and lines[0].strip() == "---":                                # front matter
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), 0)
        lines = lines[end + 1:]
    units, para, item = [], [], [False]

    def flush():
        if para:
            _add(units, _inline(" ".join(para)), item[0])
            para.clear()
        item[0] = False

    i, in_math, in_env, open_fences = 0, False, False, []
    while i < len(lines):
        line = lines[i]
        s = line.strip()
        fence = re.match(r"^(`{3,}|:{3,})\s*(\{([\w:-]+)\})?\s*(.*)$", s)
        if in_math:
            if s.startswith("$$") or s.endswith("$$") or s.startswith("\\]"):
                in_math = False
            i += 1
            continue
        if in_env:
            if re.match(r"\\end\{(equation|align|eqnarray|aligned|gather)\*?\}", s):
                in_env = False
            i += 1
            continue
        if fence:
            ticks, name, info = fence.group(1), fence.group(3) or "", fence.group(4)
            flush()
            if not name and not info and open_fences and open_fences[-1] == ticks:   # closes a directive
                open_fences.pop()
                i += 1
                continue
            is_code = ticks.startswith("`") and (name in ("code-cell", "code-block", "code", "sourcecode")
                                                 or not fence.group(2))
            if is_code:                                        # drop the whole block, keep its caption
                j = i + 1
                body = []
                while j < len(lines) and not re.match(r"^" + re.escape(ticks) + r"\s*$", lines[j].strip()):
                    body.append(lines[j])
                    j += 1
                if body and body[0].strip() == "---":
                    end = next((k for k in range(1, len(body)) if body[k].strip() == "---"), 0)
                    cap = _caption_from_yaml(body[1:end])
                    if cap:
                        units.append(_inline(cap))
                    code = "\n".join(body[end + 1:])
                else:
                    code = "\n".join(l for l in body if not re.match(r"^\s*:\w[\w-]*:", l))
                if name == "code-cell":
                    header = "\n".join(body[:8])
                    if TOP_LEVEL_DRAW.search(code) or ("mystnb" in header and "figure:" in header):
                        stats["figures"] += 1
                    if re.search(r"Markdown\(\s*(f?[\"'])\s*\|", code) or "Markdown(references_table" in code:
                        stats["tables"] += 1
                i = j + 1
                continue
            if name == "figure":
                stats["figures"] += 1
            open_fences.append(ticks)     # a directive whose body we keep: drop fence and option lines
            i += 1
            while i < len(lines) and re.match(r"^\s*:[\w-]+:", lines[i]):
                i += 1
            continue
        if s.startswith("$$"):                  # display math: dropped, the paragraph goes on
            if not (len(s) > 2 and s.rstrip().endswith("$$") and s.count("$$") >= 2):
                in_math = True
            i += 1
            continue
        if s.startswith("\\["):
            if "\\]" not in s:
                in_math = True
            i += 1
            continue
        if re.match(r"\\begin\{(equation|align|eqnarray|aligned|gather)\*?\}", s):
            if not re.search(r"\\end\{", s):
                in_env = True
            i += 1
            continue
        if (not s or s.startswith("#") or re.match(r"^\(\w[\w:-]*\)=$", s) or re.match(r"^-{3,}$", s)
                or re.match(r"^\s*:[\w-]+:", line) and not para):
            flush()
            i += 1
            continue
        if s.startswith("|"):                                     # Markdown table
            flush()
            if i + 1 < len(lines) and re.match(r"^\|?\s*:?-{3,}", lines[i + 1].strip()):
                stats["tables"] += 1
            i += 1
            continue
        if re.match(r"^([*+-]|\d+\.|•)\s+", s):                    # a list item starts a unit
            flush()
            item[0] = True
            s = re.sub(r"^([*+-]|\d+\.|•)\s+", "", s)
        para.append(s)
        i += 1
    flush()
    return units


def text_units(txt: str, stats: dict) -> list[str]:
    """The survey as plain text: one unit per line (its paragraphs are single lines)."""
    stats["figures"] += len(re.findall(r"^\s*Fig\.\s*\d+\.", txt, re.M))
    units = []
    for line in txt.splitlines():
        s = line.strip()
        if not s or re.match(r"^\[(\d+|Updated on)", s):           # references, update notes
            continue
        if s.startswith("Cited as"):
            break                                                 # citation block and references
        s = re.sub(r"^Fig\.\s*\d+\.\s*", "", s)                  # caption number
        is_item = bool(re.match(r"^(•|\d+\.)\s*", s))
        s = re.sub(r"^(•|\d+\.)\s*", "", s)
        s = re.sub(r"\\\[.*?\\\]", " ", s)                       # display math
        s = _inline(s)
        words_ = re.findall(r"\w[\w'’\-]*", s)
        if not re.search(r"[.!?:;,)]$", s) and len(words_) <= 6 and not re.match(r"^[a-z]", s):
            continue                                              # a heading or an image's alt text
        _add(units, s, is_item)
    return units


def notebook_units(nb: dict, stats: dict) -> list[str]:
    units = []
    for cell in nb.get("cells", []):
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else src
        if cell.get("cell_type") == "markdown":
            stats["figures"] += _count_images(src)
            units += markdown_units(src, stats)
        elif cell.get("cell_type") == "code":
            outs = cell.get("outputs", [])
            imgs = any(k.startswith("image/") for o in outs for k in o.get("data", {}))
            if outs:
                stats["figures"] += int(imgs)
            else:
                code = "\n".join(l for l in src.splitlines() if not l.lstrip().startswith("#"))
                stats["figures"] += int(bool(TOP_LEVEL_DRAW.search(code)))
            if any("text/markdown" in o.get("data", {}) and "|" in "".join(o["data"]["text/markdown"])
                   for o in outs):
                stats["tables"] += 1
    return units


# ---------------------------------------------------------------- counting

def sentences(units: list[str]) -> list[str]:
    out = []
    for u in units:
        protected = u
        for a in ABBREV:
            protected = protected.replace(a, a.replace(".", "\u2024"))
        protected = re.sub(r"\b([A-Z])\.(?=\s?[A-Z]\.)", "\\1\u2024", protected)   # initials
        for s in re.split(r"(?<=[.!?])[\"”’)]?\s+(?=[^a-z\s])", protected):
            s = s.replace("\u2024", ".").strip()
            if re.search(r"\w", s):
                out.append(s)
    return out


def words(sentence: str) -> list[str]:
    return [w for w in re.findall(r"[\w][\w'’\-\u2013.,]*", sentence) if re.search(r"\w", w)]


def syllables(word: str) -> int:
    w = re.sub(r"[^a-z]", "", word.lower())
    if not w:
        return 1                                  # numbers, symbols, Greek: one beat, as textstat does
    if len(w) <= 3:
        return 1
    w = re.sub(r"(?:[^laeiouy]es|[^laeiouy]ed|[^laeiouy]e)$", lambda m: m.group(0)[0], w)
    w = re.sub(r"^y", "", w)
    n = len(re.findall(r"[aeiouy]+", w))
    return max(1, n)


def flesch(text_sentences: list[str], text_words: list[str]) -> float:
    try:
        import textstat  # noqa: PLC0415
        return textstat.flesch_reading_ease(" ".join(text_sentences))
    except ImportError:
        n_s, n_w = max(1, len(text_sentences)), max(1, len(text_words))
        n_syl = sum(syllables(w) for w in text_words)
        return 206.835 - 1.015 * n_w / n_s - 84.6 * n_syl / n_w


def analyse(path: pathlib.Path, dump: pathlib.Path | None = None) -> dict:
    stats = {"figures": 0, "tables": 0}
    raw = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".ipynb":
        units = notebook_units(json.loads(raw), stats)
    elif path.suffix in (".md", ".markdown"):
        stats["figures"] += _count_images(raw)
        units = markdown_units(raw, stats)
    else:
        units = text_units(raw, stats)
    sents = sentences(units)
    lengths = [len(words(s)) for s in sents]
    all_words = [w for s in sents for w in words(s)]
    if dump:
        dump.mkdir(parents=True, exist_ok=True)
        (dump / (path.name + ".sentences.txt")).write_text(
            "\n".join(f"{n:3d} | {s.replace(MARK, '$')}" for n, s in zip(lengths, sents)), encoding="utf-8")
    n = max(1, len(sents))
    joined = " ".join(sents)
    return {"file": str(path), "words": len(all_words), "sentences": len(sents),
            "mean_len": sum(lengths) / n, "over35": sum(l > 35 for l in lengths) / n,
            "flesch": flesch([s.replace(MARK, "") for s in sents], all_words),
            "figures": stats["figures"], "tables": stats["tables"],
            "math_per_100w": 100 * joined.count(MARK) / max(1, len(all_words)),
            "clause_marks_per_sentence": (joined.count(";") + joined.count(":")) / n,
            "longest": max(sents, key=lambda s: len(words(s))).replace(MARK, "$") if sents else ""}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+", type=pathlib.Path)
    ap.add_argument("--json", action="store_true", help="print one JSON object per file")
    ap.add_argument("--dump", type=pathlib.Path, help="write each file's sentences, with lengths, here")
    ap.add_argument("--over-targets", action="store_true",
                    help="print only the files above the book's targets (mean > 17 words, > 3 %% of sentences "
                         "over 35 words, > 0.4 ;/: per sentence) and exit 1 if there are any")
    ap.add_argument("--math", choices=("drop", "token"), default="drop",
                    help="inline math: drop it (default) or count it as one one-syllable word")
    args = ap.parse_args(argv)
    global MATH_TOKEN
    MATH_TOKEN = MARK if args.math == "drop" else "x" + MARK
    rows = [analyse(p, args.dump) for p in args.files]
    if args.over_targets:
        over = [r for r in rows if r["mean_len"] > 17 or r["over35"] > 0.03 or r["clause_marks_per_sentence"] > 0.4]
        for r in over:
            print(f"{r['file']}: mean {r['mean_len']:.1f} words, {100 * r['over35']:.0f}% over 35 words, "
                  f"{r['clause_marks_per_sentence']:.2f} ;/: per sentence")
        return 1 if over else 0
    if args.json:
        for r in rows:
            print(json.dumps(r, ensure_ascii=False))
        return 0
    name_w = max(12, *(len(pathlib.Path(r["file"]).name) for r in rows))
    head = (f"{'file':<{name_w}} {'words':>6} {'sent.':>5} {'mean len':>8} {'>35 w':>6} {'Flesch':>6} {'figs':>4} "
            f"{'tables':>6} {'math/100w':>9} {';:/sent':>7}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{pathlib.Path(r['file']).name:<{name_w}} {r['words']:>6} {r['sentences']:>5} {r['mean_len']:>8.1f} "
              f"{100 * r['over35']:>5.0f}% {r['flesch']:>6.1f} {r['figures']:>4} {r['tables']:>6} "
              f"{r['math_per_100w']:>9.1f} {r['clause_marks_per_sentence']:>7.2f}")
    try:
        import textstat  # noqa: F401,PLC0415
        print("\nFlesch: textstat")
    except ImportError:
        print("\nFlesch: 206.835 - 1.015 words/sentence - 84.6 syllables/word (heuristic syllables)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
