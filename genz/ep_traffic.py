"""Where a MoE layer's routed tokens travel under expert parallelism, split by link class.

An :class:`EPTraffic` says, per token and MoE layer, how many copies of the token's hidden vector
leave its GPU for another GPU of the same node (NVLink) and for a GPU of another node (the network),
how uneven the experts' load is over the GPUs, and how many all-to-alls a layer runs. The operator
table (:func:`genz.operators.build_table`) turns it into one all-to-all row per link class, each at
its own bandwidth and latency, and scales the routed expert work by the busiest GPU's load.

Two sources:

- :func:`uniform_traffic`: experts spread evenly and tokens routed uniformly, as vLLM and DeepSpeed
  run EP by default: a dispatch and a combine per layer, ``k (G - 1) / P`` copies to other GPUs of
  the node and ``k (P - G) / P`` to other nodes (``P`` GPUs, ``G`` per node, top-``k``).
- :func:`traffic_from_placement`: a ``genz place`` results file (one placement method of it). Its
  hop metrics follow ExFlow's context-coherent scheme (a token stays on the GPU of its previous
  layer's first expert, so a layer runs one all-to-all instead of two), and its load imbalance is
  the busiest GPU's received copies over the mean on the routing trace it was measured on.

Assumptions (named): the combine of the non-home experts' outputs rides in the next layer's single
all-to-all under the coherent scheme (ExFlow: one all-to-all per layer); the NVLink and network parts
of an all-to-all are costed one after the other (an upper bound: NCCL overlaps them partly); the
busiest GPU receives ``load_imbalance`` times the mean copies, so both its expert work and its
received bytes scale by it, while per-message latencies do not.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

__all__ = ["EPTraffic", "PLACEMENT_METHODS", "load_placement_traffic", "traffic_from_placement", "uniform_traffic"]

PLACEMENT_METHODS = ("round_robin", "greedy", "local_search", "exact_dp", "ilp")
"""Method names a ``genz place`` results file may hold (``methods`` keys)."""


@dataclass(frozen=True)
class EPTraffic:
    """Routed-token traffic of one EP group (``gpus`` GPUs, ``gpus_per_node`` per node).

    ``intra_node_copies`` / ``inter_node_copies``: copies of one token's hidden vector sent per MoE
    layer and all-to-all to another GPU of its node / of another node (0 ... top_k).
    ``load_imbalance``: busiest GPU's routed copies over the mean (>= 1). ``all_to_alls_per_layer``:
    2 (dispatch and combine) or 1 (ExFlow's coherent scheme). ``source``: where the figures came from.
    """

    gpus: int
    gpus_per_node: int
    intra_node_copies: float
    inter_node_copies: float
    load_imbalance: float = 1.0
    all_to_alls_per_layer: int = 2
    source: str = ""

    def __post_init__(self) -> None:
        for name in ("gpus", "gpus_per_node", "all_to_alls_per_layer"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"ep_traffic.{name}: must be an integer >= 1, got {v!r}")
        if self.all_to_alls_per_layer > 2:
            raise ValueError(f"ep_traffic.all_to_alls_per_layer: must be 1 or 2, got {self.all_to_alls_per_layer}")
        for name in ("intra_node_copies", "inter_node_copies"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise ValueError(f"ep_traffic.{name}: must be a finite number >= 0, got {v!r}")
        if self.nodes == 1 and self.inter_node_copies > 0:
            raise ValueError("ep_traffic.inter_node_copies: must be 0 when the EP group is one node")
        if not (isinstance(self.load_imbalance, int | float) and math.isfinite(self.load_imbalance)
                and self.load_imbalance >= 1.0 - 1e-9):
            raise ValueError(f"ep_traffic.load_imbalance: must be a finite number >= 1, got {self.load_imbalance!r}")

    @property
    def nodes(self) -> int:
        """Nodes the EP group spans (the last one partly filled when ``gpus_per_node`` does not divide it)."""
        return -(-self.gpus // self.node_gpus)

    @property
    def node_gpus(self) -> int:
        """GPUs of the EP group in one node."""
        return min(self.gpus_per_node, self.gpus)


def uniform_traffic(gpus: int, gpus_per_node: int, top_k: int, remote_fraction: float | None = None,
                    load_imbalance: float = 1.0) -> EPTraffic:
    """Experts spread evenly, a dispatch and a combine per layer; ``remote_fraction`` of a token's
    ``top_k`` copies leave its GPU (default ``(P - 1) / P``: uniform routing over ``P`` GPUs), spread
    over the other GPUs in proportion (``G - 1`` of them in the node, ``P - G`` beyond it).

    >>> t = uniform_traffic(8, 4, 2)
    >>> t.intra_node_copies, t.inter_node_copies
    (0.75, 1.0)
    """
    g = min(gpus_per_node, gpus)
    if gpus <= 1:
        return EPTraffic(max(gpus, 1), gpus_per_node, 0.0, 0.0, load_imbalance, 2, "one GPU: no all-to-all")
    if remote_fraction is None:
        remote_fraction, source = (gpus - 1) / gpus, "uniform routing over evenly spread experts"
    elif not (isinstance(remote_fraction, int | float) and 0.0 <= remote_fraction <= 1.0):
        raise ValueError(f"ep_remote_fraction: must be in [0, 1], got {remote_fraction!r}")
    else:
        source = f"{remote_fraction:.3g} of the routed copies leave their GPU"
    leave = top_k * remote_fraction / (gpus - 1)  # copies per other GPU
    return EPTraffic(gpus, gpus_per_node, leave * (g - 1), leave * (gpus - g), load_imbalance, 2, source)


def traffic_from_placement(payload: dict, method: str = "ilp", where: str = "placement") -> EPTraffic:
    """The traffic of one method of a ``genz place`` results file (its parsed JSON).

    ``cross_gpu_hops_per_token_layer`` copies leave the home GPU per layer transition, of which
    ``inter_node_hops_per_token_layer`` leave the node; one all-to-all per layer (ExFlow's scheme).
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("methods"), dict) \
            or not isinstance(payload.get("cluster"), dict):
        raise ValueError(f"{where}: not a genz place results file (needs 'cluster' and 'methods')")
    methods = payload["methods"]
    if method not in methods:
        raise ValueError(f"{where}: method {method!r} is not in the file; it holds {', '.join(sorted(methods))}")
    m, cl = methods[method], payload["cluster"]
    try:
        nodes, gpn = int(cl["nodes"]), int(cl["gpus_per_node"])
        cross, inter = float(m["cross_gpu_hops_per_token_layer"]), float(m["inter_node_hops_per_token_layer"])
        load = float(m.get("load_imbalance", 1.0))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where}: method {method!r} lacks a usable field ({exc})") from None
    if not (math.isfinite(cross) and math.isfinite(inter) and 0 <= inter <= cross + 1e-12):
        raise ValueError(f"{where}: method {method!r} has hops cross={cross!r}, inter={inter!r} "
                         "(needs 0 <= inter-node <= cross-GPU)")
    if nodes < 1 or gpn < 1:
        raise ValueError(f"{where}: cluster needs nodes >= 1 and gpus_per_node >= 1, got {cl!r}")
    return EPTraffic(nodes * gpn, gpn, cross - inter, inter, max(load, 1.0), 1,
                     f"genz place {method} ({payload.get('experts', '?')} experts, {nodes} x {gpn} GPUs)")


def load_placement_traffic(path: str | Path, method: str = "ilp") -> tuple[EPTraffic, dict]:
    """:func:`traffic_from_placement` of the file at ``path``; also returns the file's header
    (experts, layers, model) for the caller's consistency checks."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"placement: file {p} does not exist")
    try:
        payload = json.loads(p.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"placement: {p} is not valid JSON ({exc})") from None
    t = traffic_from_placement(payload, method, f"placement {p}")
    return t, {k: payload.get(k) for k in ("experts", "layers", "model", "tokens")}
