"""Expert placement for expert-parallel MoE inference, after ExFlow (IPDPS'24).

>>> from workloads.routing import synthetic_routing
>>> from optimizers.placement import Cluster, optimize_placement
>>> trace = synthetic_routing(tokens=400, layers=4, experts=4, top_k=1, affinity=1.0, seed=0)
>>> rep = optimize_placement(trace, Cluster(nodes=1, gpus_per_node=2), time_limit_s=20)
>>> rep.metrics["ilp"].cross_gpu_hops_per_token_layer
0.0
"""

from optimizers.placement.baselines import greedy, local_search, round_robin
from optimizers.placement.hierarchical import solve_hierarchical
from optimizers.placement.ilp import FORMULATIONS, solve_ilp
from optimizers.placement.problem import Cluster, Placement, PlacementProblem
from optimizers.placement.report import (
    PlacementMetrics,
    PlacementReport,
    evaluate_placement,
    optimize_placement,
)
from optimizers.placement.solver import SOLVERS, SolveResult, highs_available

__all__ = [
    "FORMULATIONS",
    "SOLVERS",
    "Cluster",
    "Placement",
    "PlacementMetrics",
    "PlacementProblem",
    "PlacementReport",
    "SolveResult",
    "evaluate_placement",
    "greedy",
    "highs_available",
    "local_search",
    "optimize_placement",
    "round_robin",
    "solve_hierarchical",
    "solve_ilp",
]
