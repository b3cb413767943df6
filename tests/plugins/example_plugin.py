"""An example plugin (the recipes of docs/architecture.md, followed): a scheduling policy, a router
and a device family, each registered in a few lines. Loaded with ``GENZ_PLUGINS=<this file>``.

- ``shortest_prompt_first``: vLLM-style continuous batching whose waiting queue admits the shortest
  prompt first (a new request overtakes up to ``sort_window`` longer waiting ones; preempted
  sequences keep their place at the head).
- ``fewest_requests``: the replica with the fewest requests in flight.
- ``toy-gpu``: an H100 SXM data file with half its memory bandwidth, a device family of its own.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from genz.serving.config import ContinuousBatching
from genz.serving.registry import register_router, register_scheduler
from genz.serving.schedulers import ContinuousScheduler
from hwmodels.gpu import GPU, EfficiencyProfile
from hwmodels.registry import register_family
from hwmodels.spec import load_gpu


# --------------------------------------------------------------------------- a scheduling policy
@dataclass(frozen=True)
class ShortestPromptFirst(ContinuousBatching):
    """Continuous batching, shortest waiting prompt admitted first."""

    sort_window: int = field(default=64, metadata={"help": "longer waiting requests a new one may overtake"})

    kind = "shortest_prompt_first"

    def validate(self, prefix: str = "scheduler.") -> None:
        super().validate(prefix)
        if isinstance(self.sort_window, bool) or not isinstance(self.sort_window, int) or self.sort_window < 0:
            raise ValueError(f"{prefix}sort_window: must be an integer >= 0, got {self.sort_window!r}")


class ShortestPromptFirstScheduler(ContinuousScheduler):
    def __init__(self, cfg: ShortestPromptFirst, num_blocks: int, prefill_only: bool = False):
        super().__init__(cfg, num_blocks, prefill_only)
        self.sort_window = cfg.sort_window

    def add(self, seq) -> None:
        q = self.waiting
        i, passed = len(q), 0
        while i > 0 and passed < self.sort_window and q[i - 1].preemptions == 0 and q[i - 1].prompt > seq.prompt:
            i -= 1
            passed += 1
        q.insert(i, seq)


register_scheduler("shortest_prompt_first", ShortestPromptFirst,
                   lambda cfg, blocks, prefill_only: ShortestPromptFirstScheduler(cfg, blocks, prefill_only),
                   "continuous batching admitting the shortest waiting prompt first", prefill_pool=True)


# --------------------------------------------------------------------------- a router
class FewestRequests:
    def __init__(self, n: int):
        self.in_flight = [0] * n

    def assign(self, seq, work: int) -> int:
        i = self.in_flight.index(min(self.in_flight))
        self.in_flight[i] += 1
        return i

    def release(self, index: int, work: int) -> None:
        self.in_flight[index] -= 1


register_router("fewest_requests", FewestRequests, "the replica with the fewest requests in flight")


# --------------------------------------------------------------------------- a device family
def _toy(name: str) -> GPU:
    spec = load_gpu("h100-sxm")
    spec = dataclasses.replace(spec, name="toy-gpu", memory_bandwidth=spec.memory_bandwidth / 2)
    return GPU(spec, EfficiencyProfile())


register_family("toy", lambda: ["toy-gpu"], _toy, "an H100 SXM with half its memory bandwidth (a test family)")
