"""Expert placement as an integer program (ExFlow, IPDPS'24), written with PuLP.

Variables: binary ``x[l, e, g]`` = expert ``e`` of layer ``l`` on GPU ``g``. Constraints: each expert
on exactly one GPU; each GPU holds ``E / G`` experts of every layer (balance). The objective is the
mean hop cost per token per layer transition, on the *aggregated* affinity (one term per
(layer, src, dst) edge with a nonzero token count, see :class:`PlacementProblem`) instead of one
variable per token, so the model size does not grow with the trace length::

    minimise  sum_edges w * (intra * dg + (inter - intra) * dn) / (tokens * (layers - 1))

``dg`` is 1 when the two experts of an edge sit on different GPUs, ``dn`` when on different nodes.
Three formulations, same optimum, different strength:

* ``"exflow"``: the paper's ``dg >= x[a, g] - x[b, g]`` and ``dg >= x[b, g] - x[a, g]`` for every GPU
  ``g`` (likewise ``dn`` with node sums). Its LP relaxation is about 0 (spread every ``x`` evenly),
  so the solver proves optimality only by enumeration.
* ``"tight"``: co-location variables ``z[edge, g] <= x[a, g], x[b, g]`` with
  ``dg >= 1 - sum_g z`` plus the reformulation-linearisation cuts ``sum_{edges from a} z[., g] <=
  (E/G) x[a, g]`` (an expert shares its GPU with at most E/G experts of the next layer; likewise
  into ``b``), and the same at node level with ``u[edge, n] >= sum_{g in n} z[edge, g]``. Its LP bound
  is a matching-type bound: good for GPU-level hops, but it still lets every expert sit half in
  each node, so inter-node hops are underestimated.
* ``"pairs"``: pair variables with lazy triangle cuts (:mod:`optimizers.placement.pairs`):
  symmetry-free and much tighter; ``O(E^2 L)`` variables, so ``"auto"`` uses it for small ``E``
  only (see :data:`PAIRS_AUTO_LIMIT`).

Every formulation starts from a heuristic placement (:func:`~optimizers.placement.baselines.
local_search` by default) and returns it if the solver finds nothing better in time.

Symmetry: GPUs inside a node and whole nodes are interchangeable, so layer 0 is canonicalised:
nodes are ordered by the smallest layer-0 expert they hold, and GPUs inside a node likewise (on
one node with E = G this fixes layer 0 completely). This removes only relabelled copies of
solutions. (The pairs formulation has no labels, hence no symmetry to break.)
"""

from __future__ import annotations

import time

import numpy as np
import pulp

from optimizers.placement.baselines import greedy, local_search
from optimizers.placement.pairs import pair_variable_count, solve_pairs
from optimizers.placement.problem import Cluster, Placement, PlacementProblem, check_divisible
from optimizers.placement.solver import (
    SOLVERS,
    SolveResult,
    highs_available,
    quiet_pulp,
    relative_gap,
    run_model,
    solve_status,
)
from workloads.errors import MissingDependency

__all__ = ["FORMULATIONS", "PAIRS_AUTO_LIMIT", "TIGHT_AUTO_LIMIT", "solve_ilp"]

FORMULATIONS = ("auto", "pairs", "tight", "exflow")
PAIRS_AUTO_LIMIT = 30_000
"""``formulation="auto"`` uses the pairs formulation up to this many pair variables (16 experts on
8 GPUs in 2 nodes over 32 layers: 23,552)."""
TIGHT_AUTO_LIMIT = 8_000
"""...and above it ``"tight"`` up to this many co-location variables (edges x GPUs), else
``"exflow"`` (larger tight models make the root LP too slow; CBC does not stop inside it)."""


class _Model:
    """The PuLP model plus the handles needed for warm starts and for reading the answer."""

    def __init__(self, problem: PlacementProblem, cluster: Cluster, formulation: str,
                 symmetry_breaking: bool) -> None:
        self.problem, self.cluster = problem, cluster
        n_l, n_e, n_g = problem.layers, problem.experts, cluster.gpus
        gpn, n_n = cluster.gpus_per_node, cluster.nodes
        cap = check_divisible(n_e, n_g)
        two_level = n_n > 1 and gpn > 1
        # effective cost of a cross-GPU hop when nodes are not modelled separately
        c_gpu = cluster.intra_node_cost if n_n == 1 else (
            cluster.inter_node_cost if gpn == 1 else cluster.intra_node_cost)
        c_node = cluster.inter_node_cost - cluster.intra_node_cost if two_level else 0.0

        lp = pulp.LpProblem("expert_placement", pulp.LpMinimize)
        lpsum = pulp.LpAffineExpression
        x = [[[pulp.LpVariable(f"x_{ly}_{e}_{g}", cat=pulp.LpBinary) for g in range(n_g)]
              for e in range(n_e)] for ly in range(n_l)]
        for ly in range(n_l):
            for e in range(n_e):
                lp += lpsum([(x[ly][e][g], 1) for g in range(n_g)]) == 1, f"one_{ly}_{e}"
            for g in range(n_g):
                lp += lpsum([(x[ly][e][g], 1) for e in range(n_e)]) == cap, f"bal_{ly}_{g}"

        def node_terms(ly: int, e: int, n: int) -> list:
            return [(x[ly][e][g], 1) for g in range(n * gpn, (n + 1) * gpn)]

        n_edges = problem.edges
        dg = [pulp.LpVariable(f"dg_{k}", lowBound=0, upBound=1) for k in range(n_edges)]
        dn = [pulp.LpVariable(f"dn_{k}", lowBound=0, upBound=1) for k in range(n_edges)] if two_level else []
        z: list[list] = []
        u: list[list] = []
        ls, ss, ds = problem.layer.tolist(), problem.src.tolist(), problem.dst.tolist()
        if formulation == "exflow":
            for k, (ly, a, b) in enumerate(zip(ls, ss, ds, strict=True)):
                for g in range(n_g):
                    lp += lpsum([(dg[k], 1), (x[ly][a][g], -1), (x[ly + 1][b][g], 1)]) >= 0, f"dga_{k}_{g}"
                    lp += lpsum([(dg[k], 1), (x[ly][a][g], 1), (x[ly + 1][b][g], -1)]) >= 0, f"dgb_{k}_{g}"
                for n in range(n_n if two_level else 0):
                    ya = node_terms(ly, a, n)
                    yb = [(v, -c) for v, c in node_terms(ly + 1, b, n)]
                    lp += lpsum([(dn[k], 1), *[(v, -c) for v, c in ya], *[(v, -c) for v, c in yb]]) >= 0, \
                        f"dna_{k}_{n}"
                    lp += lpsum([(dn[k], 1), *ya, *yb]) >= 0, f"dnb_{k}_{n}"
        else:
            out_z: dict[tuple[int, int, int], list] = {}
            in_z: dict[tuple[int, int, int], list] = {}
            out_u: dict[tuple[int, int, int], list] = {}
            in_u: dict[tuple[int, int, int], list] = {}
            for k, (ly, a, b) in enumerate(zip(ls, ss, ds, strict=True)):
                zk = [pulp.LpVariable(f"z_{k}_{g}", lowBound=0, upBound=1) for g in range(n_g)]
                z.append(zk)
                for g in range(n_g):
                    lp += lpsum([(zk[g], 1), (x[ly][a][g], -1)]) <= 0, f"za_{k}_{g}"
                    lp += lpsum([(zk[g], 1), (x[ly + 1][b][g], -1)]) <= 0, f"zb_{k}_{g}"
                    out_z.setdefault((ly, a, g), []).append(zk[g])
                    in_z.setdefault((ly + 1, b, g), []).append(zk[g])
                lp += lpsum([(dg[k], 1), *[(v, 1) for v in zk]]) >= 1, f"dg_{k}"
                if two_level:
                    uk = [pulp.LpVariable(f"u_{k}_{n}", lowBound=0, upBound=1) for n in range(n_n)]
                    u.append(uk)
                    for n in range(n_n):
                        lp += lpsum([(uk[n], 1), *[(v, -c) for v, c in node_terms(ly, a, n)]]) <= 0, \
                            f"ua_{k}_{n}"
                        lp += lpsum([(uk[n], 1), *[(v, -c) for v, c in node_terms(ly + 1, b, n)]]) <= 0, \
                            f"ub_{k}_{n}"
                        lp += lpsum([(uk[n], 1), *[(zk[g], -1) for g in range(n * gpn, (n + 1) * gpn)]]) >= 0, \
                            f"uz_{k}_{n}"
                        out_u.setdefault((ly, a, n), []).append(uk[n])
                        in_u.setdefault((ly + 1, b, n), []).append(uk[n])
                    lp += lpsum([(dn[k], 1), *[(v, 1) for v in uk]]) >= 1, f"dn_{k}"
            if cap < n_e:  # with one expert per layer the cuts are vacuous
                for tag, groups in (("ro", out_z), ("ri", in_z)):
                    for (ly, e, g), vs in groups.items():
                        if len(vs) > cap:
                            lp += lpsum([*[(v, 1) for v in vs], (x[ly][e][g], -cap)]) <= 0, \
                                f"{tag}_{ly}_{e}_{g}"
            cap_n = n_e // n_n
            for tag, groups in (("no", out_u), ("ni", in_u)):
                for (ly, e, n), vs in groups.items():
                    if len(vs) > cap_n:
                        lp += lpsum([*[(v, 1) for v in vs], *[(v, -c * cap_n) for v, c in node_terms(ly, e, n)]]) \
                            <= 0, f"{tag}_{ly}_{e}_{n}"

        if symmetry_breaking:
            if two_level:
                for n in range(1, n_n):
                    for e in range(n_e):
                        prev = [t for e2 in range(e) for t in node_terms(0, e2, n - 1)]
                        lp += lpsum([*node_terms(0, e, n), *[(v, -c) for v, c in prev]]) <= 0, f"sn_{e}_{n}"
            for g in range(n_g):
                if g % gpn == 0 and two_level:
                    continue  # first GPU of a node: ordered by the node constraints
                if g == 0:
                    continue
                for e in range(n_e):
                    lp += lpsum([(x[0][e][g], 1), *[(x[0][e2][g - 1], -1) for e2 in range(e)]]) <= 0, \
                        f"sg_{e}_{g}"

        w = problem.weight.astype(float).tolist()
        obj = [(dg[k], w[k] * c_gpu) for k in range(n_edges)]
        if two_level:
            obj += [(dn[k], w[k] * c_node) for k in range(n_edges)]
        lp += lpsum(obj)
        self.lp, self.x, self.z, self.u, self.dg, self.dn = lp, x, z, u, dg, dn
        self.scale = 1.0 / problem.transitions

    def set_start(self, gpu_of: np.ndarray) -> None:
        """Give every variable the value it takes in ``gpu_of`` (a MIP start)."""
        p, c = self.problem, self.cluster
        node = c.node_of(gpu_of)
        for ly in range(p.layers):
            for e in range(p.experts):
                for g in range(c.gpus):
                    self.x[ly][e][g].setInitialValue(int(gpu_of[ly, e] == g))
        for k in range(p.edges):
            ga, gb = gpu_of[p.layer[k], p.src[k]], gpu_of[p.layer[k] + 1, p.dst[k]]
            self.dg[k].setInitialValue(int(ga != gb))
            if self.dn:
                self.dn[k].setInitialValue(int(node[p.layer[k], p.src[k]] != node[p.layer[k] + 1, p.dst[k]]))
            if self.z:
                for g, v in enumerate(self.z[k]):
                    v.setInitialValue(int(ga == g and gb == g))
            if self.u:
                na, nb = c.node_of(ga), c.node_of(gb)
                for n, v in enumerate(self.u[k]):
                    v.setInitialValue(int(na == n and nb == n))

    def read(self) -> np.ndarray | None:
        """GPU of each expert from the solver's values, or None when it found no solution."""
        p, c = self.problem, self.cluster
        out = np.empty((p.layers, p.experts), dtype=np.int64)
        for ly in range(p.layers):
            for e in range(p.experts):
                vals = [v.varValue for v in self.x[ly][e]]
                if any(v is None for v in vals):
                    return None
                out[ly, e] = int(np.argmax(vals))
        pl = Placement(out, c)
        return out if pl.is_balanced() else None


def solve_ilp(
    problem: PlacementProblem,
    cluster: Cluster,
    *,
    solver: str = "cbc",
    time_limit_s: float = 60.0,
    threads: int = 1,
    gap_rel: float = 1e-4,
    formulation: str = "auto",
    symmetry_breaking: bool = True,
    warm_start: Placement | str | None = "local_search",
    subsolver: str = "auto",
    max_edges: int = 4000,
    msg: bool = False,
) -> SolveResult:
    """Solve the placement ILP for ``problem`` on ``cluster``; never worse than the warm start.

    Args:
        solver: ``"cbc"`` (PuLP's bundled CBC, default) or ``"highs"`` (needs highspy).
        time_limit_s: wall-clock limit of the solve (heuristic start and model building excluded).
        threads: solver threads.
        gap_rel: stop once the relative gap is below this (1e-4: effectively optimal).
        formulation: ``"pairs"`` (symmetry-free, tight; :mod:`optimizers.placement.pairs`),
            ``"tight"`` or ``"exflow"`` (x-based, see the module docstring), or ``"auto"``: pairs
            up to ``PAIRS_AUTO_LIMIT`` variables, else tight up to ``TIGHT_AUTO_LIMIT``, else exflow.
        symmetry_breaking: canonicalise layer 0 in the x-based formulations.
        warm_start: ``"local_search"`` (default), ``"greedy"``, a :class:`Placement`, or None: the
            MIP start, and the answer when the solver finds nothing better in time.
        subsolver: solver of the pairs formulation's cutting-plane LPs and window MIPs
            (``"auto"``: HiGHS when highspy is installed, else ``solver``).
        max_edges: the x-based formulations keep only this many heaviest edges (model size grows
            with ``edges x GPUs``; CBC does not stop on its time limit inside a huge root LP). The
            objective is still reported on every edge, and the bound stays valid (dropped edges
            cost >= 0).
    """
    if solver not in SOLVERS:
        raise ValueError(f"solver: expected one of {SOLVERS}, got {solver!r}")
    if subsolver not in ("auto", *SOLVERS):
        raise ValueError(f"subsolver: expected 'auto' or one of {SOLVERS}, got {subsolver!r}")
    if formulation not in FORMULATIONS:
        raise ValueError(f"formulation: expected one of {FORMULATIONS}, got {formulation!r}")
    if not time_limit_s > 0:
        raise ValueError(f"time_limit_s: expected > 0, got {time_limit_s}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads: expected a positive int, got {threads!r}")
    if not 0 <= gap_rel < 1:
        raise ValueError(f"gap_rel: expected a value in [0, 1), got {gap_rel}")
    check_divisible(problem.experts, cluster.gpus)
    if solver == "highs" and not highs_available():
        raise MissingDependency("solver: 'highs' needs the highspy package (pip install highspy); use 'cbc'")

    t0 = time.perf_counter()
    if cluster.gpus == 1:
        pl = Placement(np.zeros((problem.layers, problem.experts), dtype=np.int64), cluster)
        return SolveResult(pl, "trivial", 0.0, 0.0, 0.0, solver, formulation, time_limit_s,
                           time.perf_counter() - t0, 0.0)
    if isinstance(warm_start, str):
        if warm_start == "local_search":
            warm_start = local_search(problem, cluster)
        elif warm_start == "greedy":
            warm_start = greedy(problem, cluster)
        else:
            raise ValueError(f"warm_start: expected 'local_search', 'greedy', a Placement or None, "
                             f"got {warm_start!r}")
    if warm_start is not None and (warm_start.gpu_of.shape != (problem.layers, problem.experts)
                                   or warm_start.cluster.gpus != cluster.gpus):
        raise ValueError("warm_start: placement shape or GPU count does not match the problem")
    if formulation == "auto":
        if pair_variable_count(problem.layers, problem.experts, cluster) <= PAIRS_AUTO_LIMIT:
            formulation = "pairs"
        else:
            formulation = "tight" if min(problem.edges, max_edges) * cluster.gpus <= TIGHT_AUTO_LIMIT else "exflow"
    if formulation == "pairs":
        start = warm_start if warm_start is not None else greedy(problem, cluster)
        heuristic_s = time.perf_counter() - t0
        res = solve_pairs(problem, cluster, solver=solver, subsolver=subsolver, time_limit_s=time_limit_s,
                          threads=threads, gap_rel=gap_rel, start=start, msg=msg)
        res.build_s += heuristic_s
        return res

    if isinstance(max_edges, bool) or not isinstance(max_edges, int) or max_edges < 1:
        raise ValueError(f"max_edges: expected a positive int, got {max_edges!r}")
    notes = []
    model_problem = problem.heaviest(max_edges)
    if model_problem is not problem:
        share = model_problem.weight.sum() / problem.weight.sum()
        notes.append(f"ILP kept the {model_problem.edges} heaviest of {problem.edges} edges "
                     f"({100 * share:.1f}% of the token weight)")
    with quiet_pulp():
        model = _Model(model_problem, cluster, formulation, symmetry_breaking)
    start = warm_start.gpu_of if warm_start is not None else None
    if start is not None and symmetry_breaking:
        start = _canonical(start, cluster)
    if start is not None:
        model.set_start(start)
    build_s = time.perf_counter() - t0

    t1 = time.perf_counter()
    bound_raw = run_model(model.lp, solver, time_limit_s=time_limit_s, threads=threads, gap_rel=gap_rel,
                          use_start=start is not None, msg=msg)
    solve_s = time.perf_counter() - t1

    got = model.read()
    status = ""
    if got is None or (start is not None
                       and problem.hop_cost(got, cluster) > problem.hop_cost(start, cluster)):
        status = "" if got is not None else "no_solution"
        got = start if start is not None else _canonical(greedy(problem, cluster).gpu_of, cluster)
    placement = Placement(got, cluster)
    obj = problem.hop_cost(placement.gpu_of, cluster)
    bound = None if bound_raw is None else min(bound_raw * model.scale, obj)
    gap = relative_gap(obj, bound)
    status = status or solve_status(gap, gap_rel)
    return SolveResult(placement, status, obj, bound, gap, solver, formulation, time_limit_s,
                       build_s, solve_s, model.lp.numVariables(), model.lp.numConstraints(),
                       start_objective=None if start is None else problem.hop_cost(start, cluster),
                       notes=notes)


def _canonical(gpu_of: np.ndarray, cluster: Cluster) -> np.ndarray:
    """Relabel nodes and GPUs (a symmetry of the cost) so that layer 0 satisfies the ordering
    constraints: nodes, then GPUs inside each node, sorted by their smallest layer-0 expert."""
    gpn = cluster.gpus_per_node
    first = np.full(cluster.gpus, np.iinfo(np.int64).max)
    for e in range(gpu_of.shape[1] - 1, -1, -1):
        first[gpu_of[0, e]] = e
    node_first = first.reshape(cluster.nodes, gpn).min(axis=1)
    if cluster.nodes > 1 and gpn > 1:
        node_order = np.argsort(node_first, kind="stable")
        new_of_old = np.empty(cluster.gpus, dtype=np.int64)
        for new_n, old_n in enumerate(node_order):
            olds = np.arange(old_n * gpn, (old_n + 1) * gpn)
            olds = olds[np.argsort(first[olds], kind="stable")]
            new_of_old[olds] = new_n * gpn + np.arange(gpn)
    else:
        new_of_old = np.empty(cluster.gpus, dtype=np.int64)
        new_of_old[np.argsort(first, kind="stable")] = np.arange(cluster.gpus)
    return new_of_old[gpu_of]
