import os
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest
import torch
import yaml

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"


def pytest_addoption(parser):
    parser.addoption("--colab-freeze", metavar="PATH",
                     help="the Colab package freeze the Colab tests pin to (default: tests/data's; "
                          "or set COLAB_FREEZE); the weekly canary passes Colab's current one")


def pytest_configure(config):
    if path := config.getoption("--colab-freeze", default=None):
        os.environ["COLAB_FREEZE"] = str(Path(path).resolve())


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def toc_pages() -> list[str]:
    """Every page of the book, from _toc.yml (root first), as docnames like 'chapters/01_x'."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        for chapter in part["chapters"]:
            pages.append(chapter["file"])
            pages += [s["file"] for s in chapter.get("sections", [])]
    return pages


def pytest_generate_tests(metafunc):
    """A test that takes ``page`` runs once for every page of the book (from _toc.yml)."""
    if "page" in metafunc.fixturenames:
        metafunc.parametrize("page", toc_pages())


@pytest.fixture(scope="session")
def toc():
    return toc_pages()


@pytest.fixture(scope="session")
def built_site():
    """Build the book once per test session (README command (a)'s build step, with warnings
    as errors) and return (html folder, build log). The site tests run against it."""
    subprocess.run([sys.executable, str(ROOT / "scripts" / "fetch_web_assets.py")], check=True)
    jb = shutil.which("jupyter-book", path=str(Path(sys.executable).parent))
    assert jb, "jupyter-book is not installed in this environment"
    env = {k: v for k, v in os.environ.items() if k != "COMPANION_WIDGETS"}
    env["COMPANION_EXECUTE"] = "force"        # a full build: every page executed, no cache
    out = subprocess.run([jb, "build", str(ROOT), "--all", "--warningiserror", "--keep-going"],
                         capture_output=True, text=True, timeout=1800, env=env)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-5000:]
    return SITE, log
