"""Sphinx extension: each script once per page.

Sphinx 7.4 registers an extension's scripts twice when the extension adds them after the
builder started (sphinx-thebe and sphinx-togglebutton do, in ``env-before-read-docs`` and
``builder-inited``): once then, with the file name ``None`` for an inline script, and again
from the registry in ``prepare_writing``, with the name ``''``. The two compare unequal, so
both reach the page. A repeated inline script is not harmless: sphinx-thebe's declares
``const THEBE_JS_URL``, and the second copy throws "Identifier 'THEBE_JS_URL' has already
been declared" on every page. This keeps the first of each script, in order, counting
``None`` and ``''`` as the same name.
"""
from __future__ import annotations


def _key(script) -> tuple:
    if isinstance(script, str):
        return (script,)
    return (script.filename or "", script.priority, tuple(sorted(script.attributes.items())))


def unique_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if isinstance(scripts, list):
        first = {}
        for script in scripts:
            first.setdefault(_key(script), script)
        context["script_files"] = list(first.values())


def setup(app):
    app.connect("html-page-context", unique_scripts, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
