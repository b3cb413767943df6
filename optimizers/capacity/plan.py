"""``plan_capacity``: the cheapest (or lowest-power) deployment that serves a workload mix within
its SLOs and the given limits, confirmed by simulation.

1. Capacities: each candidate unit's highest sustainable rate per use case, from short simulations
   (:mod:`optimizers.capacity.capacities`).
2. A mixed-integer program picks integer units per candidate and use case (:mod:`optimizers.capacity.mip`).
3. Confirmation: every chosen pool is simulated at its share of its use case's rate with
   ``confirm_requests`` requests. A pool that misses the SLO has its capacity scaled down by the
   rate it did reach over the rate it was given (at most x0.9) and the program is solved again, up
   to ``repair_rounds`` times.

Assumptions: a pool serves one use case; a use case split over several candidates sends each the
share of its rate proportional to the pool's capacity (a weighted router); units scale linearly
(n units serve n x one unit's rate).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from optimizers.capacity.capacities import CapacityTable, SimulationSettings, compute_capacities
from optimizers.capacity.inputs import Candidate, Demand, HardwareOption, Limits
from optimizers.capacity.mip import OBJECTIVES, MipSolution, diagnose, solve_mip
from optimizers.search.parallel import make_executor

__all__ = ["CapacityPlan", "InfeasiblePlan", "plan_capacity"]


class InfeasiblePlan(ValueError):
    """No deployment meets the demand within the limits; ``binding`` names the constraints that bind."""

    def __init__(self, message: str, binding: Sequence[str], needed: Mapping | None = None, plan=None):
        super().__init__(message)
        self.binding = list(binding)
        self.needed = dict(needed or {})
        self.plan = plan


@dataclass
class CapacityPlan:
    """The chosen deployment, what it costs and draws, and the confirming simulations.

    ``deployment``: one row per (use case, candidate) pool: units, GPUs, rate share, capacity.
    ``confirmation``: one row per pool: the simulated SLO attainment, percentiles, pass/fail.
    ``feasible``: a plan was found; ``confirmed``: every pool passed its confirming simulation.
    """

    objective: str
    demands: list[Demand]
    limits: Limits
    catalog: dict[str, HardwareOption]
    capacities: CapacityTable
    solution: MipSolution
    deployment: list[dict] = field(default_factory=list)
    confirmation: list[dict] = field(default_factory=list)
    confirmed: bool = False
    repairs: list[dict] = field(default_factory=list)
    binding: list[str] = field(default_factory=list)
    message: str = ""
    settings: SimulationSettings | None = None
    wall_s: float = 0.0

    @property
    def feasible(self) -> bool:
        return self.solution.feasible

    @property
    def output_tokens_per_hour(self) -> float:
        return sum(d.rate_per_s * d.use_case.output_tokens for d in self.demands) * 3600

    @property
    def cost_per_million_output_tokens_usd(self) -> float:
        tok = self.output_tokens_per_hour
        return self.solution.cost_usd_per_hour / tok * 1e6 if tok and self.feasible else math.nan

    def to_payload(self) -> dict:
        """The ``plan`` results file (see docs/optimizers.md)."""
        from dataclasses import asdict

        s = self.solution
        return {
            "objective": self.objective, "feasible": self.feasible, "confirmed": self.confirmed,
            "message": self.message, "binding": self.binding,
            "settings": asdict(self.settings) if self.settings else {},
            "demand": [{"use_case": d.name, "rate_per_s": d.rate_per_s, "prompt_tokens": d.use_case.prompt_tokens,
                        "output_tokens": d.use_case.output_tokens, "ttft_slo_s": d.effective_slo.ttft_s,
                        "tpot_slo_s": d.effective_slo.tpot_s} for d in self.demands],
            "limits": asdict(self.limits),
            "catalog": {h: asdict(o) for h, o in self.catalog.items()},
            "totals": {"cost_usd_per_hour": s.cost_usd_per_hour, "power_w": s.power_w, "gpus": s.gpus,
                       "servers": s.servers, "racks": s.racks,
                       "cost_per_million_output_tokens_usd": self.cost_per_million_output_tokens_usd},
            "deployment": self.deployment, "confirmation": self.confirmation, "repairs": self.repairs,
            "candidates": [c.to_dict() for c in self.capacities.candidates],
            "capacities": self.capacities.rows(),
            "simulations": self.capacities.simulations, "cached_capacities": self.capacities.cached,
            "wall_s": self.wall_s,
        }

    def summary_lines(self) -> list[str]:
        if not self.feasible:
            return [self.message]
        s = self.solution
        gpus = ", ".join(f"{g} x {h}" for h, g in s.gpus.items())
        out = [f"plan ({'min cost' if self.objective == 'cost' else 'min power'}): {gpus} in "
               f"{sum(s.servers.values())} servers, {s.racks} rack(s); ${s.cost_usd_per_hour:,.2f}/h, "
               f"{s.power_w / 1e3:,.1f} kW, ${self.cost_per_million_output_tokens_usd:.3f} per million output tokens"]
        for row in self.deployment:
            out.append(f"  {row['use_case']} ({row['rate_per_s']:.3g} req/s): {row['units']} x {row['candidate']} "
                       f"({row['gpus']} GPUs, {row['capacity_rps_per_unit']:.3g} req/s each)")
        for c in self.confirmation:
            mark = "ok" if c["passed"] else "MISSED"
            out.append(f"  confirm {c['use_case']} on {c['candidate']}: SLO attainment {c['slo_attainment']:.3f}, "
                       f"TTFT p99 {c['ttft_p99_s']:.3g} s, TPOT p99 {c['tpot_p99_s'] * 1e3:.3g} ms: {mark}"
                       + (f" ({c['reason']})" if c["reason"] else ""))
        if self.repairs:
            out.append(f"  {len(self.repairs)} repair round(s): capacities lowered after missed confirmations")
        return out


def _deployment(sol: MipSolution, table: CapacityTable, cap: Sequence[Sequence[float]]) -> list[dict]:
    rows = []
    for j, d in enumerate(table.demands):
        served = sum(cap[i][j] * u for (i, jj), u in sol.units.items() if jj == j)
        for (i, jj), u in sorted(sol.units.items()):
            if jj != j:
                continue
            c = table.candidates[i]
            share = d.rate_per_s * cap[i][j] * u / served
            rows.append({"use_case": d.name, "candidate": c.label, "candidate_index": i, "mode": c.mode,
                         "hardware": c.hardware, "tp": c.tp, "pp": c.pp, "units": u, "gpus": c.gpus * u,
                         "gpus_by_hardware": {h: g * u for h, g in c.gpus_by_hardware().items()},
                         "rate_per_s": d.rate_per_s, "rate_share_per_s": share, "capacity_rps_per_unit": cap[i][j],
                         "utilization": share / (cap[i][j] * u)})
    return rows


def _confirm(rows: list[dict], table: CapacityTable, settings: SimulationSettings, prices: Mapping[str, float],
             workers, ray_address, progress) -> list[dict]:
    tasks = []
    for k, row in enumerate(rows):
        c = table.candidates[row["candidate_index"]]
        d = next(x for x in table.demands if x.name == row["use_case"])
        cfg = c.config()
        cfg["replicas"] = c.decode_replicas * row["units"]
        if c.prefill_replicas:  # Splitwise units and layouts with a prefill pool
            cfg["prefill_replicas"] = c.prefill_replicas * row["units"]
        ob = settings.objective(d, settings.confirm_requests * c.request_scale)
        from dataclasses import replace
        ob = replace(ob, find_capacity=False, rate_per_s=row["rate_share_per_s"], prices=tuple(prices.items()))
        tasks.append((k, ob, cfg))
    out: list[dict | None] = [None] * len(rows)
    ex = make_executor(workers, ray_address)
    try:
        pending = {}
        queue = list(tasks)
        done = 0
        while queue or pending:
            while queue and len(pending) < ex.capacity:
                k, ob, cfg = queue.pop(0)
                pending[ex.submit(ob, cfg)] = k
            for h, ev, err in ex.wait(list(pending)):
                k = pending.pop(h)
                if err is not None:
                    ev = {"feasible": False, "reason": f"evaluation failed: {err}", "metrics": {}}
                m = ev.get("metrics", {})
                row = rows[k]
                out[k] = {"use_case": row["use_case"], "candidate": row["candidate"], "units": row["units"],
                          "rate_per_s": row["rate_share_per_s"], "passed": bool(ev["feasible"]),
                          "reason": ev.get("reason", ""), "slo_attainment": m.get("slo_attainment", math.nan),
                          "goodput_rps": m.get("goodput_rps", math.nan), "throughput_rps": m.get("throughput_rps", math.nan),
                          "ttft_p99_s": m.get("ttft_p99_s", math.nan), "tpot_p99_s": m.get("tpot_p99_s", math.nan),
                          "e2e_p99_s": m.get("e2e_p99_s", math.nan), "saturated": m.get("saturated"),
                          "requests": m.get("requests")}
                done += 1
                if progress:
                    progress(done, len(rows))
    finally:
        ex.close()
    return out  # type: ignore[return-value]


def plan_capacity(demands: Sequence[Demand], candidates: Sequence[Candidate], catalog: Mapping[str, HardwareOption],
                  limits: Limits | None = None, *, objective: str = "cost",
                  settings: SimulationSettings | None = None, capacities: CapacityTable | None = None,
                  confirm: bool = True, repair_rounds: int = 2, workers: int | None = 1,
                  ray_address: str | None = None, cache_path=None,
                  progress: Callable[[str, int, int], None] | None = None) -> CapacityPlan:
    """Plan a deployment (see the module docstring). Raises :class:`InfeasiblePlan` (a
    ``ValueError``) naming the binding constraint when none exists; ``capacities`` skips step 1.

    ``progress(stage, done, total)`` reports "capacities" and "confirm" stages.
    """
    t0 = time.perf_counter()
    limits = limits or Limits()
    settings = settings or SimulationSettings()
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    demands = list(demands)
    if not demands:
        raise ValueError("demand: give at least one use case with a rate")
    candidates = list(candidates)
    if not candidates:
        raise ValueError("candidates: the list is empty")
    hws = {h for c in candidates for h in c.gpus_by_hardware()}
    missing = sorted(hws - set(catalog))
    if missing:
        raise ValueError(f"catalog: candidates use {', '.join(missing)}, which the catalog lacks")
    if capacities is None:
        cb = (lambda d, t: progress("capacities", d, t)) if progress else None
        capacities = compute_capacities(candidates, demands, settings, workers=workers, ray_address=ray_address,
                                        cache_path=cache_path, progress=cb)
    cap = [list(r) for r in capacities.rate]
    rates = [d.rate_per_s for d in demands]
    names = [d.name for d in demands]
    prices = {h: o.price_per_gpu_hour for h, o in catalog.items()}
    repairs: list[dict] = []
    plan = None
    for round_ in range(repair_rounds + 1):
        sol = solve_mip(candidates, rates, cap, catalog, limits, objective)
        if not sol.feasible:
            why = diagnose(candidates, rates, cap, catalog, limits, names, capacities.reason, objective)
            if sol.status != "infeasible":
                why = {"binding": [], "message": f"the MIP solver stopped with status {sol.status}", "needed": {}}
            plan = CapacityPlan(objective, demands, limits, dict(catalog), capacities, sol, binding=why["binding"],
                                message=why["message"] + (" (after lowering capacities that missed their SLO in "
                                                          "simulation)" if repairs else ""),
                                repairs=repairs, settings=settings, wall_s=time.perf_counter() - t0)
            raise InfeasiblePlan(plan.message, why["binding"], why.get("needed"), plan)
        rows = _deployment(sol, capacities, cap)
        plan = CapacityPlan(objective, demands, limits, dict(catalog), capacities, sol, rows, repairs=repairs,
                            settings=settings)
        if not confirm:
            break
        cb = (lambda d, t: progress("confirm", d, t)) if progress else None
        plan.confirmation = _confirm(rows, capacities, settings, prices, workers, ray_address, cb)
        plan.confirmed = all(c["passed"] for c in plan.confirmation)
        if plan.confirmed or round_ == repair_rounds:
            break
        changed = []
        for row, c in zip(rows, plan.confirmation, strict=True):
            if c["passed"]:
                continue
            i, j = row["candidate_index"], names.index(row["use_case"])
            reached = c["goodput_rps"] if isinstance(c["goodput_rps"], float) and math.isfinite(c["goodput_rps"]) else 0
            factor = min(0.9, max(0.25, reached / row["rate_share_per_s"])) if row["rate_share_per_s"] else 0.9
            cap[i][j] *= factor
            changed.append({"candidate": row["candidate"], "use_case": row["use_case"], "factor": factor,
                            "capacity_rps_per_unit": cap[i][j]})
        repairs.append({"round": round_ + 1, "lowered": changed})
    plan.message = "" if plan.confirmed or not confirm else \
        "plan found, but its confirming simulation missed the SLO after the repair rounds (see confirmation)"
    plan.wall_s = time.perf_counter() - t0
    return plan
