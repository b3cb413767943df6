"""What the collector measures: shapes, points and repetitions of the full, quick and dry-run modes.

The full plan reproduces the sweeps of ``validation/data/h200-2026-11-28`` so that a dataset taken on
another GPU can be compared point by point with it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from workloads import Model, load_model

MiB = 1 << 20
GiB = 1 << 30
POW2_M = tuple(2**i for i in range(15))  # 1 .. 16384
SQUARES = (256, 512, 1024, 2048, 4096, 8192, 16384)
DEFAULT_MODELS = ("llama-3-8b", "llama-3.2-1b")
DRY_RUN_MODELS = ("llama-3.2-1b", "mixtral-8x7b")


@dataclass(frozen=True)
class GemmPoint:
    dtype: str
    m: int
    n: int
    k: int
    energy: bool = False


@dataclass(frozen=True)
class AttentionPoint:
    phase: str  # prefill: q_len = kv_len = seq, causal; decode: one query token over kv_len keys
    batch: int
    heads: int
    kv_heads: int
    head_dim: int
    seq: int  # prefill: prompt length; decode: kv_len
    energy: bool = False


@dataclass(frozen=True)
class E2EPoint:
    phase: str
    batch: int
    length: int  # prefill: prompt_len; decode: ctx_len
    timing: str = "cudagraph"  # decode only; prefill is always eager
    energy: bool = False


@dataclass(frozen=True)
class Reps:
    """Timed repetitions (medians are taken over them) and untimed warm-up calls."""

    membw: int = 9
    gemm: int = 7
    attention: int = 7
    decode: int = 9
    prefill: int = 5
    prefill_long: int = 3  # prefill with batch * prompt_len >= 8192 tokens
    warmup: int = 3
    target_graph_ms: float = 2.0  # a timed graph holds enough operations to run about this long


@dataclass(frozen=True)
class Plan:
    mode: str  # "full", "quick" or "dry-run"
    membw_sizes: tuple[int, ...]
    membw_energy_sizes: tuple[int, ...]
    gemm: tuple[GemmPoint, ...]
    attention: tuple[AttentionPoint, ...]
    models: tuple[Model, ...]
    e2e: tuple[E2EPoint, ...]
    reps: Reps = field(default_factory=Reps)
    energy_window_s: float = 0.5  # assumption: NVML's counter updates about every 100 ms; 0.5 s spans 5 updates


def _gemm_full() -> list[GemmPoint]:
    llama_shapes = [(4096, 4096), (6144, 4096), (28672, 4096), (4096, 14336), (14336, 4096), (8192, 8192),
                    (1024, 4096), (128256, 4096), (5120, 5120), (13824, 5120)]
    energy = {(1, 4096, 4096), (1, 28672, 4096), (16, 4096, 4096), (64, 28672, 4096), (256, 4096, 4096),
              (1024, 28672, 4096), (4096, 4096, 4096), (8192, 28672, 4096), (8192, 8192, 8192), (1024, 1024, 1024),
              (16384, 16384, 16384)}
    pts = [GemmPoint("bf16", m, n, k, (m, n, k) in energy) for n, k in llama_shapes for m in POW2_M]
    pts += [GemmPoint("bf16", s, s, s, (s, s, s) in energy) for s in SQUARES]
    for dt in ("fp8", "int8"):
        pts += [GemmPoint(dt, m, n, k, dt == "fp8" and (m, n, k) == (16, 28672, 4096))
                for n, k in [(4096, 4096), (28672, 4096), (4096, 14336), (8192, 8192)]
                for m in (16, 64, 256, 1024, 4096, 16384)]
        pts += [GemmPoint(dt, s, s, s, s == 8192) for s in SQUARES]
    for dt in ("tf32", "fp16"):
        pts += [GemmPoint(dt, s, s, s, dt == "tf32" and s == 8192) for s in SQUARES]
        pts += [GemmPoint(dt, m, 4096, 4096) for m in (1, 16, 256)]
    pts += [GemmPoint("fp16", m, 14336, 4096) for m in (1, 16, 256, 4096)]
    return pts


def _attention_full() -> list[AttentionPoint]:
    prefill = [(1, s) for s in (512, 1024, 2048, 4096, 8192, 16384, 32768)]
    prefill += [(4, 1024), (4, 4096), (16, 512), (16, 2048), (8, 8192)]
    decode = [(1, 512), (1, 4096), (1, 32768), (8, 1024), (8, 8192), (32, 512), (32, 2048), (32, 8192),
              (128, 512), (128, 2048), (256, 1024), (64, 16384)]
    pts = []
    for heads, kv in ((32, 8), (40, 40), (64, 8)):
        first = heads == 32
        pts += [AttentionPoint("prefill", b, heads, kv, 128, s, first and (b, s) == (1, 8192)) for b, s in prefill]
        pts += [AttentionPoint("decode", b, heads, kv, 128, s, first and (b, s) in {(8, 8192), (128, 2048)})
                for b, s in decode]
    return pts


def _e2e_full() -> list[E2EPoint]:
    prefill = [(1, s) for s in (128, 512, 1024, 2048, 4096, 8192, 16384)]
    prefill += [(4, 512), (4, 2048), (8, 1024), (16, 512), (32, 256), (8, 4096)]
    pts = [E2EPoint("prefill", b, s, "eager", (b, s) in {(1, 2048), (8, 4096)}) for b, s in prefill]
    for b in (1, 2, 4, 8, 16, 32, 64, 128, 256):
        for ctx in (128, 1024, 4096, 16384):
            if b * ctx <= 262144:  # assumption: KV-cache sizes a serving engine would hold for one 8B model
                pts.append(E2EPoint("decode", b, ctx, "cudagraph", ctx == 1024 and b in (1, 64, 256)))
    pts += [E2EPoint("decode", 1, 1024, "eager"), E2EPoint("decode", 32, 1024, "eager")]
    return pts


def full_plan(models: tuple[str, ...] = DEFAULT_MODELS) -> Plan:
    """The sweeps of ``h200-2026-11-28`` (about an hour on an H200 for two models)."""
    sizes = tuple(s * MiB for s in (1, 8, 32, 128, 512, 2048, 8192))
    return Plan("full", sizes, sizes[-3:], tuple(_gemm_full()), tuple(_attention_full()),
                tuple(load_model(m) for m in models), tuple(_e2e_full()))


def quick_plan(models: tuple[str, ...] = DEFAULT_MODELS) -> Plan:
    """A few points of each kind, for a first look at a new GPU (minutes)."""
    gemm = [GemmPoint("bf16", m, n, k, (m, n, k) == (4096, 4096, 4096))
            for n, k in [(4096, 4096), (28672, 4096)] for m in (1, 16, 256, 4096)]
    gemm += [GemmPoint(dt, 4096, 4096, 4096) for dt in ("fp16", "tf32", "fp8", "int8")]
    att = [AttentionPoint("prefill", 1, 32, 8, 128, s, s == 4096) for s in (1024, 4096)]
    att += [AttentionPoint("decode", b, 32, 8, 128, 4096, b == 32) for b in (1, 32)]
    e2e = [E2EPoint("prefill", 1, 512, "eager"), E2EPoint("prefill", 1, 2048, "eager", True)]
    e2e += [E2EPoint("decode", b, 1024, "cudagraph", b == 64) for b in (1, 8, 64)]
    e2e += [E2EPoint("decode", 1, 1024, "eager")]
    return Plan("quick", (8 * MiB, 512 * MiB, 2 * GiB), (2 * GiB,), tuple(gemm), tuple(att),
                tuple(load_model(m) for m in models), tuple(e2e), Reps(5, 5, 5, 5, 3, 3, 2))


def tiny_model(name: str) -> Model:
    """The preset ``name`` shrunk to a few thousand parameters, keeping its structure (tied embeddings,
    GQA, MoE, biases...). Named ``<name>-tiny``: it is not the preset and must not pass for it."""
    m = load_model(name)
    group = 2 if m.heads != m.kv_heads else 1
    moe = dict(experts=min(m.experts, 4), top_k=min(m.top_k, 2), expert_intermediate=48,
               dense_layers=min(m.dense_layers, 1), shared_experts=min(m.shared_experts, 1)) if m.is_moe else {}
    tiny = dataclasses.replace(
        m, name=f"{m.name}-tiny", hidden=64, intermediate=96, layers=2, heads=4, kv_heads=4 // group, head_dim=16,
        vocab=256, learned_positions=64 if m.learned_positions else 0, max_position=64, **moe,
    )
    tiny.validate()
    return tiny


def dry_run_plan(models: tuple[str, ...] = DRY_RUN_MODELS) -> Plan:
    """Tiny shapes that run on a CPU in seconds, in the same schema as a real run."""
    gemm = [GemmPoint("bf16", 4, 64, 64), GemmPoint("bf16", 32, 96, 64), GemmPoint("fp16", 4, 64, 64),
            GemmPoint("tf32", 4, 64, 64), GemmPoint("fp8", 32, 64, 64), GemmPoint("int8", 32, 64, 64)]
    att = [AttentionPoint("prefill", 1, 4, 2, 16, 32), AttentionPoint("prefill", 2, 4, 4, 16, 16),
           AttentionPoint("decode", 2, 4, 2, 16, 32)]
    e2e = [E2EPoint("prefill", 1, 16, "eager"), E2EPoint("prefill", 2, 8, "eager"),
           E2EPoint("decode", 1, 16, "eager"), E2EPoint("decode", 2, 16, "eager")]
    return Plan("dry-run", (64 * 1024, MiB), (), tuple(gemm), tuple(att), tuple(tiny_model(m) for m in models),
                tuple(e2e), Reps(3, 3, 3, 3, 2, 2, 1, 0.0), energy_window_s=0.0)
