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


@pytest.mark.parametrize("has_filter", [True, False])
def test_npm_tarballs_are_extracted_safely_on_every_python_311(tmp_path, monkeypatch, has_filter):
    """Python 3.11.2 (Debian 12's python3) has no extraction filters: the script refuses a
    member outside the folder, or a link, by hand there, as the "data" filter does elsewhere."""
    import io
    import tarfile

    fetch = _load(ROOT / "scripts" / "fetch_web_assets.py", f"fetch_tar_{has_filter}")
    if not has_filter:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)

    def tarball(*members):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name, kind in members:
                info = tarfile.TarInfo(name)
                if kind == "link":
                    info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                    tar.addfile(info)
                else:
                    info.size = 2
                    tar.addfile(info, io.BytesIO(b"ok"))
        buf.seek(0)
        return tarfile.open(fileobj=buf)

    fetch.extract(tarball(("package/a.js", "file")), tmp_path / "good")
    assert (tmp_path / "good" / "package" / "a.js").read_bytes() == b"ok"
    for bad in [("../evil.js", "file"), ("package/link", "link")]:
        with pytest.raises(tarfile.TarError):
            fetch.extract(tarball(bad), tmp_path / "bad")
    assert not (tmp_path / "evil.js").exists()
