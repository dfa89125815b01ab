"""The live mode: chapter 2 served by Voilà on 127.0.0.1, a slider moved, the image changes.

Voilà runs the whole notebook in a real kernel (about a minute), then the explorer's
sliders call the model in that kernel. Chapter 2's explorer is frame-based (its models are
convolutional); chapters 1, 6 and 7 decode in the browser instead (test_site.py,
test_lab_explorer.py).
"""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "chapters" / "02_denoising_autoencoder.ipynb"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def voila_url():
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "COMPANION_WIDGETS"}   # live widgets
    log = open(ROOT / "_build" / "voila.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "voila", str(NOTEBOOK.name), "--no-browser", f"--port={port}",
         "--Voila.ip=127.0.0.1", "--show_tracebacks=True", "--VoilaConfiguration.file_allowlist=['.*']"],
        cwd=NOTEBOOK.parent, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("Voilà did not start; see _build/voila.log")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.mark.slow
def test_live_explorer_responds_in_voila(browser, voila_url, screenshots):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(voila_url, wait_until="load", timeout=300_000)
    explorer = page.locator(".companion-explorer").first
    explorer.wait_for(state="visible", timeout=300_000)
    explorer.scroll_into_view_if_needed()
    image = explorer.locator("img").first
    before = image.screenshot()
    slider = explorer.locator(".widget-slider").first
    readout = slider.locator(".widget-readout")
    value = readout.inner_text()
    slider.locator(".noUi-handle").focus()
    page.keyboard.press("Home")
    page.wait_for_function("([el, v]) => el.innerText !== v", arg=[readout.element_handle(), value])
    # the kernel decodes the new code and sends the frame back
    deadline = time.time() + 30
    after = before
    while after == before and time.time() < deadline:
        page.wait_for_timeout(250)
        after = image.screenshot()
    explorer.screenshot(path=str(screenshots / "voila__02_denoising_autoencoder__explorer.png"))
    page.close()
    assert after != before, "moving the slider in Voilà did not change the decoded image"
