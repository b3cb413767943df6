"""Kernel microbenchmarks: memory bandwidth, GEMM per dtype, attention (rows of membw, gemm, attention).

FLOP and byte counts follow the dataset README (``validation/data/h200-2026-11-28/README.md``):
GEMM ``flops = 2mnk``, ``bytes`` = inputs once + output once; attention prefill ``flops = 4·B·H·S²·d / 2``
(causal), decode ``4·B·H·kv_len·d``; attention ``bytes`` = Q + K + V read once + O written once (the
shipped rows count the output too, though the README says "Q + K + V").
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

from validation.collect.bench import Bench, Timing
from validation.collect.energy import EnergyMeter
from validation.collect.plan import AttentionPoint, GemmPoint, Plan

# bytes per element of (inputs, output) for each GEMM dtype
GEMM_ELEMENT_BYTES = {"bf16": (2, 2), "fp16": (2, 2), "tf32": (4, 4), "fp8": (1, 2), "int8": (1, 4)}
ATTENTION_ELEMENT_BYTES = 2  # bf16


def gemm_flops(m: int, n: int, k: int) -> float:
    return 2.0 * m * n * k


def gemm_bytes(dtype: str, m: int, n: int, k: int) -> float:
    a, out = GEMM_ELEMENT_BYTES[dtype]
    return float((m * k + n * k) * a + m * n * out)


def attention_flops(p: AttentionPoint) -> float:
    if p.phase == "prefill":
        return 4.0 * p.batch * p.heads * p.seq * p.seq * p.head_dim / 2
    return 4.0 * p.batch * p.heads * p.seq * p.head_dim


def attention_bytes(p: AttentionPoint) -> int:
    q_len = p.seq if p.phase == "prefill" else 1
    q_and_o = 2 * p.batch * p.heads * q_len * p.head_dim
    k_and_v = 2 * p.batch * p.kv_heads * p.seq * p.head_dim
    return (q_and_o + k_and_v) * ATTENTION_ELEMENT_BYTES


def _energy(meter: EnergyMeter, bench: Bench, plan: Plan, wanted: bool, batch, inner: int, t: Timing) -> dict:
    if not wanted:
        return {"energy_j": None, "power_w": None}
    return meter.measure(bench, batch, inner, t.median_ms * inner, plan.energy_window_s)


def _warn(what: str, exc: BaseException) -> None:
    print(f"collect: {what}: {exc!r}", file=sys.stderr)


# ---------------------------------------------------------------------------------------- memory bandwidth
def membw_rows(bench: Bench, meter: EnergyMeter, plan: Plan, run: str, skipped: list[str]) -> Iterator[dict]:
    """copy (read + write), read_sum (read, reduced to one float32) and write_fill (write) per buffer size.

    Buffers are not rotated: small ones live in L2 on purpose, large ones show HBM.
    """
    for size in plan.membw_sizes:
        if 2.2 * size > bench.free_bytes():
            skipped.append(f"membw {size} bytes: two buffers do not fit in free device memory")
            continue
        for op, (fn, moved) in _membw_ops(bench, size).items():
            t, batch, inner = bench.time_ops([fn], plan.reps.membw, plan.reps.warmup, plan.reps.target_graph_ms)
            energy = _energy(meter, bench, plan, op == "copy" and size in plan.membw_energy_sizes, batch, inner, t)
            yield {"run": run, "op": op, "bytes_moved": moved, "size_bytes": size, **t.row(),
                   "gbps": moved / t.median_ms / 1e6, **energy}
        fn = batch = None
        bench.release()


def _membw_ops(bench: Bench, size: int) -> dict:
    """op name -> (callable, bytes moved) on two bf16 buffers of ``size`` bytes."""
    torch = bench.torch
    src = torch.ones(size // 2, dtype=torch.bfloat16, device=bench.device)
    dst = torch.empty_like(src)
    acc = torch.empty((), dtype=torch.float32, device=bench.device)
    return {
        "copy": (lambda: dst.copy_(src), 2 * size),
        "read_sum": (lambda: torch.sum(src, dim=0, dtype=torch.float32, out=acc), size),
        "write_fill": (lambda: dst.fill_(1.0), size),
    }


# ---------------------------------------------------------------------------------------- GEMM
def _gemm_ops(bench: Bench, p: GemmPoint, copies: int) -> list:
    """One callable per rotated copy computing y = x @ w^T in ``p.dtype``."""
    torch = bench.torch
    dev = bench.device

    def randn(*shape):
        return torch.randn(*shape, device=dev, dtype=torch.float32)

    if p.dtype in ("bf16", "fp16", "tf32"):
        dt = {"bf16": torch.bfloat16, "fp16": torch.float16, "tf32": torch.float32}[p.dtype]
        pairs = [(randn(p.m, p.k).to(dt), randn(p.n, p.k).to(dt)) for _ in range(copies)]
        return [lambda x=x, w=w: torch.matmul(x, w.t()) for x, w in pairs]
    if p.dtype == "fp8":
        f8 = torch.float8_e4m3fn
        one = torch.ones((), device=dev, dtype=torch.float32)
        pairs = [(randn(p.m, p.k).to(f8), randn(p.n, p.k).to(f8)) for _ in range(copies)]
        return [lambda x=x, w=w: torch._scaled_mm(x, w.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
                for x, w in pairs]
    pairs = [(torch.randint(-8, 8, (p.m, p.k), device=dev, dtype=torch.int8),
              torch.randint(-8, 8, (p.n, p.k), device=dev, dtype=torch.int8)) for _ in range(copies)]
    return [lambda x=x, w=w: torch._int_mm(x, w.t()) for x, w in pairs]


def gemm_rows(bench: Bench, meter: EnergyMeter, plan: Plan, run: str, skipped: list[str]) -> Iterator[dict]:
    """y = x @ w^T, x (m, k), w (n, k), per dtype; refusals by the library go to the ``error`` column."""
    torch = bench.torch
    for p in plan.gemm:
        flops, nbytes = gemm_flops(p.m, p.n, p.k), gemm_bytes(p.dtype, p.m, p.n, p.k)
        a_bytes = GEMM_ELEMENT_BYTES[p.dtype][0]
        copies = bench.copies_to_rotate((p.m * p.k + p.n * p.k) * a_bytes)
        base = {"run": run, "dtype": p.dtype, "m": p.m, "n": p.n, "k": p.k}
        tf32_before = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = p.dtype == "tf32"
        try:
            ops = _gemm_ops(bench, p, copies)
            t, batch, inner = bench.time_ops(ops, plan.reps.gemm, plan.reps.warmup, plan.reps.target_graph_ms)
            energy = _energy(meter, bench, plan, p.energy, batch, inner, t)
            yield {**base, "flops": flops, "bytes": nbytes, **t.row(), "tflops": flops / t.median_ms / 1e9,
                   "gbps": nbytes / t.median_ms / 1e6, **energy, "error": None}
        except torch.cuda.OutOfMemoryError:
            skipped.append(f"gemm {p.dtype} {p.m}x{p.n}x{p.k}: out of device memory")
        except (RuntimeError, NotImplementedError, TypeError, AttributeError) as exc:
            _warn(f"gemm {p.dtype} {p.m}x{p.n}x{p.k} refused", exc)
            yield {**base, "error": repr(exc)[:300]}
        finally:
            torch.backends.cuda.matmul.allow_tf32 = tf32_before
            ops = batch = None
            bench.release()


# ---------------------------------------------------------------------------------------- attention
def _sdpa(torch, q, k, v, causal: bool, gqa: bool):
    f = torch.nn.functional.scaled_dot_product_attention
    if not gqa:
        return f(q, k, v, is_causal=causal)
    try:
        return f(q, k, v, is_causal=causal, enable_gqa=True)
    except TypeError:  # torch < 2.5 has no enable_gqa: repeat K/V (a copy the newer path avoids)
        rep = q.shape[1] // k.shape[1]
        return f(q, k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1), is_causal=causal)


BACKENDS = ("flash", "efficient", "cudnn", "math")


def _backend_context(torch, name: str):
    from torch.nn.attention import SDPBackend, sdpa_kernel
    enum = {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
            "cudnn": getattr(SDPBackend, "CUDNN_ATTENTION", SDPBackend.MATH), "math": SDPBackend.MATH}[name]
    return sdpa_kernel(enum)


def _attention_ops(bench: Bench, p: AttentionPoint, copies: int, backend: str) -> list:
    """Prefill: causal, Q (B, H, S, d), K/V (B, kv, S, d). Decode: the H / kv query heads sharing a KV
    head are passed as query rows of that head: Q (B, kv, H/kv, d) over K/V (B, kv, kv_len, d)."""
    torch = bench.torch
    dt, dev = torch.bfloat16, bench.device
    b, h, kv, d, s = p.batch, p.heads, p.kv_heads, p.head_dim, p.seq
    q_shape = (b, h, s, d) if p.phase == "prefill" else (b, kv, h // kv, d)
    sets = [(torch.randn(q_shape, device=dev, dtype=dt), torch.randn(b, kv, s, d, device=dev, dtype=dt),
             torch.randn(b, kv, s, d, device=dev, dtype=dt)) for _ in range(copies)]
    causal, gqa = p.phase == "prefill", p.phase == "prefill" and kv != h

    def make(q, k, v):
        def op():
            with _backend_context(torch, backend):
                return _sdpa(torch, q, k, v, causal, gqa)
        return op
    return [make(*qkv) for qkv in sets]


def attention_rows(bench: Bench, meter: EnergyMeter, plan: Plan, run: str, skipped: list[str]) -> Iterator[dict]:
    """scaled_dot_product_attention in bf16, preferring the flash backend (column ``backend`` says which ran)."""
    torch = bench.torch
    for p in plan.attention:
        q_len = p.seq if p.phase == "prefill" else 1
        base = {"run": run, "phase": p.phase, "batch": p.batch, "heads": p.heads, "kv_heads": p.kv_heads,
                "head_dim": p.head_dim, "q_len": q_len, "kv_len": p.seq, "causal": p.phase == "prefill",
                "flops": attention_flops(p), "bytes": attention_bytes(p)}
        copies = bench.copies_to_rotate(attention_bytes(p))
        errors = []
        for backend in BACKENDS:
            try:
                ops = _attention_ops(bench, p, copies, backend)
                t, batch, inner = bench.time_ops(ops, plan.reps.attention, plan.reps.warmup, plan.reps.target_graph_ms)
                energy = _energy(meter, bench, plan, p.energy, batch, inner, t)
                yield {**base, **t.row(), "backend": backend, **energy, "error": None}
                break
            except torch.cuda.OutOfMemoryError:
                errors.append("out of device memory")
                break
            except (RuntimeError, NotImplementedError) as exc:
                errors.append(f"{backend}: {exc!r}"[:200])
            finally:
                ops = batch = None
                bench.release()
        else:
            _warn(f"attention {p} refused by every backend", RuntimeError("; ".join(errors)))
            yield {**base, "error": "; ".join(errors)[:300]}
        if errors and errors[-1] == "out of device memory":
            skipped.append(f"attention {p.phase} B={p.batch} H={p.heads}/{p.kv_heads} len={p.seq}: out of device memory")
