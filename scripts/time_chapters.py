"""Execute each chapter's notebook from a fresh kernel and print its wall-clock time.

    .venv/bin/python scripts/time_chapters.py [chapters/01_autoencoder.md ...]

A benchmark, not a test: the budget is about 60 s per chapter on 2 CPU cores.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import jupytext
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def time_chapter(md: Path) -> float:
    nb = jupytext.read(md)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(md.parent)}})
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    chapters = [Path(a) for a in argv] or sorted((ROOT / "chapters").glob("*.md"))
    for md in chapters:
        print(f"{md.name:<32} {time_chapter(md):6.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
