"""Figures of a knob search: the objective over trials with the running best and the baseline,
and which knob values the good trials used."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from interfaces.reports.report import Report
from interfaces.reports.style import color_for, fmt_num, layout


def trials_frame(payload: dict) -> pd.DataFrame:
    trials = payload.get("trials")
    if not isinstance(trials, list) or not trials:
        raise ValueError("search: results need a non-empty 'trials' list of {'params': {...}, 'value': ...}")
    rows = []
    for i, t in enumerate(trials):
        if "value" not in t:
            raise ValueError(f"search: trial {i} has no 'value'")
        row = {"number": t.get("number", i), "value": t["value"], "feasible": t.get("feasible", True)}
        row.update({f"param:{k}": v for k, v in (t.get("params") or {}).items()})
        rows.append(row)
    df = pd.DataFrame(rows)
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    return df


def progress_figure(df: pd.DataFrame, objective: str, maximize: bool, baseline: float | None) -> go.Figure:
    """Each trial's objective, the best so far, and the baseline."""
    ok = df["feasible"].astype(bool) & df["value"].notna()
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=df.loc[ok, "number"], y=df.loc[ok, "value"], mode="markers", name="trial",
                             marker={"color": color_for(0), "size": 6, "opacity": 0.7}))
    if (~ok).any():
        fig.add_trace(go.Scatter(x=df.loc[~ok, "number"], y=np.full((~ok).sum(), np.nan), mode="markers",
                                 name="infeasible", marker={"color": "#C0392B", "symbol": "x"}))
    vals = df["value"].where(ok)
    run = vals.cummax() if maximize else vals.cummin()
    fig.add_trace(go.Scatter(x=df["number"], y=run, mode="lines", name="best so far",
                             line={"color": "black", "shape": "hv"}))
    if baseline is not None:
        fig.add_hline(y=baseline, line={"color": color_for(1), "dash": "dash"}, annotation_text="baseline")
    layout(fig, f"{objective} over trials ({'higher' if maximize else 'lower'} is better)", height=380)
    fig.update_xaxes(title="trial", tickformat="d", dtick=1 if len(df) <= 20 else None)
    fig.update_yaxes(title=objective)
    return fig


def parallel_figure(df: pd.DataFrame, objective: str) -> go.Figure:
    """One line per feasible trial through its knob values, coloured by the objective."""
    ok = df[df["feasible"].astype(bool) & df["value"].notna()]
    dims = []
    for c in [c for c in df.columns if c.startswith("param:")]:
        col = ok[c]
        if col.astype(str).nunique() < 2:  # a knob that never changed says nothing here
            continue
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            dims.append({"label": c[6:], "values": col.to_numpy(float)})
        else:
            cats = list(dict.fromkeys(col.astype(str)))
            dims.append({"label": c[6:], "values": [cats.index(v) for v in col.astype(str)],
                         "tickvals": list(range(len(cats))), "ticktext": cats})
    dims.append({"label": objective, "values": ok["value"].to_numpy(float)})
    fig = go.Figure(go.Parcoords(line={"color": ok["value"], "colorscale": "Viridis", "showscale": True},
                                 dimensions=dims))
    layout(fig, "Knob values of every trial", height=440)
    fig.update_layout(margin={"t": 110, "l": 70, "r": 40})
    return fig


def build(payload: dict) -> Report:
    """Report of a ``search`` result (see :mod:`interfaces.reports.formats`)."""
    df = trials_frame(payload)
    objective = payload.get("objective", "objective")
    direction = payload.get("direction", "maximize")
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"search: direction must be 'maximize' or 'minimize', got {direction!r}")
    maximize = direction == "maximize"
    base = (payload.get("baseline") or {}).get("value")
    ok = df[df["feasible"].astype(bool) & df["value"].notna()]
    rep = Report("search", f"Knob search: {objective}", f"{len(df)} trials, {direction}",
                 [("trials", str(len(df))), ("feasible", str(len(ok)))])
    if len(ok):
        best_row = ok.loc[ok["value"].idxmax() if maximize else ok["value"].idxmin()]
        best = payload.get("best") or {"value": best_row["value"],
                                       "params": {c[6:]: best_row[c] for c in df.columns if c.startswith("param:")}}
        rep.numbers.append(("best", fmt_num(best["value"], digits=4)))
        if base:
            rep.numbers += [("baseline", fmt_num(base, digits=4)),
                            ("best vs baseline", f"{(best['value'] - base) / abs(base):+.1%}")]
        rep.tables.append(("Best knobs", pd.DataFrame([(k, str(v)) for k, v in best.get("params", {}).items()],
                                                      columns=["knob", "value"])))
    rep.add("Progress", progress_figure(df, objective, maximize, base),
            "Every evaluated configuration in order, the best found so far, and the baseline configuration.")
    varied = [c for c in df.columns if c.startswith("param:") and ok[c].astype(str).nunique() > 1]
    if varied and len(ok) > 1:
        rep.add("Knobs", parallel_figure(df, objective),
                "One line per feasible trial through the knobs that varied; drag along an axis to filter.")
    top = ok.sort_values("value", ascending=not maximize).head(15)
    rep.tables.append(("Top trials", top.rename(columns=lambda c: c.removeprefix("param:"))))
    return rep
