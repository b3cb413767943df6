"""Write a :class:`~interfaces.reports.report.Report` as one self-contained HTML page.

plotly.js is embedded once in the page (as ``include_plotlyjs=True`` does), so the page opens
offline, from a file, with no request to any server.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path

import plotly.io as pio
import plotly.offline

from interfaces.reports.report import Report
from interfaces.reports.style import FIGURE_CONFIG
from workloads.files import atomic_write_text

_CSS = """
body{font-family:Helvetica,Arial,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f3b57;color:#fff;padding:18px 28px}
header h1{margin:0;font-size:22px} header p{margin:6px 0 0;opacity:.85}
main{padding:18px 28px;max-width:1280px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin-bottom:10px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 14px;min-width:150px}
.card .label{font-size:12px;color:#666} .card .value{font-size:18px;font-weight:600;margin-top:4px}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px 16px;margin:14px 0}
section h2{font-size:17px;margin:0 0 4px} .caption{color:#555;font-size:13px;margin:0 0 6px}
table.data{border-collapse:collapse;font-size:12px} table.data td,table.data th{border:1px solid #ddd;padding:3px 7px}
table.data th{background:#f0f0f0} .notes li{color:#8a5a00}
footer{color:#888;font-size:11px;padding:10px 28px 24px}
"""


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("genz-sim")
    except Exception:  # noqa: BLE001 - not installed as a distribution
        return "dev"


#: The shared copy of plotly.js written beside pages made with ``shared_plotlyjs``.
PLOTLY_JS = "plotly.min.js"


def render_html(report: Report, source: str | None = None, shared_plotlyjs: bool = False) -> str:
    """The page as a string: plotly.js inlined (self-contained, ~4.8 MB), or with ``shared_plotlyjs``
    a reference to one ``plotly.min.js`` beside the page (pages of a few hundred kB)."""
    esc = html.escape
    script = (f"<script type='text/javascript' src='{PLOTLY_JS}'></script>" if shared_plotlyjs else
              f"<script type='text/javascript'>{plotly.offline.get_plotlyjs()}</script>")
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(report.title)}</title>",
             f"<style>{_CSS}</style>", script + "</head><body>",
             f"<header><h1>{esc(report.title)}</h1>"]
    if report.subtitle:
        parts.append(f"<p>{esc(report.subtitle)}</p>")
    parts.append("</header><main>")
    if report.numbers:
        parts.append("<div class='cards'>")
        for label, value in report.numbers:
            parts.append(f"<div class='card'><div class='label'>{esc(label)}</div>"
                         f"<div class='value'>{esc(value)}</div></div>")
        parts.append("</div>")
    if report.notes:
        parts.append("<ul class='notes'>" + "".join(f"<li>{esc(n)}</li>" for n in report.notes) + "</ul>")
    for i, sec in enumerate(report.sections):
        div = pio.to_html(sec.figure, full_html=False, include_plotlyjs=False, div_id=f"fig{i}",
                          config=FIGURE_CONFIG)
        caption = f"<p class='caption'>{esc(sec.caption)}</p>" if sec.caption else ""
        parts.append(f"<section><h2>{esc(sec.heading)}</h2>{caption}{div}</section>")
    for heading, df in report.tables:
        parts.append(f"<section><h2>{esc(heading)}</h2>"
                     f"{df.to_html(index=False, classes='data', border=0, float_format=lambda v: f'{v:.4g}')}</section>")
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    src = f" from {esc(source)}" if source else ""
    tail = (f"Opens offline with {PLOTLY_JS} beside it." if shared_plotlyjs else "Self-contained: opens offline.")
    parts.append(f"</main><footer>genz-sim {esc(_version())}, {report.kind} report{src}, {made}. "
                 f"{tail}</footer></body></html>")
    return "".join(parts)


def write_html(report: Report, path: str | Path, source: str | None = None, shared_plotlyjs: bool = False) -> Path:
    """Write the page (and, with ``shared_plotlyjs``, plotly.min.js beside it unless an identical copy
    is there); returns its path."""
    p = Path(path)
    if shared_plotlyjs:
        js, lib = p.parent / PLOTLY_JS, plotly.offline.get_plotlyjs()
        if not js.exists() or js.read_text() != lib:
            atomic_write_text(js, lib)
    atomic_write_text(p, render_html(report, source, shared_plotlyjs))
    return p
