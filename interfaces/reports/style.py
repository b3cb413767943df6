"""Shared look of every figure and page: colours, unit conversions for display, number formats.

Figures take SI values (seconds, bytes, FLOP/s, joules) and convert only here, at the edge.
"""

from __future__ import annotations

import math

import plotly.graph_objects as go

#: One colour per operator class (the breakdown keys of a prediction), stable across figures.
CLASS_COLORS = {
    "gemm": "#4C78A8", "attention": "#F58518", "norm": "#54A24B", "elementwise": "#B279A2",
    "embedding": "#9D755D", "lm_head": "#E45756", "router": "#72B7B2", "moe_dispatch": "#EECA3B",
    "collective": "#FF9DA6", "idle": "#BAB0AC",
}
#: One colour per bound (compute, memory, network, overhead).
BOUND_COLORS = {"compute": "#2E4057", "memory": "#D1495B", "network": "#EDAE49", "overhead": "#8D96A3"}
#: Memory parts on a device.
MEMORY_COLORS = {"weights": "#4C78A8", "KV cache": "#F58518", "activations": "#54A24B"}
#: Categorical palette for series that are not operator classes (hardware, methods, groups).
PALETTE = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#EECA3B", "#9D755D",
           "#FF9DA6", "#BAB0AC")
PHASE_SYMBOLS = {"prefill": "circle", "decode": "diamond"}

#: Plotly config for every figure: no logo link, PNG export button kept.
FIGURE_CONFIG = {"displaylogo": False, "responsive": True}


def layout(fig: go.Figure, title: str = "", height: int = 420) -> go.Figure:
    """Apply the common layout (white template, compact margins, legend on the right)."""
    fig.update_layout(template="plotly_white", title={"text": title, "x": 0.01}, height=height,
                      margin={"l": 60, "r": 20, "t": 50 if title else 20, "b": 50},
                      font={"family": "Helvetica, Arial, sans-serif", "size": 12},
                      legend={"tracegroupgap": 2})
    return fig


def color_for(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def fmt_time(s: float | None) -> str:
    """Seconds -> '12.3 us' / '4.56 ms' / '1.23 s' ('n/a' for missing)."""
    if s is None or not isinstance(s, int | float) or not math.isfinite(s):
        return "n/a"
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.3g} s" if s < 100 else f"{s:,.0f} s"


def fmt_bytes(b: float | None) -> str:
    if b is None or not math.isfinite(b):
        return "n/a"
    return f"{b / 1e9:.1f} GB" if abs(b) >= 1e8 else f"{b / 1e6:.1f} MB"


def fmt_num(x: float | None, unit: str = "", digits: int = 3) -> str:
    """Compact number with an SI prefix for large values: 12,345 -> '12.3 k'."""
    if x is None or not isinstance(x, int | float) or not math.isfinite(x):
        return "n/a"
    for div, p in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.{digits}g} {p}{unit}".strip()
    return f"{x:.{digits}g} {unit}".strip()


def fmt_pct(x: float | None) -> str:
    if x is None or not isinstance(x, int | float) or not math.isfinite(x):
        return "n/a"
    return f"{100 * x:.1f} %"

