"""``predict_cluster``: a layout of an MoE model on a cluster -> per-node prefill and decode
throughput, memory per GPU (fits or not), the time split, and the KV transfer between the pools.

KV transfer (PD disaggregation): each request's KV cache goes from its prefill GPU to its decode GPU
over RDMA, the sender's NICs at the cluster's achievable rate plus one network latency (assumption:
one GPU's NICs carry one request's cache; layer-by-layer streaming would hide part of it and is not
credited).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from genz.moe_cluster.layout import ClusterLayout, PoolLayout
from genz.moe_cluster.memory import kv_bytes_per_token, pool_memory
from genz.moe_cluster.routing import imbalance, place_experts, routing_probs
from genz.moe_cluster.step import StepTime, pool_step
from genz.predict import device_basis
from genz.runtime import load_runtime
from hwmodels.clusters import load_cluster
from hwmodels.registry import load_device
from workloads import Model, Precision, load_model


@dataclass
class PoolPrediction:
    """One pool's answer in SI units; ``tokens_per_s_per_node`` counts input tokens for prefill and
    output tokens for decode, per node of this pool."""

    role: str
    nodes: int
    gpus: int
    ep: int
    step_s: float
    tokens_per_s_per_node: float
    imbalance: float
    time: dict
    memory: dict
    capacity_bytes: float
    fits: bool

    def fit_message(self) -> str:
        need, have = self.memory["total"] / 1e9, self.capacity_bytes / 1e9
        return (f"fits: needs {need:.1f} GB of {have:.1f} GB per GPU" if self.fits
                else f"does not fit: needs {need:.1f} GB, has {have:.1f} GB per GPU")


@dataclass
class ClusterPrediction:
    model: str
    cluster: str
    gpu: str
    precision: str
    pools: dict
    kv_transfer_s: float | None = None
    basis: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _pool(model: Model, prec: Precision, pool: PoolLayout, layout: ClusterLayout, cluster, device, rt) -> PoolPrediction:
    gpn = cluster.gpus_per_node
    pool.check(gpn, model.experts, model.heads)
    ep = pool.ep_size(gpn)
    placement, imb = None, 1.0
    if model.is_moe and ep > 1:
        r = layout.routing
        probs = routing_probs(r["kind"], model.experts, model.top_k, float(r.get("skew", 0.0)), int(r.get("seed", 0)))
        placement = place_experts(probs, ep, pool.redundant_experts, pool.eplb)
        imb = imbalance(placement)
    t: StepTime = pool_step(model, prec, pool, cluster, device, rt, placement, imb)
    mem = pool_memory(model, prec, pool, gpn, imb)
    time = {k: v for k, v in asdict(t).items()}
    return PoolPrediction(role=pool.role, nodes=pool.nodes, gpus=pool.gpus(gpn), ep=ep, step_s=t.step_s,
                          tokens_per_s_per_node=gpn * pool.batch_per_gpu / t.step_s, imbalance=imb, time=time,
                          memory=mem, capacity_bytes=device.memory_bytes, fits=mem["total"] <= device.memory_bytes)


def predict_cluster(layout: ClusterLayout, profile: str | None = "auto") -> ClusterPrediction:
    """Evaluate every pool of ``layout`` (see :mod:`genz.moe_cluster`)."""
    model = load_model(layout.model)
    if not model.is_moe:
        raise ValueError(f"model: {model.name} has no experts; cluster layouts are for MoE models")
    prec = Precision.parse(layout.precision)
    cluster = load_cluster(layout.cluster)
    device = load_device(cluster.gpu, profile)
    rt = load_runtime(layout.runtime)
    pools = {p.role: _pool(model, prec, p, layout, cluster, device, rt) for p in layout.pools}
    kv = None
    if layout.prefill is not None and layout.decode is not None:
        nbytes = layout.prefill.context * kv_bytes_per_token(model, prec)
        kv = nbytes / cluster.scale_out_bw + cluster.scale_out_latency_s
    return ClusterPrediction(model=model.name, cluster=cluster.name, gpu=device.name, precision=prec.name,
                             pools=pools, kv_transfer_s=kv, basis=device_basis(device))
