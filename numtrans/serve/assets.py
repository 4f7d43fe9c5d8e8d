"""The explorer's page, script and style, read from the files beside this module.

The server (``app.py``) serves them; the notebook views (``numtrans.viz_notebook``) inline the same
script and style, so a notebook needs neither Starlette nor uvicorn.
"""

from __future__ import annotations

import os

HERE = os.path.dirname(__file__)


def page_html() -> str:
    """The explorer page with its script inlined: one self-contained document."""
    with open(os.path.join(HERE, "explorer.html"), encoding="utf-8") as f:
        page = f.read()
    return page.replace("/*NT_STYLE*/", style_css()).replace("/*NT_JS*/", script_js(app=True))


def script_js(app: bool = False) -> str:
    """The drawing code (``explorer.js``, shared with the notebook views), plus the page's
    controls (``explorer_app.js``) when ``app``."""
    names = ["explorer.js"] + (["explorer_app.js"] if app else [])
    parts = []
    for name in names:
        with open(os.path.join(HERE, name), encoding="utf-8") as f:
            parts.append(f.read())
    return "\n".join(parts)


def style_css() -> str:
    with open(os.path.join(HERE, "explorer.css"), encoding="utf-8") as f:
        return f.read()
