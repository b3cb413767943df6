"""One step of a pool (a prefill batch or a decode iteration) on one GPU: compute from the operator
table, communication on the cluster's two link classes, two-batch overlap, the busiest GPU.

Compute comes from :func:`genz.operators.build_table` on the device model (its efficiency profile
and the runtime's kernel stack): attention, dense FFN layers and the ends (embedding, LM head) from a
table of one attention group; the MoE rows (router, routed and shared experts) from a table of the
EP group, whose physical experts carry the placement's token shares, so the expert GEMMs are those
of the busiest GPU. Collective rows of those tables are dropped and costed on the topology instead
(:mod:`genz.moe_cluster.comm`); the busiest GPU also receives ``imbalance`` times the mean traffic.

Two-batch overlap (SGLang's TBO, DeepSeek's two micro-batches; assumption on the stage pairing): the
batch runs as two micro-batches; in every MoE layer each compute stage of one micro-batch runs next to
a communication stage of the other: (attention A | combine B of the previous layer), (attention B |
dispatch A), (MoE A | dispatch B), (MoE B | combine A), so a layer takes
``s(a, c) + s(a, d) + s(m, d) + s(m, c)`` with a, m the compute and d, c the communication of one
micro-batch and ``s(x, y) = max(x, y) + (1 - eta) min(x, y)``: a stage hides ``eta`` (the pool's
``overlap_efficiency``) of its shorter part. Assumption: concurrent compute and communication kernels
interfere (SMs, memory, the synchronisation at each stage boundary) by a fixed share of the overlap;
``eta`` is calibrated on one SGLang ablation (:data:`genz.moe_cluster.layout.OVERLAP_EFFICIENCY`),
``eta = 1`` is the ideal pairing. While DeepEP normal kernels run they hold ``comm_sms`` SMs, slowing the compute next
to them by ``sms / (sms - comm_sms)`` (DeepSeek-V3 report 3.2.2: 20 of 132 SMs; DeepEP's default
``Buffer.num_sms`` is 20); low-latency kernels receive by hooks and hold none (DeepEP README).
Without overlap the stages run one after another. The dense layers and the ends are never overlapped.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from genz.moe_cluster.comm import Comm, all_gather, all_reduce, ep_all_to_all
from genz.moe_cluster.layout import PoolLayout
from genz.moe_cluster.routing import Placement
from genz.operators import build_table
from genz.runtime import Runtime
from genz.shapes import decode, prefill
from hwmodels.clusters import ClusterSpec
from workloads import Model, Precision

_ATTN = {"norm", "q_a_proj", "q_b_proj", "q_proj", "kv_a_proj", "kv_b_proj", "qkv_proj", "rope", "kv_cache_write",
         "attention_prefill", "attention_decode", "o_proj", "residual_add"}
_DENSE = {"gate_up_proj", "fc1", "activation", "down_proj", "fc2"}
_ENDS = {"embedding", "final_norm", "lm_head", "sampling", "host_python"}
_MOE = {"router", "router_topk", "experts_gate_up", "experts_down", "experts_activation", "moe_dispatch_combine",
        "moe_host_sync", "shared_gate_up_proj", "shared_fc1", "shared_activation", "shared_down_proj", "shared_fc2"}


@dataclass(frozen=True)
class StepTime:
    """Seconds of one step on the busiest GPU and how they split. ``compute_s`` is the compute the
    GPU runs (both micro-batches, without SM sharing); ``intra_s`` / ``inter_s`` the time the NVLink
    and network transfers take; ``comm_s`` the elapsed communication including latencies;
    ``hidden_s`` the part of compute and communication that overlap hides; ``step_s`` the total
    (``compute_s + comm_s - hidden_s + cpu_s``)."""

    step_s: float
    compute_s: float
    intra_s: float
    inter_s: float
    comm_s: float
    hidden_s: float
    cpu_s: float
    per_layer: dict


def _group_time(device, table, names: set, cuda_graphs: bool) -> float:
    c = device.cost(table, cuda_graphs=cuda_graphs)
    t = c.time_s[:, 0] * table.count
    keep = np.array([n in names for n in table.name])
    return float(t[keep].sum())


def _msg_bytes(model: Model, precision: Precision, mode: str) -> tuple[float, float]:
    """Bytes per token on the wire for dispatch (FP8 with one fp32 scale per 128 values when the model
    computes in FP8; DeepEP low-latency adds a 16-byte header) and combine (BF16)."""
    h = model.hidden
    d = h + h / 128 * 4 if precision.compute_dtype == "fp8" else 2.0 * h
    if mode == "low_latency":
        d += 16
    return d, 2.0 * h


def pool_step(model: Model, precision: Precision, pool: PoolLayout, cluster: ClusterSpec, device,
              runtime: Runtime, placement: Placement | None, imbalance: float) -> StepTime:
    """One step of ``pool`` (see the module docstring); ``placement`` for expert parallelism."""
    gpn = cluster.gpus_per_node
    ep = pool.ep_size(gpn)
    atp = pool.attention_tp
    mb = 2 if pool.two_batch_overlap else 1
    graphs = pool.role == "decode"
    per_mb = pool.batch_per_gpu / mb

    def shape(gpus: int):
        if pool.role == "prefill":
            return prefill(per_mb * gpus / pool.context, pool.context)
        return decode(per_mb * gpus, pool.context)

    kw = dict(runtime=runtime, gpus_per_node=gpn)
    ta = build_table(model, shape(atp), precision, tp=atp, **kw)
    attn, dense, ends = (_group_time(device, ta, s, graphs) for s in (_ATTN, _DENSE, _ENDS))
    L, Lm = model.layers, model.moe_layers
    tokens_group = per_mb * atp  # tokens of one attention group per micro-batch
    ar = all_reduce(tokens_group * model.hidden * 2.0, atp, cluster)  # after attention and each TP MLP
    a_layer = attn / L + ar.time_s
    other = attn * model.dense_mlp_layers / L + dense + ends + ar.time_s * 2 * model.dense_mlp_layers
    comm_serial = ar.scaled(L + model.dense_mlp_layers)
    moe, d, c = 0.0, Comm(), Comm()
    if model.is_moe and Lm:
        if ep > 1:
            phys = replace(model, experts=model.experts + pool.redundant_experts)
            tb = build_table(phys, shape(ep), precision, tp=1, ep=ep, expert_probs=placement.load.ravel(), **kw)
            msg_d, msg_c = _msg_bytes(model, precision, pool.a2a)
            a2a = dict(top_k=model.top_k, slots=phys.experts, ep=ep, cluster=cluster, mode=pool.a2a, tp=atp,
                       nvlink_peers=pool.nvlink_peers)
            tok = tokens_group if pool.a2a == "coordinated" else per_mb
            d = ep_all_to_all(tok, msg_d, **a2a).busiest(imbalance)
            c = ep_all_to_all(tok, msg_c, **a2a).busiest(imbalance)
            if pool.a2a == "coordinated" and atp > 1:
                c = c + all_gather(tokens_group * model.hidden * 2.0, atp, cluster)
        else:
            tb = build_table(model, shape(pool.moe_tp), precision, tp=pool.moe_tp, ep=1, **kw)
            act = per_mb * pool.moe_tp * model.hidden * 2.0
            if pool.moe_tp == atp:  # plain TP: one all-reduce after the MoE block
                c = all_reduce(tokens_group * model.hidden * 2.0, atp, cluster)
            else:  # DP attention: gather the replicas' tokens, reduce-scatter the outputs (or all-reduce both)
                coll = all_reduce if pool.dp_gather == "all_reduce" else all_gather
                d = coll(act, pool.moe_tp // atp, cluster)
                c = coll(act, pool.moe_tp // atp, cluster)
        moe = _group_time(device, tb, _MOE, graphs) / Lm
    if mb == 2:
        f = device.spec.sm_count / (device.spec.sm_count - pool.comm_sms) if pool.a2a == "normal" and ep > 1 else 1.0
        a, m = a_layer * f, moe * f
        eta = pool.overlap_efficiency

        def stage(x: float, y: float) -> float:
            return max(x, y) + (1.0 - eta) * min(x, y)

        layer = stage(a, c.time_s) + stage(a, d.time_s) + stage(m, d.time_s) + stage(m, c.time_s)
    else:
        layer = a_layer + d.time_s + moe + c.time_s
    gpu = Lm * layer + mb * other
    compute = mb * (Lm * (attn / L + moe) + other)
    comm = comm_serial.scaled(mb) + (d + c).scaled(mb * Lm)
    seqs = pool.batch_per_gpu * atp / (pool.context if pool.role == "prefill" else 1)
    cpu = float(runtime.exposed_cpu(runtime.cpu_seconds(seqs, pool.batch_per_gpu * atp), gpu))
    hidden = max(compute + comm.time_s - gpu, 0.0)
    return StepTime(step_s=gpu + cpu, compute_s=compute, intra_s=comm.intra_s, inter_s=comm.inter_s,
                    comm_s=comm.time_s, hidden_s=hidden, cpu_s=cpu,
                    per_layer={"attention_s": a_layer, "moe_s": moe, "dispatch_s": d.time_s, "combine_s": c.time_s,
                               "micro_batches": mb})
