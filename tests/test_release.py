"""The Colab editions install the package they were written against (scripts/release.py).

The rule: on the published branch the install cell names that branch; a release's own commit
names its tag. The check builds the package from the named ref and looks up every companion
name the editions use. It must fail on a missing ref and on a name the ref lacks, and a
release must refuse to start, changing nothing, when it cannot finish.
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("release", ROOT / "scripts" / "release.py")
release = sys.modules.setdefault("release", importlib.util.module_from_spec(spec))
spec.loader.exec_module(release)


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


def _repo(tmp: Path, everything: bool = False) -> Path:
    """A git repository holding a copy of this checkout (its package and configuration, or
    every file git does not ignore), committed on main."""
    repo = tmp / "repo"
    listed = _git(ROOT, "ls-files", "--cached", "--others", "--exclude-standard").splitlines()
    keep = ("companion/", "pyproject.toml", "README.md", "LICENSE", "_config.yml")
    for name in listed:
        if (everything or name.startswith(keep)) and (ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / name, repo / name)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
    return repo


def _edition(folder: Path, name: str, *cells: str) -> None:
    nb = {"cells": [{"cell_type": "code", "source": c, "metadata": {}, "outputs": [], "execution_count": None}
                    for c in cells], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(nb))


def test_the_install_ref_follows_the_rule():
    assert release.install_ref() == release.published_branch() or release.install_ref().startswith("v")
    assert release.rule_problems() == []


def test_every_edition_names_the_configured_ref():
    spec_line = f"git+{release.config()['repository']['url'].rstrip('/')}@{release.install_ref()}\""
    for nb in release.edition_pages():
        assert spec_line in release.code_cells(nb)[0], f"{nb.name}: its install cell names another ref"


@pytest.mark.slow      # builds the package
def test_the_install_ref_builds_and_has_every_name_the_editions_use():
    """The real check: the package at colab.ref, built as a wheel and imported on its own."""
    report = release.check()
    print(report)
    assert report.pages == len(release.edition_pages()) >= 12
    assert report.names > 100                           # the parser sees the chapters' imports
    assert report.missing == {}, str(report)


def test_a_ref_that_does_not_exist_fails():
    with pytest.raises(release.ReleaseError, match="'v9.9.9' does not exist"):
        release.check("v9.9.9")


@pytest.mark.slow      # builds the package
def test_a_tag_that_lacks_a_name_a_chapter_uses_fails(tmp_path):
    """A tag cut before a chapter started using a name: the check names the page and the name."""
    repo = _repo(tmp_path)
    _git(repo, "tag", "v0.0.1")
    pages = tmp_path / "pages"
    _edition(pages, "index.ipynb", "import companion\ncompanion.get_device('cpu')")
    _edition(pages, "chapters/07_x.ipynb", "%matplotlib inline\nfrom companion.train import History, fit\n"
             "History.smoothed_later\nfit(model, x, epochs=2, warmup_never=3)")
    report = release.check("v0.0.1", root=repo, pages_root=pages)
    assert report.source.startswith("v0.0.1 (")
    assert report.missing == {"chapters/07_x.ipynb": ["companion.train:History.smoothed_later",
                                                      "companion.train:fit(warmup_never=)"]}
    assert "FAILED" in str(report)


def test_used_names_follow_imports_aliases_calls_and_keywords():
    source = ("import companion\nfrom companion.metrics import disentanglement as dis\n"
              "from companion.experiments import ch06_vae as experiment\nimport numpy as np\n"
              "run = experiment.run(budget='quick').check('a')\ndis.mig(np.zeros(3), codes=1)\n"
              "companion.viz.quote(beta=2)\nnp.mean(run)\n")
    assert release.used_names(source) == {
        "companion:", "companion.metrics:disentanglement", "companion.metrics:disentanglement.mig",
        "companion.metrics:disentanglement.mig(codes=)", "companion.experiments:ch06_vae",
        "companion.experiments:ch06_vae.run", "companion.experiments:ch06_vae.run(budget=)",
        "companion:viz", "companion:viz.quote", "companion:viz.quote(beta=)"}


def test_a_release_refuses_before_changing_anything(tmp_path):
    repo = _repo(tmp_path)
    before = {p: p.read_bytes() for p in (repo / "_config.yml", repo / "companion" / "__init__.py")}
    version = release.package_version(repo)
    newer = ".".join(map(str, [*map(int, version.split(".")[:2]), int(version.split(".")[2]) + 1]))
    for bad, why in [("1.2", "must look like 1.2.3"), (version, "must be newer")]:
        with pytest.raises(release.ReleaseError, match=why):
            release.release(bad, root=repo, build=["false"], editions=["false"])
    _git(repo, "tag", f"v{newer}")
    with pytest.raises(release.ReleaseError, match="already exists"):
        release.release(newer, root=repo, build=["false"], editions=["false"])
    _git(repo, "tag", "-d", f"v{newer}")
    (repo / "README.md").write_text("changed")
    with pytest.raises(release.ReleaseError, match="working tree has changes"):
        release.release(newer, root=repo, build=["false"], editions=["false"])
    _git(repo, "checkout", "-q", "README.md")
    _git(repo, "checkout", "-qb", "topic")
    with pytest.raises(release.ReleaseError, match="cut on 'main', not 'topic'"):
        release.release(newer, root=repo, build=["false"], editions=["false"])
    assert {p: p.read_bytes() for p in before} == before
    assert _git(repo, "tag") == ""


@pytest.mark.slow      # builds the package
def test_a_release_tags_a_commit_whose_editions_install_the_tag(tmp_path):
    """The whole release on a copy, with the book build replaced by writing the editions (the
    real one runs `make editions`): the tag's editions name the tag, main's name main again."""
    repo = _repo(tmp_path, everything=True)
    version = release.package_version(repo)
    newer = f"{int(version.split('.')[0]) + 1}.0.0"
    editions = [sys.executable, "scripts/colab_edition.py"]
    git_id = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in git_id.items():
            mp.setenv(k, v)
        release.release(newer, root=repo, build=editions, editions=editions)
    tag = f"v{newer}"
    assert _git(repo, "rev-parse", f"{tag}^{{commit}}") == _git(repo, "rev-parse", "HEAD~1")
    tagged = _git(repo, "show", f"{tag}:chapters/06_vae.ipynb")
    assert f"@{tag}\\\"" in tagged and f'__version__ = "{newer}"' in _git(repo, "show", f"{tag}:companion/__init__.py")
    assert "colab:" in _git(repo, "show", f"{tag}:_config.yml") and f"ref: {tag}" in _git(repo, "show", f"{tag}:_config.yml")
    assert "@main\\\"" in (repo / "chapters" / "06_vae.ipynb").read_text()
    assert release.install_ref(repo) == "main" and release.rule_problems(repo) == []
    assert _git(repo, "status", "--porcelain") == ""
