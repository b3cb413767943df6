"""Figures of a sweep (the file of ``genz sweep``): heatmaps over batch x prompt, Pareto front."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from interfaces.reports.report import Report
from interfaces.reports.style import color_for, fmt_num, fmt_time, layout

#: Categorical columns that split a sweep into groups (each gets its own heatmap).
GROUP_KEYS = ("model", "hardware", "precision", "tp", "pp", "ep", "output")
#: Metrics a heatmap can show: column -> (label, scale for display, higher is better).
METRICS = {
    "throughput_tok_s": ("throughput (tok/s)", 1.0, True),
    "decode_tok_s": ("decode throughput (tok/s)", 1.0, True),
    "ttft_s": ("time to first token (ms)", 1e3, False),
    "tpot_s": ("time per output token (ms)", 1e3, False),
    "e2e_s": ("end-to-end latency (s)", 1.0, False),
    "energy_per_token_j": ("energy per token (J)", 1.0, False),
    "memory_bytes": ("memory per device (GB)", 1e-9, False),
}
MAX_GROUPS = 60


def _check(df: pd.DataFrame, metric: str, latency: str) -> None:
    need = {"batch", "prompt", metric, latency}
    missing = sorted(need - set(df.columns))
    if missing:
        raise ValueError(f"sweep: results lack columns {missing}; metrics available: "
                         f"{', '.join(c for c in METRICS if c in df.columns)}")


def group_label(row) -> str:
    parts = [str(row[k]) for k in ("model", "hardware", "precision") if k in row]
    parts += [f"{k}{row[k]}" for k in ("tp", "pp", "ep") if k in row and int(row[k]) != 1]
    if "output" in row:
        parts.append(f"out {row['output']}")
    return " ".join(parts)


def _groups(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    keys = [k for k in GROUP_KEYS if k in df.columns]
    if not keys:
        return [("all", df)]
    return [(group_label(g.iloc[0]), g) for _, g in df.groupby(keys, sort=False)]


def heatmap_figure(df: pd.DataFrame, metric: str = "throughput_tok_s") -> go.Figure:
    """``metric`` over batch (x) and prompt length (y), one heatmap per group chosen from a menu.
    Configurations that do not fit in memory are blank."""
    label, scale, _ = METRICS.get(metric, (metric, 1.0, True))
    groups = _groups(df)[:MAX_GROUPS]
    fig = go.Figure()
    for i, (name, g) in enumerate(groups):
        z = g.assign(v=np.where(g.get("fits", True), g[metric] * scale, np.nan))
        pv = z.pivot_table(index="prompt", columns="batch", values="v", aggfunc="first", dropna=False)
        text = [[("" if np.isnan(v) else fmt_num(v)) for v in row] for row in pv.to_numpy()]
        text = [[t or "OOM" for t in row] for row in text]
        fig.add_trace(go.Heatmap(
            x=[str(c) for c in pv.columns], y=[str(r) for r in pv.index], z=pv.to_numpy(), text=text,
            texttemplate="%{text}", colorscale="Viridis", visible=i == 0, name=name,
            colorbar={"title": {"text": label, "side": "right"}},
            hovertemplate=f"batch %{{x}}, prompt %{{y}}<br>{label}: %{{z:.4g}}<extra>{name}</extra>"))
    if len(groups) > 1:
        buttons = [{"label": name, "method": "update",
                    "args": [{"visible": [j == i for j in range(len(groups))]}, {"title.text": f"{label}: {name}"}]}
                   for i, (name, _) in enumerate(groups)]
        fig.update_layout(updatemenus=[{"buttons": buttons, "x": 1.0, "xanchor": "right", "y": 1.18,
                                        "yanchor": "top", "direction": "down"}])
    layout(fig, f"{label}: {groups[0][0]}" if groups else label, height=460)
    fig.update_xaxes(title="batch (concurrent sequences)", type="category")
    fig.update_yaxes(title="prompt tokens", type="category")
    return fig


def pareto_mask(latency: np.ndarray, throughput: np.ndarray) -> np.ndarray:
    """True where no other point has lower-or-equal latency and higher throughput (ties broken
    by keeping the first)."""
    order = np.lexsort((-throughput, latency))
    mask = np.zeros(len(latency), dtype=bool)
    best = -np.inf
    for i in order:
        if throughput[i] > best:
            mask[i] = True
            best = throughput[i]
    return mask


def _color_key(df: pd.DataFrame) -> str | None:
    for k in ("hardware", "model", "precision", "tp"):
        if k in df.columns and df[k].nunique() > 1:
            return k
    return None


def _throughput(df: pd.DataFrame) -> tuple[np.ndarray, str]:
    if "devices" in df.columns:
        return (df["throughput_tok_s"] / df["devices"]).to_numpy(float), "throughput per device (tok/s)"
    return df["throughput_tok_s"].to_numpy(float), "throughput (tok/s)"


def pareto_figure(df: pd.DataFrame, latency: str = "tpot_s") -> go.Figure:
    """Every configuration that fits, throughput per device against latency; the front is the
    set no other configuration beats on both."""
    fit = df[df["fits"].astype(bool)] if "fits" in df.columns else df
    lat_label, lat_scale, _ = METRICS.get(latency, (latency, 1.0, False))
    fig = go.Figure()
    if fit.empty:
        layout(fig, "No configuration fits in memory")
        return fig
    thr, thr_label = _throughput(fit)
    lat = fit[latency].to_numpy(float) * lat_scale
    key = _color_key(fit)
    labels = [group_label(r) + f" b{r['batch']} p{r['prompt']}" for _, r in fit.iterrows()]
    cats = list(dict.fromkeys(fit[key])) if key else [None]
    for i, c in enumerate(cats):
        sel = (fit[key] == c).to_numpy() if key else np.ones(len(fit), bool)
        fig.add_trace(go.Scatter(x=lat[sel], y=thr[sel], mode="markers", name=str(c) if key else "configurations",
                                 marker={"color": color_for(i), "size": 7, "opacity": 0.6},
                                 text=[labels[j] for j in np.flatnonzero(sel)],
                                 hovertemplate=f"%{{text}}<br>{lat_label}: %{{x:.4g}}<br>{thr_label}: %{{y:.4g}}"
                                               "<extra></extra>"))
    mask = pareto_mask(lat, thr)
    order = np.argsort(lat[mask])
    fig.add_trace(go.Scatter(x=lat[mask][order], y=thr[mask][order], mode="lines+markers", name="Pareto front",
                             line={"color": "black", "width": 2, "shape": "hv"},
                             marker={"symbol": "star", "size": 11, "color": "black"},
                             text=[labels[j] for j in np.flatnonzero(mask)[order]],
                             hovertemplate="%{text}<extra>Pareto front</extra>"))
    layout(fig, "Throughput against latency", height=460)
    fig.update_xaxes(title=lat_label, type="log")
    fig.update_yaxes(title=thr_label, type="log")
    return fig


def pareto_table(df: pd.DataFrame, latency: str = "tpot_s", limit: int = 25) -> pd.DataFrame:
    fit = df[df["fits"].astype(bool)] if "fits" in df.columns else df
    if fit.empty:
        return pd.DataFrame()
    thr, _ = _throughput(fit)
    mask = pareto_mask(fit[latency].to_numpy(float), thr)
    front = fit[mask].sort_values(latency).head(limit)
    cols = [c for c in ("model", "hardware", "precision", "tp", "pp", "ep", "batch", "prompt", "output") if c in front]
    out = front[cols].copy()
    out["ttft"] = front["ttft_s"].map(fmt_time)
    out["tpot"] = front["tpot_s"].map(fmt_time)
    out["throughput tok/s"] = front["throughput_tok_s"].map(lambda v: f"{v:,.0f}")
    if "devices" in front:
        out["devices"] = front["devices"].astype(int)
    return out


def build(payload: dict, metric: str = "throughput_tok_s", latency: str = "tpot_s") -> Report:
    """Report of a ``sweep`` result (see :mod:`interfaces.reports.formats`)."""
    df = payload["rows"]
    if df.empty:
        raise ValueError("sweep: the results file has no rows")
    _check(df, metric, latency)
    n_fit = int(df["fits"].astype(bool).sum()) if "fits" in df else len(df)
    groups = _groups(df)
    rep = Report("sweep", "Sweep", f"{len(df):,} configurations in {len(groups)} groups",
                 [("configurations", f"{len(df):,}"), ("fit in memory", f"{n_fit:,}")])
    fit = df[df["fits"].astype(bool)] if "fits" in df else df
    if len(fit):
        best = fit.loc[fit["throughput_tok_s"].idxmax()]
        fast = fit.loc[fit[latency].idxmin()]
        rep.numbers += [("highest throughput", f"{fmt_num(best['throughput_tok_s'], 'tok/s')}: {group_label(best)} "
                                               f"b{best['batch']}"),
                        (f"lowest {latency.removesuffix('_s')}", f"{fmt_time(fast[latency])}: {group_label(fast)} "
                                                                 f"b{fast['batch']}")]
    if "profile_basis" in df:
        by_hw = df.drop_duplicates("hardware").set_index("hardware")
        rep.notes.append("What each device's numbers stand on: " + "; ".join(
            f"{hw}: {r['profile_basis']}" + (f" (expected error ~{100 * r['expected_error_tpot']:.0f} % decode, "
                                              f"~{100 * r['expected_error_ttft']:.0f} % prefill)"
                                              if r.get("expected_error_tpot") == r.get("expected_error_tpot") else "")
            for hw, r in by_hw.iterrows()) + ".")
    if len(groups) > MAX_GROUPS:
        rep.notes.append(f"Heatmaps drawn for the first {MAX_GROUPS} of {len(groups)} groups.")
    rep.add("Heatmap", heatmap_figure(df, metric),
            "One cell per (batch, prompt) of the chosen group (menu at the top right); blank 'OOM' cells do not "
            "fit in memory.")
    rep.add("Pareto front", pareto_figure(df, latency),
            "Configurations that fit (all groups together), by latency and throughput per device; the black "
            "steps are the ones no other configuration beats on both.")
    tab = pareto_table(df, latency)
    if len(tab):
        rep.tables.append(("Pareto-front configurations", tab))
    return rep
