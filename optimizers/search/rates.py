"""The highest arrival rate a deployment sustains within its SLO, by bracketing and bisection.

``max_rate(run, start)`` calls ``run(rate) -> evaluation`` (see
:meth:`optimizers.search.objective.ServingObjective.evaluate_at`): it doubles (or halves) the rate
from ``start`` until feasibility flips, then bisects geometrically until the bracket is within
``rel_tol``. Arrivals use common random numbers (the same seed scales the same gaps), so the pass
/ fail pattern is close to monotone in the rate. A failure that does not depend on the load (the
model does not fit, a lone request already misses the SLO) ends the search at once with rate 0.

Short runs start on an empty system, so they flatter a deployment a little; the capacity planner
confirms its final plan with a longer run (see :mod:`optimizers.capacity`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["RateSearch", "max_rate"]


@dataclass
class RateSearch:
    """``rate``: the highest rate found feasible (requests/s; 0 when none); ``evaluation``: the run
    at that rate (or the last failure when none); ``history``: (rate, feasible) in call order."""

    rate: float
    evaluation: dict
    history: list[tuple[float, bool]] = field(default_factory=list)
    reason: str = ""

    @property
    def evaluations(self) -> int:
        return len(self.history)


def max_rate(run: Callable[[float], dict], start: float, *, upper: float | None = None, rel_tol: float = 0.05,
             max_evals: int = 16, max_doublings: int = 12) -> RateSearch:
    """Highest feasible rate of ``run`` (see the module docstring); ``start`` > 0 requests/s.
    ``upper`` caps the answer (e.g. the offline throughput: no deployment sustains more than it can
    serve flat out); rates above it are not tried."""
    if not (isinstance(start, int | float) and math.isfinite(start) and start > 0):
        raise ValueError(f"start rate must be a finite number > 0, got {start!r}")
    if not (0 < rel_tol < 1):
        raise ValueError(f"rel_tol must be in (0, 1), got {rel_tol!r}")
    if upper is not None:
        start = min(start, upper)
    hist: list[tuple[float, bool]] = []

    def probe(r: float) -> dict:
        ev = run(r)
        hist.append((r, bool(ev.get("feasible"))))
        return ev

    ev = probe(start)
    if ev.get("structural"):
        return RateSearch(0.0, ev, hist, ev.get("reason", ""))
    lo = hi = None
    lo_ev = fail_ev = None
    if ev["feasible"]:
        lo, lo_ev, r = start, ev, start
        for _ in range(max_doublings):
            if upper is not None and r >= upper:
                return RateSearch(lo, lo_ev, hist, "")
            r = 2 * r if upper is None else min(2 * r, upper)
            e = probe(r)
            if not e["feasible"]:
                hi, fail_ev = r, e
                break
            lo, lo_ev = r, e
        else:
            return RateSearch(lo, lo_ev, hist, "")
    else:
        hi, fail_ev, r = start, ev, start
        for _ in range(max_doublings):
            r /= 2
            e = probe(r)
            if e["feasible"]:
                lo, lo_ev = r, e
                break
            hi, fail_ev = r, e
        else:
            return RateSearch(0.0, fail_ev, hist, f"no feasible rate down to {r:.3g} requests/s: "
                              f"{fail_ev.get('reason', '')}")
    while hi / lo > 1 + rel_tol and len(hist) < max_evals:
        mid = math.sqrt(lo * hi)
        e = probe(mid)
        if e["feasible"]:
            lo, lo_ev = mid, e
        else:
            hi, fail_ev = mid, e
    return RateSearch(lo, lo_ev, hist, "")
