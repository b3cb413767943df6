"""Attention on a GPU as FlashAttention-2 (and paged decode kernels) run it: padded query tiles,
split KV, thread-block costs, wave quantization and softmax exponentials (the equations are in
:mod:`hwmodels.gpu`'s docstring).

One body, :func:`attention_cost`, serves both callers: a sweep passes arrays of N configurations
(numpy functions), a single what-if passes Python floats (plain arithmetic, where numpy's per-call
overhead on one element would cost more than the arithmetic). Both compute the same IEEE
operations in the same order, so they agree to the last bit (``tests/test_predict_one.py``).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

#: FlashAttention-2 splits the KV sequence only when (sequence, KV head) pairs fill less than 0.8 of
#: two thread blocks per SM (``num_splits_heuristic(..., num_SMs * 2, ...)`` in flash_api.cpp).
SPLIT_KV_FILL = 0.8 * 2
#: KV tokens per block of the split-KV kernel by head dim (flash_api.cpp ``set_params_splitkv``).
_KV_BLOCK = ((64, 256), (128, 128), (10**9, 64))
#: Query rows per KV head a paged decode kernel computes at least (assumption: FlashInfer's batch
#: decode and TensorRT-LLM's XQA pack the query heads of one KV head into one 16-row tensor-core
#: tile; SDPA's FlashAttention-2 pads them to its 128-row prefill tile instead).
PAGED_DECODE_TILE_ROWS = 16.0
ACT_BYTES = {"fp8": 1.0, "int8": 1.0, "fp32": 4.0, "tf32": 4.0}


def _kv_block_np(d):
    return np.select([d <= lim for lim, _ in _KV_BLOCK], [b for _, b in _KV_BLOCK])


def _kv_block_py(d):
    for lim, b in _KV_BLOCK:
        if d <= lim:
            return b
    return 0


#: The operations :func:`attention_cost` needs, for arrays and for Python floats.
NUMPY = SimpleNamespace(where=np.where, maximum=np.maximum, minimum=np.minimum, ceil=np.ceil,
                        not_=np.logical_not, kv_block=_kv_block_np)
SCALAR = SimpleNamespace(where=lambda c, a, b: a if c else b, maximum=max, minimum=min,
                         ceil=lambda x: float(math.ceil(x)), not_=lambda x: not x, kv_block=_kv_block_py)


def attention_cost(xp, prof, sms: float, peak: float, decode: bool, paged: bool, kvb: float,
                   m, n, k, fl, rd, wr, kernels):
    """One attention row: ``(flops_eff, t_compute, extra_launches, wave)`` for query tokens ``m``,
    heads ``n``, keys ``k``, FLOPs ``fl``, bytes read ``rd`` and written ``wr`` (per instance) and
    its ``kernels``; ``xp`` is :data:`NUMPY` for arrays, :data:`SCALAR` for floats; ``prof`` the
    GPU's efficiency profile, ``sms`` its SM count, ``peak`` the row dtype's peak (FLOP/s), ``kvb``
    bytes per cached KV element."""
    p = prof
    where, maximum, minimum = xp.where, xp.maximum, xp.minimum
    tm, tm_split = ((PAGED_DECODE_TILE_ROWS, PAGED_DECODE_TILE_ROWS) if paged
                    else (p.attn_tile_rows, p.attn_split_tile_rows or p.attn_tile_rows))
    ok = (m > 0) & (n > 0) & (fl > 0) & (wr > 0)
    mn = where(ok, m * n, 1.0)
    d = where(ok, wr / (2.0 * mn), 1.0)  # head dim from the bf16 output (m tokens x n heads x d)
    exp_rate = p.attn_exp_rate
    if decode:
        # query rows per KV head, from FLOPs per KV byte (4 H d k / (2 kv_heads d k kvb)); KV bytes
        # are the reads less Q, which is as large as the output. Latent attention (MLA: more
        # than 4 d FLOPs per query-key pair) shares one KV entry among all heads.
        kv_bytes = maximum(rd - wr, 1e-30)
        m1 = maximum(m, 1.0)
        n1 = maximum(n, 1.0)
        standard = fl <= 4.0 * mn * d * maximum(k / m1, 1.0) * 1.01
        g = where(standard, minimum(maximum(fl * kvb / (2.0 * kv_bytes), 1.0), n1), n1)
        pairs = where(ok, m, 0.0) * n / g  # (sequence, KV head) work items
        keys = where(ok, k / m1, 0.0)
        block = xp.kv_block(d)
        split = ok & (pairs < SPLIT_KV_FILL * sms) & (keys > block)
        pad = where(ok, maximum(1.0, where(split, tm_split, tm) / g), 1.0)
        flops_eff = fl * pad
        eff = p.attn_decode_eff or p.attention_eff
        ctas = pairs * where(split, maximum(xp.ceil(keys / block), 1.0), 1.0)
        ctas = where(split, minimum(ctas, SPLIT_KV_FILL / 0.8 * sms), ctas)
        exp_s = n * k * pad / exp_rate if exp_rate > 0 else 0.0  # one per (padded) score
        t_c = flops_eff / (peak * eff) + ctas * p.attn_cta_s / sms + exp_s
        # wave quantization of the unsplit kernel (which only runs unsplit below one wave when
        # the whole KV fits one block: tiny work, left unpenalized so time grows with context)
        w = pairs / (sms * p.attn_ctas_per_sm)
        wave = where(ok & xp.not_(split) & (w >= 1), xp.ceil(w) / maximum(w, 1.0), 1.0)
        return flops_eff, t_c, split * (kernels > 0), wave
    s_eff = where(ok, fl / (2.0 * mn * d), 1.0)  # keys per query row, doubled (S for causal)
    flops_eff = where(ok, fl * (1.0 + tm / maximum(s_eff, 1.0)), fl)
    rate = peak * p.attention_eff
    ctas = mn / tm
    tail = p.attn_tail * 4.0 * tm * s_eff * d / (rate / sms)
    exp_s = flops_eff / (4.0 * d) / exp_rate if exp_rate > 0 else 0.0  # softmax: one per score
    t_c = where(ok, flops_eff / rate + ctas * p.attn_cta_s / sms + tail + exp_s, fl / rate)
    return flops_eff, t_c, 0.0, 1.0
