"""Baseline placements to compare the ILP against.

* :func:`round_robin`: expert ``e`` on GPU ``e mod G`` in every layer, what expert-parallel
  frameworks do by default (affinity-blind).
* :func:`greedy`: layer by layer, each next-layer expert goes where the tokens arriving at it
  already are, subject to the balance constraint.
* :func:`local_search`: block-coordinate descent. With every other layer fixed, placing one layer
  is a linear assignment problem (experts to GPU slots), solved exactly; sweep the layers until
  nothing improves, then perturb and repeat. A strong heuristic and the ILP's default MIP start.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from optimizers.placement.problem import Cluster, Placement, PlacementProblem, check_divisible

__all__ = ["dense_weights", "greedy", "local_search", "round_robin"]


def round_robin(layers: int, experts: int, cluster: Cluster) -> Placement:
    """Expert ``e`` of every layer on GPU ``e mod gpus`` (balanced when ``gpus`` divides ``experts``)."""
    check_divisible(experts, cluster.gpus)
    gpu_of = np.tile(np.arange(experts) % cluster.gpus, (layers, 1))
    return Placement(gpu_of, cluster)


def greedy(problem: PlacementProblem, cluster: Cluster) -> Placement:
    """Greedy affinity-following placement.

    Layer 0 is placed round robin. For each next layer, the saving of putting expert ``j`` on GPU
    ``g`` is the hop cost its incoming tokens avoid: ``sum_i w[i, j] * (inter - cost(gpu(i), g))``.
    (expert, GPU) pairs are taken in decreasing saving while GPUs have room (``experts / gpus``
    slots each); ties go to the lower expert and GPU index, so the result is deterministic.
    """
    cap = check_divisible(problem.experts, cluster.gpus)
    n_exp, n_gpu = problem.experts, cluster.gpus
    saving = cluster.inter_node_cost - cluster.cost_matrix()  # (G, G): higher = better
    gpu_of = np.empty((problem.layers, n_exp), dtype=np.int64)
    gpu_of[0] = np.arange(n_exp) % n_gpu
    order = np.argsort(problem.layer, kind="stable")
    bounds = np.searchsorted(problem.layer[order], np.arange(problem.layers + 1))
    for layer in range(problem.layers - 1):
        sel = order[bounds[layer]:bounds[layer + 1]]
        w = np.zeros((n_exp, n_exp))
        np.add.at(w, (problem.src[sel], problem.dst[sel]), problem.weight[sel])
        # score[j, g] = sum_i w[i, j] * saving[gpu_of[layer, i], g]
        score = w.T @ saving[gpu_of[layer]]
        room = np.full(n_gpu, cap)
        placed = np.full(n_exp, -1)
        flat = np.argsort(-score, axis=None, kind="stable")
        for idx in flat:
            j, g = divmod(int(idx), n_gpu)
            if placed[j] < 0 and room[g] > 0:
                placed[j] = g
                room[g] -= 1
        gpu_of[layer + 1] = placed
    return Placement(gpu_of, cluster)


def dense_weights(problem: PlacementProblem) -> np.ndarray:
    """``(layers - 1, E, E)`` edge weights as dense matrices."""
    w = np.zeros((max(problem.layers - 1, 1), problem.experts, problem.experts))
    np.add.at(w, (problem.layer, problem.src, problem.dst), problem.weight)
    return w


def local_search(
    problem: PlacementProblem,
    cluster: Cluster,
    start: Placement | None = None,
    restarts: int = 200,
    seed: int = 0,
) -> Placement:
    """Iterated layer-wise exact reassignment (deterministic for a given ``seed``).

    With layers ``l - 1`` and ``l + 1`` fixed, the cost of putting expert ``e`` of layer ``l`` on GPU
    ``g`` is ``M[e, g] = sum_i w[l-1][i, e] c[g(i), g] + sum_j w[l][e, j] c[g, g(j)]`` and the best
    balanced layer ``l`` is a linear assignment of experts to ``E / G`` slots per GPU. Sweeps
    alternate direction until no layer improves. Each of the ``restarts`` kicks shuffles two random
    layers of the best placement so far and descends again. ``start`` defaults to the better of
    :func:`greedy` and :func:`round_robin`; the result is never worse than the start.
    """
    cap = check_divisible(problem.experts, cluster.gpus)
    if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 0:
        raise ValueError(f"restarts: expected an int >= 0, got {restarts!r}")
    w = dense_weights(problem)
    cost = cluster.cost_matrix()
    slots = np.repeat(np.arange(cluster.gpus), cap)
    n_l, n_e = problem.layers, problem.experts
    rows = np.arange(n_e)
    rng = np.random.default_rng(seed)
    if start is None:  # the better of the two simple baselines
        cands = [greedy(problem, cluster), round_robin(problem.layers, problem.experts, cluster)]
        start = min(cands, key=lambda p: problem.hop_cost(p.gpu_of, cluster))
    best = start.gpu_of.copy()
    best_v = problem.hop_cost(best, cluster)
    for r in range(restarts + 1):
        g = best.copy()
        if r:
            for layer in rng.choice(n_l, size=min(2, n_l), replace=False):
                g[layer] = rng.permutation(g[layer])
        for sweep in range(100):
            changed = False
            for layer in (range(n_l) if sweep % 2 == 0 else range(n_l - 1, -1, -1)):
                m = np.zeros((n_e, cluster.gpus))
                if layer > 0:
                    m += w[layer - 1].T @ cost[g[layer - 1]]
                if layer < n_l - 1:
                    m += w[layer] @ cost[:, g[layer + 1]].T
                _, col = linear_sum_assignment(m[:, slots])
                new = slots[col]
                if m[rows, new].sum() < m[rows, g[layer]].sum() - 1e-9:
                    g[layer] = new
                    changed = True
            if not changed:
                break
        v = problem.hop_cost(g, cluster)
        if v < best_v - 1e-12:
            best, best_v = g, v
    return Placement(best, cluster)
