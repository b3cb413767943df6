"""What happens to a sequence preempted for lack of KV blocks: a registry of preemption modes.

* ``recompute`` (vLLM's default): its blocks are freed and its next prefill recomputes every token
  it knows (less what a prefix cache still holds).
* ``swap`` (vLLM V0 ``--preemption-mode swap``): a decoding sequence's KV blocks are copied to host
  memory over the replica's host link and copied back before it decodes again; the copies stall the
  replica's iteration in which they happen (vLLM V0 swaps in the engine step, before the forward
  pass). A sequence preempted in the middle of its prompt is recomputed (little to save).
  Assumption: host memory holds every swapped sequence (vLLM's ``swap_space`` is not modelled), and
  each device of the replica moves its share of the blocks over its own link.

A mode is an object with ``preempt(scheduler, seq, decoding)`` (called after the sequence's blocks
are freed) and ``readmit(scheduler, seq, blocks)`` (called when a swapped sequence is admitted
again); :func:`register_preemption_mode` adds one, and the ``preemption_mode`` knob of the
continuous policies names it.

>>> sorted(PREEMPTION_MODES)
['recompute', 'swap']
"""

from __future__ import annotations

from dataclasses import dataclass

from genz.serving.entities import Seq, blocks_for

__all__ = ["PREEMPTION_MODES", "Recompute", "Swap", "preemption_mode", "register_preemption_mode"]

PREEMPTION_MODES: dict[str, object] = {}


def register_preemption_mode(name: str, mode: object) -> object:
    """Register a preemption mode (an object with ``preempt`` and ``readmit``) under ``name``."""
    PREEMPTION_MODES[name] = mode
    return mode


def preemption_mode(name: str, prefix: str = "scheduler.") -> object:
    """The mode registered as ``name``; ``ValueError`` naming the knob otherwise."""
    if name not in PREEMPTION_MODES:
        raise ValueError(f"{prefix}preemption_mode: must be one of {', '.join(PREEMPTION_MODES)}, got {name!r}")
    return PREEMPTION_MODES[name]


@dataclass(frozen=True)
class Recompute:
    """Free the blocks; the sequence starts over from a prefill of all its tokens."""

    name: str = "recompute"

    def preempt(self, sched, seq: Seq, decoding: bool) -> None:
        """Reset ``seq`` to a prefill of everything it knows."""
        seq.computed = 0
        seq.prefilling = True
        seq.target = seq.tokens

    def readmit(self, sched, seq: Seq, blocks: int) -> None:
        """Nothing to bring back."""
        return None


@dataclass(frozen=True)
class Swap:
    """Copy a decoding sequence's KV blocks to host memory and back (see the module docstring)."""

    name: str = "swap"

    def preempt(self, sched, seq: Seq, decoding: bool) -> None:
        """Keep ``seq``'s cached tokens in host memory (a prompt in progress is recomputed)."""
        if not decoding:
            Recompute().preempt(sched, seq, decoding)
            return
        seq.swapped = True
        sched.swap_blocks += blocks_for(seq.computed, sched.block_size)

    def readmit(self, sched, seq: Seq, blocks: int) -> None:
        """Copy the blocks back in."""
        seq.swapped = False
        sched.swap_blocks += blocks


register_preemption_mode("recompute", Recompute())
register_preemption_mode("swap", Swap())
