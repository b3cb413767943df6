"""Figures of a capacity plan: what each candidate can serve, what was deployed, and whether the
confirming simulations met the SLO."""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go

from interfaces.reports.report import Report
from interfaces.reports.style import color_for, fmt_num, fmt_pct, layout


def _num(x) -> float:
    return float(x) if isinstance(x, int | float) and x is not None else math.nan


def capacity_figure(caps: pd.DataFrame) -> go.Figure:
    """Requests/s per GPU each candidate sustains under the SLO, per use case (0: cannot)."""
    fig = go.Figure()
    for i, (uc, g) in enumerate(caps.groupby("use_case", sort=False)):
        fig.add_trace(go.Bar(x=g["candidate"], y=g["capacity_rps_per_gpu"], name=str(uc), marker_color=color_for(i),
                             text=g.get("reason", ""), hovertemplate="%{x}: %{y:.3g} req/s per GPU<br>%{text}"
                                                                     "<extra>%{fullData.name}</extra>"))
    layout(fig, "Capacity per GPU under the SLO", height=400)
    fig.update_layout(barmode="group")
    fig.update_yaxes(title="requests/s per GPU", rangemode="tozero")
    return fig


def deployment_figure(dep: pd.DataFrame) -> go.Figure:
    """GPUs deployed for each use case, by candidate."""
    fig = go.Figure()
    for i, (cand, g) in enumerate(dep.groupby("candidate", sort=False)):
        fig.add_trace(go.Bar(x=g["use_case"], y=g["gpus"], name=str(cand), marker_color=color_for(i),
                             customdata=g[["units", "utilization"]].to_numpy() if "utilization" in g else None,
                             hovertemplate="%{x}: %{y} GPUs (%{customdata[0]} units, utilization "
                                           "%{customdata[1]:.0%})<extra>%{fullData.name}</extra>"))
    layout(fig, "Deployment", height=380)
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title="GPUs")
    return fig


def confirmation_figure(conf: pd.DataFrame, demand: pd.DataFrame) -> go.Figure:
    """p99 TTFT and TPOT of each confirming simulation against the use case's SLO."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("TTFT p99 / SLO", "TPOT p99 / SLO"))
    slo = demand.set_index("use_case") if "use_case" in demand else pd.DataFrame()
    labels = [f"{u} on {c}" for u, c in zip(conf["use_case"], conf["candidate"], strict=True)]
    for col, (key, target) in enumerate((("ttft_p99_s", "ttft_slo_s"), ("tpot_p99_s", "tpot_slo_s")), start=1):
        ratio = [(_num(v) / _num(slo.loc[u, target])) if u in slo.index and _num(slo.loc[u, target]) > 0 else math.nan
                 for u, v in zip(conf["use_case"], conf[key], strict=True)]
        passed = list(conf.get("passed", [True] * len(conf)))
        # the confirmation passes on SLO attainment (a share of requests within both SLOs), not on p99:
        # a passed run whose p99 is above the SLO is amber, so the colour never claims what the rule did not
        colors = [("#1e7d32" if r <= 1.0 or not math.isfinite(r) else "#E6A100") if p else "#C0392B"
                  for p, r in zip(passed, ratio, strict=True)]
        fig.add_trace(go.Bar(x=labels, y=ratio, marker_color=colors, showlegend=False,
                             hovertemplate="%{x}: %{y:.2f} x SLO<extra></extra>"), row=1, col=col)
        fig.add_hline(y=1.0, line={"color": "black", "dash": "dash"}, row=1, col=col)
    layout(fig, "Confirming simulations: passed on SLO attainment (green: p99 within the SLO too; amber: passed, "
                "p99 above the SLO; red: failed)", height=380)
    return fig


def build(payload: dict) -> Report:
    """Report of a ``plan`` result (``optimizers.capacity`` CapacityPlan.to_payload())."""
    totals = payload.get("totals") or {}
    feasible = payload.get("feasible", bool(payload.get("deployment")))
    rep = Report("plan", "Capacity plan", f"objective: minimum {payload.get('objective', 'cost')}")
    if not feasible:
        rep.numbers.append(("feasible", "no"))
        rep.notes.append(payload.get("message") or "no plan satisfies the demand within the limits")
    else:
        gpus = totals.get("gpus") or {}
        rep.numbers += [
            ("GPUs", ", ".join(f"{n} x {h}" for h, n in gpus.items()) if isinstance(gpus, dict) else str(gpus)),
            ("cost", f"${_num(totals.get('cost_usd_per_hour')):,.2f}/h"),
            ("power", f"{_num(totals.get('power_w')) / 1e3:,.1f} kW"),
            ("cost per M output tokens", f"${_num(totals.get('cost_per_million_output_tokens_usd')):.3g}"),
            ("confirmed by simulation", "yes" if payload.get("confirmed") else "NO"),
        ]
        if totals.get("racks") is not None:
            rep.numbers.append(("racks", str(totals["racks"])))
    if payload.get("binding"):
        rep.notes.append("binding limits: " + ", ".join(map(str, payload["binding"])))
    if payload.get("repairs"):
        rep.notes.append(f"{len(payload['repairs'])} repair round(s) lowered capacities after missed confirmations")
    caps = pd.DataFrame(payload.get("capacities") or [])
    if {"candidate", "use_case", "capacity_rps_per_gpu"} <= set(caps.columns):
        rep.add("Capacities", capacity_figure(caps),
                "Highest request rate per GPU at which each candidate configuration met the use case's SLO in the "
                "serving simulation; hover for why a candidate could not.")
    dep = pd.DataFrame(payload.get("deployment") or [])
    if {"candidate", "use_case", "gpus"} <= set(dep.columns):
        rep.add("Deployment", deployment_figure(dep), "What the plan deploys for each use case.")
        cols = [c for c in ("use_case", "candidate", "units", "gpus", "rate_share_per_s", "capacity_rps_per_unit",
                            "utilization") if c in dep]
        rep.tables.append(("Deployment", dep[cols]))
    conf = pd.DataFrame(payload.get("confirmation") or [])
    demand = pd.DataFrame(payload.get("demand") or [])
    if {"use_case", "candidate", "ttft_p99_s", "tpot_p99_s"} <= set(conf.columns) and len(demand):
        rep.add("Confirmation", confirmation_figure(conf, demand),
                "p99 latencies of a simulation of each deployed pool at its share of the traffic, divided by the SLO "
                "(below the dashed line meets it).")
        conf = conf.assign(slo_attainment=conf.get("slo_attainment", pd.Series(dtype=float)).map(
            lambda v: fmt_pct(_num(v))))
        rep.tables.append(("Confirmation", conf))
    if len(demand):
        rep.tables.append(("Demand", demand))
    if not rep.sections and feasible:
        rep.notes.append("the plan has no capacities, deployment or confirmation rows to draw")
    rep.subtitle += f", {fmt_num(sum(_num(d.get('rate_per_s')) for d in payload.get('demand') or []))} req/s demanded"
    return rep
