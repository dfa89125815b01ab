"""What the Colab editions install, checked, and a release cut.

    python scripts/release.py check              # the ref in _config.yml
    python scripts/release.py check --ref v0.2.0 # any branch, tag or commit
    python scripts/release.py release 0.2.0      # what `make release VERSION=0.2.0` runs

**The rule.** Every Colab edition's first cell installs
``companion @ git+<repository>@<colab.ref>``. On the published branch (``repository.branch``
in ``_config.yml``, ``main``) the ref is that branch, so a reader who opens a notebook from
``main`` gets the package of the same commit. A release's own commit names its tag
``v<companion.__version__>``, so the tag's notebooks install the tag. ``release`` does both:
it bumps the version, rebuilds the book and writes the editions with the tag, commits, tags,
then writes the editions back to the branch and commits again.

**The check.** ``check`` builds the package from the ref the editions name (the working tree
when that ref is the checked-out branch, else ``git archive``), installs the wheel into a
temporary folder and imports it there. Every ``companion`` name a page's code cells import,
reach through an imported module, or pass a keyword to must exist in it. It fails when the
ref does not exist, or when a page uses a name the ref lacks.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_FILES = ("companion", "pyproject.toml", "README.md", "LICENSE")   # what the wheel is built from
VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


class ReleaseError(RuntimeError):
    """A ref that does not exist, a name a ref lacks, or a release refused before it changed anything."""


# ------------------------------------------------------------------------------- git

def git(*args: str, root: Path = ROOT, check: bool = True) -> str:
    out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if check and out.returncode != 0:
        raise ReleaseError(f"git {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout.strip()


def commit_of(ref: str, root: Path = ROOT) -> str | None:
    """The commit a branch, tag or commit names, or None when it names nothing here. A branch
    may exist only as a remote-tracking branch (a fresh CI checkout)."""
    for name in (ref, f"refs/tags/{ref}", f"refs/heads/{ref}", f"refs/remotes/origin/{ref}"):
        sha = git("rev-parse", "--verify", "--quiet", f"{name}^{{commit}}", root=root, check=False)
        if sha:
            return sha
    return None


def current_branch(root: Path = ROOT) -> str | None:
    return git("symbolic-ref", "--quiet", "--short", "HEAD", root=root, check=False) or None


# ----------------------------------------------------------------------- configuration

def config(root: Path = ROOT) -> dict:
    return yaml.safe_load((root / "_config.yml").read_text())


def install_ref(root: Path = ROOT) -> str:
    return str(config(root)["colab"]["ref"])


def published_branch(root: Path = ROOT) -> str:
    return str(config(root)["repository"].get("branch", "main"))


def package_version(root: Path = ROOT) -> str:
    """``companion.__version__``, read from the source without importing it (the one place the
    version is written; pyproject.toml reads it from there)."""
    tree = ast.parse((root / "companion" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__" for t in node.targets):
            return ast.literal_eval(node.value)
    raise ReleaseError("companion/__init__.py sets no __version__")


def rule_problems(root: Path = ROOT) -> list[str]:
    """Where ``colab.ref`` breaks the rule: the published branch, or this version's tag at HEAD."""
    ref, branch, tag = install_ref(root), published_branch(root), f"v{package_version(root)}"
    if ref == branch:
        return []
    if ref != tag:
        return [f"colab.ref is {ref!r}: it must be the published branch {branch!r} or this version's tag {tag!r}"]
    if commit_of(tag, root) is None:
        return [f"colab.ref names the tag {tag!r}, which does not exist"]
    if commit_of(tag, root) != commit_of("HEAD", root):
        return [f"colab.ref names the tag {tag!r}, but the tag is not this commit (only a release's own commit names it)"]
    return []


# ------------------------------------------------------------------- the package at a ref

def package_source(ref: str, dest: Path, root: Path = ROOT) -> str:
    """Copy the package's files at ``ref`` into ``dest``; say where they came from. The working
    tree stands for the ref when the ref is the checked-out branch (what a test of a branch
    must see); anything else is read from git."""
    sha = commit_of(ref, root)
    if sha is None:
        raise ReleaseError(f"the ref {ref!r} does not exist in this repository (no branch, tag or commit of that name)")
    if ref == current_branch(root):
        for name in PACKAGE_FILES:
            (shutil.copytree if (root / name).is_dir() else shutil.copy)(root / name, dest / name)
        return f"the working tree of branch {ref}"
    archive = subprocess.run(["git", "archive", "--format=tar", sha, *PACKAGE_FILES], cwd=root,
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return f"{ref} ({sha[:10]})"


def _pip(*args: str) -> None:
    out = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise ReleaseError(f"pip {args[0]} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")


def install_package(src: Path, target: Path) -> None:
    """Build the wheel from ``src`` and install it, without dependencies, into ``target``."""
    wheels = src.parent / "wheels"
    _pip("wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(src))
    (wheel,) = wheels.glob("companion-*.whl")
    _pip("install", "-q", "--no-deps", "--target", str(target), str(wheel))


# ------------------------------------------------------------------- names the pages use

def edition_pages(root: Path = ROOT) -> list[Path]:
    return [root / "index.ipynb", *sorted((root / "chapters").glob("*.ipynb"))]


def code_cells(notebook: Path) -> list[str]:
    cells = json.loads(notebook.read_text())["cells"]
    sources = ("".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells
               if c["cell_type"] == "code")
    # IPython's magics and shell lines are not Python
    return ["\n".join(line for line in s.splitlines() if not line.lstrip().startswith(("%", "!"))) for s in sources]


def _dotted(node: ast.AST) -> list[str] | None:
    """``a.b.c`` as ["a", "b", "c"]; None for anything but names and attributes."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    return None


def used_names(source: str) -> set[str]:
    """The companion names one code cell needs: ``module:attr.attr`` for what it imports or
    reaches through an imported name, ``module:attr(keyword=)`` for each keyword it passes."""
    tree = ast.parse(source)
    bound: dict[str, tuple[str, str]] = {}           # local name -> (module, attribute path)
    needed: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "companion":
                    bound[a.asname or a.name.split(".")[0]] = (a.name if a.asname else "companion", "")
                    needed.add(f"{a.name}:")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "companion":
            for a in node.names:
                bound[a.asname or a.name] = (node.module, a.name)
                needed.add(f"{node.module}:{a.name}")

    def resolve(expr: ast.AST) -> str | None:
        parts = _dotted(expr)
        if not parts or parts[0] not in bound:
            return None
        module, path = bound[parts[0]]
        return f"{module}:{'.'.join(p for p in [path, *parts[1:]] if p)}"

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and (name := resolve(node)):
            needed.add(name)
        if isinstance(node, ast.Call) and (name := resolve(node.func)):
            needed.update(f"{name}({k.arg}=)" for k in node.keywords if k.arg)
    return needed


def names_by_page(root: Path = ROOT) -> dict[str, set[str]]:
    out = {}
    for nb in edition_pages(root):
        names = set()
        for i, source in enumerate(code_cells(nb)):
            try:
                names |= used_names(source)
            except SyntaxError as e:
                raise ReleaseError(f"{nb.relative_to(root)}, code cell {i}: not Python ({e})") from e
        out[nb.relative_to(root).as_posix()] = names
    return out


RESOLVE = r'''
import importlib, inspect, json, sys
import companion
assert companion.__file__.startswith(sys.argv[1]), f"imported {companion.__file__}, not the built package"
missing = []
for name in json.loads(sys.stdin.read()):
    module, _, rest = name.partition(":")
    keyword = rest[rest.index("(") + 1:-2] if rest.endswith("=)") else None
    path = rest.split("(")[0]
    try:
        obj = importlib.import_module(module)
        for part in filter(None, path.split(".")):
            obj = getattr(obj, part) if hasattr(obj, part) else importlib.import_module(f"{obj.__name__}.{part}")
    except (ImportError, AttributeError):
        missing.append(name)
        continue
    if keyword:
        try:
            params = inspect.signature(obj).parameters
        except (TypeError, ValueError):
            continue
        if keyword not in params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            missing.append(name)
print(json.dumps(missing))
'''


def missing_names(target: Path, names: set[str]) -> set[str]:
    """The names that the package installed in ``target`` lacks (imported in a fresh
    interpreter that sees that package, not this checkout)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")} | {"PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-P", "-c", RESOLVE, str(target)], input=json.dumps(sorted(names)),
                         capture_output=True, text=True, cwd=target, env=env)
    if out.returncode != 0:
        raise ReleaseError(f"importing the built package failed:\n{out.stderr[-3000:]}")
    return set(json.loads(out.stdout))


@dataclass
class Report:
    ref: str
    source: str
    pages: int
    names: int
    missing: dict[str, list[str]]

    def __str__(self) -> str:
        lines = [f"ref {self.ref}: built from {self.source}; {self.names} companion names used by {self.pages} pages"]
        lines += [f"  {page}: missing {', '.join(names)}" for page, names in self.missing.items()]
        lines.append("  every name exists" if not self.missing else "  FAILED")
        return "\n".join(lines)


def check(ref: str | None = None, root: Path = ROOT, pages_root: Path | None = None) -> Report:
    """Build the package at ``ref`` (default: the editions' ref) and find every name the
    editions in ``pages_root`` (default: ``root``) use that it lacks."""
    ref = ref or install_ref(root)
    by_page = names_by_page(pages_root or root)
    with tempfile.TemporaryDirectory(prefix="companion-ref-") as tmp:
        src, target = Path(tmp) / "src", Path(tmp) / "site"
        src.mkdir()
        source = package_source(ref, src, root)
        install_package(src, target)
        missing = missing_names(target, set().union(*by_page.values()))
    return Report(ref, source, len(by_page), len(set().union(*by_page.values())),
                  {page: sorted(names & missing) for page, names in by_page.items() if names & missing})


# ------------------------------------------------------------------------------- release

def set_version(version: str, root: Path = ROOT) -> None:
    init = root / "companion" / "__init__.py"
    text, n = re.subn(r'^__version__ = "[^"]*"$', f'__version__ = "{version}"', init.read_text(), flags=re.M)
    if n != 1:
        raise ReleaseError(f"{init} must set __version__ exactly once")
    init.write_text(text)


def set_ref(ref: str, root: Path = ROOT) -> None:
    """Write ``colab.ref`` in _config.yml, keeping its comments."""
    path = root / "_config.yml"
    text, n = re.subn(r"^(colab:\n(?:#.*\n)*\s+ref:\s*)\S+$", rf"\g<1>{ref}", path.read_text(), flags=re.M)
    if n != 1:
        raise ReleaseError("_config.yml must hold one `colab:` block with a `ref:`")
    path.write_text(text)


def release_refusals(version: str, root: Path = ROOT) -> list[str]:
    """Why a release of ``version`` cannot start now (nothing is changed before this is empty)."""
    problems = []
    if not VERSION.match(version):
        return [f"VERSION must look like 1.2.3, got {version!r}"]
    current = package_version(root)
    if VERSION.match(current) and tuple(map(int, version.split("."))) <= tuple(map(int, current.split("."))):
        problems.append(f"VERSION {version} must be newer than the current {current}")
    if commit_of(f"v{version}", root) is not None:
        problems.append(f"the tag v{version} already exists")
    if git("status", "--porcelain", root=root):
        problems.append("the working tree has changes: commit or stash them first")
    if current_branch(root) != published_branch(root):
        problems.append(f"releases are cut on {published_branch(root)!r}, not {current_branch(root)!r}")
    return problems


def release(version: str, root: Path = ROOT, build: list[str] | None = None, editions: list[str] | None = None) -> None:
    """Cut release ``version``: bump, rebuild the book and the editions with the tag, check the
    names, commit, tag, then put the editions back on the branch. ``build`` rebuilds the book and
    writes the editions with its numbers; ``editions`` only writes the editions."""
    if problems := release_refusals(version, root):
        raise ReleaseError("no release: " + "; ".join(problems))
    tag, branch = f"v{version}", published_branch(root)
    build = build or ["make", "editions"]
    editions = editions or [sys.executable, "scripts/colab_edition.py"]
    set_version(version, root)
    set_ref(tag, root)
    subprocess.run(build, cwd=root, check=True)
    report = check(branch, root)             # the tree about to be tagged is the working tree
    if report.missing:
        raise ReleaseError(f"{report}\nnothing committed; `git checkout .` undoes the bump")
    git("commit", "-qam", f"Release {tag}: the Colab editions install {tag}", root=root)
    git("tag", "-a", tag, "-m", f"Release {tag}", root=root)
    set_ref(branch, root)
    subprocess.run(editions, cwd=root, check=True)
    git("commit", "-qam", f"After {tag}: the Colab editions on {branch} install {branch} again", root=root)
    print(f"Released {tag}. Publish it with: git push origin {branch} {tag}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="build the package at the editions' ref and look up every name the pages use")
    c.add_argument("--ref", help="check this branch, tag or commit instead of colab.ref")
    r = sub.add_parser("release", help="cut a release (make release VERSION=x.y.z)")
    r.add_argument("version")
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            problems = rule_problems() if args.ref is None else []
            report = check(args.ref)
            print(report, *problems, sep="\n")
            return 1 if report.missing or problems else 0
        release(args.version)
        return 0
    except ReleaseError as e:
        print(e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
