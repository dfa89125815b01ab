"""Fetch the site's JavaScript from the npm registry, so the built book works offline.

    python scripts/fetch_web_assets.py      (run by `make book`)

Downloads MathJax 3, the Jupyter widget manager for static pages
(@jupyter-widgets/html-manager's embed-amd.js) and require.js as npm tarballs (no
dependencies are installed), and unpacks what the site needs into ``_build/offline/``.
The Sphinx extension ``_ext/offline_assets.py`` points the build at them. Without npm, or
without the registry, it says so and exits 0: the site then loads them from CDNs.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "_build" / "offline"

# package → (version, [(path inside the tarball, destination under OUT, file filter)])
PACKAGES = {
    "mathjax": ("3.2.2", [("package/es5", "mathjax", lambda p: True)]),
    "@jupyter-widgets/html-manager": ("1.0.15", [(
        "package/dist", "widgets",
        lambda p: p.name == "embed-amd.js" or p.suffix in {".woff", ".woff2", ".ttf", ".eot", ".svg"})]),
    "requirejs": ("2.3.8", [("package/require.js", "widgets/require.js", lambda p: True)]),
}
REQUIRED = ["mathjax/tex-mml-chtml.js", "widgets/embed-amd.js", "widgets/require.js"]


def ready() -> bool:
    return all((OUT / r).is_file() for r in REQUIRED)


def extract(tar: tarfile.TarFile, dest: Path) -> None:
    """``extractall`` with the "data" filter where Python has it (3.11.4 and newer). Older 3.11
    releases (Debian 12's python3 is 3.11.2) get the same refusals by hand: only plain files
    and folders, all inside ``dest``."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
        return
    root = Path(dest).resolve()
    for member in tar.getmembers():
        if not (member.isfile() or member.isdir()) or not (root / member.name).resolve().is_relative_to(root):
            raise tarfile.TarError(f"refusing to extract {member.name!r} from {tar.name}")
    tar.extractall(dest)


def fetch(npm: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, (version, parts) in PACKAGES.items():
            subprocess.run([npm, "pack", f"{name}@{version}", "--pack-destination", str(tmp),
                            "--silent", "--loglevel=error"], check=True, cwd=tmp, stdout=subprocess.DEVNULL)
            tgz = next(tmp.glob(name.replace("@", "").replace("/", "-") + f"-{version}.tgz"))
            unpacked = tmp / tgz.stem
            with tarfile.open(tgz) as tar:
                extract(tar, unpacked)
            for src, dst, keep in parts:
                src, dst = unpacked / src, OUT / dst
                if src.is_file():
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, dst)
                    continue
                for f in src.rglob("*"):
                    if f.is_file() and keep(f):
                        target = dst / f.relative_to(src)
                        target.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(f, target)


def main() -> int:
    if ready():
        print(f"offline web assets: already in {OUT.relative_to(ROOT)}")
        return 0
    npm = shutil.which("npm")
    if npm is None:
        print("offline web assets: npm not found; the site will load MathJax and the widget "
              "manager from CDNs (it needs a network connection to show math and widgets)")
        return 0
    try:
        fetch(npm)
    except (subprocess.CalledProcessError, StopIteration, OSError, tarfile.TarError) as e:
        print(f"offline web assets: could not fetch from the npm registry ({e}); the site will "
              "load MathJax and the widget manager from CDNs")
        return 0
    print(f"offline web assets: MathJax, embed-amd.js and require.js in {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
