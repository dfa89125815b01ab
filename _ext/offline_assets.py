"""Sphinx extension: serve MathJax and the widget manager from the site itself.

If ``scripts/fetch_web_assets.py`` has put them in ``_build/offline/``, the build
* copies that folder's contents to the site root with ``html_extra_path`` (not ``_static``:
  Jupyter Book adds every ``.js`` found there to every page),
* points Sphinx's ``mathjax_path`` at ``mathjax/tex-mml-chtml.js``,
* points myst-nb's ``nb_ipywidgets_js`` at ``widgets/require.js``, our small
  ``widgets/companion-widgets.js`` (from ``_ext/site/``) and ``widgets/embed-amd.js``.
Otherwise it says so and keeps the CDN defaults.

It also sets ``COMPANION_WIDGETS=static`` for the kernels that execute the chapters, so that
every explorer is built from pre-computed frames that work without a kernel.
"""
from __future__ import annotations

import os
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

REQUIRED = ["mathjax/tex-mml-chtml.js", "widgets/embed-amd.js", "widgets/require.js"]
# Sphinx resolves relative script paths against _static/; "../" climbs to the site root.
ROOT_FROM_STATIC = "../"


def offline_dir(srcdir: str | Path) -> Path:
    return Path(srcdir) / "_build" / "offline"


def configure(app, config) -> None:
    os.environ.setdefault("COMPANION_WIDGETS", "static")
    folder = offline_dir(app.srcdir)
    if not all((folder / r).is_file() for r in REQUIRED):
        logger.info("offline_assets: %s not found (make book runs scripts/fetch_web_assets.py); "
                    "the site will load MathJax and the widget manager from CDNs", folder)
        return
    config.html_extra_path = [*config.html_extra_path, str(folder), str(Path(__file__).parent / "site")]
    config.mathjax_path = ROOT_FROM_STATIC + "mathjax/tex-mml-chtml.js"
    config.nb_ipywidgets_js = {
        ROOT_FROM_STATIC + "widgets/require.js": {},
        ROOT_FROM_STATIC + "widgets/companion-widgets.js": {},   # font path, MathJax 3 bridge
        ROOT_FROM_STATIC + "widgets/embed-amd.js": {},
    }
    logger.info("offline_assets: serving MathJax and the widget manager from %s", folder)


def setup(app):
    app.connect("config-inited", configure, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
