"""The Colab canary: the Colab tests, run against Colab's current package list.

    python scripts/colab_canary.py fetch --out FREEZE     # Colab's list as published today (network)
    python scripts/colab_canary.py run --freeze FREEZE    # pin an environment to it, run every edition
    python scripts/colab_canary.py run --freeze tests/data/colab-gpu-pip-freeze.txt --torch local

Colab changes its image every few months (Python, PyTorch, NumPy, ipywidgets). A new image can
break every chapter for readers while our own tests, pinned to an older freeze, stay green.
``.github/workflows/colab-canary.yml`` runs this weekly: ``fetch`` downloads the GPU runtime's
``pip-freeze.gpu.txt`` and ``os-info-gpu.txt`` from googlecolab/backend-info and writes the
freeze with a header (source, date, Colab's Python); ``run`` runs ``tests/test_colab_env.py``
on it with every chapter's Colab edition and Colab's PyTorch version in its CPU build, plus the
test that the package's dependency floors accept what Colab has. It writes a report (what
changed since the shipped freeze, and the outcome) that the workflow files as an issue when
something breaks.

Only ``fetch`` needs the network beyond the package registries. ``--torch local`` keeps the
PyTorch this checkout's tests use (2.13.0, CPU) instead of Colab's version, for a run here.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "tests" / "data" / "colab-gpu-pip-freeze.txt"
SOURCE = "https://raw.githubusercontent.com/googlecolab/backend-info/main/"
FREEZE_NAME, OS_INFO_NAME = "pip-freeze.gpu.txt", "os-info-gpu.txt"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
LOCAL_TORCH = "torch==2.13.0"
TESTS = ["tests/test_colab_env.py", "tests/test_setup.py::test_every_dependency_floor_accepts_what_colab_has"]
#: what the report compares between the shipped freeze and Colab's current one
WATCHED = ["torch", "numpy", "scipy", "matplotlib", "scikit-learn", "pillow", "safetensors", "tqdm",
           "ipywidgets", "ipykernel", "ipython", "traitlets", "jupyter-client", "nbformat", "setuptools", "pip"]
HEADER = """# Packages preinstalled on a Google Colab GPU runtime (Python {python} there), as published in the
# public repository googlecolab/backend-info, file {name}, state of {date}.
# Reference data: what a reader's Colab kernel already has before a chapter's install cell runs.
"""


def pins(text: str) -> dict[str, str]:
    """{canonical name (PEP 503: lower case, runs of ``-_.`` as one ``-``): version} of every
    ``name==version`` line of a pip freeze. The one parser: ``tests/colab_freeze.py`` uses it."""
    return {re.sub(r"[-_.]+", "-", m[1]).lower(): m[2] for line in text.splitlines()
            if (m := re.match(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", line.strip()))}


def python_of_os_info(text: str) -> str:
    """``3.12`` from os-info's ``Python 3.12.13`` line."""
    m = re.search(r"^Python (3\.\d+)", text, re.M)
    if not m:
        raise ValueError(f"{OS_INFO_NAME} names no Python version:\n{text[:500]}")
    return m[1]


def python_of_freeze(text: str) -> str:
    """Colab's Python, from the header our freeze files carry."""
    m = re.search(r"\(Python (3\.\d+) there\)", text)
    if not m:
        raise ValueError("the freeze has no header naming Colab's Python (write it with `fetch`)")
    return m[1]


def with_header(freeze: str, os_info: str, date: dt.date) -> str:
    if len(pins(freeze)) < 100 or "torch" not in pins(freeze):
        raise ValueError(f"{FREEZE_NAME} does not look like Colab's freeze ({len(pins(freeze))} pinned packages)")
    return HEADER.format(python=python_of_os_info(os_info), name=FREEZE_NAME, date=date.isoformat()) + freeze


def fetch(out: Path, base: str = SOURCE) -> str:
    """Write Colab's current freeze, with its header, to ``out``; return Colab's Python."""
    def get(name: str) -> str:
        with urllib.request.urlopen(base + name, timeout=60) as r:
            return r.read().decode()

    text = with_header(get(FREEZE_NAME), get(OS_INFO_NAME), dt.date.today())
    out.write_text(text)
    return python_of_freeze(text)


def torch_spec(freeze: str) -> str:
    """Colab's PyTorch version without its CUDA label: ``torch==2.11.0`` for 2.11.0+cu128."""
    return "torch==" + pins(freeze)["torch"].split("+")[0]


def changes(old: str, new: str) -> list[tuple[str, str, str]]:
    """(package, shipped version, current version) for each watched package that moved."""
    a, b = pins(old), pins(new)
    out = [("python", python_of_freeze(old), python_of_freeze(new))]
    out += [(n, a.get(n, "-"), b.get(n, "-")) for n in WATCHED]
    return [c for c in out if c[1] != c[2]]


def command(freeze: Path, chapters: str = "all", torch: str = "colab") -> tuple[list[str], dict[str, str]]:
    """The pytest command and environment of a canary run."""
    env = dict(os.environ, COLAB_FREEZE=str(freeze.resolve()), COLAB_CHAPTERS=chapters)
    if torch == "local":
        env.update(COLAB_TORCH=LOCAL_TORCH, COLAB_TORCH_INDEX="")
    else:
        env.update(COLAB_TORCH=torch_spec(freeze.read_text()), COLAB_TORCH_INDEX=TORCH_CPU_INDEX)
    return [sys.executable, "-m", "pytest", *TESTS, "-p", "no:cacheprovider", "-ra", "-q"], env


def report(freeze: Path, rc: int, tail: str, env: dict[str, str]) -> str:
    moved = changes(SHIPPED.read_text(), freeze.read_text())
    lines = [f"## Colab canary: {'passed' if rc == 0 else 'FAILED'} ({dt.date.today().isoformat()})", "",
             f"Freeze: `{freeze.name}`, Colab's Python {python_of_freeze(freeze.read_text())}; PyTorch "
             f"{env['COLAB_TORCH']} (CPU build). Chapters: {env['COLAB_CHAPTERS']}.", ""]
    if moved:
        lines += ["Changed since the shipped freeze (`tests/data/colab-gpu-pip-freeze.txt`):", "",
                  "| package | shipped | Colab now |", "| --- | --- | --- |"]
        lines += [f"| {n} | {a} | {b} |" for n, a, b in moved]
    else:
        lines.append("No watched package moved since the shipped freeze.")
    lines += ["", "Last lines of the test run:", "", "```", tail.strip()[-6000:], "```", "",
              "To adopt this image: `python scripts/colab_canary.py fetch --out tests/data/colab-gpu-pip-freeze.txt`, "
              "then `make test`, and fix what fails (README, *When Colab changes*)."]
    return "\n".join(lines) + "\n"


def run(freeze: Path, chapters: str = "all", torch: str = "colab", out: Path | None = None) -> int:
    python_of_freeze(freeze.read_text())            # refuse a freeze without its header before anything runs
    cmd, env = command(freeze, chapters, torch)
    print("$", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(proc.stdout)
    if out is not None:
        out.write_text(report(freeze, proc.returncode, proc.stdout[-8000:], env))
    return proc.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fetch", help="download Colab's current GPU-runtime freeze (network)")
    f.add_argument("--out", type=Path, required=True)
    r = sub.add_parser("run", help="run the Colab tests against a freeze")
    r.add_argument("--freeze", type=Path, default=SHIPPED)
    r.add_argument("--chapters", default="all", help="'all' or a comma-separated list such as 01_autoencoder,06_vae")
    r.add_argument("--torch", default="colab", choices=["colab", "local"],
                   help="colab: Colab's version from PyTorch's CPU index; local: this checkout's 2.13.0")
    r.add_argument("--report", type=Path, help="write a Markdown report here")
    args = parser.parse_args(argv)
    if args.command == "fetch":
        python = fetch(args.out)
        print(f"wrote {args.out}; Colab's Python is {python}")
        if gh := os.environ.get("GITHUB_OUTPUT"):
            with open(gh, "a") as fh:
                fh.write(f"python={python}\n")
        return 0
    return run(args.freeze, args.chapters, args.torch, args.report)


if __name__ == "__main__":
    sys.exit(main())
