"""Figures of a validation run: predicted against measured times, and the error per group."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from interfaces.reports.report import Report
from interfaces.reports.style import color_for, fmt_pct, layout

GROUP_COLUMNS = ("kind", "file", "phase", "model", "dtype", "timing")


def with_errors(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows with ``error = predicted / measured - 1`` and its absolute value."""
    missing = {"measured_s", "predicted_s"} - set(rows.columns)
    if missing:
        raise ValueError(f"validate: rows need columns measured_s and predicted_s; missing {sorted(missing)}")
    df = rows.copy()
    for c in ("measured_s", "predicted_s"):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    df = df[(df["measured_s"] > 0) & (df["predicted_s"] > 0)]
    df["error"] = df["predicted_s"] / df["measured_s"] - 1
    df["abs_error"] = df["error"].abs()
    return df


def error_table(df: pd.DataFrame) -> pd.DataFrame:
    """MAPE, median and worst absolute error, bias and count per group."""
    keys = [k for k in GROUP_COLUMNS if k in df.columns]
    grouped = df.groupby(keys, dropna=False) if keys else [((), df)]
    out = []
    for k, g in grouped:
        row = dict(zip(keys, k if isinstance(k, tuple) else (k,), strict=True))
        row.update({"rows": len(g), "MAPE %": round(100 * g["abs_error"].mean(), 1),
                    "median APE %": round(100 * g["abs_error"].median(), 1),
                    "worst %": round(100 * g["abs_error"].max(), 1),
                    "bias %": round(100 * g["error"].median(), 1)})
        out.append(row)
    return pd.DataFrame(out)


def scatter_figure(df: pd.DataFrame, quantity: str = "s") -> go.Figure:
    """Predicted against measured (log-log) with the y = x line and +-10 % / +-25 % bands;
    ``quantity`` "s" draws times (columns measured_s, predicted_s) in ms, "j" energies in J."""
    mcol, pcol = f"measured_{quantity}", f"predicted_{quantity}"
    scale, unit = (1e3, "ms") if quantity == "s" else (1.0, "J")
    df = df[(pd.to_numeric(df[mcol], errors="coerce") > 0) & (pd.to_numeric(df[pcol], errors="coerce") > 0)]
    err = df[pcol].astype(float) / df[mcol].astype(float) - 1
    key = next((k for k in ("kind", "file", "model", "dtype", "phase") if k in df.columns and df[k].nunique() > 1), None)
    fig = go.Figure()
    lo, hi = float(min(df[mcol].min(), df[pcol].min())), float(max(df[mcol].max(), df[pcol].max()))
    x = np.geomspace(lo / 1.5 * scale, hi * 1.5 * scale, 50)
    for f, dash in ((1.25, "dot"), (1.1, "dash")):
        for s in (f, 1 / f):
            fig.add_trace(go.Scatter(x=x, y=x * s, mode="lines", line={"color": "#aaa", "dash": dash, "width": 1},
                                     showlegend=s == f, name=f"+-{round(100 * (f - 1))} %", hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=x, y=x, mode="lines", line={"color": "black", "width": 1}, name="exact",
                             hoverinfo="skip"))
    label_cols = [c for c in ("label", "kind", "file", "model", "phase", "dtype", "batch", "context", "m", "n", "k")
                  if c in df.columns]
    cats = list(dict.fromkeys(df[key])) if key else [None]
    for i, c in enumerate(cats):
        g = df[df[key] == c] if key else df
        text = [" ".join(f"{col}={g.iloc[j][col]}" for col in label_cols) for j in range(len(g))]
        fig.add_trace(go.Scatter(
            x=g[mcol] * scale, y=g[pcol] * scale, mode="markers", name=str(c) if key else "rows",
            marker={"color": color_for(i), "size": 6, "opacity": 0.75}, text=text, customdata=100 * err.loc[g.index],
            hovertemplate=f"%{{text}}<br>measured %{{x:.4g}} {unit}, predicted %{{y:.4g}} {unit} "
                          "(%{customdata:+.1f} %)<extra></extra>"))
    layout(fig, "Predicted against measured" + (" energy" if quantity == "j" else " time"), height=520)
    rng = [np.log10(lo * scale / 1.5), np.log10(hi * scale * 1.5)]
    fig.update_xaxes(type="log", title=f"measured ({unit})", range=rng)
    fig.update_yaxes(type="log", title=f"predicted ({unit})", range=rng)
    return fig


def error_histogram(df: pd.DataFrame) -> go.Figure:
    key = next((k for k in ("kind", "file", "model") if k in df.columns and df[k].nunique() > 1), None)
    fig = go.Figure()
    for i, c in enumerate(dict.fromkeys(df[key]) if key else [None]):
        g = df[df[key] == c] if key else df
        fig.add_trace(go.Histogram(x=100 * g["error"], name=str(c) if key else "rows", opacity=0.7,
                                   marker_color=color_for(i), nbinsx=50))
    layout(fig, "Signed error (predicted / measured - 1)", height=340)
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(title="%")
    fig.update_yaxes(title="rows")
    return fig


def groups_figure(groups: pd.DataFrame) -> go.Figure:
    """Mean absolute error of time (and energy) per group, when only group statistics are known."""
    keys = [k for k in ("file", "model", "phase", "timing", "dtype") if k in groups.columns]
    labels = [" ".join(str(v) for v in r if str(v)) for r in groups[keys].itertuples(index=False, name=None)]
    fig = go.Figure(go.Bar(x=labels, y=groups["mape_time_pct"], name="time", marker_color=color_for(0)))
    if "mape_energy_pct" in groups and groups["mape_energy_pct"].notna().any():
        fig.add_trace(go.Bar(x=labels, y=groups["mape_energy_pct"], name="energy", marker_color=color_for(1)))
    layout(fig, "Mean absolute error per group", height=420)
    fig.update_yaxes(title="MAPE (%)")
    fig.update_layout(barmode="group")
    return fig


def _goals(rep: Report, payload: dict) -> None:
    goals = pd.DataFrame(payload.get("goals") or [])
    if goals.empty or "passed" not in goals:
        return
    rep.numbers.append(("goals met", f"{int(goals['passed'].sum())} of {len(goals)}"))
    cols = [c for c in ("name", "value_pct", "limit_pct", "passed", "n", "held_out", "detail") if c in goals]
    rep.tables.insert(0, ("Goals (MAPE %)", goals[cols].round({"value_pct": 2})))
    noise = payload.get("noise_floor") or {}
    if noise:
        rep.notes.append("Run-to-run noise floor (median / p90 %): " + ", ".join(
            f"{k} {v.get('median_pct', float('nan')):.1f} / {v.get('p90_pct', float('nan')):.1f}"
            for k, v in noise.items() if isinstance(v, dict)))


def build(payload: dict) -> Report:
    """Report of a ``validate`` result (see :mod:`interfaces.reports.formats`)."""
    title = "Validation" + (f": {payload['dataset']}" if payload.get("dataset") else "")
    where = (f" on {payload['hardware']}" if payload.get("hardware") else "") + (
        f" (profile {payload['profile']})" if payload.get("profile") else "")
    rows = payload.get("rows")
    if rows is None or (isinstance(rows, pd.DataFrame) and rows.empty):
        groups = pd.DataFrame(payload.get("groups") or [])
        if groups.empty or "mape_time_pct" not in groups:
            raise ValueError("validate: results need 'rows' (measured_s, predicted_s) or 'groups' with mape_time_pct")
        rep = Report("validate", title, f"{int(groups['n'].sum()) if 'n' in groups else '?'} measured rows{where}")
        rep.add("Error per group", groups_figure(groups),
                "Group statistics only (the file holds no per-row predictions, so no scatter).")
        rep.tables.append(("Error per group", groups))
        _goals(rep, payload)
        return rep
    df = with_errors(rows)
    if df.empty:
        raise ValueError("validate: no row has positive measured_s and predicted_s")
    rep = Report("validate", title, f"{len(df)} measured rows{where}",
                 [("rows", f"{len(df):,}"), ("mean absolute error", fmt_pct(df["abs_error"].mean())),
                  ("median absolute error", fmt_pct(df["abs_error"].median())),
                  ("within 10 %", fmt_pct((df["abs_error"] <= 0.10 + 1e-9).mean())),
                  ("within 25 %", fmt_pct((df["abs_error"] <= 0.25 + 1e-9).mean()))])
    rep.add("Predicted against measured", scatter_figure(df),
            "Each marker is one measured row; on the black line the model is exact, dashed and dotted lines are "
            "10 % and 25 % off.")
    rep.add("Error distribution", error_histogram(df), "Positive: the model predicts slower than measured.")
    if {"measured_j", "predicted_j"} <= set(df.columns):
        both = (pd.to_numeric(df["measured_j"], errors="coerce") > 0) & (pd.to_numeric(df["predicted_j"], errors="coerce") > 0)
        if both.any():
            e = df.loc[both, "predicted_j"].astype(float) / df.loc[both, "measured_j"].astype(float) - 1
            rep.numbers.append(("energy: mean absolute error", fmt_pct(e.abs().mean())))
            rep.add("Energy", scatter_figure(df[both], "j"), "Rows with measured energy (NVML), joules per operation.")
    rep.tables.append(("Error per group", error_table(df)))
    _goals(rep, payload)
    return rep
