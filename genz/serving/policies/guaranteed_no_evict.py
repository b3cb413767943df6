"""TensorRT-LLM-style *guaranteed no evict* admission (its ``GUARANTEED_NO_EVICT`` capacity policy).

A request is admitted only when the KV blocks of its whole life (prompt + every output token) fit
beside the whole-life blocks of the sequences already running, so no running sequence is ever
preempted; the price is a smaller running batch than vLLM's optimistic admission (which fills the
cache and preempts when decoding outgrows it). Otherwise it batches as vLLM's continuous policy does
(chunked prefill, token budget, ``max_num_seqs``).

Assumption (named): the output length a request will produce is known at admission (TensorRT-LLM
reserves for ``max_tokens``; here that is the request's own output length, the usual benchmark setup
with fixed output lengths).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from genz.serving.config import ContinuousBatching
from genz.serving.entities import blocks_for
from genz.serving.registry import register_scheduler
from genz.serving.schedulers import ContinuousScheduler

__all__ = ["GuaranteedNoEvict", "GuaranteedNoEvictScheduler"]


@dataclass(frozen=True)
class GuaranteedNoEvict(ContinuousBatching):
    """Continuous batching with TensorRT-LLM's guaranteed-no-evict admission (same knobs as vLLM's)."""

    kind = "guaranteed_no_evict"


class GuaranteedNoEvictScheduler(ContinuousScheduler):
    """Shows the continuous scheduler only the waiting requests whose whole-life blocks still fit."""

    def _life(self, s) -> int:
        return blocks_for(s.prompt + s.output, self.block_size)

    def schedule(self, now: float):
        """The next iteration's plan, admitting only requests that can run to the end without eviction."""
        room = self.num_blocks - self.watermark - sum(self._life(s) for s in self.running)
        waiting, shown = self.waiting, 0
        for s in waiting:
            if not s.prefilling:  # a disaggregated decode arrival brings its KV: it is admitted as usual
                shown += 1
                continue
            need = self._life(s)
            if need > room:
                break
            room -= need
            shown += 1
        if shown == len(waiting):
            return super().schedule(now)
        hidden = deque(waiting.popleft() for _ in range(shown))
        hidden, self.waiting = self.waiting, hidden  # the scheduler sees only the admissible head
        try:
            return super().schedule(now)
        finally:
            self.waiting.extend(hidden)


register_scheduler(
    "guaranteed_no_evict", GuaranteedNoEvict,
    lambda cfg, blocks, prefill_only: GuaranteedNoEvictScheduler(cfg, blocks, prefill_only),
    "TensorRT-LLM-style: admit only what can run to the end without eviction (no preemption)",
    prefill_pool=True)
