"""Running a PuLP model on CBC or HiGHS, and the result record every placement solve returns.

CBC (bundled with PuLP) is always there; HiGHS needs the ``highspy`` package (extra ``solvers``).
Both get a wall-clock limit, a thread count, a relative-gap target and an optional MIP start taken
from the variables' initial values; both report the best bound, which PuLP itself does not expose
(CBC: parsed from its log; HiGHS: read from the solver object).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pulp

from optimizers.placement.problem import Placement
from workloads.errors import MissingDependency

__all__ = ["SOLVERS", "SolveResult", "highs_available", "quiet_pulp", "relative_gap", "run_model", "solve_status"]

SOLVERS = ("cbc", "highs")


@contextlib.contextmanager
def quiet_pulp() -> Iterator[None]:
    """Silence PuLP 3's deprecation notices about its 4.0 API (we keep the API PuLP 2.8 has)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pulp(\..*)?$")
        yield


def highs_available() -> bool:
    """True when PuLP can drive HiGHS through the highspy package."""
    return bool(pulp.HiGHS().available())


@dataclass
class SolveResult:
    """Outcome of one placement solve.

    ``objective`` and ``best_bound`` are mean hop costs per token per layer transition on the
    problem's edges; ``gap = (objective - best_bound) / objective`` (0 when both are 0).
    ``status``: ``optimal`` (gap <= 1e-4), ``within_gap`` (gap <= the requested ``gap_rel``),
    ``time_limit`` (stopped on the time limit with a larger or unknown gap), ``no_solution`` (the
    solver returned none; the MIP start is returned),
    ``trivial`` (one GPU) or ``hierarchical`` (``stages`` holds the per-ILP results; the bound is a
    valid but loose global bound, see :mod:`optimizers.placement.hierarchical`).
    """

    placement: Placement
    status: str
    objective: float
    best_bound: float | None
    gap: float | None
    solver: str
    formulation: str
    time_limit_s: float
    build_s: float
    solve_s: float
    variables: int = 0
    constraints: int = 0
    start_objective: float | None = None
    notes: list[str] = field(default_factory=list)
    stages: list[SolveResult] = field(default_factory=list)

    @property
    def wall_s(self) -> float:
        """Model building plus solving, seconds."""
        return self.build_s + self.solve_s

    def to_dict(self, with_placement: bool = False) -> dict:
        """JSON-able summary (the placement itself only on request)."""
        d = {
            "status": self.status,
            "objective": self.objective,
            "best_bound": self.best_bound,
            "gap": self.gap,
            "solver": self.solver,
            "formulation": self.formulation,
            "time_limit_s": self.time_limit_s,
            "build_s": round(self.build_s, 3),
            "solve_s": round(self.solve_s, 3),
            "wall_s": round(self.wall_s, 3),
            "variables": self.variables,
            "constraints": self.constraints,
            "start_objective": self.start_objective,
            "notes": list(self.notes),
            "stages": [s.to_dict() for s in self.stages],
        }
        if with_placement:
            d["gpu_of"] = self.placement.gpu_of.tolist()
        return d


def relative_gap(obj: float, bound: float | None) -> float | None:
    """``(obj - bound) / obj``, clipped at 0; 0 when ``obj`` is 0; None without a bound."""
    if bound is None:
        return None
    if obj <= 1e-12:
        return 0.0
    return max(0.0, (obj - bound) / obj)


def solve_status(gap: float | None, gap_rel: float) -> str:
    """``optimal`` (gap <= 1e-4), ``within_gap`` (gap <= gap_rel) or ``time_limit``."""
    if gap is not None and gap <= 1e-4:
        return "optimal"
    if gap is not None and gap <= gap_rel:
        return "within_gap"
    return "time_limit"


class _HiGHS(pulp.HiGHS):
    """PuLP's highspy interface plus a MIP start taken from the variables' initial values."""

    def __init__(self, use_start: bool, **kwargs) -> None:
        super().__init__(**kwargs)
        self.use_start = use_start

    def callSolver(self, lp) -> None:  # noqa: N802 (PuLP's name)
        if self.use_start:
            variables = lp.variables()
            idx = np.array([v.index for v in variables], dtype=np.int32)
            val = np.array([v.varValue or 0.0 for v in variables], dtype=np.float64)
            lp.solverModel.setSolution(len(idx), idx, val)
        lp.solverModel.run()


_CBC_BOUND = re.compile(r"^Lower bound:\s+(-?[\d.eE+-]+)", re.M)
_CBC_OBJ = re.compile(r"^Objective value:\s+(-?[\d.eE+-]+)", re.M)


def run_model(
    lp: pulp.LpProblem,
    solver: str,
    *,
    time_limit_s: float,
    threads: int = 1,
    gap_rel: float = 1e-4,
    mip: bool = True,
    use_start: bool = False,
    msg: bool = False,
) -> float | None:
    """Solve ``lp`` in place (values land in the variables); return the solver's best bound on
    the (minimised) objective, or None when it reports none.

    For an LP (``mip=False``) HiGHS uses its interior-point method without crossover (fast on these
    degenerate relaxations; the optimum is only needed to ~1e-8); the bound is the objective value.
    """
    time_limit_s = max(float(time_limit_s), 0.05)
    if solver == "cbc":
        with tempfile.TemporaryDirectory() as tmp:
            log = os.path.join(tmp, "cbc.log")
            with quiet_pulp():
                cmd = pulp.PULP_CBC_CMD(msg=False, mip=mip, timeLimit=time_limit_s, threads=threads,
                                        gapRel=gap_rel if mip else None, warmStart=use_start and mip,
                                        logPath=log, timeMode="elapsed")
            try:
                with quiet_pulp():
                    lp.solve(cmd)
            except pulp.PulpSolverError:  # CBC crashed or was killed: no answer, keep the start
                return None
            with open(log) as fh:
                text = fh.read()
        if msg:
            print(text)
        if not mip:
            return pulp.value(lp.objective) if lp.status == pulp.LpStatusOptimal else None
        m_b, m_o = _CBC_BOUND.search(text), _CBC_OBJ.search(text)
        if "Optimal solution found" in text and m_o:
            return float(m_o.group(1))
        return float(m_b.group(1)) if m_b else None
    if solver != "highs":
        raise ValueError(f"solver: expected one of {SOLVERS}, got {solver!r}")
    if not highs_available():
        raise MissingDependency("solver: 'highs' needs the highspy package (pip install highspy); use 'cbc'")
    opts: dict = {} if mip else {"solver": "ipm", "run_crossover": "off"}
    cmd = _HiGHS(use_start and mip, mip=mip, msg=msg, timeLimit=time_limit_s, threads=threads,
                 gapRel=gap_rel if mip else None, **opts)
    with quiet_pulp():
        lp.solve(cmd)
    h = lp.solverModel
    import highspy  # available: checked above

    status = h.getModelStatus()
    info = h.getInfo()
    if status == highspy.HighsModelStatus.kOptimal:
        return float(info.objective_function_value) if not mip else float(
            min(info.mip_dual_bound, info.objective_function_value))
    if mip and np.isfinite(info.mip_dual_bound):
        return float(info.mip_dual_bound)
    return None
