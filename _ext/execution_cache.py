"""Sphinx extension: execute the chapters through jupyter-cache, keyed so that a rebuild
re-executes only what changed.

myst-nb's ``cache`` mode keys each notebook by its code cells, so editing a chapter's prose
re-executes nothing and editing its code re-executes that chapter alone. The chapters also
depend on the companion package, which jupyter-cache cannot see: this extension keys the
cache folder by a hash of ``companion/`` (every file), ``requirements.txt`` and
``pyproject.toml`` (``_build/.jupyter_cache/<hash>``), so a change there starts a new cache
and every chapter is executed again, and it tells Sphinx to re-read every page then. The
three most recently used caches are kept, so going back to earlier companion code is free.

``COMPANION_EXECUTE=force`` executes every page regardless (the test suite's full build).
It also sets ``COMPANION_BOOK=1`` for the kernels, so :func:`companion.viz.quote` stores the
numbers the text quotes in the notebook (myst-nb's glue), where the cache keeps them.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

KEY_FILES = ("requirements.txt", "pyproject.toml")
KEEP = 3          # caches kept: the current one and the two most recently used before it


def execution_key(srcdir: str | Path) -> str:
    """A hash of everything the chapters' outputs depend on besides their own code."""
    root = Path(srcdir)
    h = hashlib.sha256()
    files = sorted(p for p in (root / "companion").rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for p in [*files, *(root / f for f in KEY_FILES)]:
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def configure(app, config) -> None:
    os.environ["COMPANION_BOOK"] = "1"
    if os.environ.get("COMPANION_EXECUTE", "").strip().lower() == "force":
        config.nb_execution_mode = "force"
        logger.info("execution_cache: COMPANION_EXECUTE=force, every page is executed")
        return
    if config.nb_execution_mode != "cache":
        return
    key = execution_key(app.srcdir)
    base = Path(app.srcdir) / "_build" / ".jupyter_cache"
    older = sorted((p for p in base.glob("*") if p.is_dir() and p.name != key) if base.is_dir() else [],
                   key=lambda p: p.stat().st_mtime, reverse=True)
    for old in older[KEEP - 1:]:                       # keep a few: switching branches back is free
        shutil.rmtree(old, ignore_errors=True)
    config.nb_execution_cache_path = str(base / key)
    app.companion_execution_key = key
    logger.info("execution_cache: jupyter-cache at %s", config.nb_execution_cache_path)


def outdated(app, env, added, changed, removed):
    """Every page, when the companion code changed since the last build."""
    key = getattr(app, "companion_execution_key", None)
    if key is None or getattr(env, "companion_execution_key", None) == key:
        return []
    env.companion_execution_key = key
    return sorted(env.found_docs)


def setup(app):
    app.connect("config-inited", configure, priority=800)
    app.connect("env-get-outdated", outdated)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}
