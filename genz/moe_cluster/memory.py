"""Memory per GPU of a pool layout: weights, KV cache, activations and all-to-all buffers (bytes).

Assumptions:

- Attention, dense FFN layers and shared experts are replicated (DP) or sharded ``attention_tp``
  ways; the MLA latent cache is replicated on every tensor-parallel rank of an attention group.
  Embedding and LM head stay 16-bit and are sharded ``attention_tp`` ways (SGLang's
  ``--enable-dp-lm-head`` keeps a full copy per DP rank); the router stays 16-bit. FP8 block
  scales (4 B per 128 x 128 block, 0.02 % of the weights) are left out.
- Routed experts: ``(E + R) / ep`` physical slots per GPU with expert parallelism, a ``1 / moe_tp``
  slice of every expert with tensor slicing.
- Activations: the largest transient of one layer for one micro-batch (:func:`genz.memory.activation_bytes`)
  plus the tokens dispatched to this GPU (the busiest one: ``imbalance`` times the mean; FP8 in,
  BF16 out) and their gate/up output.
- Buffers: DeepEP low-latency: the ``LowLatencyLayout`` of DeepEP's ``csrc/config.hpp`` with ``E``
  physical experts and ``T`` = max(128, tokens per micro-batch) (128 is SGLang's default
  ``SGLANG_DEEPEP_NUM_MAX_DISPATCH_TOKENS_PER_RANK``); DeepEP normal: 2 GB NVLink + 1 GB RDMA
  (assumption: the sizes of DeepEP's reference tests, ``num_nvl_bytes, num_rdma_bytes = int(2e9),
  int(1e9)``); NCCL-based all-to-alls: no extra buffer. CUDA graphs, the allocator's slack and the
  runtime's reserved memory are not counted.
"""

from __future__ import annotations

from genz.memory import activation_bytes
from genz.moe_cluster.layout import PoolLayout
from workloads import Model, Precision


def ll_buffer_bytes(hidden: int, tokens: int, experts: int) -> float:
    """DeepEP's low-latency buffer per GPU (``csrc/config.hpp``, ``LowLatencyLayout``)."""
    dispatch_msg = 16 + max(2 * hidden, hidden + hidden // 128 * 4)
    combine_msg = hidden // 128 * 4 + 2 * hidden
    send = max(tokens * dispatch_msg, experts * tokens * combine_msg)
    recv = max(experts * tokens * dispatch_msg, experts * tokens * combine_msg)
    signal = -(-experts * 4 // 128) * 128
    return float(2 * send + 2 * recv + 2 * signal)


def kv_bytes_per_token(model: Model, precision: Precision) -> float:
    """KV-cache bytes of one token over all layers (MLA: the latent and the RoPE key)."""
    per_layer = (model.kv_lora_rank + model.qk_rope_head_dim if model.is_mla
                 else 2 * model.kv_heads * model.head_dim)
    return float(model.layers * per_layer * precision.kv_bytes)


def weight_bytes(model: Model, precision: Precision, pool: PoolLayout, ep: int) -> dict:
    """Weight bytes per GPU by part (``attention``, ``dense_ffn``, ``shared_experts``, ``routed_experts``,
    ``router``, ``embedding``, ``lm_head``)."""
    wb, atp, Lm = precision.weight_bytes, pool.attention_tp, model.moe_layers
    out = {
        "attention": model.layers * (model.attention_params() / atp * wb + model.norm_params_per_layer() * 2.0),
        "dense_ffn": model.dense_mlp_layers * model.mlp_params() / atp * wb,
        "embedding": model.vocab * model.hidden * 2.0 / atp,
        "lm_head": 0.0 if model.tied_embeddings else model.vocab * model.hidden * 2.0 / atp,
    }
    if model.is_moe:
        out["shared_experts"] = Lm * model.shared_expert_params() / atp * wb
        total = model.routed_experts_total()  # over all MoE layers (a pyramid has more in its last ones)
        slots = (total + Lm * pool.redundant_experts) / ep if ep > 1 else total / pool.moe_tp
        out["routed_experts"] = slots * model.expert_params() * wb
        out["router"] = model.hidden * total * 2.0
    return out


def pool_memory(model: Model, precision: Precision, pool: PoolLayout, gpus_per_node: int,
                imbalance: float = 1.0) -> dict:
    """Bytes per GPU: ``weights``, ``kv_cache``, ``activations``, ``buffers``, ``total`` and the
    weights by part (``weights_by_part``)."""
    ep = pool.ep_size(gpus_per_node)
    mb = 2 if pool.two_batch_overlap else 1
    w = weight_bytes(model, precision, pool, ep)
    atp = pool.attention_tp
    if pool.role == "prefill":
        tokens = pool.batch_per_gpu / mb
        kv_tokens = pool.batch_per_gpu * atp
        lm_rows = tokens / pool.context
    else:
        tokens = pool.batch_per_gpu / mb
        kv_tokens = pool.batch_per_gpu * atp * (pool.context + 1)
        lm_rows = tokens
    kv = kv_tokens * kv_bytes_per_token(model, precision)
    act = float(activation_bytes(model, tokens * atp, lm_rows * atp, atp))
    if model.is_moe:
        K, h = model.top_k, model.hidden
        if ep > 1:
            rows, inter = tokens * K * imbalance, model.expert_intermediate
        else:
            rows, inter = tokens * pool.moe_tp * K, model.expert_intermediate / pool.moe_tp
        act += rows * (h * (precision.act_bytes + 2.0) + 2 * inter * 2.0)
    buffers = 0.0
    if ep > 1 and pool.a2a == "low_latency":
        buffers = ll_buffer_bytes(model.hidden, max(128, int(-(-tokens // 1))), model.experts + pool.redundant_experts)
    elif ep > 1 and pool.a2a == "normal":
        buffers = 2e9 + 1e9
    weights = sum(w.values())
    return {"weights": weights, "kv_cache": kv, "activations": act, "buffers": buffers,
            "total": weights + kv + act + buffers, "weights_by_part": w}
