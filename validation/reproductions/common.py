"""Shared pieces of the reproductions: a step-cost cache that outlives one run, and the search for the
highest arrival rate that still meets a latency criterion."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["SharedStepCache", "max_rate", "RateSearch", "format_rows", "describe_pool"]


class SharedStepCache:
    """A step-cost model that remembers every iteration it was asked for, across simulations.

    Each :func:`~genz.serving.simulate` call memoizes inside the run only; a rate search runs the same
    replicas many times, and the bucketed iterations they ask for repeat. The cache is exact (keyed
    on the prefill chunks and the decode contexts as given); every other attribute (KV bytes, price,
    idle power, memory) passes through to the wrapped model.
    """

    def __init__(self, model):
        self.model = model
        self._cache: dict = {}

    def __getattr__(self, name):
        if name in ("model", "_cache"):
            raise AttributeError(name)
        return getattr(self.model, name)

    @property
    def kv_bytes_per_token(self) -> float:
        return self.model.kv_bytes_per_token

    @property
    def kv_capacity_bytes(self) -> float:
        return self.model.kv_capacity_bytes

    @property
    def price_per_hour_usd(self) -> float:
        return self.model.price_per_hour_usd

    def step(self, prefill_chunks, decode_contexts):
        n = len(decode_contexts)
        # an evenly split context sum (what MemoizedStepCost passes) is identified by count and sum
        even = n == 0 or max(decode_contexts) - min(decode_contexts) <= 1
        key = (tuple(prefill_chunks), n, sum(decode_contexts)) if even else \
            (tuple(prefill_chunks), tuple(decode_contexts))
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = self.model.step(prefill_chunks, decode_contexts)
        return hit

    def __len__(self) -> int:
        return len(self._cache)


@dataclass
class RateSearch:
    """Outcome of :func:`max_rate`: the highest rate found to pass, the lowest found to fail, what
    failed there, and every probe ``(rate, passed, reason)``."""

    rate: float
    failed_rate: float
    reason: str
    probes: list


def max_rate(passes: Callable[[float], tuple[bool, str]], guess: float, rel_tol: float = 0.08,
             max_probes: int = 12) -> RateSearch:
    """Bracket then bisect (geometrically) the highest arrival rate for which ``passes(rate)`` holds.

    ``passes`` returns ``(ok, reason)``; it is assumed monotone (a rate above a failing one fails).
    Stops when the bracket is within ``rel_tol`` (relative) or after ``max_probes`` calls.
    """
    probes = []

    def probe(r):
        ok, why = passes(r)
        probes.append((r, ok, why))
        return ok, why

    lo, hi, reason = 0.0, math.inf, ""
    r = guess
    while len(probes) < max_probes:
        ok, why = probe(r)
        if ok:
            lo = r
            if hi < math.inf:
                break
            r *= 2.0
        else:
            hi, reason = r, why
            if lo > 0:
                break
            r /= 2.0
    while lo > 0 and hi < math.inf and hi / lo > 1 + rel_tol and len(probes) < max_probes:
        r = math.sqrt(lo * hi)
        ok, why = probe(r)
        if ok:
            lo = r
        else:
            hi, reason = r, why
    return RateSearch(lo, hi, reason, probes)


def format_rows(rows, width: int = 48) -> str:
    """A table of ``(figure, published, model, note)`` rows with the model's error against the
    published value (blank where nothing was published)."""
    lines = [f"{'figure':{width}s} {'published':>11s} {'model':>11s} {'error':>8s}  note"]
    for name, pub, model, note in rows:
        err = f"{100 * (model - pub) / abs(pub):+.1f}%" if pub else ""
        fmt = (lambda v: f"{v:,.3f}") if abs(pub or model) < 10 else (lambda v: f"{v:,.0f}")
        lines.append(f"{name:{width}s} {fmt(pub) if pub is not None else '':>11s} {fmt(model):>11s} {err:>8s}  {note}")
    return "\n".join(lines)


def describe_pool(role: str, p) -> str:
    """One line on a predicted MoE-cluster pool: where its step goes, its memory and its imbalance."""
    t, m = p.time, p.memory
    return (f"{role}: step {t['step_s'] * 1e3:.1f} ms = compute {t['compute_s'] * 1e3:.1f} + communication "
            f"{t['comm_s'] * 1e3:.1f} (NVLink {t['intra_s'] * 1e3:.1f}, network {t['inter_s'] * 1e3:.1f}) - hidden "
            f"{t['hidden_s'] * 1e3:.1f} ms; memory {p.fit_message()} (weights {m['weights'] / 1e9:.1f}, "
            f"KV {m['kv_cache'] / 1e9:.1f}, buffers {m['buffers'] / 1e9:.2f} GB); imbalance {p.imbalance:.3f}")
