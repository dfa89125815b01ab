"""A reader's Colab runtime, reproduced: install the companion into an environment pinned to
Colab's own package freeze, check that the install changes none of those packages, and run
the Colab editions of chapters 1 and 6 there with live widgets under Colab's ipywidgets. Under
``make test`` the chapters reuse the runs that the book build saved ($COMPANION_RUN_CACHE),
so training meets Colab's packages in the smoke runs of every experiment instead.

The freeze is ``tests/data/colab-gpu-pip-freeze.txt`` (Colab's published list), or the one
named by ``--colab-freeze``/``$COLAB_FREEZE`` (tests/colab_freeze.py). The weekly canary
(``scripts/colab_canary.py``, ``.github/workflows/colab-canary.yml``) runs this file against
Colab's current list, with every chapter (``COLAB_CHAPTERS=all``) and Colab's PyTorch version
in its CPU build (``COLAB_TORCH``, ``COLAB_TORCH_INDEX``).

What this machine cannot copy is substituted, and said so: its Python (3.11 here; the freeze's
header says Colab's), PyTorch's CPU build 2.13.0 from this machine's disk (Colab's is a CUDA
build of several GB), and, because torch 2.13 declares ``setuptools>=77.0.3``, a newer
setuptools than Colab's 75.2.0 (Colab's torch 2.11 does not ask for it). Those two are left out
of the comparisons.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from colab_freeze import NOT_ON_COLAB, freeze
from packaging.utils import canonicalize_name as _norm

ROOT = Path(__file__).resolve().parents[1]
ENV = ROOT / ".venv-colab"
PY = ENV / "bin" / "python"
# PyTorch in place of Colab's CUDA build: by default the CPU build this machine has on disk; the
# canary asks for Colab's own version from PyTorch's CPU index
TORCH = os.environ.get("COLAB_TORCH", "torch==2.13.0")
TORCH_INDEX = os.environ.get("COLAB_TORCH_INDEX", "")
CHAPTERS = sorted(p.stem for p in (ROOT / "chapters").glob("[0-9]*.ipynb"))
RUN = (CHAPTERS if os.environ.get("COLAB_CHAPTERS", "") == "all"
       else os.environ.get("COLAB_CHAPTERS", "01_autoencoder,06_vae").split(","))
# What the chapters and the companion need, as Colab has them (the versions come from the freeze)
PACKAGES = ["pip", "numpy", "scipy", "matplotlib", "scikit-learn", "tqdm", "safetensors", "pillow",
            "ipywidgets", "widgetsnbextension", "jupyterlab_widgets", "ipython", "ipykernel", "traitlets",
            "jupyter_client", "jupyter_core", "pyzmq", "tornado", "nbclient", "nbformat"]

#: packages this environment cannot have at Colab's version, and why
SUBSTITUTED = {"torch": "a CPU build instead of Colab's CUDA build",
               "setuptools": "torch 2.13 requires setuptools>=77.0.3; Colab has 75.2.0 under torch 2.11"}

pytestmark = pytest.mark.slow


def _run(*cmd, **kw):
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert out.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


@pytest.fixture(scope="module")
def colab_env(tmp_path_factory) -> Path:
    """A virtual environment with Colab's versions of the packages the chapters touch (built
    once, kept in .venv-colab/ and rebuilt when the freeze or this list changes)."""
    pins = freeze()
    constraints = "\n".join(f"{n}=={v}" for n, v in sorted(pins.items())
                            if n not in SUBSTITUTED and "+" not in v and not n.startswith(("torch", "nvidia-")))
    key = hashlib.sha256((constraints + TORCH + TORCH_INDEX + " ".join(PACKAGES)).encode()).hexdigest()[:16]
    stamp = ENV / f".colab-{key}"
    if not stamp.is_file():
        _run(sys.executable, "-m", "venv", "--clear", ENV)
        (ENV / "colab-constraints.txt").write_text(constraints + "\n")
        _run(PY, "-m", "pip", "install", "-q", "pip==" + pins["pip"])
        _run(PY, "-m", "pip", "install", "-q", "-c", ENV / "colab-constraints.txt", TORCH,
             *(["--index-url", TORCH_INDEX] if TORCH_INDEX else []))
        _run(PY, "-m", "pip", "install", "-q", "-c", ENV / "colab-constraints.txt", *PACKAGES)
        stamp.touch()
    return ENV


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The companion package as a wheel, built from this checkout."""
    out, src = tmp_path_factory.mktemp("wheel"), tmp_path_factory.mktemp("src")
    for name in ("companion", "pyproject.toml", "README.md", "LICENSE"):    # built out of tree: no build/ here
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, src / name)
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", out, src)
    (whl,) = out.glob("companion-*.whl")
    return whl


def installed(env: Path) -> dict[str, str]:
    listing = json.loads(_run(env / "bin" / "python", "-m", "pip", "list", "--format", "json"))
    return {_norm(p["name"]): p["version"] for p in listing}


def _without_companion(env: Path) -> dict[str, str]:
    """Uninstall the companion if an earlier test installed it; return what is installed."""
    if "companion" in installed(env):
        _run(env / "bin" / "python", "-m", "pip", "uninstall", "-y", "-q", "companion")
    return installed(env)


def test_environment_matches_the_colab_freeze(colab_env):
    pins, have = freeze(), installed(colab_env)
    differ = {n: (have[n], pins[n]) for n in have if n in pins and have[n] != pins[n] and n not in SUBSTITUTED}
    assert not differ, f"installed vs Colab: {differ}"
    assert {"ipywidgets", "numpy", "matplotlib", "ipykernel"} <= have.keys() & pins.keys()


def test_installing_the_companion_changes_no_colab_package(colab_env, wheel, tmp_path):
    """pip's own dry run: what would it install? Only packages Colab does not have."""
    _without_companion(colab_env)
    report = tmp_path / "report.json"
    _run(colab_env / "bin" / "python", "-m", "pip", "install", "--dry-run", "--quiet", "--report", report, wheel)
    would = {_norm(i["metadata"]["name"]): i["metadata"]["version"] for i in json.loads(report.read_text())["install"]}
    pins = freeze()
    changed = {n: (v, pins[n]) for n, v in would.items() if n in pins and n not in SUBSTITUTED}
    assert changed == {}, f"the install would change Colab's packages (new vs Colab): {changed}"
    assert "companion" in would


def test_every_experiment_trains_in_the_colab_environment(colab_env, wheel, tmp_path):
    """Colab's NumPy, SciPy and scikit-learn under the companion's training code: every
    experiment on its smoke budget, trained here (the chapter runs below may reuse runs that
    the book build saved, so this is where training itself meets Colab's packages)."""
    _without_companion(colab_env)
    _run(colab_env / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", wheel)
    from companion.experiments import EXPERIMENTS

    script = ("from companion.experiments import EXPERIMENTS, reproduce, ch07_beta_vae, ch07_sweep\n"
              "for name in EXPERIMENTS:\n"
              "    print(name, len(reproduce(name, 'smoke')['metrics']))\n"
              "print('records', ch07_sweep.record()['experiment'], ch07_beta_vae.full_record()['budget'])\n")
    env = {k: v for k, v in os.environ.items() if k not in ("COMPANION_RUN_CACHE", "VIRTUAL_ENV", "PYTHONPATH")}
    out = _run(colab_env / "bin" / "python", "-c", script, env=env, cwd=tmp_path, timeout=600)
    lines = out.splitlines()
    assert [line.split()[0] for line in lines[:-1]] == list(EXPERIMENTS), out
    assert lines[-1] == "records beta-vae-sweep full", out      # the saved records ship in the wheel


WIDGET_CHECK = r'''
import ipywidgets, torch
assert ipywidgets.__version__ == IPYWIDGETS, (ipywidgets.__version__, IPYWIDGETS)
from ipywidgets.widgets import widget as _w
alive = getattr(ipywidgets.Widget, "widgets", None) or getattr(_w, "_instances", {})   # ipywidgets 7 / 8
explorers = [v for v in list(alive.values()) if isinstance(v, ipywidgets.VBox) and getattr(v, "mode", None) == "live"]
assert explorers or not EXPECT_EXPLORER, "no live explorer was displayed"
for box in explorers:
    before = box.image.value
    slider = box.sliders[0]
    slider.value = (slider.value + 1) % len(slider.options)
    assert box.image.value != before, "moving a slider must redraw the image"
print(f"LIVE-WIDGETS-OK {len(explorers)}")
'''


@pytest.mark.parametrize("chapter", RUN)
def test_colab_edition_runs_top_to_bottom_in_the_colab_environment(colab_env, wheel, chapter, tmp_path):
    """Restart & Run All of the chapter's Colab edition, as a reader would: the first cell
    installs the companion (here from the wheel, through COMPANION_WHEEL), then everything
    runs, and the explorers are live widgets of Colab's ipywidgets whose sliders redraw."""
    before = _without_companion(colab_env)
    notebook = ROOT / "chapters" / f"{chapter}.ipynb"
    runner = tmp_path / "run.py"
    explorer = any(f in (ROOT / "chapters" / f"{chapter}.md").read_text() for f in ("static_interact(", "latent_map("))
    check = f"IPYWIDGETS = {freeze()['ipywidgets']!r}\nEXPECT_EXPLORER = {explorer}\n" + WIDGET_CHECK
    runner.write_text(f'''
import json, sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read({str(notebook)!r}, as_version=4)
nb.cells.append(nbformat.v4.new_code_cell({check!r}))
NotebookClient(nb, timeout=600, kernel_name="python3", resources={{"metadata": {{"path": {str(tmp_path)!r}}}}}).execute()
text = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
views = sum("application/vnd.jupyter.widget-view+json" in o.get("data", {{}}) for c in nb.cells for o in c.get("outputs", []))
print(text, "WIDGET-VIEWS", views)
''')
    env = {k: v for k, v in os.environ.items() if k not in ("COMPANION_WIDGETS", "VIRTUAL_ENV", "PYTHONPATH")}
    env.update(COMPANION_WHEEL=str(wheel), MPLBACKEND="module://matplotlib_inline.backend_inline")
    env["PATH"] = f"{colab_env / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    out = _run(colab_env / "bin" / "python", runner, env=env, cwd=tmp_path, timeout=900)
    assert "LIVE-WIDGETS-OK" in out, out[-2000:]
    assert int(out.rsplit("WIDGET-VIEWS", 1)[1]) >= explorer
    after = installed(colab_env)
    added = {n: v for n, v in after.items() if before.get(n) != v}
    changed = {n: (before[n], v) for n, v in added.items() if n in before}
    assert not changed, f"the install cell changed Colab's packages (before, after): {changed}"
    assert set(added) <= {"companion", *NOT_ON_COLAB} and "companion" in added, \
        f"the install cell added more than the companion and its documented new dependencies: {added}"
