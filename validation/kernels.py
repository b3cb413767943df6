"""Single-kernel operator tables: one GEMM, one attention call, one memory operation.

These let measured kernel rows (``gemm.csv``, ``attention.csv``, ``membw.csv`` of a validation
dataset) go through the same device model as whole model steps. Each function takes arrays of N
configurations and returns a one-row :class:`~hwmodels.optable.OperatorTable` with N columns, whose
FLOPs and bytes follow the conventions of :mod:`genz.operators` (and of the dataset README):

- GEMM y = x w^T, x (m, k), w (n, k): FLOPs 2mnk; bytes = inputs once + output once.
- Attention: causal prefill counts half the score matrix, 4 B H d (q kv - q^2 / 2) FLOPs; decode is
  one query per sequence over ``kv_len`` keys; bytes = Q + K + V once (each KV head once) + output.
- Memory: ``copy`` reads and writes the buffer, ``read`` (a reduction to one number) reads it,
  ``write`` (a fill) writes it.

>>> t = gemm_table(1, 4096, 4096, "bf16")
>>> float(t.flops[0, 0]), float(t.bytes_read[0, 0] + t.bytes_written[0, 0])
(33554432.0, 33570816.0)
"""

from __future__ import annotations

import numpy as np

from hwmodels.optable import OperatorTable

#: Bytes per input element and per output element of each GEMM dtype as the dataset runs them
#: (fp8: e4m3 inputs, bf16 output; int8: int32 output; tf32: float32 storage).
GEMM_DTYPES = {"bf16": (2.0, 2.0), "fp16": (2.0, 2.0), "fp8": (1.0, 2.0), "int8": (1.0, 4.0),
               "tf32": (4.0, 4.0), "fp32": (4.0, 4.0)}
MEMORY_OPS = {"copy": (1.0, 1.0), "read": (1.0, 0.0), "read_sum": (1.0, 0.0), "write": (0.0, 1.0),
              "write_fill": (0.0, 1.0)}
_KV_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "fp32": 4.0}


def _arr(x) -> np.ndarray:
    return np.atleast_1d(np.asarray(x, dtype=float))


def _row(name: str, op_class: str, dtype: str, *, flops, read, write, weight=0.0, m=0.0, n=0.0, k=0.0,
         kernels=1.0) -> OperatorTable:
    cols = np.broadcast_arrays(*(_arr(v) for v in (flops, read, write, weight, m, n, k, kernels)))
    flops, read, write, weight, m, n, k, kernels = (c[None, :].astype(float) for c in cols)
    zero = np.zeros_like(flops)
    return OperatorTable(
        name=np.array([name]), op_class=np.array([op_class]), dtype=np.array([dtype]), count=np.ones(1),
        kernels=kernels, weight_bits=np.zeros(1), flops=flops, bytes_read=read, bytes_written=write,
        weight_bytes=weight, m=m, n=n, k=k, coll_kind=np.array([""]), coll_bytes=zero, coll_group=np.ones(1),
        coll_scope=np.array(["scale_up"]),
    )


def gemm_table(m, n, k, dtype: str = "bf16") -> OperatorTable:
    """One GEMM y = x w^T of shape (m, k) x (n, k) per configuration, in ``dtype``."""
    if dtype not in GEMM_DTYPES:
        raise ValueError(f"dtype: unknown GEMM dtype {dtype!r}; allowed: {', '.join(GEMM_DTYPES)}")
    a, o = GEMM_DTYPES[dtype]
    m, n, k = _arr(m), _arr(n), _arr(k)
    if (m <= 0).any() or (n <= 0).any() or (k <= 0).any():
        raise ValueError("m, n, k: GEMM dimensions must be > 0")
    w = n * k * a
    return _row("gemm", "gemm", dtype, flops=2.0 * m * n * k, read=w + m * k * a, write=m * n * o, weight=w,
                m=m, n=n, k=k)


def attention_pairs(q_len, kv_len, causal) -> np.ndarray:
    """Query-key pairs per sequence and head: all of them, or the causal share (the last ``q_len``
    positions of ``kv_len``, half the diagonal block counted, as the dataset counts FLOPs)."""
    q, kv = _arr(q_len), _arr(kv_len)
    c = np.broadcast_to(np.asarray(causal, dtype=bool), np.broadcast(q, kv).shape)
    return np.where(c, q * (kv - q) + q * q / 2.0, q * kv)


def attention_table(phase: str, batch, heads, kv_heads, head_dim, q_len, kv_len, causal=True,
                    dtype: str = "bf16") -> OperatorTable:
    """One attention call per configuration (FlashAttention through SDPA, as ``attention.csv``).

    ``phase`` ``prefill``: ``q_len`` queries per sequence over ``kv_len`` keys (causal by default);
    ``decode``: one query per sequence (``q_len`` ignored) over ``kv_len`` keys.
    """
    if phase not in ("prefill", "decode"):
        raise ValueError(f"phase: must be 'prefill' or 'decode', got {phase!r}")
    if dtype not in _KV_BYTES:
        raise ValueError(f"dtype: unknown attention dtype {dtype!r}; allowed: {', '.join(_KV_BYTES)}")
    b, h, kvh, d, kv = _arr(batch), _arr(heads), _arr(kv_heads), _arr(head_dim), _arr(kv_len)
    q = _arr(q_len) if phase == "prefill" else np.ones_like(kv)
    if (h % kvh != 0).any() or (kvh <= 0).any():
        raise ValueError("kv_heads: must divide heads")
    kvb = _KV_BYTES[dtype]
    pairs = attention_pairs(q, kv, causal if phase == "prefill" else False)
    tokens = b * q
    return _row(f"attention_{phase}", "attention", dtype, flops=4.0 * b * h * d * pairs,
                read=tokens * h * d * 2.0 + b * kv * 2.0 * kvh * d * kvb, write=tokens * h * d * 2.0,
                m=tokens, n=h, k=b * kv)


def memory_table(op: str, size_bytes) -> OperatorTable:
    """One memory kernel over a buffer of ``size_bytes``: ``copy``, ``read`` (``read_sum``: a
    reduction to one float32) or ``write`` (``write_fill``)."""
    if op not in MEMORY_OPS:
        raise ValueError(f"op: unknown memory operation {op!r}; allowed: {', '.join(MEMORY_OPS)}")
    r, w = MEMORY_OPS[op]
    s = _arr(size_bytes)
    if (s <= 0).any():
        raise ValueError("size_bytes: must be > 0")
    if op.startswith("read"):  # a reduction to one float32 number: its own fixed cost (floor "elementwise/fp32")
        return _row(op, "elementwise", "fp32", flops=s / 2.0, read=s, write=4.0)
    return _row(op, "elementwise", "bf16", flops=0.0, read=r * s, write=w * s)
