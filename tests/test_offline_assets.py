"""The build step that makes the site work offline: fetching the web assets from npm and
wiring them into Sphinx, with a CDN fallback when npm is not there."""
import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def ext(monkeypatch):
    monkeypatch.delenv("COMPANION_WIDGETS", raising=False)
    return _load(ROOT / "_ext" / "offline_assets.py", "offline_assets_under_test")


def _config():
    return SimpleNamespace(html_extra_path=[], mathjax_path="https://cdn/mathjax.js",
                           nb_ipywidgets_js={"https://cdn/require.js": {}})


def test_without_assets_the_cdn_defaults_stay(ext, tmp_path):
    config = _config()
    ext.configure(SimpleNamespace(srcdir=str(tmp_path)), config)
    assert config.mathjax_path == "https://cdn/mathjax.js"
    assert list(config.nb_ipywidgets_js) == ["https://cdn/require.js"]
    assert config.html_extra_path == []
    import os
    assert os.environ["COMPANION_WIDGETS"] == "static"


def test_with_assets_the_site_serves_its_own(ext, tmp_path):
    for rel in ext.REQUIRED:
        f = tmp_path / "_build" / "offline" / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("//")
    config = _config()
    ext.configure(SimpleNamespace(srcdir=str(tmp_path)), config)
    assert config.mathjax_path == "../mathjax/tex-mml-chtml.js"
    assert list(config.nb_ipywidgets_js) == ["../widgets/require.js", "../widgets/companion-widgets.js",
                                             "../widgets/embed-amd.js"]
    assert str(tmp_path / "_build" / "offline") in config.html_extra_path
    assert (Path(config.html_extra_path[-1]) / "widgets" / "companion-widgets.js").is_file()


def test_fetch_script_falls_back_without_npm(monkeypatch, tmp_path, capsys):
    fetch = _load(ROOT / "scripts" / "fetch_web_assets.py", "fetch_under_test")
    monkeypatch.setattr(fetch, "OUT", tmp_path / "offline")
    monkeypatch.setattr(fetch.shutil, "which", lambda name: None)
    assert fetch.main() == 0
    assert "npm not found" in capsys.readouterr().out
    assert not (tmp_path / "offline").exists()


def test_fetch_script_falls_back_when_the_registry_fails(monkeypatch, tmp_path, capsys):
    fetch = _load(ROOT / "scripts" / "fetch_web_assets.py", "fetch_under_test2")
    monkeypatch.setattr(fetch, "OUT", tmp_path / "offline")
    monkeypatch.setattr(fetch.shutil, "which", lambda name: "/bin/false")
    assert fetch.main() == 0
    assert "could not fetch" in capsys.readouterr().out
