"""The capacity plan as a mixed-integer program (PuLP), and why a plan is infeasible.

Variables: ``n[i, j]`` >= 0 integer units of candidate ``i`` serving use case ``j`` (each use case
has its own pools; a unit serves one use case); ``s[h]`` >= 0 integer servers of GPU type ``h``;
``r`` >= 0 integer racks.

Constraints::

    sum_i cap[i, j] * n[i, j]          >= rate[j]                       every use case j
    gpus_per_server * s[h]            >= sum_{i, j} gpus[i, h] * n[i, j] every GPU type h
    servers_per_rack * r              >= sum_h s[h]
    cost  = sum_h price[h] * G[h]                   (G[h] = GPUs, or gpus_per_server * s[h] with
    power = sum_h power[h] * G[h] + overhead * sum_h s[h]            charge_whole_servers)
    cost <= budget,  power <= power limit,  r <= racks

Objective: minimize cost (or power), plus 1e-6 x the other to break ties. Servers hold one GPU type;
a replica never spans servers (candidates with ``tp x pp`` above a server are not generated).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulp

from optimizers.capacity.inputs import Candidate, HardwareOption, Limits
from workloads.errors import MissingDependency

__all__ = ["OBJECTIVES", "MipSolution", "diagnose", "quiet_stdout", "solve_mip"]

OBJECTIVES = ("cost", "power")
_TIE = 1e-6


@dataclass
class MipSolution:
    """``status``: "optimal" | "infeasible" | "not solved"; ``units[(i, j)]``: units of candidate i
    for use case j (only non-zero entries)."""

    status: str
    units: dict[tuple[int, int], int] = field(default_factory=dict)
    gpus: dict[str, int] = field(default_factory=dict)
    servers: dict[str, int] = field(default_factory=dict)
    racks: int = 0
    cost_usd_per_hour: float = math.nan
    power_w: float = math.nan

    @property
    def feasible(self) -> bool:
        return self.status == "optimal"


def _solver(time_limit_s: float):
    """CBC (a system ``cbc``, else PuLP's bundled binary), else HiGHS (highspy)."""
    if pulp.COIN_CMD().available():
        return pulp.COIN_CMD(msg=False, timeLimit=time_limit_s)
    with warnings.catch_warnings():  # PuLP 3.x deprecates its bundled CBC in favour of COIN_CMD
        warnings.simplefilter("ignore", DeprecationWarning)
        cbc = pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit_s)
    if cbc.available():
        return cbc
    if pulp.HiGHS().available():
        return pulp.HiGHS(msg=False, timeLimit=time_limit_s)
    raise MissingDependency("capacity plan: no MIP solver available to PuLP (install CBC, or pip install highspy)")


@contextlib.contextmanager
def quiet_stdout():
    """Silence C-level writes to stdout (HiGHS prints a banner even with msg=False), so that
    ``--json`` output stays one JSON object."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # a captured or replaced stdout: nothing to guard
        yield
        return
    sys.stdout.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def _var(prob: pulp.LpProblem, name: str, low: float = 0):
    """An integer variable (PuLP >= 3.3 attaches it to the problem; older versions build it alone)."""
    if hasattr(prob, "add_variable"):
        return prob.add_variable(name, lowBound=low, cat="Integer")
    return pulp.LpVariable(name, lowBound=low, cat="Integer")


def solve_mip(candidates: Sequence[Candidate], rates: Sequence[float], capacity: Sequence[Sequence[float]],
              catalog: Mapping[str, HardwareOption], limits: Limits, objective: str = "cost", *,
              minimize: str | None = None, time_limit_s: float = 60.0) -> MipSolution:
    """Solve the program of the module docstring. ``capacity[i][j]``: requests/s of one unit of
    candidate ``i`` for use case ``j``; ``rates[j]``: the demand. ``minimize`` ("cost", "power",
    "racks") overrides the objective (used by :func:`diagnose`)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    target = minimize or objective
    prob = pulp.LpProblem("capacity_plan", pulp.LpMinimize)
    pairs = [(i, j) for i in range(len(candidates)) for j in range(len(rates)) if capacity[i][j] > 0]
    n = {(i, j): _var(prob, f"n_{i}_{j}") for i, j in pairs}
    hws = sorted({h for c in candidates for h in c.gpus_by_hardware()})
    missing = [h for h in hws if h not in catalog]
    if missing:
        raise ValueError(f"catalog: no price or power for {', '.join(missing)}")
    s = {h: _var(prob, f"servers_{k}") for k, h in enumerate(hws)}
    r = _var(prob, "racks")
    gpu_expr = {h: pulp.lpSum(candidates[i].gpus_by_hardware().get(h, 0) * n[i, j] for i, j in pairs) for h in hws}
    for j, rate in enumerate(rates):
        prob += pulp.lpSum(capacity[i][j] * n[i, j] for i, jj in pairs if jj == j) >= rate, f"demand_{j}"
    for h in hws:
        prob += limits.gpus_per_server * s[h] >= gpu_expr[h], f"servers_{hws.index(h)}"
    prob += limits.servers_per_rack * r >= pulp.lpSum(s.values()), "racks_needed"
    billed = {h: (limits.gpus_per_server * s[h] if limits.charge_whole_servers else gpu_expr[h]) for h in hws}
    cost = pulp.lpSum(catalog[h].price_per_gpu_hour * billed[h] for h in hws)
    power = pulp.lpSum(catalog[h].power_per_gpu_w * billed[h] for h in hws) + \
        limits.server_overhead_w * pulp.lpSum(s.values())
    if limits.budget_usd_per_hour is not None:
        prob += cost <= limits.budget_usd_per_hour, "budget"
    if limits.power_w is not None:
        prob += power <= limits.power_w, "power"
    if limits.racks is not None:
        prob += r <= limits.racks, "racks"
    tie = _TIE * (r + pulp.lpSum(s.values()))  # no empty servers or racks
    if target == "cost":
        prob += cost + _TIE * power + tie
    elif target == "power":
        prob += power + _TIE * cost + tie
    elif target == "racks":
        prob += r + _TIE * (cost + power + pulp.lpSum(s.values()))
    else:
        raise ValueError(f"minimize must be cost, power or racks, got {target!r}")
    solver = _solver(time_limit_s)
    with quiet_stdout():
        prob.solve(solver)
    status = pulp.LpStatus[prob.status]
    if status == "Infeasible":
        return MipSolution("infeasible")
    if status != "Optimal":
        return MipSolution("not solved" if status == "Not Solved" else status.lower())
    units = {k: int(round(v.value())) for k, v in n.items() if v.value() and round(v.value()) > 0}
    gpus = {h: int(round(pulp.value(gpu_expr[h]) or 0)) for h in hws}
    servers = {h: int(round(s[h].value() or 0)) for h in hws}
    return MipSolution("optimal", units, {h: g for h, g in gpus.items() if g},
                       {h: v for h, v in servers.items() if v}, int(round(r.value() or 0)),
                       float(pulp.value(cost) or 0.0), float(pulp.value(power) or 0.0))


_LIMIT_NAMES = {"budget": ("budget_usd_per_hour", "cost", "USD/h", "the budget"),
                "power": ("power_w", "power", "W", "the power limit"),
                "racks": ("racks", "racks", "racks", "the rack limit")}


def _fmt(v: float, unit: str) -> str:
    if unit == "USD/h":
        return f"${v:,.2f}/h"
    if unit == "W":
        return f"{v / 1e3:,.1f} kW"
    return f"{v:g} {unit}"


def diagnose(candidates: Sequence[Candidate], rates: Sequence[float], capacity: Sequence[Sequence[float]],
             catalog: Mapping[str, HardwareOption], limits: Limits, names: Sequence[str],
             reasons: Sequence[Sequence[str]] | None = None, objective: str = "cost") -> dict:
    """Why no plan exists: ``{"binding": [limit names], "message": text, "needed": {limit: value}}``.

    First, use cases that no candidate can serve (with each candidate's reason). Then each set limit
    is relaxed alone: the limits whose relaxation makes the plan feasible bind; "needed" holds the
    least of each resource a plan needs within the other limits. When no single relaxation helps,
    pairs are tried."""
    unserved = [j for j in range(len(rates)) if not any(capacity[i][j] > 0 for i in range(len(candidates)))]
    if unserved:
        parts = []
        for j in unserved:
            why = []
            for i, c in enumerate(candidates):
                rs = (reasons[i][j] if reasons else "") or "no capacity"
                why.append(f"{c.label}: {rs}")
            parts.append(f"use case {names[j]}: no candidate meets its SLO at any rate ("
                         + "; ".join(why[:4]) + (f"; and {len(why) - 4} more" if len(why) > 4 else "") + ")")
        return {"binding": ["slo"], "message": "no feasible deployment: " + " | ".join(parts), "needed": {}}
    active = limits.active()
    needed = {}
    single = []
    for name in active:
        field_name, resource, unit, _ = _LIMIT_NAMES[name]
        relaxed = Limits(**{**limits.__dict__, field_name: None})
        sol = solve_mip(candidates, rates, capacity, catalog, relaxed, objective, minimize=resource)
        if sol.feasible:
            single.append(name)
            needed[name] = {"cost": sol.cost_usd_per_hour, "power": sol.power_w, "racks": sol.racks}[resource]
    if single:
        parts = []
        for name in single:
            _, _, unit, words = _LIMIT_NAMES[name]
            parts.append(f"{words} binds: the least a plan within the other limits needs is "
                         f"{_fmt(needed[name], unit)}, the limit is {_fmt(active[name], unit)}")
        return {"binding": single, "message": "no feasible deployment: " + "; ".join(parts), "needed": needed}
    names_active = list(active)
    for a in range(len(names_active)):
        for b in range(a + 1, len(names_active)):
            pair = (names_active[a], names_active[b])
            relaxed = Limits(**{**limits.__dict__, **{_LIMIT_NAMES[p][0]: None for p in pair}})
            if solve_mip(candidates, rates, capacity, catalog, relaxed, objective).feasible:
                free = solve_mip(candidates, rates, capacity, catalog, Limits(**{**limits.__dict__,
                                 **{_LIMIT_NAMES[p][0]: None for p in names_active}}), objective)
                vals = {"budget": free.cost_usd_per_hour, "power": free.power_w, "racks": free.racks}
                parts = [f"{_LIMIT_NAMES[p][3]} ({_fmt(active[p], _LIMIT_NAMES[p][2])}; the unconstrained plan "
                         f"needs {_fmt(vals[p], _LIMIT_NAMES[p][2])})" for p in pair]
                return {"binding": list(pair), "message": "no feasible deployment: " + " and ".join(parts)
                        + " bind together", "needed": {p: vals[p] for p in pair}}
    free = solve_mip(candidates, rates, capacity, catalog, Limits(**{**limits.__dict__, "budget_usd_per_hour": None,
                                                                      "power_w": None, "racks": None}), objective)
    vals = {"budget": free.cost_usd_per_hour, "power": free.power_w, "racks": free.racks}
    parts = [f"{_LIMIT_NAMES[p][3]} {_fmt(active[p], _LIMIT_NAMES[p][2])} (needs "
             f"{_fmt(vals[p], _LIMIT_NAMES[p][2])})" for p in active]
    return {"binding": list(active), "message": "no feasible deployment: all limits bind together: " + "; ".join(parts),
            "needed": vals}
