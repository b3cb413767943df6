"""A pool of a cluster layout as one serving replica: the step cost ``genz simulate`` runs on.

A pool with DP attention and expert parallelism steps together: every GPU runs its attention on its
own requests, then all of them meet in each MoE layer's all-to-all, so an iteration takes as long as
the busiest GPU's share. :class:`LayoutStepCost` therefore treats the whole pool (``nodes`` x GPUs
per node) as one replica of the serving simulation and costs an iteration with
:func:`genz.moe_cluster.step.pool_step` at the busiest GPU's batch.

Assumptions (named): the engine spreads an iteration's requests (decode) or new tokens (prefill)
evenly over the pool's attention groups, so the busiest group holds the ceiling of the mean; a
prefill iteration's chunks are costed as prompts of their mean length with nothing cached (a
prefix hit shortens the chunk, its attention over the cached part is not charged); an iteration with
both prefill chunks and decodes runs the two one after the other, prefill with DeepEP's normal
kernels and decode with the pool's (SGLang's ``--deepep-mode auto``); a step's energy is the pool's
GPUs at their power limit for its duration (an upper bound: the cluster step model times
communication, it does not integrate dynamic energy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

from genz.moe_cluster.layout import ClusterLayout, load_layout
from genz.moe_cluster.memory import kv_bytes_per_token, pool_memory
from genz.moe_cluster.routing import imbalance, place_experts, routing_probs
from genz.moe_cluster.step import pool_step
from genz.runtime import load_runtime
from hwmodels.clusters import load_cluster
from hwmodels.registry import load_device
from workloads import Precision, load_model


class LayoutStepCost:
    """Step cost of one pool of ``layout`` (``role``: ``prefill`` or ``decode``) as one replica;
    implements :class:`genz.serving.cost.StepCostModel`. Memory in bytes, power in watts, prices in
    USD per hour, all for the whole pool."""

    def __init__(self, layout: ClusterLayout, role: str, profile: str | None = "auto"):
        pool = layout.prefill if role == "prefill" else layout.decode
        if pool is None:
            raise ValueError(f"layout: has no {role} pool")
        self.model = load_model(layout.model)
        if not self.model.is_moe:
            raise ValueError(f"model: {self.model.name} has no experts; cluster layouts are for MoE models")
        self.precision = Precision.parse(layout.precision)
        self.cluster = load_cluster(layout.cluster)
        self.device = load_device(self.cluster.gpu, profile)
        self.runtime = load_runtime(layout.runtime)
        gpn = self.cluster.gpus_per_node
        pool.check(gpn, self.model.experts, self.model.heads)
        self.pool = pool
        self.role = role
        ep = pool.ep_size(gpn)
        self.placement, self.imbalance = None, 1.0
        if ep > 1:
            r = layout.routing
            probs = routing_probs(r["kind"], self.model.experts, self.model.top_k, float(r.get("skew", 0.0)),
                                  int(r.get("seed", 0)))
            self.placement = place_experts(probs, ep, pool.redundant_experts, pool.eplb)
            self.imbalance = imbalance(self.placement)
        self.devices = pool.gpus(gpn)
        mem = pool_memory(self.model, self.precision, pool, gpn, self.imbalance)
        per_gpu = self.device.memory_bytes
        self.memory_bytes = self.devices * per_gpu
        self.kv_capacity_bytes = self.devices * (per_gpu - (mem["total"] - mem["kv_cache"]))
        # each attention group keeps its requests' KV cache on every GPU of the group (MLA latent)
        self.kv_bytes_per_token = kv_bytes_per_token(self.model, self.precision) * pool.attention_tp
        price = self.device.price_per_hour_usd
        self.price_per_hour_usd = self.devices * price if price is not None else math.nan
        self.idle_power_w = self.devices * self.device.idle_power_w
        self._power_w = self.devices * self.device.power_limit_w
        self._groups = self.devices // pool.attention_tp
        self._cache: dict = {}

    def _seconds(self, role: str, per_gpu: int, context: int) -> float:
        key = (role, per_gpu, context)
        t = self._cache.get(key)
        if t is None:
            # DeepEP's low-latency kernels take at most a few hundred tokens per rank: prefill runs normal
            a2a = "normal" if (role == "prefill" and self.pool.a2a == "low_latency") else self.pool.a2a
            p = replace(self.pool, role=role, batch_per_gpu=per_gpu, context=context, a2a=a2a)
            t = pool_step(self.model, self.precision, p, self.cluster, self.device, self.runtime, self.placement,
                          self.imbalance).step_s
            self._cache[key] = t
        return t

    def step(self, prefill_chunks: tuple[tuple[int, int], ...], decode_contexts: tuple[int, ...]) -> tuple[float, float]:
        """Seconds and joules of one iteration of the whole pool (see the module docstring)."""
        t = 0.0
        if prefill_chunks:
            tokens = sum(n for n, _ in prefill_chunks)
            t += self._seconds("prefill", self._busiest(tokens), max(1, round(tokens / len(prefill_chunks))))
        if decode_contexts:
            n = len(decode_contexts)
            t += self._seconds("decode", self._busiest(n), max(1, round(sum(decode_contexts) / n)))
        return t, t * self._power_w

    def _busiest(self, total: int) -> int:
        """Per GPU of the busiest attention group when ``total`` tokens or requests spread evenly."""
        per_group = -(-total // self._groups)
        return max(1, -(-per_group // self.pool.attention_tp))

    def kv_link(self) -> tuple[float, float]:
        """Bandwidth (bytes/s) and latency (s) of the KV transfer out of this pool: every GPU's NICs
        at the cluster's achievable rate, each request's cache from the GPU that prefilled it."""
        return self.cluster.scale_out_bw * self.devices, self.cluster.scale_out_latency_s



@dataclass(frozen=True)
class LayoutUnit:
    """A layout file as one deployable unit (its pools together): ``path`` (absolute), its GPU's name,
    precision, attention TP of the decode pool and the GPUs of each pool (prefill 0 when it has none)."""

    path: str
    gpu: str
    precision: str
    attention_tp: int
    prefill_gpus: int
    decode_gpus: int

    @property
    def gpus(self) -> int:
        return self.prefill_gpus + self.decode_gpus

    @property
    def request_scale(self) -> int:
        """How many times a request count sized for one 8-GPU server a capacity run of this unit needs
        (a run that never fills the unit would cap its capacity at its offline throughput)."""
        return unit_request_scale(self.gpus)


def unit_request_scale(gpus: int) -> int:
    """``gpus`` / 8, rounded up, at least 1 (see :attr:`LayoutUnit.request_scale`)."""
    return max(1, -(-gpus // 8))


def layout_unit(path: str | Path) -> LayoutUnit:
    """Read a layout file as a :class:`LayoutUnit`; ``ValueError`` for a bad file or one without a
    decode pool (the replicas that generate tokens)."""
    lay = load_layout(path)
    cluster = load_cluster(lay.cluster)
    if lay.decode is None:
        raise ValueError(f"layout: {path} has no decode pool (the replicas that generate tokens)")
    gpn = cluster.gpus_per_node
    return LayoutUnit(str(Path(path).resolve()), load_device(cluster.gpu).name, Precision.parse(lay.precision).name,
                      lay.decode.attention_tp, lay.prefill.gpus(gpn) if lay.prefill is not None else 0,
                      lay.decode.gpus(gpn))
