"""Fixtures of the browser tests: the built site served on 127.0.0.1, and headless Chromium.

Chromium is Debian's (``apt-get install chromium``; ``.ci/run`` installs it when missing), or
the binary ``$CHROMIUM`` names, driven by Playwright for Python; no browser is ever downloaded.
"""
import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest

SCREENSHOTS = Path(__file__).resolve().parents[2] / "_build" / "site-screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def site_url(built_site):
    site, _ = built_site
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    executable = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.fail("Chromium not found: apt-get install chromium, or set CHROMIUM to a Chrome binary "
                    "(never `playwright install`)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def screenshots():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
