"""`make lab`: JupyterLab with jupyterlab-myst (MyST renders) and jupytext (the .md chapters
open as notebooks), started headless here and asked for a chapter as a notebook."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.skipif(shutil.which("jupyter-lab", path=str(BIN)) is None,
                                reason="JupyterLab (the lab extra) is not installed")


def test_lab_extensions_are_compatible():
    out = subprocess.run([BIN / "jupyter", "labextension", "list"], capture_output=True, text=True)
    text = out.stdout + out.stderr
    for name in ("jupyterlab-myst", "jupyterlab-jupytext"):
        line = next((l for l in text.splitlines() if name in l), "")
        assert "enabled" in line and "OK" in line, f"{name}: {line or 'missing'}\n{text}"
    assert "not compatible" not in text, text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_chapter_opens_as_a_notebook(tmp_path):
    port, token = _free_port(), "companion-test"
    proc = subprocess.Popen([BIN / "jupyter-lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
                             f"--IdentityProvider.token={token}", f"--notebook-dir={ROOT}", "--allow-root"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={"HOME": str(tmp_path), "PATH": f"{BIN}:/usr/bin:/bin",
                                 "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")})
    try:
        url = f"http://127.0.0.1:{port}/api/contents/chapters/01_autoencoder.md?type=notebook&content=1&token={token}"
        for _ in range(120):
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    model = json.load(r)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not answer")
        cells = model["content"]["cells"]
        assert model["type"] == "notebook" and sum(c["cell_type"] == "code" for c in cells) > 10
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}", timeout=10) as r:
            assert r.status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)
