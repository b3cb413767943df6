"""Write an executed notebook as one static HTML page with its tables and figures.

A reader then sees a notebook's results without running it: markdown cells become HTML, code cells
are shown as code, and outputs keep their richest form (a plotly figure as an interactive plot,
a pandas table as a table, a PNG as an image, anything else as text). Execute the notebook with
``PLOTLY_RENDERER=plotly_mimetype`` so its figures are stored as plotly figures rather than as JSON
text. plotly.js is referenced once beside the pages (``plotly.min.js``, as ``genz report
--shared-plotlyjs`` does) or inlined per page.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import plotly.io as pio
import plotly.offline
from markdown_it import MarkdownIt

from interfaces.reports.html import PLOTLY_JS
from interfaces.reports.style import FIGURE_CONFIG
from workloads.files import atomic_write_text

PLOTLY_MIME = "application/vnd.plotly.v1+json"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_CSS = """
body{font-family:Helvetica,Arial,sans-serif;margin:0 auto;max-width:1180px;padding:12px 24px;color:#222}
pre{background:#f6f8fa;border:1px solid #e1e4e8;border-radius:4px;padding:8px 10px;overflow-x:auto;font-size:12px}
pre.code{border-left:3px solid #1f3b57} pre.out{background:#fff} pre.err{background:#fff0f0;color:#900}
table.dataframe{border-collapse:collapse;font-size:12px} table.dataframe td,table.dataframe th{border:1px solid #ddd;padding:3px 7px}
footer{color:#888;font-size:11px;margin-top:24px}
"""


def _title(nb) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return "notebook"


def _output_html(out, index: int) -> str:
    esc = html.escape
    kind = out.get("output_type")
    if kind == "stream":
        return f"<pre class='out'>{esc(_ANSI.sub('', out.get('text', '')))}</pre>"
    if kind == "error":
        return f"<pre class='err'>{esc(_ANSI.sub('', chr(10).join(out.get('traceback', []))))}</pre>"
    data = out.get("data", {})
    if PLOTLY_MIME in data:
        return pio.to_html(data[PLOTLY_MIME], full_html=False, include_plotlyjs=False, div_id=f"fig{index}",
                           config=FIGURE_CONFIG)
    if "text/html" in data:
        return data["text/html"]
    if "image/png" in data:
        return f"<img alt='figure' src='data:image/png;base64,{data['image/png']}'>"
    if "text/plain" in data:
        return f"<pre class='out'>{esc(data['text/plain'])}</pre>"
    return ""


def render_notebook_html(nb, shared_plotlyjs: bool = True, source: str | None = None) -> str:
    """The page as a string from an executed ``nbformat`` notebook (outputs included)."""
    md = MarkdownIt("commonmark").enable("table")
    title = _title(nb)
    script = (f"<script src='{PLOTLY_JS}'></script>" if shared_plotlyjs
              else f"<script>{plotly.offline.get_plotlyjs()}</script>")
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style>{script}</head><body>"]
    figures = 0
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            parts.append(md.render(cell.source))
        elif cell.cell_type == "code":
            parts.append(f"<pre class='code'>{html.escape(cell.source)}</pre>")
            for out in cell.get("outputs", []):
                parts.append(_output_html(out, figures))
                figures += PLOTLY_MIME in out.get("data", {})
    src = f" of {html.escape(source)}" if source else ""
    tail = f"Opens offline with {PLOTLY_JS} beside it." if shared_plotlyjs else "Self-contained: opens offline."
    parts.append(f"<footer>Static render{src}, made by running it. {tail}</footer></body></html>")
    return "".join(parts)


def write_notebook_html(nb, path: str | Path, shared_plotlyjs: bool = True, source: str | None = None) -> Path:
    """Write the page (and, with ``shared_plotlyjs``, plotly.min.js beside it unless an identical copy
    is there); returns its path."""
    p = Path(path)
    if shared_plotlyjs:
        js, lib = p.parent / PLOTLY_JS, plotly.offline.get_plotlyjs()
        if not js.exists() or js.read_text() != lib:
            atomic_write_text(js, lib)
    atomic_write_text(p, render_notebook_html(nb, shared_plotlyjs, source))
    return p
