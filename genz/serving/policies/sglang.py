"""SGLang-style scheduling: a radix cache of every sequence seen and longest-prefix-match admission.

What is SGLang's (``python/sglang/srt/managers/schedule_policy.py``, ``mem_cache/radix_cache.py``,
``server_args.py``): the radix cache reuses the longest cached prefix of a prompt at token
granularity (``page_size`` 1), locks it while the request runs and evicts unlocked leaves least
recently used first (:class:`~genz.serving.prefix_cache.RadixPrefixCache`); ``lpm`` admits the
waiting requests with the longest cached prefix first, and falls back to first-come-first-served
when more than 128 wait (as SGLang does, since matching a long queue costs more than it saves).

Assumptions (what differs): SGLang's default loop runs prefill batches and decode batches
separately (prefill first) unless ``--enable-mixed-chunk``; here every iteration decodes all
running requests and fills the rest of ``chunked_prefill_size`` with prompt chunks, as mixed
chunking does. ``max_running_requests`` (SGLang derives it from the KV pool) and
``chunked_prefill_size`` (SGLang picks it by GPU memory) default to 256 and 8192, vLLM's values, so
the two policies compare like for like. ``schedule_policy`` defaults to ``lpm``, the policy the
radix cache was designed with (SGLang's earlier default; current releases default to ``fcfs``).
Preemption (SGLang's retraction) recomputes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from genz.serving.prefix_cache import RadixPrefixCache
from genz.serving.registry import register_scheduler
from genz.serving.schedulers import ContinuousScheduler

__all__ = ["LPM_QUEUE_LIMIT", "SGLangConfig", "SGLangScheduler"]

#: SGLang sorts by prefix match only while at most this many requests wait (``schedule_policy.py``).
LPM_QUEUE_LIMIT = 128


def _need(cond: bool, msg: str) -> None:
    if not cond:
        raise ValueError(msg)


@dataclass(frozen=True)
class SGLangConfig:
    """Knobs of the SGLang-style policy, named as SGLang's server arguments (see the module docstring)."""

    max_running_requests: int = field(default=256, metadata={"help": "most requests running at once (SGLang)"})
    chunked_prefill_size: int = field(default=8192, metadata={"help": "token budget of one iteration (SGLang)"})
    schedule_policy: str = field(default="lpm", metadata={"help": "lpm (longest cached prefix first) | fcfs"})
    radix_cache: bool = field(default=True, metadata={"help": "reuse cached prefixes (SGLang radix cache)"})
    block_size: int = field(default=1, metadata={"help": "KV-cache block, tokens"})
    gpu_memory_utilization: float = field(default=0.9, metadata={"help": "fraction of device memory the engine uses"})

    kind = "sglang"

    # what the continuous scheduler reads
    @property
    def max_num_seqs(self) -> int:
        """SGLang's ``max_running_requests``."""
        return self.max_running_requests

    @property
    def max_num_batched_tokens(self) -> int:
        """SGLang's ``chunked_prefill_size``."""
        return self.chunked_prefill_size

    @property
    def chunked_prefill(self) -> bool:
        """Always on (mixed chunks)."""
        return True

    def max_step_tokens(self, num_requests: int, longest_prompt: int) -> int:
        """Tokens of the largest iteration (the engine's activation reserve): the token budget."""
        return self.chunked_prefill_size

    def validate(self, prefix: str = "scheduler.") -> None:
        """Raise ``ValueError`` naming the first bad knob (``prefix`` + name)."""
        for name in ("max_running_requests", "chunked_prefill_size", "block_size"):
            v = getattr(self, name)
            _need(isinstance(v, int) and not isinstance(v, bool) and v >= 1,
                  f"{prefix}{name}: must be an integer >= 1, got {v!r}")
        _need(self.chunked_prefill_size >= self.max_running_requests,
              f"{prefix}chunked_prefill_size: must be >= {prefix}max_running_requests ({self.max_running_requests}) "
              f"(every running request decodes each iteration), got {self.chunked_prefill_size}")
        _need(self.schedule_policy in ("lpm", "fcfs"),
              f"{prefix}schedule_policy: must be one of lpm, fcfs, got {self.schedule_policy!r}")
        _need(isinstance(self.radix_cache, bool), f"{prefix}radix_cache: must be true or false, got {self.radix_cache!r}")
        _need(not self.radix_cache or self.block_size == 1,
              f"{prefix}block_size: the radix cache is token-granular (SGLang's page size 1); must be 1 with "
              f"radix_cache on, got {self.block_size}")
        u = self.gpu_memory_utilization
        _need(isinstance(u, int | float) and not isinstance(u, bool) and 0 < u <= 1,
              f"{prefix}gpu_memory_utilization: must be in (0, 1], got {u!r}")


class SGLangScheduler(ContinuousScheduler):
    """Continuous batching with a radix cache; ``lpm`` reorders the waiting queue by cached prefix
    (longest first, ties by arrival) before each iteration's admissions."""

    def __init__(self, cfg: SGLangConfig, num_blocks: int, prefill_only: bool = False):
        super().__init__(cfg, num_blocks, prefill_only)
        self.cache = RadixPrefixCache() if cfg.radix_cache else None
        self.lpm = cfg.schedule_policy == "lpm" and self.cache is not None

    def schedule(self, now: float):
        """Order the waiting queue (``lpm``), then plan as continuous batching does."""
        w = self.waiting
        if self.lpm and 1 < len(w) <= LPM_QUEUE_LIMIT:
            match = self.cache.match
            self.waiting = deque(sorted(w, key=lambda s: -match(s, s.target)[0] if s.prefilling else 0))
        return super().schedule(now)


register_scheduler("sglang", SGLangConfig, lambda cfg, blocks, prefill_only: SGLangScheduler(cfg, blocks, prefill_only),
                   "SGLang-style: radix prefix cache (token granular, LRU leaves) and longest-prefix-match admission",
                   prefill_pool=True)
