"""Figures of one prediction (or several side by side): roofline, latency, energy and memory."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interfaces.reports.operators import StepOperators, energy_by_class, step_operators
from interfaces.reports.report import Report
from interfaces.reports.style import (
    BOUND_COLORS,
    CLASS_COLORS,
    MEMORY_COLORS,
    PHASE_SYMBOLS,
    fmt_bytes,
    fmt_num,
    fmt_time,
    layout,
)

PHASES = ("prefill", "decode")


def label_of(pred: dict) -> str:
    """Short name of a configuration: 'llama-3-8b on h200-sxm (bf16, b8, tp1)'."""
    par = "".join(f" {k}{pred[k]}" for k in ("tp", "pp", "ep") if pred.get(k, 1) != 1)
    return f"{pred['model']} on {pred['hardware']} ({pred['precision']}, b{pred['batch']}{par})"


def key_numbers(pred: dict) -> list[tuple[str, str]]:
    """The numbers a person looks at first, formatted."""
    fit = "fits" if pred["fits"] else "does NOT fit"
    return [
        ("time to first token", fmt_time(pred["ttft_s"])),
        ("time per output token", fmt_time(pred["tpot_s"])),
        ("end-to-end latency", fmt_time(pred["e2e_s"])),
        ("throughput", fmt_num(pred["throughput_tok_s"], "tok/s")),
        ("memory per device", f"{fmt_bytes(pred['memory_bytes'])} of {fmt_bytes(pred['capacity_bytes'])} ({fit})"),
        ("energy per token", f"{pred['energy_per_token_j']:.3g} J"),
        ("mean power per device", f"{pred['power_w']:.0f} W"),
    ]


def roofline_figure(ops: StepOperators, title: str = "") -> go.Figure:
    """Operators of both steps by arithmetic intensity (FLOP/byte) and achieved FLOP/s, under the
    device's compute roofs (one per dtype) and memory-bandwidth roof. Marker area ~ share of step time."""
    f = ops.frame[(ops.frame["flops"] > 0) & (ops.frame["bytes"] > 0) & (ops.frame["time_s"] > 0)]
    fig = go.Figure()
    if len(f):
        lo, hi = float(f["intensity"].min()) / 3, float(f["intensity"].max()) * 3
    else:
        lo, hi = 0.1, 1e4
    if ops.bandwidth and ops.peaks:
        lo = min(lo, min(ops.peaks.values()) / ops.bandwidth / 30)
        hi = max(hi, max(ops.peaks.values()) / ops.bandwidth * 30)
    x = np.geomspace(lo, hi, 200)
    dash_styles = ("solid", "dash", "dot", "dashdot")
    for i, (dtype, peak) in enumerate(sorted(ops.peaks.items(), key=lambda kv: -kv[1])):
        y = np.minimum(peak, x * ops.bandwidth) if ops.bandwidth else np.full_like(x, peak)
        fig.add_trace(go.Scatter(x=x, y=y / 1e12, mode="lines", name=f"roof {dtype} {peak / 1e12:,.0f} TFLOP/s",
                                 line={"color": "#333", "width": 1.5, "dash": dash_styles[i % 4]},
                                 legendgroup="roofs", hoverinfo="name"))
    if ops.bandwidth and not ops.peaks:
        fig.add_trace(go.Scatter(x=x, y=x * ops.bandwidth / 1e12, mode="lines", name="memory roof",
                                 line={"color": "#333", "width": 1.5}))
    total = f.groupby("phase")["step_time_s"].transform("sum") if len(f) else None
    for (phase, cls), g in f.groupby(["phase", "op_class"], sort=False):
        share = (g["step_time_s"] / total.loc[g.index]).to_numpy()
        text = [f"<b>{n}</b> ({phase})<br>{cls}, {d}, x{c:g} per step<br>{fmt_num(fl, 'FLOP')} / {fmt_num(by, 'B')}"
                f" = {ai:.3g} FLOP/B<br>{fmt_time(t)} per instance, {100 * s:.1f}% of step<br>{bd}-bound"
                for n, d, c, fl, by, ai, t, s, bd in zip(g["name"], g["dtype"], g["count"], g["flops"], g["bytes"],
                                                        g["intensity"], g["time_s"], share, g["bound"], strict=True)]
        fig.add_trace(go.Scatter(
            x=g["intensity"], y=g["achieved_flops_s"] / 1e12, mode="markers", name=f"{cls} ({phase})",
            legendgroup=cls, text=text, hovertemplate="%{text}<extra></extra>",
            marker={"color": CLASS_COLORS.get(cls, "#888"), "symbol": PHASE_SYMBOLS[phase],
                    "size": 7 + 30 * np.sqrt(share), "line": {"width": 1, "color": "white"}, "opacity": 0.85}))
    layout(fig, title or f"Roofline of {ops.device_name}", height=480)
    fig.update_xaxes(type="log", title="arithmetic intensity (FLOP per byte of memory traffic)")
    fig.update_yaxes(type="log", title="achieved TFLOP/s per device")
    return fig


def latency_figure(preds: list[dict], labels: list[str] | None = None) -> go.Figure:
    """Step time of prefill and of one decode step, by operator class (top) and by bound (bottom)."""
    labels = labels or [label_of(p) for p in preds]
    fig = make_subplots(rows=2, cols=2, subplot_titles=("prefill step by operator", "decode step by operator",
                                                        "prefill step by bound", "decode step by bound"),
                        vertical_spacing=0.3, horizontal_spacing=0.12)
    shown: set = set()
    for row, key, colors in ((1, "by_class_s", CLASS_COLORS), (2, "by_bound_s", BOUND_COLORS)):
        parts = list(dict.fromkeys(k for p in preds for ph in PHASES for k in p["breakdown"][ph][key]))
        for col, phase in enumerate(PHASES, start=1):
            for part in parts:
                vals = [p["breakdown"][phase][key].get(part, 0.0) * 1e3 for p in preds]
                if not any(vals):
                    continue
                name = part if row == 1 else f"{part}-bound"
                fig.add_trace(go.Bar(y=labels, x=vals, orientation="h", name=name, legendgroup=name,
                                     marker_color=colors.get(part, "#888"), showlegend=name not in shown,
                                     hovertemplate=f"{name}: %{{x:.3f}} ms<extra>%{{y}}</extra>"), row=row, col=col)
                shown.add(name)
            fig.update_xaxes(title_text="ms", row=row, col=col)
    layout(fig, "Where the time goes", height=340 + 100 * len(preds))
    fig.update_layout(barmode="stack", legend={"orientation": "h", "y": -0.25, "yanchor": "top"})
    fig.update_yaxes(showticklabels=len(preds) > 1, automargin=True, autorange="reversed")
    return fig


def energy_figure(ops_list: list[StepOperators], labels: list[str]) -> go.Figure:
    """Energy of one prefill step and one decode step per device: dynamic energy by operator class
    plus idle power over the step."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("prefill step (J per device)", "decode step (J per device)"),
                        horizontal_spacing=0.12)
    frames = [energy_by_class(o) for o in ops_list]
    parts = list(dict.fromkeys(p for fr in frames for p in fr["part"] if p != "idle")) + ["idle"]
    shown: set = set()
    for col, phase in enumerate(PHASES, start=1):
        for part in parts:
            vals = [float(fr.loc[(fr["phase"] == phase) & (fr["part"] == part), "energy_j"].sum()) for fr in frames]
            if not any(vals):
                continue
            fig.add_trace(go.Bar(y=labels, x=vals, orientation="h", name=part, legendgroup=part,
                                 marker_color=CLASS_COLORS.get(part, "#888"), showlegend=part not in shown,
                                 hovertemplate=f"{part}: %{{x:.4g}} J<extra>%{{y}}</extra>"), row=1, col=col)
            shown.add(part)
        fig.update_xaxes(title_text="J", row=1, col=col)
    layout(fig, "Energy per step", height=260 + 60 * len(labels))
    fig.update_layout(barmode="stack", legend={"orientation": "h", "y": -0.3, "yanchor": "top"})
    fig.update_yaxes(showticklabels=len(labels) > 1, automargin=True, autorange="reversed")
    return fig


def memory_figure(preds: list[dict], labels: list[str] | None = None) -> go.Figure:
    """Weights, KV cache and activations on the most loaded device, against its capacity."""
    labels = labels or [label_of(p) for p in preds]
    fig = go.Figure()
    for name, key in (("weights", "weights_bytes"), ("KV cache", "kv_cache_bytes"), ("activations", "activation_bytes")):
        fig.add_trace(go.Bar(y=labels, x=[p["memory"][key] / 1e9 for p in preds], orientation="h", name=name,
                             marker_color=MEMORY_COLORS[name], hovertemplate=f"{name}: %{{x:.2f}} GB<extra>%{{y}}</extra>"))
    fig.add_trace(go.Scatter(y=labels, x=[p["capacity_bytes"] / 1e9 for p in preds], mode="markers", name="capacity",
                             marker={"symbol": "line-ns", "size": 40, "line": {"width": 3, "color": "black"}},
                             hovertemplate="capacity %{x:.1f} GB<extra>%{y}</extra>"))
    for p, lab in zip(preds, labels, strict=True):
        if not p["fits"]:
            fig.add_annotation(y=lab, x=p["memory_bytes"] / 1e9, text="does not fit", showarrow=False,
                               xanchor="left", font={"color": "#C0392B"})
    layout(fig, "Memory per device", height=180 + 60 * len(preds))
    fig.update_layout(barmode="stack")
    fig.update_xaxes(title="GB", rangemode="tozero")
    fig.update_yaxes(showticklabels=len(preds) > 1, automargin=True, autorange="reversed")
    return fig


def build(payload: dict, profile: str | None = "auto") -> Report:
    """Report of a ``predict`` result (see :mod:`interfaces.reports.formats`)."""
    pred = payload["prediction"]
    label = label_of(pred)
    rep = Report("predict", f"Prediction: {label}",
                 f"{pred['prompt']} tokens in, {pred['output']} out, runtime {pred.get('runtime', '?')}, "
                 f"{'CUDA graphs' if pred.get('cuda_graphs', True) else 'eager'}", key_numbers(pred))
    if pred.get("basis"):
        rep.notes.append(pred["basis"][0].upper() + pred["basis"][1:] + ".")
    try:
        ops = step_operators(pred, profile)
    except (ValueError, KeyError) as exc:
        ops = None
        rep.notes.append(f"Operator-level figures left out: {exc}")
    if ops is not None and not (ops.peaks and ops.bandwidth):
        rep.notes.append(f"{ops.device_name} does not expose its {'compute roofs' if not ops.peaks else 'bandwidth'}"
                         " (peak(dtype), memory_bandwidth or roofline()): the roofline shows operators without them.")
    if ops is not None:
        rep.add("Roofline", roofline_figure(ops),
                "Each marker is one operator of the prefill step (circles) or of a decode step at the mean "
                "context (diamonds), placed by arithmetic intensity and the FLOP/s it achieves on one device; "
                "lines are the datasheet compute roofs and the memory-bandwidth roof. Marker area follows the "
                "operator's share of its step's time. Not drawn: collectives and pure data movement (no FLOPs) and "
                "fused operators with no memory traffic of their own.")
    rep.add("Latency breakdown", latency_figure([pred], [label]),
            "Time of the prefill step (time to first token) and of one decode step, split by operator class "
            "and by what bounds each operator.")
    if ops is not None:
        rep.add("Energy breakdown", energy_figure([ops], [label]),
                "Dynamic energy of each operator class (FLOPs and memory traffic) plus idle power over the step, "
                "per device, before the power cap. Energy per token above includes every device and the cap.")
    rep.add("Memory", memory_figure([pred], [label]),
            "What the most loaded device holds, against its capacity.")
    if ops is not None:
        top = ops.frame.sort_values("step_time_s", ascending=False).groupby("phase").head(8)
        table = top.assign(time=top["time_s"].map(fmt_time), step_share=(100 * top["share"]).round(1),
                           intensity=top["intensity"].map(lambda v: "-" if np.isnan(v) else f"{v:.3g}"))[
            ["phase", "name", "op_class", "dtype", "count", "time", "step_share", "intensity", "bound"]]
        rep.tables.append(("Slowest operators per step (step_share in %, intensity in FLOP/byte)", table))
    return rep
