"""Exact placement by dynamic programming when every GPU holds one expert per layer (E = G).

With one expert per GPU per layer, fix the node partition of every layer: inside a node, each GPU
holds one of the node's layer-``l`` experts and one of its layer-``l+1`` experts, so co-location is
a perfect matching between the two, and any matching can be realised independently for every
transition (place each layer-``l+1`` expert on the GPU of its partner). The best matching is a small
assignment problem. What couples the layers is only the node partition, so a shortest path over
labelled node partitions, layer by layer, gives the optimum:

    cost(s, s') = (inter - intra) * weight crossing nodes + intra * (weight - sum_n matching_n)

The number of labelled partitions is ``E! / (E/N)!^N`` (70 for 8 experts on 2 nodes), so this is for
small problems (Mixtral-8x7B on 2 x 4 GPUs: 0.2 s); with one node or one GPU per node no partition
is needed and each transition is a single assignment problem. Used to check the ILP and as a start.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy.optimize import linear_sum_assignment

from optimizers.placement.baselines import dense_weights
from optimizers.placement.problem import Cluster, Placement, PlacementProblem

__all__ = ["exact_states", "solve_exact"]


def exact_states(experts: int, cluster: Cluster) -> int | None:
    """Labelled node partitions the DP walks through, or None when it does not apply (E != G)."""
    if experts != cluster.gpus:
        return None
    if cluster.nodes == 1 or cluster.gpus_per_node == 1:
        return 1
    return math.factorial(experts) // math.factorial(cluster.gpus_per_node) ** cluster.nodes


def _partitions(experts: int, nodes: int, per_node: int) -> np.ndarray:
    """All labelled partitions as an ``(S, nodes, per_node)`` array of sorted member lists."""
    out = []

    def rec(left: tuple[int, ...], acc: list[tuple[int, ...]]) -> None:
        if len(acc) == nodes:
            out.append(list(acc))
            return
        for grp in itertools.combinations(left, per_node):
            rec(tuple(e for e in left if e not in grp), [*acc, grp])

    rec(tuple(range(experts)), [])
    return np.array(out, dtype=np.int64)


def solve_exact(problem: PlacementProblem, cluster: Cluster, max_states: int = 2000) -> Placement:
    """Optimal placement for ``experts == gpus`` (see the module docstring).

    Raises ValueError when ``experts != gpus`` or the partitions exceed ``max_states``.
    """
    n_e, n_l = problem.experts, problem.layers
    states = exact_states(n_e, cluster)
    if states is None:
        raise ValueError(f"experts: the exact DP needs experts == gpus, got {n_e} experts on "
                         f"{cluster.gpus} GPUs")
    if states > max_states:
        raise ValueError(f"max_states: {states} node partitions per layer exceed max_states={max_states}")
    w = dense_weights(problem)
    intra, inter = cluster.intra_node_cost, cluster.inter_node_cost
    gpu_of = np.empty((n_l, n_e), dtype=np.int64)
    if states == 1:  # co-location is one assignment problem per transition
        gpu_of[0] = np.arange(n_e)
        for layer in range(n_l - 1):
            rows, cols = linear_sum_assignment(-w[layer])
            gpu_of[layer + 1, cols] = gpu_of[layer, rows]
        return Placement(gpu_of, cluster)

    n_n, gpn = cluster.nodes, cluster.gpus_per_node
    parts = _partitions(n_e, n_n, gpn)  # (S, N, gpn)
    onehot = np.zeros((len(parts), n_n, n_e))
    for n in range(n_n):
        onehot[np.arange(len(parts))[:, None], n, parts[:, n, :]] = 1.0
    perms = np.array(list(itertools.permutations(range(gpn))), dtype=np.int64)
    ar = np.arange(gpn)
    value = np.zeros(len(parts))
    back = np.zeros((n_l, len(parts)), dtype=np.int64)
    for layer in range(n_l - 1):
        wl = w[layer]
        same_node = np.einsum("sna,ab,tnb->st", onehot, wl, onehot)
        matched = np.zeros((len(parts), len(parts)))
        for n in range(n_n):
            m = parts[:, n, :]
            sub = wl[m[:, None, :, None], m[None, :, None, :]]  # (S, S, gpn, gpn)
            matched += sub[:, :, ar[None, :], perms].sum(-1).max(-1)
        cost = (inter - intra) * (wl.sum() - same_node) + intra * (wl.sum() - matched)
        total = value[:, None] + cost
        back[layer + 1] = np.argmin(total, axis=0)
        value = total[back[layer + 1], np.arange(len(parts))]
    path = [int(np.argmin(value))]
    for layer in range(n_l - 1, 0, -1):
        path.append(int(back[layer, path[-1]]))
    path.reverse()
    # GPUs: layer 0 in partition order; then each node's optimal matching per transition
    s0 = parts[path[0]]
    for n in range(n_n):
        gpu_of[0, s0[n]] = n * gpn + ar
    for layer in range(n_l - 1):
        a_parts, b_parts = parts[path[layer]], parts[path[layer + 1]]
        for n in range(n_n):
            rows, cols = linear_sum_assignment(-w[layer][np.ix_(a_parts[n], b_parts[n])])
            gpu_of[layer + 1, b_parts[n][cols]] = gpu_of[layer, a_parts[n][rows]]
    return Placement(gpu_of, cluster)
