"""A symmetry-free, tight placement ILP on pair variables, solved with lazy triangle cuts.

The x-based ILP (:mod:`optimizers.placement.ilp`) has two weaknesses: GPUs and nodes can be
relabelled freely (symmetry), and its LP relaxation spreads every expert evenly over the nodes, so
the bound says almost nothing about inter-node hops. Here the unknowns are instead, for every pair
of experts in the same layer or in adjacent layers, ``d = 1`` when they sit on *different* nodes
(and, separately, different GPUs). Labels are gone, so there is no symmetry; the objective is the
same weighted hop cost as the x-based model. A 0/1 ``d`` describes a placement exactly when:

* degrees: an expert shares its node with ``E/N - 1`` experts of its own layer and with ``E/N`` of
  each adjacent layer (likewise ``E/G`` at GPU level), so ``sum d = E - E/N`` per row;
* triangle inequalities ``d[x, z] <= d[x, y] + d[y, z]`` on every triple of two adjacent layers
  (being on the same node is transitive); with two nodes also ``d[x,y] + d[y,z] + d[x,z] <= 2``;
* nesting: different nodes implies different GPUs, ``dg >= dn``.

Consistency of each adjacent-layer window and shared same-layer pairs make the windows agree, so
the labels can be recovered layer by layer (:meth:`_PairModel.decode`). There are ``O(E^3 L)``
triangles; they are added lazily: LP relaxations (HiGHS interior point when available) are solved
and the most violated triangles added until none is violated, which gives a strong bound; then the
MIP is solved with the cuts found, starting from the best heuristic placement, and any triangle its
answer violates is added before solving again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pulp
from scipy.optimize import linear_sum_assignment

from optimizers.placement.baselines import local_search
from optimizers.placement.problem import Cluster, Placement, PlacementProblem, check_divisible
from optimizers.placement.solver import (
    SolveResult,
    highs_available,
    quiet_pulp,
    relative_gap,
    run_model,
    solve_status,
)

__all__ = ["pair_variable_count", "solve_pairs"]

_TOL = 1e-6


@dataclass(frozen=True)
class _Level:
    name: str
    size: int  # experts of one layer per class (per node or per GPU)
    classes: int
    cost: float  # objective weight of d = 1 on an edge


def _levels(experts: int, cluster: Cluster) -> list[_Level]:
    cap = check_divisible(experts, cluster.gpus)
    n_n, gpn = cluster.nodes, cluster.gpus_per_node
    if n_n > 1 and gpn > 1:
        return [_Level("node", experts // n_n, n_n, cluster.inter_node_cost - cluster.intra_node_cost),
                _Level("gpu", cap, cluster.gpus, cluster.intra_node_cost)]
    cost = cluster.intra_node_cost if n_n == 1 else cluster.inter_node_cost
    return [_Level("gpu", cap, cluster.gpus, cost)]


def pair_variable_count(layers: int, experts: int, cluster: Cluster) -> int:
    """Binary variables of the pair formulation (a size check before choosing it)."""
    n = 0
    for lev in _levels(experts, cluster):
        if lev.size > 1:
            n += layers * experts * (experts - 1) // 2
        n += (layers - 1) * experts * experts
    return n


class _PairModel:
    """Pair variables, fixed constraints, cut pool, and conversions to and from placements."""

    def __init__(self, problem: PlacementProblem, cluster: Cluster,
                 fixed: dict[int, np.ndarray] | None = None) -> None:
        """``fixed`` maps a layer to its GPUs when that layer's partition is given (LNS windows)."""
        self.p, self.c = problem, cluster
        n_l, n_e = problem.layers, problem.experts
        self.levels = _levels(n_e, cluster)
        # same[k][l]: (E, E) object array of LpVariable (upper and lower triangle) or None (constant 1)
        self.same: list[list[np.ndarray | None]] = []
        self.cross: list[list[np.ndarray]] = []
        self.fixed: list = []
        lpsum = pulp.LpAffineExpression
        for k, lev in enumerate(self.levels):
            same_k: list[np.ndarray | None] = []
            for ly in range(n_l):
                if lev.size == 1:
                    same_k.append(None)
                    continue
                m = np.empty((n_e, n_e), dtype=object)
                for a in range(n_e):
                    for b in range(a + 1, n_e):
                        m[a, b] = m[b, a] = pulp.LpVariable(f"s{k}_{ly}_{a}_{b}", cat=pulp.LpBinary)
                same_k.append(m)
                for a in range(n_e):
                    self.fixed.append(lpsum([(m[a, b], 1) for b in range(n_e) if b != a]) == n_e - lev.size)
            cross_k = []
            for ly in range(n_l - 1):
                m = np.empty((n_e, n_e), dtype=object)
                for a in range(n_e):
                    for b in range(n_e):
                        m[a, b] = pulp.LpVariable(f"c{k}_{ly}_{a}_{b}", cat=pulp.LpBinary)
                cross_k.append(m)
                for a in range(n_e):
                    self.fixed.append(lpsum([(m[a, b], 1) for b in range(n_e)]) == n_e - lev.size)
                    self.fixed.append(lpsum([(m[b, a], 1) for b in range(n_e)]) == n_e - lev.size)
            self.same.append(same_k)
            self.cross.append(cross_k)
        if len(self.levels) == 2:  # different node => different GPU
            for ly in range(n_l - 1):
                for a in range(n_e):
                    for b in range(n_e):
                        self.fixed.append(lpsum([(self.cross[1][ly][a, b], 1), (self.cross[0][ly][a, b], -1)]) >= 0)
            if self.levels[1].size > 1:
                for ly in range(n_l):
                    for a in range(n_e):
                        for b in range(a + 1, n_e):
                            self.fixed.append(
                                lpsum([(self.same[1][ly][a, b], 1), (self.same[0][ly][a, b], -1)]) >= 0)
        for ly, row in (fixed or {}).items():
            for k in range(len(self.levels)):
                m = self.same[k][ly]
                if m is None:
                    continue
                cls = self._class_of(k, np.asarray(row))
                for a, b in zip(*np.triu_indices(n_e, 1), strict=True):
                    self.fixed.append(lpsum([(m[a, b], 1)]) == int(cls[a] != cls[b]))
        w = problem.weight.astype(float).tolist()
        terms = []
        for k, lev in enumerate(self.levels):
            for ly, a, b, wt in zip(problem.layer.tolist(), problem.src.tolist(), problem.dst.tolist(), w,
                                   strict=True):
                terms.append((self.cross[k][ly][a, b], wt * lev.cost))
        self.objective = lpsum(terms)
        self.cuts: dict[tuple, tuple] = {}  # global key -> (level, window, x, y, z, kind)

    # ----------------------------------------------------------------------------- windows
    def _var(self, k: int, win: int, i: int, j: int):
        """Variable (or None for the constant 1) of window ``win`` elements ``i``, ``j`` in
        ``[0, 2E)``: indices below E are layer ``win``, the others layer ``win + 1``."""
        n_e = self.p.experts
        if i < n_e and j < n_e:
            m = self.same[k][win]
            return None if m is None else m[i, j]
        if i >= n_e and j >= n_e:
            m = self.same[k][win + 1]
            return None if m is None else m[i - n_e, j - n_e]
        return self.cross[k][win][i, j - n_e] if i < n_e else self.cross[k][win][j, i - n_e]

    def _window_values(self, k: int, win: int) -> np.ndarray:
        n_e = self.p.experts
        d = np.ones((2 * n_e, 2 * n_e))
        for off, m in ((0, self.same[k][win]), (n_e, self.same[k][win + 1])):
            if m is not None:
                blk = np.array([[0.0 if a == b else (m[a, b].varValue or 0.0) for b in range(n_e)]
                                for a in range(n_e)])
                d[off:off + n_e, off:off + n_e] = blk
        cr = np.array([[v.varValue or 0.0 for v in row] for row in self.cross[k][win]])
        d[:n_e, n_e:] = cr
        d[n_e:, :n_e] = cr.T
        np.fill_diagonal(d, 0.0)
        return d

    def separate(self, max_per_window: int = 200) -> int:
        """Add the most violated triangle cuts of the current values; return how many are new."""
        n_e = self.p.experts
        new = 0
        upper = np.triu(np.ones((2 * n_e, 2 * n_e), dtype=bool), 1)
        for k, lev in enumerate(self.levels):
            if lev.size == 1:
                continue  # implied by the degree constraints
            for win in range(self.p.layers - 1):
                d = self._window_values(k, win)
                found = []
                viol = d[:, None, :] - d[:, :, None] - d[None, :, :]  # [x, y, z] = d_xz - d_xy - d_yz
                viol = np.where(upper[:, None, :], viol, 0.0)
                idx = np.argwhere(viol > _TOL)
                found += [(viol[x, y, z], x, y, z, 0) for x, y, z in idx]
                if lev.classes == 2:
                    tot = d[:, None, :] + d[:, :, None] + d[None, :, :]
                    xs, ys, zs = np.nonzero(tot > 2 + _TOL)
                    sel = (xs < ys) & (ys < zs)
                    found += [(tot[x, y, z] - 2, x, y, z, 1) for x, y, z in
                              zip(xs[sel], ys[sel], zs[sel], strict=True)]
                found.sort(key=lambda t: -t[0])
                for _, x, y, z, kind in found[:max_per_window]:
                    key = (k, kind, *(win * n_e + int(v) for v in (x, y, z)))
                    if key not in self.cuts:
                        self.cuts[key] = (k, win, int(x), int(y), int(z), kind)
                        new += 1
        return new

    def _cut_expr(self, cut: tuple) -> tuple[pulp.LpAffineExpression, float]:
        """``(lhs, rhs)`` of a cut written as ``lhs <= rhs``."""
        k, win, x, y, z, kind = cut
        coef = (1, -1, -1) if kind == 0 else (1, 1, 1)
        rhs = 0.0 if kind == 0 else 2.0
        terms = []
        for (i, j), c in zip(((x, z), (x, y), (y, z)), coef, strict=True):
            v = self._var(k, win, i, j)
            if v is None:
                rhs -= c
            else:
                terms.append((v, c))
        return pulp.LpAffineExpression(terms), rhs

    def prune_slack_cuts(self, slack: float = 1e-3) -> None:
        """Drop cuts far from binding at the current values (they rarely matter for the MIP)."""
        keep = {}
        for key, cut in self.cuts.items():
            lhs, rhs = self._cut_expr(cut)
            if sum((v.varValue or 0.0) * c for v, c in lhs.items()) >= rhs - slack:
                keep[key] = cut
        self.cuts = keep

    def build(self) -> pulp.LpProblem:
        lp = pulp.LpProblem("expert_placement_pairs", pulp.LpMinimize)
        lp += self.objective
        for i, con in enumerate(self.fixed):
            lp += con, f"f{i}"
        for i, cut in enumerate(self.cuts.values()):
            lhs, rhs = self._cut_expr(cut)
            lp += lhs <= rhs, f"t{i}"
        return lp

    # ------------------------------------------------------------------ placements <-> pairs
    def _class_of(self, k: int, gpu_of: np.ndarray) -> np.ndarray:
        return self.c.node_of(gpu_of) if self.levels[k].name == "node" else gpu_of

    def set_start(self, gpu_of: np.ndarray) -> None:
        for k in range(len(self.levels)):
            cls = self._class_of(k, gpu_of)
            for ly, m in enumerate(self.same[k]):
                if m is not None:
                    diff = cls[ly][:, None] != cls[ly][None, :]
                    for a, b in zip(*np.triu_indices(self.p.experts, 1), strict=True):
                        m[a, b].setInitialValue(int(diff[a, b]))
            for ly, m in enumerate(self.cross[k]):
                diff = cls[ly][:, None] != cls[ly + 1][None, :]
                for (a, b), v in np.ndenumerate(m):
                    v.setInitialValue(int(diff[a, b]))

    def consistent(self, gpu_of: np.ndarray) -> bool:
        """True when the (integer) variable values are exactly those of ``gpu_of``."""
        for k in range(len(self.levels)):
            cls = self._class_of(k, gpu_of)
            for ly, m in enumerate(self.cross[k]):
                diff = cls[ly][:, None] != cls[ly + 1][None, :]
                vals = np.array([[v.varValue or 0.0 for v in row] for row in m]) > 0.5
                if np.any(vals != diff):
                    return False
            for ly, m in enumerate(self.same[k]):
                if m is not None:
                    diff = cls[ly][:, None] != cls[ly][None, :]
                    vals = np.array([[0.0 if a == b else (m[a, b].varValue or 0.0) for b in range(len(m))]
                                     for a in range(len(m))]) > 0.5
                    if np.any(vals != diff):
                        return False
        return True

    def decode(self, layer0: np.ndarray) -> np.ndarray:
        """Placement agreeing best with the current (possibly fractional) values.

        Layer 0 is ``layer0``; each next layer is the linear assignment maximising the weighted
        agreement ``sum_k cost_k * (1 - d_k[a, b])`` with the experts ``a`` already on the chosen
        node (k = node) or GPU (k = gpu). For values that describe a placement exactly, this
        returns that placement (up to relabelling).
        """
        n_l, n_e, n_g = self.p.layers, self.p.experts, self.c.gpus
        slots = np.repeat(np.arange(n_g), n_e // n_g)
        g_class = [np.asarray(self._class_of(k, np.arange(n_g))) for k in range(len(self.levels))]
        out = np.empty((n_l, n_e), dtype=np.int64)
        out[0] = layer0
        for ly in range(n_l - 1):
            score = np.zeros((n_e, n_g))
            for k, lev in enumerate(self.levels):
                same = 1.0 - np.array([[v.varValue or 0.0 for v in row] for row in self.cross[k][ly]])
                cls_prev = self._class_of(k, out[ly])
                onehot = (cls_prev[:, None] == g_class[k][None, :]).astype(float)  # (E, G)
                score += lev.cost * (same.T @ onehot)
            _, col = linear_sum_assignment(-score[:, slots])
            out[ly + 1] = slots[col]
        return out

    def layer0_from_values(self) -> np.ndarray | None:
        """Layer-0 GPUs from integral same-layer values, or None if they are not a partition."""
        n_e, cl = self.p.experts, self.c
        labels = np.zeros(n_e, dtype=np.int64)  # GPU index
        groups = [np.arange(n_e)]
        for k, lev in enumerate(self.levels):
            m = self.same[k][0]
            new_groups, new_labels = [], labels.copy()
            per_parent = lev.classes // len(groups)
            for gi, grp in enumerate(groups):
                left = list(grp)
                sub = 0
                while left:
                    a = left[0]
                    cls = [b for b in left if b == a or (m is not None and (m[a, b].varValue or 0.0) < 0.5)]
                    if len(cls) != lev.size or sub >= per_parent:
                        return None
                    left = [b for b in left if b not in cls]
                    new_groups.append(np.array(cls))
                    idx = gi * per_parent + sub
                    new_labels[cls] = idx if lev.name == "gpu" else idx * cl.gpus_per_node
                    sub += 1
            groups, labels = new_groups, new_labels
        return labels


def _lp_phase(model: _PairModel, subsolver: str, deadline: float, threads: int,
              msg: bool) -> tuple[float | None, int]:
    """Cutting-plane loop on the LP relaxation; returns (best LP bound, rounds)."""
    bound, rounds = None, 0
    while time.perf_counter() < deadline:
        lp = model.build()
        b = run_model(lp, subsolver, time_limit_s=deadline - time.perf_counter(), threads=threads,
                      mip=False, msg=msg)
        rounds += 1
        if b is None:
            break
        bound = b if bound is None else max(bound, b)  # fewer cuts: still a relaxation
        if model.separate() == 0:
            break
    return bound, rounds


def _mip_phase(model: _PairModel, solver: str, deadline: float, threads: int, gap_rel: float,
               start: np.ndarray, layer0: np.ndarray | None, msg: bool) -> tuple[float | None, np.ndarray | None]:
    """MIP with the cuts found; add the triangles its answer violates and solve again until the
    answer is a placement or time is up. Returns (MIP bound, placement or None)."""
    bound = None
    while time.perf_counter() < deadline - 0.2:
        lp = model.build()
        model.set_start(start)
        b = run_model(lp, solver, time_limit_s=deadline - time.perf_counter(), threads=threads,
                      gap_rel=gap_rel, use_start=True, msg=msg)
        if b is not None:
            bound = b if bound is None else max(bound, b)
        first = layer0 if layer0 is not None else model.layer0_from_values()
        if first is not None:
            cand = model.decode(first)
            if model.consistent(cand):
                return bound, cand
        if model.separate() == 0:
            break
    return bound, None


def _integral_answer(model: _PairModel, layer0: np.ndarray | None) -> np.ndarray | None:
    """The placement the current values describe, when they are integral and consistent."""
    first = layer0 if layer0 is not None else model.layer0_from_values()
    if first is None:
        return None
    cand = model.decode(first)
    return cand if model.consistent(cand) else None


def _window_lns(problem: PlacementProblem, cluster: Cluster, best: np.ndarray, *,
                subsolver: str, deadline: float, threads: int, window: int, msg: bool,
                stop: float, per_window_s: float) -> tuple[np.ndarray, int]:
    """Re-optimise ``window`` consecutive layers at a time exactly, the neighbouring layers fixed.

    The layers after a window are relabelled by the (node-preserving) GPU permutation that the
    window's last fixed layer received, which leaves their cost unchanged. Sweeps shift the window
    grid and stop after two sweeps without improvement, at ``deadline``, or once the cost is at
    most ``stop``. Returns (placement, windows solved).
    """
    n_l = problem.layers
    best = best.copy()
    best_v = problem.hop_cost(best, cluster)
    step = max(1, window // 2)
    idle, sweep, solved = 0, 0, 0
    while idle < 2 and time.perf_counter() < deadline and best_v > stop:
        improved = False
        offset = (sweep * max(1, window // 3)) % step
        for a in range(-offset, n_l, step):
            a = max(a, 0)
            e = min(a + window - 1, n_l - 1)
            if time.perf_counter() >= deadline or best_v <= stop:
                break
            first, last = (a - 1 if a > 0 else a), (e + 1 if e < n_l - 1 else e)
            if last == first:
                continue
            fixed = {}
            if a > 0:
                fixed[0] = best[first]
            if e < n_l - 1:
                fixed[last - first] = best[last]
            sub = problem.layer_window(first, last)
            with quiet_pulp():
                model = _PairModel(sub, cluster, fixed)
            t_end = min(deadline, time.perf_counter() + per_window_s)
            _lp_phase(model, subsolver, t_end, threads, msg)
            got = _integral_answer(model, best[first] if a > 0 else None)
            if got is None:  # the LP optimum is fractional: branch
                _, got = _mip_phase(model, subsolver, t_end, threads, 1e-6, best[first:last + 1],
                                    best[first] if a > 0 else None, msg)
            solved += 1
            if got is None:
                continue
            cand = best.copy()
            cand[first:last + 1] = got
            if e < n_l - 1:  # relabel the suffix like its fixed first layer
                sigma = np.full(cluster.gpus, -1)
                sigma[best[last]] = got[-1]
                if np.any(sigma < 0) or np.any(sigma[best[last]] != got[-1]):
                    continue
                cand[last + 1:] = sigma[best[last + 1:]]
            v = problem.hop_cost(cand, cluster)
            if v < best_v - 1e-12 and Placement(cand, cluster).is_balanced():
                best, best_v, improved = cand, v, True
        idle = 0 if improved else idle + 1
        sweep += 1
    return best, solved


def solve_pairs(
    problem: PlacementProblem,
    cluster: Cluster,
    *,
    solver: str = "cbc",
    subsolver: str = "auto",
    time_limit_s: float = 60.0,
    threads: int = 1,
    gap_rel: float = 1e-4,
    start: Placement | None = None,
    window: int | None = None,
    msg: bool = False,
) -> SolveResult:
    """Solve the pair formulation (see the module docstring) in three phases sharing
    ``time_limit_s``:

    1. cutting-plane LPs on the whole problem until no triangle is violated (at most 40 % of the
       time): the lower bound;
    2. large-neighbourhood search: the exact MIP of ``window`` consecutive layers at a time with the
       neighbouring layers fixed (``window`` defaults to about 600 pair variables' worth), until
       the gap target is met or sweeps stop improving (up to 90 % of the time): the placement;
    3. the MIP of the whole problem from that placement, with the remaining time, to close the gap.

    ``subsolver`` (``"auto"``: HiGHS when installed, else ``solver``) runs the cutting-plane LPs and
    the window MIPs; ``solver`` the MIP of the whole problem. (CBC is much slower than HiGHS at
    improving the window MIPs' incumbents within a few seconds.)
    """
    t0 = time.perf_counter()
    if subsolver == "auto":
        subsolver = "highs" if highs_available() else solver
    if start is None:
        start = local_search(problem, cluster)
    with quiet_pulp():
        model = _PairModel(problem, cluster)
    build_s = time.perf_counter() - t0
    scale = 1.0 / problem.transitions
    best = start.gpu_of.copy()
    best_v = problem.hop_cost(best, cluster)
    notes = [f"cutting-plane LPs and window MIPs on {subsolver}, whole-problem MIP on {solver}"]

    t1 = time.perf_counter()
    deadline = t1 + time_limit_s
    b, rounds = _lp_phase(model, subsolver, t1 + 0.4 * time_limit_s, threads, msg)
    bound = None if b is None else b * scale
    notes.append(f"LP phase: {rounds} rounds, {len(model.cuts)} triangle cuts, "
                 f"{time.perf_counter() - t1:.1f} s, bound {bound}")

    def gap_met() -> bool:
        g = relative_gap(best_v, bound)
        return g is not None and g <= gap_rel

    if not gap_met() and problem.layers > 1:
        if window is None:
            per_layer = max(1, pair_variable_count(2, problem.experts, cluster) // 2)
            window = max(1, min(problem.layers, 600 // per_layer))
        stop = -1.0 if bound is None else bound / (1.0 - gap_rel) if gap_rel < 1 else bound
        t2 = time.perf_counter()
        best, solved = _window_lns(problem, cluster, best, subsolver=subsolver,
                                   deadline=t1 + 0.9 * time_limit_s, threads=threads, window=window,
                                   msg=msg, stop=stop, per_window_s=max(2.0, time_limit_s / 20))
        best_v = problem.hop_cost(best, cluster)
        notes.append(f"LNS phase: {solved} windows of {window} layers, {time.perf_counter() - t2:.1f} s, "
                     f"cost {best_v:.6g}")
    left = deadline - time.perf_counter()
    # CBC reads its clock only between phases: with little time left it overruns by its root LP
    if not gap_met() and left > (10.0 if solver == "cbc" else 1.0):
        model.prune_slack_cuts()
        mip_deadline = deadline - (0.2 * left if solver == "cbc" else 0.0)
        b, got = _mip_phase(model, solver, mip_deadline, threads, gap_rel, best, None, msg)
        if b is not None:
            bound = max(bound or 0.0, b * scale)
        if got is not None and problem.hop_cost(got, cluster) < best_v:
            best, best_v = got, problem.hop_cost(got, cluster)
        notes.append("MIP phase on the whole problem")
    bound = None if bound is None else min(bound, best_v)
    gap = relative_gap(best_v, bound)
    status = solve_status(gap, gap_rel)
    lp = model.build()
    return SolveResult(
        Placement(best, cluster), status, best_v, bound, gap, solver, "pairs", time_limit_s, build_s,
        time.perf_counter() - t1, lp.numVariables(), lp.numConstraints(),
        start_objective=problem.hop_cost(start.gpu_of, cluster), notes=notes,
    )
