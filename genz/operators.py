"""Operators of one model step -> an :class:`~hwmodels.optable.OperatorTable`.

Rows are operator kinds per layer class (``count`` instances per step); values are per device of
one pipeline stage's tensor/expert group, for N configurations at once. Conventions:

- GEMM y = x W^T with x (m, k), W (n, k): FLOPs 2mnk; bytes = weights (n k, stored width) +
  input (m k, activation width) + output (m n, 16 bits). Weights are read once per instance and
  not at all when m = 0.
- Causal attention counts half the score matrix (FLOPs 4 H d per query-key pair); decode reads
  each sequence's KV cache at its length, each KV head once (GQA).
- MoE: with uniform routing of T tokens to top-k of E experts, E (1 - (1 - k/E)^T) distinct
  experts are touched per layer (their weights are read, one kernel set each); prefill touches all.
- Assumption: embeddings, LM head and router stay in 16 bits whatever the weight precision
  (vLLM and BitNet leave them unquantized); elementwise work runs on 16-bit activations.
"""

from __future__ import annotations

import numpy as np

from genz.ep_traffic import EPTraffic, uniform_traffic
from genz.parallel import devices_per_replica
from genz.runtime import Runtime, load_runtime
from genz.shapes import StepShape
from hwmodels.optable import WIDE_FIELDS, OperatorTable
from workloads import Model, Precision


class _Rows:
    """Accumulates rows; per-configuration values (scalars or arrays of shape (N,)) are broadcast to
    (R, N) once, when the table is made."""

    _WIDE = WIDE_FIELDS

    def __init__(self, n: int):
        self.n = n
        self.cols: dict[str, list] = {k: [] for k in (
            "name", "op_class", "dtype", "count", "weight_bits", "coll_kind", "coll_group", "coll_scope", "variant",
            *self._WIDE)}

    def add(self, name, op_class, dtype, count, kernels, *, flops=0.0, read=0.0, write=0.0,
            weight=0.0, wbits=0.0, m=0.0, n=0.0, k=0.0, coll_kind="", coll_bytes=0.0, group=1,
            scope="scale_up", variant="") -> None:
        c = self.cols
        c["variant"].append(variant)
        c["name"].append(name)
        c["op_class"].append(op_class)
        c["dtype"].append(dtype)
        c["count"].append(float(count))
        c["weight_bits"].append(float(wbits))
        c["coll_kind"].append(coll_kind)
        c["coll_group"].append(group)
        c["coll_scope"].append(scope)
        c["kernels"].append(kernels)
        c["flops"].append(flops)
        c["bytes_read"].append(read)
        c["bytes_written"].append(write)
        c["weight_bytes"].append(weight)
        c["m"].append(m)
        c["n"].append(n)
        c["k"].append(k)
        c["coll_bytes"].append(coll_bytes)

    def gemm(self, name, m, n, k, count, *, wbits, dtype, act_bytes, kernels, op_class="gemm") -> None:
        active = m > 0
        w = n * k * wbits / 8.0 * active
        self.add(name, op_class, dtype, count, kernels * active, flops=2.0 * m * n * k,
                 read=w + m * k * act_bytes, write=m * n * 2.0, weight=w, wbits=wbits, m=m, n=n, k=k)

    def _wide(self, values: list) -> np.ndarray:
        out = np.empty((len(values), self.n))
        for i, v in enumerate(values):
            out[i] = v
        out += 0.0  # -0.0 -> 0.0, as the sum with zeros it replaces
        return out

    def table(self) -> OperatorTable:
        c = self.cols
        group = np.array([np.max(g) if np.ndim(g) else g for g in c["coll_group"]], dtype=float)
        w = {k: self._wide(c[k]) for k in self._WIDE}
        return OperatorTable(
            name=np.array(c["name"]), op_class=np.array(c["op_class"]), dtype=np.array(c["dtype"]),
            count=np.array(c["count"]), weight_bits=np.array(c["weight_bits"]), coll_kind=np.array(c["coll_kind"]),
            coll_group=group, coll_scope=np.array(c["coll_scope"]), variant=np.array(c["variant"], dtype=object), **w,
        )


def _check_probs(probs, experts: int, top_k: int) -> np.ndarray:
    q = np.asarray(probs, float).ravel()
    if q.shape != (experts,) or not np.isfinite(q).all() or (q < 0).any() or (q > 1).any():
        raise ValueError(f"expert_probs: needs {experts} chances in [0, 1] (one per expert), got shape {q.shape}")
    if abs(q.sum() - top_k) > 1e-6 * top_k:
        raise ValueError(f"expert_probs: chances must sum to top_k = {top_k} (each token picks {top_k}), got {q.sum():.6g}")
    return q


def _check_traffic(t: EPTraffic, ep: int, ep_remote_fraction, expert_probs) -> None:
    if t.gpus != ep:
        raise ValueError(f"ep_traffic: describes an EP group of {t.gpus} GPUs, the model runs ep={ep}")
    if ep_remote_fraction is not None or expert_probs is not None:
        raise ValueError("ep_traffic: give it alone, not with ep_remote_fraction or expert_probs (it sets both)")


def _traffic_rows(rows: _Rows, t: EPTraffic, token_bytes, moe_layers: int) -> None:
    """One all-to-all row per link class of ``t``: ``token_bytes`` is one hidden vector times the
    tokens one GPU sends (busiest GPU: times the load imbalance). ``all_to_all_time`` charges
    ``(g - 1) / g`` of a row's bytes, so each row holds its volume times ``g / (g - 1)``."""
    count = t.all_to_alls_per_layer * moe_layers
    for name, copies, g, scope in (("ep_all_to_all", t.intra_node_copies, t.node_gpus, "scale_up"),
                                   ("ep_all_to_all_inter_node", t.inter_node_copies, t.nodes, "scale_out")):
        if g > 1 and copies > 0:
            rows.add(name, "collective", "bf16", count, 1.0, coll_kind="all_to_all",
                     coll_bytes=token_bytes * copies * g / (g - 1), group=g, scope=scope)


def expert_coverage(probs, tokens):
    """Expected distinct experts touched by ``tokens`` routed tokens, from each expert's chance
    ``probs`` (E,) that a token picks it (top-k: the chances sum to k). Uniform routing of top-k of
    E gives ``E (1 - (1 - k/E)^T)``."""
    q = np.clip(np.asarray(probs, float), 0.0, 1.0)
    t = np.asarray(tokens, float)
    return (1.0 - (1.0 - q[:, None]) ** t[None, :]).sum(axis=0)


def device_load_factor(probs, ep: int) -> float:
    """Routed tokens on the busiest of ``ep`` devices over the mean, for experts placed in
    contiguous blocks (expert e on device e // (E / ep)); 1 for uniform routing."""
    q = np.asarray(probs, float)
    if ep <= 1 or q.sum() <= 0:
        return 1.0
    per_dev = q.reshape(ep, -1).sum(axis=1)
    return float(per_dev.max() / per_dev.mean())


def build_table(model: Model, shape: StepShape, precision: Precision | str = "bf16", *, tp=1, pp=1, ep=1,
                gpus_per_node: int = 8, runtime: Runtime | str = "vllm",
                ep_remote_fraction: float | None = None, expert_probs=None,
                ep_traffic: EPTraffic | None = None) -> OperatorTable:
    """The operator table of one step of ``model`` for every configuration of ``shape``.

    ``tp``, ``pp`` and ``ep`` are scalars (the same split for all N configurations); use one call
    per split in sweeps (see :func:`genz.sweep.sweep`). Rows cover all layers of all stages, i.e.
    the path of one (micro-)batch through the whole model, as seen by one device of each stage.
    ``ep_remote_fraction`` is the share of routed tokens whose expert sits on another device
    (uniform placement: (ep - 1) / ep; an expert placement from ``optimizers`` lowers it).
    ``expert_probs`` (E,): each expert's chance of being picked by a token (summing to top_k; None:
    uniform); it sets how many experts a batch touches and, with ``ep``, the busiest device's share.
    The EP all-to-all is one row per link class (NVLink inside a node of ``gpus_per_node``, the
    network across nodes), each with its own volume, bandwidth and latency: by default a dispatch
    and a combine per layer with the copies that leave a GPU spread evenly over the others
    (:func:`genz.ep_traffic.uniform_traffic`); the busiest GPU receives ``load`` times the mean.
    ``ep_traffic`` (e.g. from a ``genz place`` file) replaces that and both arguments above.
    """
    prec = Precision.parse(precision)
    rt = runtime if isinstance(runtime, Runtime) else load_runtime(runtime)
    rows = _Rows(len(shape))
    fill_rows(rows, model, shape, prec, rt, tp=int(tp), pp=int(pp), ep=int(ep), gpus_per_node=gpus_per_node,
              ep_remote_fraction=ep_remote_fraction, expert_probs=expert_probs, ep_traffic=ep_traffic)
    return rows.table()


def fill_rows(rows: _Rows, model: Model, shape, prec: Precision, rt: Runtime, *, tp: int, pp: int, ep: int,
              gpus_per_node: int, ep_remote_fraction: float | None = None, expert_probs=None,
              ep_traffic: EPTraffic | None = None) -> None:
    """Add the rows of one step of ``model`` to ``rows`` (the body of :func:`build_table`). ``shape``
    is a :class:`~genz.shapes.StepShape` or anything with its fields and ``tokens``/``scaled``, such
    as the symbolic shape :mod:`genz.affine` compiles a table from."""
    a = 4.0 if prec.act_bits >= 32 else 2.0  # elementwise activation width (bytes)
    ga = prec.act_bytes  # GEMM input width
    wb, dt = prec.weight_bits, prec.compute_dtype
    h, L = model.hidden, model.layers
    dpa = ep // tp if (model.is_moe and ep > tp) else 1  # data-parallel attention groups
    sh = shape.scaled(dpa) if dpa > 1 else shape
    T = sh.tokens
    H_d = model.heads / tp
    kv_d = max(model.kv_heads / tp, 1.0)
    d = model.head_dim
    attn_dtype = "fp8" if (prec.kv_bits <= 8 and dt == "fp8") else ("fp32" if a == 4.0 else "bf16")
    scope_tp = "scale_up" if tp <= gpus_per_node else "scale_out"
    g = rt.k("gemm")

    # ---- attention block (all L layers) -------------------------------------------------------
    rows.add("norm", "norm", "bf16", 2 * L, rt.k("norm"), flops=5.0 * T * h, read=rt.p("norm") / 2 * T * h * a + 2 * h,
             write=rt.p("norm") / 2 * T * h * a)
    if model.is_mla:
        qk = model.qk_nope_head_dim + model.qk_rope_head_dim
        if model.q_lora_rank:
            rows.gemm("q_a_proj", T, model.q_lora_rank, h, L, wbits=wb, dtype=dt, act_bytes=ga, kernels=g)
            rows.gemm("q_b_proj", T, H_d * qk, model.q_lora_rank, L, wbits=wb, dtype=dt, act_bytes=ga, kernels=g)
        else:
            rows.gemm("q_proj", T, H_d * qk, h, L, wbits=wb, dtype=dt, act_bytes=ga, kernels=g)
        rows.gemm("kv_a_proj", T, model.kv_lora_rank + model.qk_rope_head_dim, h, L, wbits=wb, dtype=dt,
                  act_bytes=ga, kernels=g)
        rows.gemm("kv_b_proj", T, H_d * (model.qk_nope_head_dim + model.v_head_dim), model.kv_lora_rank, L,
                  wbits=wb, dtype=dt, act_bytes=ga, kernels=g)
        rope_elems = T * (H_d + 1) * model.qk_rope_head_dim
        kv_elems_per_token = model.kv_lora_rank + model.qk_rope_head_dim
        o_k = H_d * model.v_head_dim
        pf_flops_pair = 2 * H_d * (qk + model.v_head_dim)
        pf_kv_bytes_per_key = H_d * (qk + model.v_head_dim) * 2.0
        dec_flops_pair = 2 * H_d * (2 * model.kv_lora_rank + model.qk_rope_head_dim)
        dec_kv_bytes_per_key = kv_elems_per_token * prec.kv_bytes
        q_width = H_d * qk
    else:
        rows.gemm("qkv_proj", T, (H_d + 2 * kv_d) * d, h, L, wbits=wb, dtype=dt, act_bytes=ga, kernels=g)
        rope_elems = T * (H_d + kv_d) * d
        kv_elems_per_token = 2 * kv_d * d
        o_k = H_d * d
        pf_flops_pair = 4 * H_d * d
        pf_kv_bytes_per_key = 2 * kv_d * d * 2.0
        dec_flops_pair = 4 * H_d * d
        dec_kv_bytes_per_key = 2 * kv_d * d * prec.kv_bytes
        q_width = H_d * d
    if not model.learned_positions:
        rows.add("rope", "elementwise", "bf16", L, rt.k("rope"), flops=6.0 * rope_elems,
                 read=rt.p("rope") / 2 * rope_elems * a, write=rt.p("rope") / 2 * rope_elems * a)
    kvw = T * kv_elems_per_token
    rows.add("kv_cache_write", "elementwise", "bf16", L, rt.k("kv_write") * (T > 0),
             read=rt.p("kv_write") / 2 * kvw * prec.kv_bytes, write=rt.p("kv_write") / 2 * kvw * prec.kv_bytes)
    pt, dk = sh.prefill_tokens, sh.decode_kv
    rows.add("attention_prefill", "attention", attn_dtype, L, rt.k("attention") * (pt > 0),
             flops=pf_flops_pair * sh.prefill_pairs,
             read=pt * q_width * 2.0 + sh.prefill_kv * pf_kv_bytes_per_key, write=pt * o_k * 2.0,
             m=pt, n=H_d, k=sh.prefill_kv)
    rows.add("attention_decode", "attention", attn_dtype, L, rt.k("attention") * (sh.decode_seqs > 0),
             variant="paged" if rt.choice("decode_attention") == "paged" else "",
             flops=dec_flops_pair * dk, read=sh.decode_seqs * q_width * 2.0 + dk * dec_kv_bytes_per_key,
             write=sh.decode_seqs * o_k * 2.0, m=sh.decode_seqs, n=H_d, k=dk)
    rows.gemm("o_proj", T, h, o_k, L, wbits=wb, dtype=dt, act_bytes=ga, kernels=g)
    rows.add("residual_add", "elementwise", "bf16", 2 * L, rt.k("residual"), flops=T * h,
             read=rt.p("residual") * 2 / 3 * T * h * a, write=rt.p("residual") / 3 * T * h * a)
    if tp > 1:
        n_ar = L + model.dense_mlp_layers + (model.moe_layers if ep == 1 else 0)
        rows.add("tp_all_reduce", "collective", "bf16", n_ar, 1.0, coll_kind="all_reduce",
                 coll_bytes=T * h * a, group=tp, scope=scope_tp)

    # ---- dense MLPs ------------------------------------------------------------------------------
    def mlp(prefix: str, inter: float, count: int, tokens) -> None:
        if count <= 0 or inter <= 0:
            return
        if model.gated_mlp:
            rows.gemm(f"{prefix}gate_up_proj", tokens, 2 * inter, h, count, wbits=wb, dtype=dt, act_bytes=ga, kernels=g)
        else:
            rows.gemm(f"{prefix}fc1", tokens, inter, h, count, wbits=wb, dtype=dt, act_bytes=ga, kernels=g)
        elems = tokens * inter
        rows.add(f"{prefix}activation", "elementwise", "bf16", count, rt.k("act"), flops=4.0 * elems,
                 read=rt.p("act") * 2 / 3 * elems * a * (2 if model.gated_mlp else 1), write=rt.p("act") / 3 * elems * a)
        rows.gemm(f"{prefix}down_proj" if model.gated_mlp else f"{prefix}fc2", tokens, h, inter, count,
                  wbits=wb, dtype=dt, act_bytes=ga, kernels=g)

    mlp("", model.intermediate / tp, model.dense_mlp_layers, T)

    # ---- MoE layers ------------------------------------------------------------------------------
    if model.is_moe and model.moe_layers:
        Lm, E, K = model.moe_layers, model.experts, model.top_k
        T_all = shape.tokens  # tokens of the whole replica's batch
        rows.gemm("router", T, E, h, Lm, wbits=16, dtype="bf16", act_bytes=2.0, kernels=g, op_class="router")
        rows.add("router_topk", "router", "bf16", Lm, rt.k("router") * (T > 0), flops=5.0 * T * E,
                 read=T * E * 4.0, write=T * K * 8.0)
        e_dev = E / ep
        i_dev = model.expert_intermediate / (tp if ep == 1 else 1)
        probs = np.full(E, K / E) if expert_probs is None else _check_probs(expert_probs, E, K)
        load = device_load_factor(probs, ep)  # the busiest device sets the step
        if ep_traffic is not None:
            _check_traffic(ep_traffic, ep, ep_remote_fraction, expert_probs)
            load = ep_traffic.load_imbalance
        elif ep > 1:
            ep_traffic = uniform_traffic(ep, gpus_per_node, K, ep_remote_fraction, load)
        routed = T_all * K / ep * load if ep > 1 else T * K
        touched = expert_coverage(probs, T_all) / E  # share of experts a batch reaches
        active = e_dev * touched
        m_exp = np.where(active > 0, routed / np.maximum(active, 1e-9), 0.0)
        fused = rt.choice("moe") == "fused"
        for name, n_, k_ in (("experts_gate_up", 2 * i_dev if model.gated_mlp else i_dev, h), ("experts_down", h, i_dev)):
            w = active * n_ * k_ * wb / 8.0
            rows.add(name, "gemm", dt, Lm, g * (active > 0) if fused else g * active, flops=2.0 * routed * n_ * k_,
                     read=w + routed * k_ * ga, write=routed * n_ * 2.0, weight=w, wbits=wb, m=m_exp, n=n_, k=k_,
                     variant="fused_moe" if fused else "")
        elems = routed * i_dev
        rows.add("experts_activation", "elementwise", "bf16", Lm, rt.k("act") * ((active > 0) if fused else active),
                 flops=4.0 * elems, read=rt.p("act") * 2 / 3 * elems * a * 2, write=rt.p("act") / 3 * elems * a)
        per_expert = 0.0 if fused else rt.k("moe_per_expert") * active
        rows.add("moe_dispatch_combine", "moe_dispatch", "bf16", Lm, per_expert + rt.k("moe_fixed") * (T > 0),
                 flops=2.0 * routed * h, read=rt.p("moe") / 2 * routed * h * a, write=rt.p("moe") / 2 * routed * h * a)
        if not fused and rt.kernels.get("moe_sync", 0):
            # the loop finds each expert's tokens on the host: one wait for the GPU per expert and layer
            # (eager only; a CUDA graph fixes the groups when it is captured)
            rows.add("moe_host_sync", "moe_dispatch", "bf16", Lm, rt.k("moe_sync") * e_dev * (T > 0),
                     variant="host_sync")
        if model.shared_experts:
            mlp("shared_", model.shared_experts * model.expert_intermediate / tp, Lm, T)
        if ep > 1:
            _traffic_rows(rows, ep_traffic, T_all / ep * h * ga * load, Lm)
            if tp > 1:
                rows.add("ep_all_gather", "collective", "bf16", Lm, 1.0, coll_kind="all_gather",
                         coll_bytes=T * h * a, group=tp, scope=scope_tp)

    # ---- host-only work (eager Python between kernels); no GPU work, so no launch in a CUDA graph --
    if rt.kernels.get("host_ops", 0):
        rows.add("host_python", "elementwise", "bf16", L, rt.k("host_ops") * (T > 0))

    # ---- embedding, final norm, LM head ---------------------------------------------------------
    rows.add("embedding", "embedding", "bf16", 1, rt.k("embedding") * (T > 0), read=T * h * 2.0 + T * 8.0,
             write=T * h * a)
    rows.add("final_norm", "norm", "bf16", 1, rt.k("final_norm") * (T > 0), flops=5.0 * T * h,
             read=rt.p("norm") / 2 * T * h * a, write=rt.p("norm") / 2 * T * h * a)
    lm = sh.lm_rows
    rows.gemm("lm_head", lm, model.vocab / tp, h, 1, wbits=16, dtype="bf16" if a == 2.0 else "fp32", act_bytes=2.0,
              kernels=g, op_class="lm_head")
    rows.add("sampling", "elementwise", "bf16", 1, rt.k("step") * (lm > 0), read=lm * model.vocab / tp * 2.0,
             write=lm * 8.0)
    if tp > 1:
        rows.add("lm_head_gather", "collective", "bf16", 1, 1.0, coll_kind="all_gather",
                 coll_bytes=lm * model.vocab * 2.0, group=tp, scope=scope_tp)
    if pp > 1:
        scope_pp = "scale_up" if devices_per_replica(tp, pp, ep) <= gpus_per_node else "scale_out"
        rows.add("pp_send_recv", "collective", "bf16", pp - 1, 1.0, coll_kind="send_recv",
                 coll_bytes=T * h * a, group=2, scope=scope_pp)
