"""What one iteration costs: the interface to the analytical engine, a test double, and a memo.

The serving simulation never computes costs itself; it asks a :class:`StepCostModel` for the
seconds and joules of each iteration (one forward pass of one replica over a batch).

Memoization (:class:`MemoizedStepCost`) keys each iteration on a bucketed signature. A count
``x`` is rounded to the nearest multiple of ``b = min(bucket, largest power of two <= x / 64)``
(counts below 128 stay exact), so the rounding error is at most ``b / 2``: at most 1/128 of the
count (0.4 %) and at most ``bucket / 2`` tokens:

* each prefill chunk's new tokens use ``prefill_bucket`` (default 2: compute-bound chunks
  stay within 0.5 %, measured by ``benchmarks/bench_serving.py --engine --check-error``), its cached tokens
  ``context_bucket`` (default 256); chunks are sorted (order inside a batch does not change cost);
* decode sequences enter through their count (exact) and the sum of their contexts, rounded with
  ``context_bucket``; the engine is called with that sum split evenly over the sequences.

For a roofline engine the time error is at most that many tokens times the per-token time: e.g.
8 of 1000 prompt tokens (0.8 % of the prefill's compute, but 1000 is a multiple of 8, so exact), or
128 context tokens of an 8B model with 128 KiB of KV per token (16 MiB of reads, ~5 us on an H200
against a ~5 ms decode step). The even split is exact for engines whose decode cost is linear in
each context (KV reads and attention FLOPs are). The engine is called at the rounded values (the
key itself), so a cached cost does not depend on which iteration filled the entry. ``prefill_bucket =
context_bucket = 1`` is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["AllToAllCost", "LinearAllToAll", "LinearStepCost", "MemoizedStepCost", "StepCostModel",
           "WithAllToAll"]


@runtime_checkable
class StepCostModel(Protocol):
    """Cost of one iteration on one replica (the analytical engine implements this)."""

    kv_bytes_per_token: float  # KV-cache bytes per token on one replica (all layers, summed over its devices)
    kv_capacity_bytes: float   # memory minus weights minus activations, before gpu_memory_utilization
    price_per_hour_usd: float  # the whole replica

    def step(self, prefill_chunks: tuple[tuple[int, int], ...],
             decode_contexts: tuple[int, ...]) -> tuple[float, float]:
        """Seconds and joules of one iteration on one replica: prefill_chunks = (new tokens, tokens
        already cached) per prefilling sequence; decode_contexts = cached tokens of each decoding
        sequence (each emits one token)."""
        ...


# Optional attributes read with getattr (the engine may provide them):
#   memory_bytes (or device_memory_bytes): float -> total memory of the replica; then the KV cache gets vLLM's
#                           gpu_memory_utilization * memory_bytes - (memory_bytes - kv_capacity_bytes)
#   idle_power_w: float  -> power drawn between iterations, counted into energy


@dataclass(frozen=True)
class LinearStepCost:
    """Analytical test double: ``time = a_s + b_s_per_token * new_tokens + c_s_per_context_token *
    sum(contexts)``, energy = ``power_w * time``.

    ``new_tokens`` counts prefill tokens plus one per decoding sequence; ``sum(contexts)`` counts the
    cached tokens of prefill chunks and decode sequences. ``alltoall_s_per_token`` is the
    expert-parallel hook: an extra all-to-all time per new token (see :class:`WithAllToAll` for a
    per-layer model driven by an expert placement).

    Defaults (assumption; a test double, not a hardware model): roughly an 8B bf16 model on one
    H100-class GPU: 5 ms per iteration (16 GB of weights at ~3.3 TB/s), 30 us per new token
    (16 GFLOP at ~550 TFLOP/s achieved), 40 ns per cached token (128 KiB of KV at ~3.3 TB/s),
    700 W (the H100 SXM power limit), 60 GB for the KV cache, $4 per GPU-hour.
    """

    a_s: float = 5e-3
    b_s_per_token: float = 3e-5
    c_s_per_context_token: float = 4e-8
    power_w: float = 700.0
    kv_bytes_per_token: float = 131072.0
    kv_capacity_bytes: float = 60e9
    price_per_hour_usd: float = 4.0
    alltoall_s_per_token: float = 0.0
    idle_power_w: float = 0.0

    def step(self, prefill_chunks, decode_contexts):
        """Time (s) and energy (J) of one iteration of the given prefill chunks and decodes."""
        new = len(decode_contexts)
        ctx = 0
        for n, c in prefill_chunks:
            new += n
            ctx += c
        ctx += sum(decode_contexts)
        t = self.a_s + (self.b_s_per_token + self.alltoall_s_per_token) * new + self.c_s_per_context_token * ctx
        return t, self.power_w * t


# --------------------------------------------------------------------------- expert-parallel hook
class AllToAllCost(Protocol):
    """Seconds of an expert-parallel all-to-all moving a given number of tokens (a protocol)."""
    def seconds(self, tokens: int) -> float:
        """All-to-all time (dispatch + combine, all MoE layers) of an iteration over ``tokens`` new tokens."""
        ...


@dataclass(frozen=True)
class LinearAllToAll:
    """Per-layer all-to-all: ``moe_layers * (latency_s + tokens * s_per_token)``, where ``s_per_token``
    comes from the expert placement (the busiest device's share of routed tokens times hidden size
    times bytes, over the link bandwidth; the engine or the placement optimizer supplies it)."""

    moe_layers: int
    s_per_token: float
    latency_s: float = 0.0
    power_w: float = 0.0

    def seconds(self, tokens: int) -> float:
        """All-to-all time (s) of ``tokens`` tokens: latency plus tokens x per-token time."""
        return self.moe_layers * (self.latency_s + tokens * self.s_per_token) if tokens else 0.0


@dataclass(frozen=True)
class WithAllToAll:
    """A step cost plus an expert-parallel all-to-all term (not overlapped with compute)."""

    base: StepCostModel
    all_to_all: AllToAllCost

    @property
    def kv_bytes_per_token(self) -> float:
        """KV-cache bytes per token of the wrapped model (bytes)."""
        return self.base.kv_bytes_per_token

    @property
    def kv_capacity_bytes(self) -> float:
        """KV-cache capacity of one replica (bytes)."""
        return self.base.kv_capacity_bytes

    @property
    def price_per_hour_usd(self) -> float:
        """Price of one replica (USD per hour)."""
        return self.base.price_per_hour_usd

    def __getattr__(self, name):  # optional attributes (memory_bytes, idle_power_w) pass through
        if name in ("base", "all_to_all"):
            raise AttributeError(name)
        return getattr(self.base, name)

    def step(self, prefill_chunks, decode_contexts):
        """Time (s) and energy (J) of one iteration plus its all-to-all time."""
        t, j = self.base.step(prefill_chunks, decode_contexts)
        tokens = sum(n for n, _ in prefill_chunks) + len(decode_contexts)
        extra = self.all_to_all.seconds(tokens)
        return t + extra, j + extra * getattr(self.all_to_all, "power_w", 0.0)


# --------------------------------------------------------------------------- memo
def _round(x: int, bucket: int) -> int:
    """Nearest multiple (ties up) of ``min(bucket, largest power of two <= x / 64)``; below 128 exact."""
    if x < 128:
        return x
    b = 1 << ((x >> 6).bit_length() - 1)
    if b > bucket:
        b = bucket
    return (x + (b >> 1)) // b * b


class MemoizedStepCost:
    """Cache of a :class:`StepCostModel` on a bucketed signature (see the module docstring).

    The simulation calls :meth:`cost` with prefill chunks and the decode count and context sum;
    :meth:`step` keeps the :class:`StepCostModel` signature so a memo can stand in for the model.
    """

    def __init__(self, model: StepCostModel, prefill_bucket: int = 2, context_bucket: int = 256):
        if prefill_bucket < 1 or context_bucket < 1:
            raise ValueError("memo buckets must be >= 1")
        self.model = model
        self.prefill_bucket = prefill_bucket
        self.context_bucket = context_bucket
        self.hits = 0
        self.misses = 0
        self._cache: dict = {}

    kv_bytes_per_token = property(lambda self: self.model.kv_bytes_per_token,
                                  doc="KV-cache bytes per token of the wrapped model (bytes).")
    kv_capacity_bytes = property(lambda self: self.model.kv_capacity_bytes, doc="KV-cache capacity of one replica (bytes).")
    price_per_hour_usd = property(lambda self: self.model.price_per_hour_usd, doc="Price of one replica (USD per hour).")

    def cost(self, prefill_chunks: tuple[tuple[int, int], ...], n_decode: int, decode_context_sum: int
             ) -> tuple[float, float]:
        """Seconds and joules of an iteration with these prefill chunks and ``n_decode`` decoding
        sequences holding ``decode_context_sum`` cached tokens in total."""
        cb = self.context_bucket
        ctx = _round(decode_context_sum, cb)
        if prefill_chunks:
            pb = self.prefill_bucket
            if len(prefill_chunks) == 1:
                n, c = prefill_chunks[0]
                pk = ((_round(n, pb), _round(c, cb)),)
            else:
                pk = tuple(sorted((_round(n, pb), _round(c, cb)) for n, c in prefill_chunks))
            key = (pk, n_decode, ctx)
        else:
            pk = ()
            key = (n_decode, ctx)
        hit = self._cache.get(key)
        if hit is not None:
            self.hits += 1
            return hit
        self.misses += 1
        q, r = divmod(ctx, n_decode) if n_decode else (0, 0)
        contexts = (q + 1,) * r + (q,) * (n_decode - r)
        t, j = self.model.step(pk, contexts)
        if not (t > 0 and j >= 0):
            raise ValueError(f"step cost model returned time {t!r} s and energy {j!r} J for prefill {pk} "
                             f"and {n_decode} decodes; time must be > 0 and energy >= 0")
        res = (float(t), float(j))
        self._cache[key] = res
        return res

    def step(self, prefill_chunks, decode_contexts):
        """Time (s) and energy (J) of one iteration, from the cache when a bucketed twin was costed."""
        return self.cost(tuple(prefill_chunks), len(decode_contexts), sum(decode_contexts))

    def stats(self) -> dict[str, int]:
        """Cache statistics: lookups, hits and distinct keys costed."""
        return {"hits": self.hits, "misses": self.misses, "entries": len(self._cache)}
