"""Figures of an expert-placement result: hop cost per method against the baseline, and where each
expert of each MoE layer went."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interfaces.reports.report import Report
from interfaces.reports.style import color_for, fmt_pct, layout


def _methods(payload: dict) -> dict:
    methods = payload.get("methods")
    if not isinstance(methods, dict) or not methods:
        raise ValueError("placement: results need a 'methods' object: {method: {'objective': ..., 'gpu_of': ...}}")
    for name, m in methods.items():
        if not isinstance(m, dict) or "objective" not in m:
            raise ValueError(f"placement: method {name!r} needs an 'objective' (mean hop cost per token)")
    return methods


def objective_figure(methods: dict, baseline: str | None) -> go.Figure:
    """Mean hop cost per token per layer transition for each method (lower is better)."""
    names = list(methods)
    vals = [float(methods[n]["objective"]) for n in names]
    base = float(methods[baseline]["objective"]) if baseline in methods else None
    text = [f"{v:.3g}" + (f" ({(v - base) / base:+.0%})" if base else "") for v in vals]
    fig = go.Figure(go.Bar(x=names, y=vals, text=text, textposition="outside",
                           marker_color=[color_for(1) if n == baseline else color_for(0) for n in names],
                           hovertemplate="%{x}: %{y:.4g}<extra></extra>"))
    for n in names:
        bound = methods[n].get("best_bound")
        if bound is not None:
            fig.add_trace(go.Scatter(x=[n], y=[bound], mode="markers", name="solver bound", showlegend=False,
                                     marker={"symbol": "line-ew", "size": 30, "line": {"width": 2, "color": "black"}},
                                     hovertemplate="lower bound %{y:.4g}<extra></extra>"))
    layout(fig, "Cross-GPU hop cost per token", height=380)
    fig.update_yaxes(title="mean hop cost per token per layer", rangemode="tozero")
    return fig


def placement_figure(methods: dict, names: list[str], cluster: dict) -> go.Figure:
    """GPU of every (MoE layer, expert), one panel per method; colour = GPU."""
    gpn = int(cluster.get("gpus_per_node", 8) or 8)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.06)
    for i, n in enumerate(names, start=1):
        g = np.asarray(methods[n]["gpu_of"], dtype=float)
        text = [[f"GPU {int(v)} (node {int(v) // gpn})" for v in row] for row in g]
        fig.add_trace(go.Heatmap(z=g, text=text, colorscale="Turbo", showscale=i == len(names),
                                 colorbar={"title": {"text": "GPU"}},
                                 hovertemplate="layer %{y}, expert %{x}: %{text}<extra></extra>"), row=1, col=i)
        fig.update_xaxes(title_text="expert", row=1, col=i)
        fig.update_yaxes(title_text="MoE layer" if i == 1 else "", autorange="reversed", row=1, col=i)
    layout(fig, "Where each expert lives", height=420)
    return fig


def build(payload: dict) -> Report:
    """Report of a ``placement`` result (see :mod:`interfaces.reports.formats`)."""
    methods = _methods(payload)
    baseline = payload.get("baseline")
    if baseline is not None and baseline not in methods:
        raise ValueError(f"placement: baseline {baseline!r} is not one of the methods {list(methods)}")
    best = min(methods, key=lambda n: float(methods[n]["objective"]))
    cluster = payload.get("cluster") or {}
    sub = ", ".join(x for x in (
        payload.get("model", ""),
        f"{payload['layers']} MoE layers x {payload['experts']} experts" if "layers" in payload and "experts" in payload else "",
        f"{cluster.get('nodes', '?')} nodes x {cluster.get('gpus_per_node', '?')} GPUs" if cluster else "") if x)
    rep = Report("placement", "Expert placement", sub,
                 [("best method", best), ("best hop cost per token", f"{float(methods[best]['objective']):.4g}")])
    if baseline:
        b = float(methods[baseline]["objective"])
        gain = (b - float(methods[best]["objective"])) / b if b else 0.0
        rep.numbers += [("baseline", f"{baseline}: {b:.4g}"), ("reduction vs baseline", fmt_pct(gain))]
    rep.add("Hop cost", objective_figure(methods, baseline),
            "Mean cost of moving tokens between GPUs per token per MoE-layer transition (1 per intra-node hop, "
            "more across nodes); bars show change against the baseline, dashes the solver's lower bound.")
    shown = [n for n in dict.fromkeys([baseline, best]) if n and "gpu_of" in methods[n]]
    if shown:
        rep.add("Placement", placement_figure(methods, shown, cluster),
                "Rows are MoE layers, columns experts; the colour is the GPU that holds the expert.")
    rows = [{"method": n, "objective": float(m["objective"]),
             **{k: m[k] for k in ("status", "gap", "wall_s", "solver") if k in m}} for n, m in methods.items()]
    rep.tables.append(("Methods", pd.DataFrame(rows)))
    return rep
