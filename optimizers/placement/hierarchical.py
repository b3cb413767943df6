"""Two-stage placement for large clusters: experts to nodes, then to GPUs inside each node.

ExFlow solves large clusters by recursive bipartition. Here:

1. one ILP with one "GPU" per node (``E / N`` experts of every layer per node) minimises the
   token weight crossing nodes;
2. for each node, an independent ILP places that node's ``E / N`` experts per layer on its GPUs,
   minimising intra-node hops (edges leaving the node cost the same whatever happens inside).

Each stage is small, but the split is a heuristic: stage 1 ignores intra-node hops. The reported
``best_bound`` is the one bound that stays valid for the whole problem: every inter-node hop is also
a cross-GPU hop, so ``cost >= inter_node_cost * (stage-1 bound on node crossings)``; it ignores
intra-node hops and is therefore loose. The answer is never worse than :func:`local_search` on the
whole problem (it is returned instead, with a note, if it is better).
"""

from __future__ import annotations

import time

import numpy as np

from optimizers.placement.baselines import local_search
from optimizers.placement.ilp import solve_ilp
from optimizers.placement.problem import Cluster, Placement, PlacementProblem, check_divisible
from optimizers.placement.solver import SolveResult, relative_gap

__all__ = ["solve_hierarchical"]


def solve_hierarchical(
    problem: PlacementProblem,
    cluster: Cluster,
    *,
    solver: str = "cbc",
    time_limit_s: float = 300.0,
    threads: int = 1,
    gap_rel: float = 1e-4,
    formulation: str = "auto",
    subsolver: str = "auto",
    msg: bool = False,
) -> SolveResult:
    """Nodes first, then GPUs per node; ``time_limit_s`` is the total for all ILPs.

    Stage 1 gets a third of the time; the nodes share what is left. With one node or one GPU per node
    there is only one level and this is :func:`~optimizers.placement.ilp.solve_ilp`.
    """
    if not time_limit_s > 0:
        raise ValueError(f"time_limit_s: expected > 0, got {time_limit_s}")
    check_divisible(problem.experts, cluster.gpus)
    kw = dict(solver=solver, threads=threads, gap_rel=gap_rel, formulation=formulation,
              subsolver=subsolver, msg=msg)
    if cluster.nodes == 1 or cluster.gpus_per_node == 1:
        return solve_ilp(problem, cluster, time_limit_s=time_limit_s, **kw)
    t0 = time.perf_counter()
    n_n, gpn = cluster.nodes, cluster.gpus_per_node
    node_cluster = Cluster(nodes=1, gpus_per_node=n_n, intra_node_cost=1.0, inter_node_cost=1.0)
    stage1 = solve_ilp(problem, node_cluster, time_limit_s=time_limit_s / 3, **kw)
    node_of = stage1.placement.gpu_of
    gpu_cluster = Cluster(nodes=1, gpus_per_node=gpn, intra_node_cost=cluster.intra_node_cost,
                          inter_node_cost=cluster.inter_node_cost)
    gpu_of = np.empty_like(node_of)
    stages = [stage1]
    for n in range(n_n):
        left = time_limit_s - (time.perf_counter() - t0)
        sub = problem.subproblem(node_of == n)
        res = solve_ilp(sub, gpu_cluster, time_limit_s=max(left / (n_n - n), 1.0), **kw)
        stages.append(res)
        for layer in range(problem.layers):
            gpu_of[layer, node_of[layer] == n] = n * gpn + res.placement.gpu_of[layer]
    best = gpu_of
    best_v = problem.hop_cost(best, cluster)
    notes = ["stage 1: experts to nodes; stage 2: one ILP per node"]
    whole = local_search(problem, cluster, restarts=20)
    if problem.hop_cost(whole.gpu_of, cluster) < best_v:
        best, best_v = whole.gpu_of, problem.hop_cost(whole.gpu_of, cluster)
        notes.append("local search on the whole problem beat the two stages and is returned")
    bound = None
    if stage1.best_bound is not None:
        bound = min(cluster.inter_node_cost * stage1.best_bound, best_v)
    wall = time.perf_counter() - t0
    return SolveResult(
        Placement(best, cluster), "hierarchical", best_v, bound, relative_gap(best_v, bound), solver,
        stage1.formulation, time_limit_s, sum(s.build_s for s in stages),
        wall - sum(s.build_s for s in stages), sum(s.variables for s in stages),
        sum(s.constraints for s in stages), notes=notes, stages=stages,
    )
