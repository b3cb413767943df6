"""TensorRT-LLM-style scheduling: in-flight batching with a capacity scheduler.

What is TensorRT-LLM's (``batch_manager`` capacity and micro-batch schedulers, ``KvCacheConfig``):
every iteration runs the generation requests and new context (prompt) requests together, within
``max_num_tokens`` and ``max_batch_size``; without ``enable_chunked_context`` a prompt goes in
whole (a prompt longer than ``max_num_tokens`` can never run). The capacity scheduler admits:

* ``guaranteed_no_evict`` (the default): only when the KV blocks of the request's prompt and of all
  the tokens it may generate, together with what every running request may still need, fit the
  cache; a running request is never evicted. Assumption: a request may generate exactly its
  ``output_tokens`` (benchmark clients set ``max_tokens`` to it and ignore end-of-sequence).
* ``max_utilization``: whenever the prompt's blocks are free now; when the cache runs short the
  newest request is paused and recomputed later (as the vLLM-style policy preempts).

Defaults: ``max_num_tokens = 8192``, ``free_gpu_memory_fraction = 0.9`` (here
``gpu_memory_utilization``, applied as vLLM's rule: assumption, TensorRT-LLM applies it to the
memory left after the weights, which gives somewhat more blocks), ``tokens_per_block = 32``
(``block_size``), ``enable_chunked_context`` off; ``max_batch_size = 256`` (trtllm-build's
long-standing default; the LLM API's is larger: assumption). ``enable_prefix_caching`` is TensorRT-LLM's
KV-cache block reuse, modelled as vLLM's block-hash cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from genz.serving.entities import Seq, blocks_for
from genz.serving.registry import register_scheduler
from genz.serving.schedulers import ContinuousScheduler

__all__ = ["CAPACITY_POLICIES", "TRTLLMConfig", "TRTLLMScheduler"]

CAPACITY_POLICIES = ("guaranteed_no_evict", "max_utilization")


def _need(cond: bool, msg: str) -> None:
    if not cond:
        raise ValueError(msg)


@dataclass(frozen=True)
class TRTLLMConfig:
    """Knobs of the TensorRT-LLM-style policy (see the module docstring)."""

    max_batch_size: int = field(default=256, metadata={"help": "most requests in flight (TensorRT-LLM)"})
    max_num_tokens: int = field(default=8192, metadata={"help": "token budget of one iteration (TensorRT-LLM)"})
    capacity_scheduler_policy: str = field(default="guaranteed_no_evict", metadata={
        "help": "guaranteed_no_evict (reserve every admitted request's whole KV) | max_utilization"})
    enable_chunked_context: bool = field(default=False, metadata={"help": "split prompts over iterations"})
    enable_prefix_caching: bool = field(default=False, metadata={
        "help": "reuse cached KV blocks of shared prompt prefixes (vLLM automatic prefix caching)"})
    block_size: int = field(default=32, metadata={"help": "KV-cache block, tokens"})
    gpu_memory_utilization: float = field(default=0.9, metadata={"help": "fraction of device memory the engine uses"})

    kind = "trtllm"

    @property
    def max_num_seqs(self) -> int:
        """TensorRT-LLM's ``max_batch_size``."""
        return self.max_batch_size

    @property
    def max_num_batched_tokens(self) -> int:
        """TensorRT-LLM's ``max_num_tokens``."""
        return self.max_num_tokens

    @property
    def chunked_prefill(self) -> bool:
        """TensorRT-LLM's ``enable_chunked_context``."""
        return self.enable_chunked_context

    @property
    def watermark(self) -> float:
        """No blocks are held back."""
        return 0.0

    def max_step_tokens(self, num_requests: int, longest_prompt: int) -> int:
        """Tokens of the largest iteration (the engine's activation reserve): the token budget."""
        return self.max_num_tokens

    def validate(self, prefix: str = "scheduler.") -> None:
        """Raise ``ValueError`` naming the first bad knob (``prefix`` + name)."""
        for name in ("max_batch_size", "max_num_tokens", "block_size"):
            v = getattr(self, name)
            _need(isinstance(v, int) and not isinstance(v, bool) and v >= 1,
                  f"{prefix}{name}: must be an integer >= 1, got {v!r}")
        _need(self.max_num_tokens >= self.max_batch_size,
              f"{prefix}max_num_tokens: must be >= {prefix}max_batch_size ({self.max_batch_size}) (every running "
              f"request decodes each iteration), got {self.max_num_tokens}")
        _need(self.capacity_scheduler_policy in CAPACITY_POLICIES,
              f"{prefix}capacity_scheduler_policy: must be one of {', '.join(CAPACITY_POLICIES)}, "
              f"got {self.capacity_scheduler_policy!r}")
        for name in ("enable_chunked_context", "enable_prefix_caching"):
            _need(isinstance(getattr(self, name), bool), f"{prefix}{name}: must be true or false, "
                                                          f"got {getattr(self, name)!r}")
        u = self.gpu_memory_utilization
        _need(isinstance(u, int | float) and not isinstance(u, bool) and 0 < u <= 1,
              f"{prefix}gpu_memory_utilization: must be in (0, 1], got {u!r}")


class TRTLLMScheduler(ContinuousScheduler):
    """In-flight batching: prompts join decode iterations (whole unless chunked); with
    ``guaranteed_no_evict`` a request is admitted only when its whole KV (prompt + output) fits
    beside every running request's whole KV, so no request is ever preempted."""

    def __init__(self, cfg: TRTLLMConfig, num_blocks: int, prefill_only: bool = False):
        super().__init__(cfg, num_blocks, prefill_only)
        self.mixed = True
        self.split_prompts = cfg.enable_chunked_context
        self.budget_knob = "max_num_tokens"
        self.reserving = cfg.capacity_scheduler_policy == "guaranteed_no_evict"
        self.reserved = 0                     # blocks promised to running requests
        self._promise: dict[Seq, int] = {}

    def _reserve(self, s: Seq) -> bool:
        need = blocks_for(s.prompt if self.prefill_only else s.prompt + s.output, self.block_size)
        if self.reserved + need > self.num_blocks:
            return False
        self.reserved += need
        self._promise[s] = need
        return True

    def _unreserve(self, s: Seq) -> None:
        self.reserved -= self._promise.pop(s, 0)


register_scheduler("trtllm", TRTLLMConfig, lambda cfg, blocks, prefill_only: TRTLLMScheduler(cfg, blocks, prefill_only),
                   "TensorRT-LLM-style in-flight batching; guaranteed_no_evict reserves each request's whole KV "
                   "(never preempts) or max_utilization", prefill_pool=True)
