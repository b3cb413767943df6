"""Memory per device: weights, KV cache and activations; whether it fits and by how much.

Assumptions: the most loaded pipeline stage sets the need (with ``pp == 1`` it holds embedding
and LM head, with ``pp > 1`` the larger of the two); K/V heads replicated when ``tp`` exceeds
them; an MLA latent cache is replicated on every tensor-parallel rank; activations are the
largest transient of one layer (input, output and the widest intermediate, 16-bit) plus the
logits of the rows that reach the LM head (fp32).
"""

from __future__ import annotations

import numpy as np

from workloads import Model, Precision


def kv_bytes_per_token(model: Model, precision: Precision, tp: int = 1, pp: int = 1) -> float:
    """KV-cache bytes one token occupies on one device (its stage's layers, its heads)."""
    layers = np.ceil(model.layers / pp)
    if model.is_mla:
        per_layer = model.kv_lora_rank + model.qk_rope_head_dim
    else:
        per_layer = 2 * max(model.kv_heads / tp, 1.0) * model.head_dim
    return float(layers * per_layer * precision.kv_bytes)


def weight_bytes_per_device(model: Model, precision: Precision, tp: int = 1, pp: int = 1, ep: int = 1) -> float:
    """Weight bytes on the most loaded device."""
    wb = precision.weight_bytes
    if model.is_mla:
        per_layer_attn = model.attention_params() / tp * wb
    else:  # q and o sharded; K/V heads sharded, or one per device when tp exceeds them
        d, h = model.head_dim, model.hidden
        per_layer_attn = (2 * h * model.heads / tp * d + 2 * h * max(model.kv_heads / tp, 1.0) * d) * wb
    per_layer_attn += model.norm_params_per_layer() * 2.0
    dense_mlp = model.mlp_params() / tp * wb
    moe = 0.0
    if model.is_moe:
        mean_experts = model.routed_experts_total() / model.moe_layers  # per MoE layer (a pyramid varies)
        experts = mean_experts * model.expert_params() / (ep if ep > 1 else tp) * wb
        shared = model.shared_expert_params() / tp * wb
        moe = experts + shared + model.hidden * mean_experts * 2.0
    layers_per_stage = np.ceil(model.layers / pp)
    frac_dense = model.dense_mlp_layers / model.layers
    per_stage = layers_per_stage * (per_layer_attn + frac_dense * dense_mlp + (1 - frac_dense) * moe)
    emb = model.vocab * model.hidden * 2.0 / tp + model.learned_positions * model.hidden * 2.0
    head = 0.0 if model.tied_embeddings else model.vocab * model.hidden * 2.0 / tp
    ends = emb + head if pp == 1 else max(emb, head)
    return float(per_stage + ends)


def activation_bytes(model: Model, tokens, lm_rows, tp: int = 1):
    """Peak transient activation bytes on one device for a step of ``tokens`` new tokens."""
    widest = max(model.q_dim + 2 * model.kv_dim, 2 * model.intermediate, 2 * model.expert_intermediate * model.top_k) / tp
    t = np.asarray(tokens, dtype=float)
    return t * (2 * model.hidden + widest) * 2.0 + np.asarray(lm_rows, dtype=float) * model.vocab / tp * 4.0
