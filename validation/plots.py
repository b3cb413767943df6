"""The HTML page of a :class:`~validation.report.ValidationReport`: Plotly figures, embedded whole.

Three figures: predicted against measured time per file (log axes, the diagonal is a perfect
model), the relative error of whole-model rows by batch and by context, and the run-to-run noise
floor of each file (median and 90th percentile of |run2 / run1 - 1|) drawn as bands around zero.
"""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

FILE_ORDER = ("gemm", "attention", "membw", "e2e", "hf")


def _scatter(report) -> go.Figure:
    rows = report.rows
    files = [f for f in FILE_ORDER if (rows["file"] == f).any()]
    fig = make_subplots(rows=1, cols=max(len(files), 1), subplot_titles=[f"{f}.csv" for f in files])
    for i, f in enumerate(files, start=1):
        g = rows[rows["file"] == f]
        for (phase, timing), h in g.groupby(["phase", "timing"]):
            fig.add_trace(go.Scatter(
                x=h["measured_s"] * 1e3, y=h["predicted_s"] * 1e3, mode="markers", name=f"{f} {phase} {timing}",
                text=h["label"] + " (" + h["model"] + " " + h["run"] + ")", marker={"size": 6},
                hovertemplate="%{text}<br>measured %{x:.4g} ms<br>predicted %{y:.4g} ms<extra></extra>"),
                row=1, col=i)
        lo = float(np.nanmin(g[["measured_s", "predicted_s"]].to_numpy())) * 1e3
        hi = float(np.nanmax(g[["measured_s", "predicted_s"]].to_numpy())) * 1e3
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line={"dash": "dot", "color": "gray"},
                                 showlegend=False, hoverinfo="skip"), row=1, col=i)
        fig.update_xaxes(type="log", title_text="measured (ms)", row=1, col=i)
        fig.update_yaxes(type="log", title_text="predicted (ms)" if i == 1 else None, row=1, col=i)
    fig.update_layout(title="Predicted against measured time", height=480, width=max(380 * len(files), 600))
    return fig


def _errors(report) -> go.Figure:
    rows = report.rows[report.rows["file"].isin(["e2e", "hf"])]
    fig = make_subplots(rows=1, cols=2, subplot_titles=["error by batch", "error by context (tokens)"])
    band = report.noise.get("e2e")
    for col, x in ((1, "batch"), (2, "context")):
        for (file, model, phase, timing), g in rows.groupby(["file", "model", "phase", "timing"]):
            fig.add_trace(go.Scatter(
                x=g[x], y=g["err_time_pct"], mode="markers", name=f"{file} {model} {phase} {timing}",
                legendgroup=f"{file}{model}{phase}{timing}", showlegend=col == 1,
                text=g["label"] + " (" + g["run"] + ")",
                hovertemplate="%{text}<br>error %{y:.1f} %<extra></extra>"), row=1, col=col)
        if band:
            for q, op in (("p90_pct", 0.12), ("median_pct", 0.22)):
                fig.add_hrect(y0=-band[q], y1=band[q], fillcolor="gray", opacity=op, line_width=0, row=1, col=col)
        fig.update_xaxes(type="log", title_text=x, row=1, col=col)
    fig.update_yaxes(title_text="predicted / measured - 1 (%)", row=1, col=1)
    fig.update_layout(title="Whole-model rows: error, with the e2e run-to-run noise floor as bands "
                            "(dark: median, light: 90th percentile)", height=480, width=1200)
    return fig


def _noise(report) -> go.Figure:
    rows = report.rows
    files = [f for f in FILE_ORDER if (rows["file"] == f).any()]
    fig = go.Figure()
    for f in files:
        g = rows[rows["file"] == f]
        fig.add_trace(go.Box(y=g["err_time_pct"], name=f, boxpoints="all", jitter=0.4, pointpos=0,
                             text=g["label"] + " (" + g["model"] + " " + g["run"] + ")",
                             hovertemplate="%{text}<br>error %{y:.1f} %<extra></extra>"))
        n = report.noise.get(f)
        if n:
            i = files.index(f)
            for q, op in (("p90_pct", 0.15), ("median_pct", 0.3)):
                fig.add_shape(type="rect", x0=i - 0.45, x1=i + 0.45, y0=-n[q], y1=n[q], fillcolor="gray",
                              opacity=op, line_width=0)
    fig.update_layout(title="Error per file against its run-to-run noise floor (bands: median and p90 of "
                            "|run2 / run1 - 1|)", yaxis_title="predicted / measured - 1 (%)", height=480, width=900)
    return fig


def report_html(report) -> str:
    """The whole page as one string (plotly.js embedded once, so it opens offline)."""
    figs = [_scatter(report), _errors(report), _noise(report)]
    parts = [pio.to_html(fig, include_plotlyjs=(i == 0), full_html=False) for i, fig in enumerate(figs)]
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>Validation: {html.escape(report.dataset)}</title></head><body>"
            f"<h1>Validation of {html.escape(report.device)} ({html.escape(report.profile)}) "
            f"against {html.escape(report.dataset)}</h1>"
            f"<p>{html.escape(report.profile_source)}</p>"
            f"<pre>{html.escape(report.to_text())}</pre>" + "".join(parts) + "</body></html>")
