"""Parallel layouts of an MoE model on a cluster: one per pool (prefill, decode), and the file that
holds them (YAML or JSON).

A pool of ``nodes`` nodes runs attention in ``attention_tp``-way tensor-parallel groups, data-parallel
across the pool (``attention_tp: 1`` is SGLang's DP attention); the dense FFN layers and the shared
experts run like attention (DP, or TP over the same group). Routed experts run either expert-parallel
over ``ep`` GPUs (``ep > 1``; ``redundant_experts`` extra slots, placed from routing statistics when
``eplb``) or tensor-sliced ``moe_tp`` ways (``ep == 1``; with ``attention_tp == 1`` each MoE layer
all-gathers the tokens of the ``moe_tp`` attention replicas and reduce-scatters the result, SGLang's
TP MoE with DP attention; ``dp_gather`` says by which collectives). ``a2a`` picks the all-to-all (:mod:`genz.moe_cluster.comm`).
``batch_per_gpu`` is tokens per GPU per prefill step (prompts of ``context`` tokens) or requests per
GPU in a decode step (KV length ``context``). ``two_batch_overlap`` splits a step into two
micro-batches whose compute and communication overlap, hiding ``overlap_efficiency`` of the shorter
of each concurrent pair (:data:`OVERLAP_EFFICIENCY`, calibrated; 1 is perfect overlap).

Example file::

    model: deepseek-v3
    precision: fp8
    cluster: dgx-h100
    routing: uniform          # or {kind: zipf, skew: 1.0}
    prefill: {nodes: 4, ep: 32, redundant_experts: 32, a2a: normal, batch_per_gpu: 16384, context: 4096}
    decode: {nodes: 9, ep: 72, redundant_experts: 32, a2a: low_latency, batch_per_gpu: 256, context: 2000}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

from genz.moe_cluster.comm import A2A_MODES
from workloads import Model

ROLES = ("prefill", "decode")
#: How DP attention hands its tokens to tensor-sliced experts (``ep == 1``): ``all_gather`` (SGLang
#: since mid-2025: all-gather in, reduce-scatter out) or ``all_reduce`` (SGLang's first DP attention,
#: to about June 2025: each rank zero-fills the global buffer, copies its tokens into its slot and
#: all-reduces it; the MoE output is all-reduced before each rank takes its slice: twice the bytes).
DP_GATHER_MODES = ("all_gather", "all_reduce")
#: Share of the shorter of two concurrent stages (one micro-batch's compute, the other's
#: communication) that two-batch overlap hides; the rest runs as if in series (1: perfect overlap).
#: Calibrated, not sourced: the one value for which the model gives SGLang's decode TBO gain of
#: +25.5 % at 256 requests per GPU (LMSYS blog 2025-05-05, two-batch-overlap ablation;
#: ``python -m validation.reproductions.sglang_deepseek_v3 --calibrate`` re-derives it). The
#: reproduction's other figures (prefill TBO gain, the decode gain against batch, per-node
#: throughputs, DeepSeek's profiles) are not used by the fit and are reported against it.
OVERLAP_EFFICIENCY = 0.707


@dataclass(frozen=True)
class PoolLayout:
    """How one pool (prefill or decode) is laid out; see the module docstring."""

    role: str
    nodes: int
    batch_per_gpu: int
    context: int
    attention_tp: int = 1
    ep: int = 0  # 0: every GPU of the pool
    moe_tp: int = 1
    redundant_experts: int = 0
    eplb: bool = True
    a2a: str = "normal"
    two_batch_overlap: bool = True
    comm_sms: int = 20
    nvlink_peers: bool = False
    overlap_efficiency: float = OVERLAP_EFFICIENCY
    dp_gather: str = "all_gather"

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role: must be one of {', '.join(ROLES)}, got {self.role!r}")
        for name in ("nodes", "batch_per_gpu", "context", "attention_tp", "moe_tp"):
            _pos_int(f"{self.role}.{name}", getattr(self, name))
        for name in ("ep", "redundant_experts", "comm_sms"):
            _pos_int(f"{self.role}.{name}", getattr(self, name), lo=0)
        if self.a2a not in A2A_MODES:
            raise ValueError(f"{self.role}.a2a: must be one of {', '.join(A2A_MODES)}, got {self.a2a!r}")
        for name in ("eplb", "two_batch_overlap", "nvlink_peers"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{self.role}.{name}: must be true or false, got {getattr(self, name)!r}")
        if self.dp_gather not in DP_GATHER_MODES:
            raise ValueError(f"{self.role}.dp_gather: must be one of {', '.join(DP_GATHER_MODES)}, got {self.dp_gather!r}")
        eta = self.overlap_efficiency
        if isinstance(eta, bool) or not isinstance(eta, int | float) or not 0.0 <= eta <= 1.0:
            raise ValueError(f"{self.role}.overlap_efficiency: must be a number from 0 (no overlap) to 1 (perfect), "
                             f"got {eta!r}")

    def gpus(self, gpus_per_node: int) -> int:
        return self.nodes * gpus_per_node

    def ep_size(self, gpus_per_node: int) -> int:
        return self.ep or self.gpus(gpus_per_node)

    def check(self, gpus_per_node: int, experts: int, heads: int) -> None:
        """``ValueError`` naming the field when the layout does not fit the cluster or the model."""
        g, ep = self.gpus(gpus_per_node), self.ep_size(gpus_per_node)
        r = self.role
        if g % self.attention_tp or heads % self.attention_tp:
            raise ValueError(f"{r}.attention_tp: {self.attention_tp} must divide the pool's {g} GPUs and the "
                             f"model's {heads} heads")
        if ep > g or g % ep:
            raise ValueError(f"{r}.ep: {ep} must divide the pool's {g} GPUs")
        if ep > 1 and self.moe_tp > 1:
            raise ValueError(f"{r}.moe_tp: routed experts are either expert-parallel (ep > 1) or tensor-sliced "
                             f"(moe_tp > 1), got ep {ep} and moe_tp {self.moe_tp}")
        if ep > 1 and (experts + self.redundant_experts) % ep:
            raise ValueError(f"{r}.ep: {ep} must divide the {experts} experts + {self.redundant_experts} redundant")
        if ep == 1 and (g % self.moe_tp or self.moe_tp % self.attention_tp):
            raise ValueError(f"{r}.moe_tp: {self.moe_tp} must divide the pool's {g} GPUs and be a multiple of "
                             f"attention_tp {self.attention_tp}")


@dataclass(frozen=True)
class ClusterLayout:
    """A model served on a cluster by a prefill pool and/or a decode pool."""

    model: str | Model
    cluster: str
    precision: str = "fp8"
    runtime: str = "sglang"
    routing: dict = field(default_factory=lambda: {"kind": "uniform"})
    prefill: PoolLayout | None = None
    decode: PoolLayout | None = None

    def __post_init__(self) -> None:
        if self.prefill is None and self.decode is None:
            raise ValueError("layout: needs a prefill pool, a decode pool or both")
        kind = self.routing.get("kind") if isinstance(self.routing, dict) else None
        if kind not in ("uniform", "zipf"):
            raise ValueError(f"routing.kind: must be 'uniform' or 'zipf', got {kind!r}")

    @property
    def pools(self) -> list[PoolLayout]:
        return [p for p in (self.prefill, self.decode) if p is not None]


def _pos_int(name: str, v, lo: int = 1) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ValueError(f"{name}: must be an integer >= {lo}, got {v!r}")


def layout_from_dict(data: dict) -> ClusterLayout:
    """A :class:`ClusterLayout` from a parsed file; unknown keys are errors naming the key."""
    if not isinstance(data, dict):
        raise ValueError("layout: the file must hold a mapping (model, cluster, prefill, decode, ...)")
    top = {f.name for f in fields(ClusterLayout)}
    unknown = set(data) - top
    if unknown:
        raise ValueError(f"layout: unknown keys {sorted(unknown)}; allowed: {sorted(top)}")
    for key in ("model", "cluster"):
        if not isinstance(data.get(key), str):
            raise ValueError(f"{key}: required, a name (genz list models / hwmodels/data/clusters)")
    pool_keys = {f.name for f in fields(PoolLayout)} - {"role"}
    kw = dict(data)
    for role in ROLES:
        if data.get(role) is None:
            continue
        p = data[role]
        if not isinstance(p, dict):
            raise ValueError(f"{role}: must be a mapping of {sorted(pool_keys)}")
        bad = set(p) - pool_keys
        if bad:
            raise ValueError(f"{role}: unknown keys {sorted(bad)}; allowed: {sorted(pool_keys)}")
        kw[role] = PoolLayout(role=role, **p)
    if isinstance(kw.get("routing"), str):
        kw["routing"] = {"kind": kw["routing"]}
    return ClusterLayout(**kw)


def load_layout(path: str | Path) -> ClusterLayout:
    """Read a layout file (``.yaml``/``.yml`` or ``.json``)."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"layout: file {p} does not exist")
    text = p.read_text()
    if p.suffix in (".yaml", ".yml"):
        from workloads.yamlfile import load_yaml

        data = load_yaml(text, f"layout: {p}")
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"layout: {p} is not valid JSON: {e}") from None
    return layout_from_dict(data)
