"""An explorer that decodes in the browser, in JupyterLab (the `lab` extra), driven by Chromium.

JupyterLab runs the scripts of an output only when it trusts the output: outputs the reader
made by running a cell are trusted, and outputs saved in a notebook from elsewhere are not,
until the reader trusts the notebook. Both cases are checked: a cell run in the page mounts
the explorer and decodes like PyTorch, and an untrusted saved output shows its message instead.
"""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import explorer_checks as check
import pytest
import torch
from playwright.sync_api import TimeoutError as PlaywrightTimeout

BIN = Path(sys.executable).parent
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("jupyter-lab", path=str(BIN)) is None,
                                 reason="JupyterLab (the lab extra) is not installed")]

CELL = """import torch
from companion.models import Autoencoder
from companion.viz import browser_explorer
torch.manual_seed(0)
model = Autoencoder(code_size=2, hidden=(64,), likelihood="bernoulli").eval()
browser_explorer(model, codes=torch.randn(200, 2), labels=torch.arange(200) % 10)"""


def notebook(outputs=()) -> dict:
    cell = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": list(outputs),
            "source": CELL}
    return {"cells": [cell], "nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a folder with two notebooks: one to run, one with a saved, untrusted output."""
    from companion.viz.browser import browser_explorer

    home = tmp_path_factory.mktemp("lab")
    work = home / "work"
    work.mkdir()
    (work / "run.ipynb").write_text(json.dumps(notebook()))
    saved = browser_explorer(_model(), codes=torch.randn(20, 2, generator=torch.Generator().manual_seed(0)))
    output = {"output_type": "display_data", "metadata": {},
              "data": {"text/html": saved.html, "text/plain": repr(saved)}}
    (work / "saved.ipynb").write_text(json.dumps(notebook([output])))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = "companion-test"
    proc = subprocess.Popen([BIN / "jupyter-lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
                             f"--IdentityProvider.token={token}", f"--notebook-dir={work}", "--allow-root"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={"HOME": str(home), "PATH": f"{BIN}:/usr/bin:/bin", "JUPYTER_RUNTIME_DIR": str(home / "rt")})
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=5)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not answer")
        yield f"http://127.0.0.1:{port}", token
    finally:
        _shut_kernels_down(f"http://127.0.0.1:{port}", token)
        proc.terminate()                     # JupyterLab stops its kernels first: give it time, then stop it
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _shut_kernels_down(url: str, token: str) -> None:
    """Stop the kernels the test started, through JupyterLab's API, so that the server exits promptly."""
    try:
        with urllib.request.urlopen(f"{url}/api/kernels?token={token}", timeout=10) as r:
            kernels = json.load(r)
        for kernel in kernels:
            request = urllib.request.Request(f"{url}/api/kernels/{kernel['id']}?token={token}", method="DELETE")
            urllib.request.urlopen(request, timeout=30).close()
    except OSError:
        pass                                 # the server is gone already: nothing to stop


def _model():
    from companion.models import Autoencoder

    torch.manual_seed(0)
    return Autoencoder(code_size=2, hidden=(64,), likelihood="bernoulli").eval()


def test_a_cell_run_in_jupyterlab_mounts_the_explorer(browser, lab, screenshots):
    url, token = lab
    p = browser.new_page(viewport={"width": 1280, "height": 1000})
    errors = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.goto(f"{url}/lab/tree/run.ipynb?token={token}", wait_until="load", timeout=60_000)
    p.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
    p.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
    for attempt in range(4):            # a key pressed while the kernel still connects can be lost: press again
        p.locator(".jp-Notebook .jp-Cell .jp-InputArea-editor").first.click()
        p.keyboard.press("Shift+Enter")
        try:
            check.wait_for(p, 1, timeout=30_000)
            break
        except PlaywrightTimeout:
            print(f"JupyterLab: the cell had not run after 30 s (attempt {attempt + 1})")
    else:
        p.screenshot(path=str(screenshots / "lab__explorer_did_not_start.png"))
        pytest.fail("JupyterLab did not run the cell; see _build/site-screenshots/lab__explorer_did_not_start.png")
    model = _model()
    z = torch.randn(20, 2, generator=torch.Generator().manual_seed(3)) * 2
    with torch.no_grad():
        error = (check.decode(p, 0, z) - model.decode_mean(z).flatten(1).double()).abs().max().item()
    print(f"JupyterLab: largest pixel difference from PyTorch {error:.1e}")
    from companion.viz.browser import BOUND

    assert error <= BOUND
    check.pointer_redraws_the_map(p, 0)
    assert p.locator(".cbe-fallback").count() == 0
    assert errors == [], errors
    p.close()


def test_an_untrusted_saved_output_says_what_to_do(browser, lab):
    url, token = lab
    p = browser.new_page(viewport={"width": 1280, "height": 1000})
    p.goto(f"{url}/lab/tree/saved.ipynb?token={token}", wait_until="load", timeout=60_000)
    fallback = p.locator(".jp-OutputArea .cbe-fallback")
    fallback.wait_for(timeout=60_000)
    assert "Trust Notebook" in fallback.inner_text()
    assert check.count(p) == 0
    p.close()
