"""Evaluate placements on a routing trace and compare the ILP with the baselines.

Metrics follow the cost model of :mod:`optimizers.placement.problem` (home = GPU of the slot-0
expert; each of the ``k`` copies dispatched to the next layer's experts is a hop when it leaves the
home GPU), averaged over tokens and the ``layers - 1`` transitions between MoE layers:

* ``cross_gpu_hops_per_token_layer``: copies leaving the home GPU (0 ... k);
* ``inter_node_hops_per_token_layer``: copies leaving the home node;
* ``hop_cost_per_token_layer``: intra-node hops x ``intra_node_cost`` + inter-node x ``inter_node_cost``
  (the ILP objective);
* ``all_to_all_bytes_per_layer``: bytes the dispatch all-to-all moves between GPUs per layer
  transition, copies leaving their GPU x ``hidden_bytes`` (``inter_node_bytes_per_layer`` likewise);
* ``load_imbalance``: busiest GPU's received copies / the mean, averaged over layers (1 = even).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from optimizers.placement.baselines import greedy, local_search, round_robin
from optimizers.placement.exact import exact_states, solve_exact
from optimizers.placement.hierarchical import solve_hierarchical
from optimizers.placement.ilp import solve_ilp
from optimizers.placement.problem import Cluster, Placement, PlacementProblem
from optimizers.placement.solver import SolveResult
from workloads.routing import RoutingTrace, affinity_concentration

__all__ = ["NOTHING_TO_GAIN", "PlacementMetrics", "PlacementReport", "evaluate_placement", "optimize_placement"]

NOTHING_TO_GAIN = 0.03
"""Below this relative reduction of hop cost versus round robin, the report says there is nothing
to gain (the trace's experts show no usable inter-layer affinity)."""

DEFAULT_HIDDEN_BYTES = 4096 * 2
"""Assumption: one token's activation is Mixtral-8x7B's hidden size (4096) in bf16 (2 bytes)."""


@dataclass(frozen=True)
class PlacementMetrics:
    """Routing cost of one placement on one trace (see the module docstring for definitions)."""

    method: str
    cross_gpu_hops_per_token_layer: float
    inter_node_hops_per_token_layer: float
    hop_cost_per_token_layer: float
    all_to_all_bytes_per_layer: float
    inter_node_bytes_per_layer: float
    load_imbalance: float

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate_placement(
    placement: Placement,
    trace: RoutingTrace,
    hidden_bytes: float = DEFAULT_HIDDEN_BYTES,
    method: str = "",
) -> PlacementMetrics:
    """Metrics of ``placement`` on ``trace``; ``hidden_bytes`` is one token's activation (bytes)."""
    if placement.gpu_of.shape != (trace.layers, trace.experts):
        raise ValueError(f"placement: shape {placement.gpu_of.shape} does not match the trace's "
                         f"(layers, experts) = ({trace.layers}, {trace.experts})")
    if not hidden_bytes > 0:
        raise ValueError(f"hidden_bytes: expected > 0, got {hidden_bytes}")
    cl = placement.cluster
    ids, g = trace.expert_ids, placement.gpu_of
    layer_idx = np.arange(trace.layers)[None, :, None]
    dest = g[layer_idx, ids]  # (T, L, k) GPU of every copy
    load = np.zeros((trace.layers, cl.gpus))
    for layer in range(trace.layers):
        load[layer] = np.bincount(dest[:, layer, :].ravel(), minlength=cl.gpus)
    imbalance = float(np.mean(load.max(axis=1) / load.mean(axis=1)))
    if trace.layers < 2:
        return PlacementMetrics(method, 0.0, 0.0, 0.0, 0.0, 0.0, imbalance)
    home = dest[:, :-1, 0][:, :, None]  # (T, L-1, 1)
    nxt = dest[:, 1:, :]  # (T, L-1, k)
    cross = nxt != home
    inter = cl.node_of(nxt) != cl.node_of(home)
    cost = cl.cost_matrix()[home, nxt]
    n_tr = trace.tokens * (trace.layers - 1)
    return PlacementMetrics(
        method=method,
        cross_gpu_hops_per_token_layer=float(cross.sum() / n_tr),
        inter_node_hops_per_token_layer=float(inter.sum() / n_tr),
        hop_cost_per_token_layer=float(cost.sum() / n_tr),
        all_to_all_bytes_per_layer=float(cross.sum() / (trace.layers - 1) * hidden_bytes),
        inter_node_bytes_per_layer=float(inter.sum() / (trace.layers - 1) * hidden_bytes),
        load_imbalance=imbalance,
    )


@dataclass
class PlacementReport:
    """The ILP placement against the baselines on one trace and cluster."""

    cluster: Cluster
    trace_info: dict
    hidden_bytes: float
    metrics: dict[str, PlacementMetrics]
    placements: dict[str, Placement] = field(repr=False)
    solve: SolveResult = field(repr=False)

    def reduction(self, method: str = "ilp", metric: str = "hop_cost_per_token_layer") -> float:
        """Relative reduction of ``metric`` by ``method`` versus round robin (0.67 = 67 % less)."""
        if method not in self.metrics:
            raise ValueError(f"method: expected one of {sorted(self.metrics)}, got {method!r}")
        base = getattr(self.metrics["round_robin"], metric)
        return 0.0 if base == 0 else 1.0 - getattr(self.metrics[method], metric) / base

    @property
    def nothing_to_gain(self) -> bool:
        return self.reduction() < NOTHING_TO_GAIN

    def to_dict(self) -> dict:
        return {
            "cluster": self.cluster.to_dict(),
            "trace": dict(self.trace_info),
            "hidden_bytes": self.hidden_bytes,
            "metrics": {k: m.to_dict() for k, m in self.metrics.items()},
            "reduction_vs_round_robin": {
                k: {"hop_cost": self.reduction(k), "cross_gpu_hops": self.reduction(k, "cross_gpu_hops_per_token_layer"),
                    "all_to_all_bytes": self.reduction(k, "all_to_all_bytes_per_layer")}
                for k in self.metrics
            },
            "nothing_to_gain": self.nothing_to_gain,
            "solve": self.solve.to_dict(),
            "gpu_of": {k: p.gpu_of.tolist() for k, p in self.placements.items()},
        }

    def summary(self) -> str:
        t, c, s = self.trace_info, self.cluster, self.solve
        lines = [
            f"Expert placement: {t['tokens']} tokens, {t['layers']} MoE layers, {t['experts']} experts, "
            f"top-{t['top_k']} (affinity concentration {t['affinity_concentration']:.2f}) on "
            f"{c.nodes} node(s) x {c.gpus_per_node} GPUs (hop cost {c.intra_node_cost:g} intra, "
            f"{c.inter_node_cost:g} inter); ILP fitted on {t['tokens_fit']} tokens, "
            f"evaluated on {t['tokens_eval']} {'held-out' if t['held_out'] else 'in-sample'} tokens",
            f"{'method':<13}{'GPU hops':>10}{'node hops':>11}{'hop cost':>10}{'A2A MB/layer':>14}{'vs RR':>8}",
        ]
        for name, m in self.metrics.items():
            lines.append(
                f"{name:<13}{m.cross_gpu_hops_per_token_layer:>10.3f}{m.inter_node_hops_per_token_layer:>11.3f}"
                f"{m.hop_cost_per_token_layer:>10.3f}{m.all_to_all_bytes_per_layer / 1e6:>14.2f}"
                f"{-100 * self.reduction(name) + 0.0:>+7.1f}%"
            )
        gap = "n/a" if s.gap is None else f"{100 * s.gap:.2f}%"
        lines.append(f"ILP: {s.formulation} on {s.solver}, status {s.status}, gap {gap}, {s.wall_s:.1f} s")
        r = self.reduction()
        if self.nothing_to_gain:
            where = "held-out" if t["held_out"] else "fitted"
            lines.append(f"Nothing to gain: the ILP placement changes hop cost by {-100 * r + 0.0:+.1f}% versus "
                         f"round robin on the {where} tokens (threshold {100 * NOTHING_TO_GAIN:.0f}%); the "
                         f"trace shows no usable inter-layer affinity, keep round robin.")
        else:
            lines.append(f"The ILP placement cuts hop cost by {100 * r:.1f}% and all-to-all traffic by "
                         f"{100 * self.reduction('ilp', 'all_to_all_bytes_per_layer'):.1f}% versus round robin.")
        return "\n".join(lines)


def optimize_placement(
    trace: RoutingTrace,
    cluster: Cluster,
    *,
    hidden_bytes: float = DEFAULT_HIDDEN_BYTES,
    solver: str = "cbc",
    time_limit_s: float = 60.0,
    threads: int = 1,
    gap_rel: float = 1e-4,
    formulation: str = "auto",
    hierarchical: bool | None = None,
    min_count: int = 1,
    subsolver: str = "auto",
    holdout: float = 0.25,
) -> PlacementReport:
    """Solve the placement ILP for ``trace`` on ``cluster`` and compare it with round robin, greedy
    and local search (and the exact DP when ``experts == gpus`` and it is small).

    ``holdout``: share of the tokens (the last ones) kept out of the optimisation and used for the
    metrics, as a deployment would profile on one batch of traffic and serve the next; 0 evaluates
    on the fitted tokens, which flatters every optimiser (it also fits sampling noise, a few
    percent on a trace without affinity). ``hierarchical`` (default: when the cluster has more than
    16 GPUs in several nodes) solves nodes first, then GPUs; ``min_count`` drops affinity pairs
    seen fewer times from the ILP.
    """
    if not 0.0 <= holdout < 1.0:
        raise ValueError(f"holdout: expected a share in [0, 1), got {holdout}")
    n_eval = int(round(trace.tokens * holdout))
    if n_eval >= 1 and trace.tokens - n_eval >= 1:
        fit = RoutingTrace(trace.expert_ids[:trace.tokens - n_eval], trace.experts)
        evaluation = RoutingTrace(trace.expert_ids[trace.tokens - n_eval:], trace.experts)
    else:
        fit = evaluation = trace
    problem = PlacementProblem.from_trace(fit, min_count=min_count)
    if hierarchical is None:
        hierarchical = cluster.gpus > 16 and cluster.nodes > 1 and cluster.gpus_per_node > 1
    kw = dict(solver=solver, time_limit_s=time_limit_s, threads=threads, gap_rel=gap_rel,
              formulation=formulation, subsolver=subsolver)
    res = solve_hierarchical(problem, cluster, **kw) if hierarchical else solve_ilp(problem, cluster, **kw)
    placements = {
        "round_robin": round_robin(trace.layers, trace.experts, cluster),
        "greedy": greedy(problem, cluster),
        "local_search": local_search(problem, cluster),
    }
    states = exact_states(trace.experts, cluster)
    if states is not None and states <= 2000:
        placements["exact_dp"] = solve_exact(problem, cluster)
    placements["ilp"] = res.placement
    metrics = {k: evaluate_placement(p, evaluation, hidden_bytes, k) for k, p in placements.items()}
    info = {"tokens": trace.tokens, "tokens_fit": fit.tokens, "tokens_eval": evaluation.tokens,
            "held_out": evaluation is not fit, "layers": trace.layers, "experts": trace.experts,
            "top_k": trace.top_k, "affinity_concentration": affinity_concentration(trace),
            "ilp_edges": problem.edges, "min_count": min_count}
    return PlacementReport(cluster, info, float(hidden_bytes), metrics, placements, res)
