"""The expert-placement problem: a cluster, a placement, and the aggregated affinity to serve.

Cost model (after ExFlow, IPDPS'24). Attention is data-parallel and a token's activation stays on
the GPU where its MoE layer ran: with top-k > 1 its *home* after layer ``l`` is the GPU of its slot-0
(highest-scoring) expert. At layer ``l + 1`` the token is dispatched to each of its ``k`` experts;
every copy whose GPU differs from the home GPU is one hop, costing ``intra_node_cost`` inside a node
and ``inter_node_cost`` across nodes. (Assumption: the combine of the other slots' outputs into the
new home is not charged, matching ExFlow's "one all-to-all per layer".) Tokens entering the first
MoE layer are spread by data parallelism, so only the ``layers - 1`` transitions between MoE layers
depend on the placement.

Because the cost only depends on which (layer-``l`` expert, layer-``l+1`` expert) pairs tokens
take, the problem is stored as weighted edges: ``weight`` tokens go from ``(l, src)`` to
``(l + 1, dst)`` (see :func:`workloads.routing.affinity_matrices`, ``pairs="home"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from workloads.routing import RoutingTrace, affinity_matrices

__all__ = ["Cluster", "Placement", "PlacementProblem"]


def _positive_int(name: str, v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
        raise ValueError(f"{name}: expected a positive int, got {v!r}")
    return int(v)


@dataclass(frozen=True)
class Cluster:
    """GPUs grouped in nodes, with the hop cost of moving a token between two GPUs.

    GPU ``g`` lives in node ``g // gpus_per_node``. Costs are unitless hop weights (ExFlow: 1 for an
    intra-node NVLink hop, 2 for an inter-node InfiniBand hop).
    """

    nodes: int = 1
    gpus_per_node: int = 8
    intra_node_cost: float = 1.0
    inter_node_cost: float = 2.0

    def __post_init__(self) -> None:
        _positive_int("nodes", self.nodes)
        _positive_int("gpus_per_node", self.gpus_per_node)
        if not self.intra_node_cost > 0:
            raise ValueError(f"intra_node_cost: expected > 0, got {self.intra_node_cost}")
        if not self.inter_node_cost >= self.intra_node_cost:
            raise ValueError(
                f"inter_node_cost: expected >= intra_node_cost ({self.intra_node_cost}), "
                f"got {self.inter_node_cost}"
            )

    @property
    def gpus(self) -> int:
        return self.nodes * self.gpus_per_node

    def node_of(self, gpu: np.ndarray | int) -> np.ndarray:
        """Node index of each GPU index."""
        return np.asarray(gpu) // self.gpus_per_node

    def cost_matrix(self) -> np.ndarray:
        """``(G, G)`` hop cost between GPUs: 0 on the diagonal, intra or inter elsewhere."""
        g = np.arange(self.gpus)
        same_node = self.node_of(g)[:, None] == self.node_of(g)[None, :]
        cost = np.where(same_node, self.intra_node_cost, self.inter_node_cost).astype(float)
        np.fill_diagonal(cost, 0.0)
        return cost

    def to_dict(self) -> dict:
        return {
            "nodes": self.nodes,
            "gpus_per_node": self.gpus_per_node,
            "gpus": self.gpus,
            "intra_node_cost": self.intra_node_cost,
            "inter_node_cost": self.inter_node_cost,
        }


def check_divisible(experts: int, gpus: int) -> int:
    """Experts per GPU per layer; ValueError when the balance constraint cannot hold."""
    if experts % gpus:
        raise ValueError(
            f"experts: {experts} experts per layer is not divisible by gpus={gpus}; the balance "
            f"constraint (each GPU holds experts/gpus experts of every layer) needs a multiple of {gpus}"
        )
    return experts // gpus


@dataclass(frozen=True)
class Placement:
    """``gpu_of[l, e]``: the GPU holding expert ``e`` of MoE layer ``l``."""

    gpu_of: np.ndarray
    cluster: Cluster

    def __post_init__(self) -> None:
        g = np.asarray(self.gpu_of)
        if g.ndim != 2:
            raise ValueError(f"gpu_of: expected a (layers, experts) array, got shape {g.shape}")
        if g.size and (g.min() < 0 or g.max() >= self.cluster.gpus):
            raise ValueError(f"gpu_of: GPU ids must lie in [0, {self.cluster.gpus})")
        g = g.astype(np.int64, copy=True)
        g.setflags(write=False)
        object.__setattr__(self, "gpu_of", g)

    @property
    def layers(self) -> int:
        return int(self.gpu_of.shape[0])

    @property
    def experts(self) -> int:
        return int(self.gpu_of.shape[1])

    def node_of(self) -> np.ndarray:
        """``(layers, experts)`` node index of each expert."""
        return self.cluster.node_of(self.gpu_of)

    def experts_per_gpu(self) -> np.ndarray:
        """``(layers, gpus)`` count of experts each GPU holds at each layer."""
        out = np.zeros((self.layers, self.cluster.gpus), dtype=np.int64)
        for layer in range(self.layers):
            out[layer] = np.bincount(self.gpu_of[layer], minlength=self.cluster.gpus)
        return out

    def is_balanced(self) -> bool:
        """True when every GPU holds ``experts / gpus`` experts of every layer."""
        if self.experts % self.cluster.gpus:
            return False
        return bool(np.all(self.experts_per_gpu() == self.experts // self.cluster.gpus))

    def to_dict(self) -> dict:
        return {"cluster": self.cluster.to_dict(), "gpu_of": self.gpu_of.tolist()}


@dataclass(frozen=True)
class PlacementProblem:
    """Aggregated affinity edges of a routing trace, in the form the solvers consume.

    Attributes:
        layers: MoE layers.
        experts: experts per layer (in a sub-problem: the local experts, numbered 0..experts-1).
        tokens: tokens of the trace; the normaliser is ``tokens * (layers - 1)`` transitions.
        layer, src, dst, weight: parallel int arrays; ``weight`` dispatched copies go from expert
            ``src`` at layer ``layer`` to expert ``dst`` at layer ``layer + 1``.
        expert_ids: ``(layers, experts)`` global expert id of each local expert (identity for a
            full problem; a subset per layer in a hierarchical sub-problem).
    """

    layers: int
    experts: int
    tokens: int
    layer: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray
    expert_ids: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        _positive_int("layers", self.layers)
        _positive_int("experts", self.experts)
        _positive_int("tokens", self.tokens)
        if self.expert_ids is None:
            ids = np.tile(np.arange(self.experts), (self.layers, 1))
            object.__setattr__(self, "expert_ids", ids)

    @classmethod
    def from_trace(cls, trace: RoutingTrace, min_count: int = 1) -> PlacementProblem:
        """Edges of ``trace`` under the home rule; pairs seen fewer than ``min_count`` times are
        dropped (a size knob for large problems: the evaluation still uses the whole trace)."""
        _positive_int("min_count", min_count)
        mats = affinity_matrices(trace, pairs="home")
        layer, src, dst = np.nonzero(mats >= min_count)
        return cls(
            layers=trace.layers,
            experts=trace.experts,
            tokens=trace.tokens,
            layer=layer.astype(np.int64),
            src=src.astype(np.int64),
            dst=dst.astype(np.int64),
            weight=mats[layer, src, dst].astype(np.int64),
        )

    @property
    def transitions(self) -> int:
        """Token-layer transitions the mean cost is taken over: ``tokens * (layers - 1)``."""
        return self.tokens * max(self.layers - 1, 1)

    @property
    def edges(self) -> int:
        return int(self.weight.size)

    def hop_cost(self, gpu_of: np.ndarray, cluster: Cluster) -> float:
        """Mean hop cost per token per layer transition of a ``(layers, experts)`` placement."""
        c = cluster.cost_matrix()
        g_src = gpu_of[self.layer, self.src]
        g_dst = gpu_of[self.layer + 1, self.dst]
        return float(np.sum(self.weight * c[g_src, g_dst]) / self.transitions)

    def heaviest(self, max_edges: int) -> PlacementProblem:
        """The same problem keeping only the ``max_edges`` heaviest edges (ties: first in order)."""
        if self.edges <= max_edges:
            return self
        keep = np.sort(np.argsort(-self.weight, kind="stable")[:max_edges])
        return PlacementProblem(self.layers, self.experts, self.tokens, self.layer[keep], self.src[keep],
                                self.dst[keep], self.weight[keep], self.expert_ids)

    def layer_window(self, first: int, last: int) -> PlacementProblem:
        """The problem restricted to layers ``first .. last`` (inclusive), renumbered from 0; only
        the transitions between those layers remain."""
        if not 0 <= first < last < self.layers:
            raise ValueError(f"first, last: need 0 <= first < last < {self.layers}, got {first}, {last}")
        m = (self.layer >= first) & (self.layer < last)
        return PlacementProblem(
            layers=last - first + 1, experts=self.experts, tokens=self.tokens,
            layer=self.layer[m] - first, src=self.src[m], dst=self.dst[m], weight=self.weight[m],
            expert_ids=self.expert_ids[first:last + 1],
        )

    def subproblem(self, keep: np.ndarray) -> PlacementProblem:
        """Restrict to the experts marked in the boolean ``(layers, experts)`` mask ``keep``.

        Every layer must keep the same number of experts; they are renumbered 0..k-1 in order, and
        only edges with both ends kept survive (the others cost the same whatever the sub-placement).
        """
        keep = np.asarray(keep, dtype=bool)
        per_layer = keep.sum(axis=1)
        if keep.shape != (self.layers, self.experts) or np.any(per_layer != per_layer[0]):
            raise ValueError("keep: expected a (layers, experts) mask with equal counts per layer")
        local = np.cumsum(keep, axis=1) - 1
        m = keep[self.layer, self.src] & keep[self.layer + 1, self.dst]
        ids = np.array([self.expert_ids[layer][keep[layer]] for layer in range(self.layers)])
        return PlacementProblem(
            layers=self.layers,
            experts=int(per_layer[0]),
            tokens=self.tokens,
            layer=self.layer[m],
            src=local[self.layer[m], self.src[m]],
            dst=local[self.layer[m] + 1, self.dst[m]],
            weight=self.weight[m],
            expert_ids=ids,
        )
