"""Figures of a serving simulation: TTFT/TPOT distributions against the SLO, utilization and
queues over time."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interfaces.reports.report import Report
from interfaces.reports.style import color_for, fmt_num, fmt_pct, fmt_time, layout


def _pct(summary: dict, key: str, q: str):
    v = summary.get(key)
    return v.get(q) if isinstance(v, dict) else None


def _done(req: pd.DataFrame) -> pd.DataFrame:
    return req[req["status"] == "completed"] if "status" in req.columns else req


def latency_distributions(req: pd.DataFrame, slo: dict | None) -> go.Figure:
    """Histograms of TTFT and TPOT of completed requests, with the SLO and p50/p99 marked."""
    done = _done(req)
    values = {k: (done[k].dropna().to_numpy(float) * 1e3 if k in done else np.array([])) for k in ("ttft_s", "tpot_s")}
    titles = []
    for key, name in (("ttft_s", "time to first token"), ("tpot_s", "time per output token")):
        v = values[key]
        titles.append(f"{name} (p50 {np.percentile(v, 50):.3g} ms, p99 {np.percentile(v, 99):.3g} ms)" if v.size else name)
    fig = make_subplots(rows=1, cols=2, subplot_titles=titles, horizontal_spacing=0.1)
    for col, key in ((1, "ttft_s"), (2, "tpot_s")):
        v = values[key]
        if v.size == 0:
            continue
        fig.add_trace(go.Histogram(x=v, nbinsx=60, name=key.removesuffix("_s"), marker_color=color_for(col - 1),
                                   showlegend=False, hovertemplate="%{x} ms: %{y} requests<extra></extra>"),
                      row=1, col=col)
        for q, dash in ((50, "dot"), (99, "dash")):
            fig.add_vline(x=float(np.percentile(v, q)), line={"color": "#555", "dash": dash, "width": 1}, row=1, col=col)
        target = (slo or {}).get(key)
        if target is not None and math.isfinite(target):
            ok = float((v <= target * 1e3).mean())
            fig.add_vline(x=target * 1e3, line={"color": "#C0392B", "width": 2}, row=1, col=col,
                          annotation_text=f"SLO {target * 1e3:.3g} ms ({100 * ok:.1f}% meet)",
                          annotation_position="top left", annotation_font_color="#C0392B")
        fig.update_xaxes(title_text="ms", row=1, col=col)
        fig.update_yaxes(title_text="requests", row=1, col=col)
    layout(fig, "Latency distributions of completed requests", height=400)
    return fig


def utilization_figure(util: pd.DataFrame) -> go.Figure:
    """Busy fraction of each replica per time window."""
    fig = go.Figure()
    if util.empty:
        return layout(fig, "No utilization timeline in the results")
    keys = [k for k in ("pool", "replica") if k in util.columns]
    groups = util.groupby(keys, sort=False) if keys else [(("all",), util)]
    many = len(util.groupby(keys)) > 12 if keys else False
    if many:  # too many lines to read: mean and range over replicas
        g = util.groupby("window_start_s")["busy_fraction"]
        t = g.mean().index.to_numpy()
        fig.add_trace(go.Scatter(x=t, y=g.max().to_numpy(), mode="lines", line={"width": 0}, showlegend=False))
        fig.add_trace(go.Scatter(x=t, y=g.min().to_numpy(), mode="lines", line={"width": 0}, fill="tonexty",
                                 fillcolor="rgba(76,120,168,0.25)", name="min-max over replicas"))
        fig.add_trace(go.Scatter(x=t, y=g.mean().to_numpy(), mode="lines", name="mean", line={"color": color_for(0)}))
    else:
        for i, (k, g) in enumerate(groups):
            name = " ".join(str(x) for x in (k if isinstance(k, tuple) else (k,)))
            fig.add_trace(go.Scatter(x=g["window_start_s"], y=g["busy_fraction"], mode="lines", name=name,
                                     line={"color": color_for(i), "shape": "hv"}))
    layout(fig, "Replica utilization over time", height=360)
    fig.update_xaxes(title="time (s)")
    fig.update_yaxes(title="busy fraction", range=[0, 1.05])
    return fig


def queue_figure(queue: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    for i, key in enumerate(k for k in ("in_system", "running", "waiting") if k in queue.columns):
        fig.add_trace(go.Scatter(x=queue["time_s"], y=queue[key], mode="lines", name=key.replace("_", " "),
                                 line={"color": color_for(i)}))
    layout(fig, "Requests in the system over time", height=340)
    fig.update_xaxes(title="time (s)")
    fig.update_yaxes(title="requests")
    return fig


def build(payload: dict) -> Report:
    """Report of a ``simulate`` result (see :mod:`interfaces.reports.formats`)."""
    req: pd.DataFrame = payload.get("requests", pd.DataFrame())
    s = payload.get("summary") or {}
    slo = payload.get("slo")
    name = payload.get("name") or ""
    if req.empty and not s:
        raise ValueError("simulate: the results file has neither requests nor a summary")
    done = _done(req)
    rep = Report("simulate", f"Serving simulation: {name}" if name else "Serving simulation",
                 f"{s.get('requests', len(req)):,} requests over {fmt_time(s.get('duration_s'))}" if s else
                 f"{len(req):,} requests")
    if s:
        rep.numbers += [
            ("throughput", f"{s.get('throughput_rps', math.nan):.3g} req/s"),
            ("output tokens/s", fmt_num(s.get("output_tokens_per_s"))),
            ("goodput", f"{s.get('goodput_rps', math.nan):.3g} req/s"),
            ("SLO attainment", fmt_pct(s.get("slo_attainment"))),
            ("TTFT p50 / p99", f"{fmt_time(_pct(s, 'ttft_s', 'p50'))} / {fmt_time(_pct(s, 'ttft_s', 'p99'))}"),
            ("TPOT p50 / p99", f"{fmt_time(_pct(s, 'tpot_s', 'p50'))} / {fmt_time(_pct(s, 'tpot_s', 'p99'))}"),
            ("mean utilization", fmt_pct(s.get("mean_utilization"))),
            ("energy per output token", f"{s.get('energy_per_output_token_j', math.nan):.3g} J"),
            ("cost per M output tokens", _usd(s.get("cost_per_million_output_tokens_usd"))),
        ]
        if s.get("saturated"):
            rep.notes.append(f"The run saturated: {s.get('saturation_reason') or 'queues kept growing'}.")
        if s.get("feasible") is False:
            rep.notes.append(f"Infeasible: {s.get('infeasible_reason')}")
    else:
        for key in ("ttft_s", "tpot_s"):
            v = done[key].dropna() if key in done else pd.Series(dtype=float)
            if len(v):
                rep.numbers.append((f"{key.removesuffix('_s').upper()} p50 / p99",
                                    f"{fmt_time(v.quantile(0.5))} / {fmt_time(v.quantile(0.99))}"))
    if slo is None:
        rep.notes.append("No SLO in the results: distributions drawn without target lines.")
    if len(done):
        rep.add("TTFT and TPOT", latency_distributions(req, slo),
                "Completed requests only. Red: the SLO target and the share of requests that meet it; grey: p50 "
                "(dotted) and p99 (dashed).")
    util = payload.get("utilization")
    if isinstance(util, pd.DataFrame) and not util.empty:
        rep.add("Utilization", utilization_figure(util), "Fraction of each window a replica spent running iterations.")
    queue = payload.get("queue")
    if isinstance(queue, pd.DataFrame) and not queue.empty:
        rep.add("Queues", queue_figure(queue), "Requests arrived but not completed, split into running and waiting.")
    if payload.get("scenario"):
        sc = pd.DataFrame([(k, str(v)) for k, v in payload["scenario"].items()], columns=["input", "value"])
        rep.tables.append(("Scenario", sc))
    return rep


def _usd(v) -> str:
    """Dollars, or "price unknown" where the hardware has no price (NaN / null in the results file)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "price unknown"
    return f"${v:.3g}"
