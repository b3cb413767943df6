"""Entities of the serving simulation: a request's life on the replicas (:class:`Seq`).

Token timeline of a request with ``prompt`` tokens that wants ``output`` tokens:

* prefill computes the KV cache of the prompt and, in the same iteration, produces output token 1
  (so TTFT ends with the iteration that finishes the prompt, chunked or not);
* each decode iteration feeds the newest token (its KV gets cached) and produces the next one, so a
  request alone takes one prefill iteration and ``output - 1`` decode iterations;
* a decode iteration of a sequence with ``computed`` cached tokens passes ``computed`` as its context
  and needs KV blocks for ``computed + 1`` tokens;
* preemption by recomputation (vLLM): the sequence's blocks are freed and it re-queues at the front;
  its next prefill covers all ``prompt + generated`` tokens it knows and produces the next token
  (less what a prefix cache still holds); preemption by swapping keeps ``computed`` and brings the
  blocks back before the sequence runs again.
"""

from __future__ import annotations

from workloads.requests import Request

__all__ = ["Seq", "blocks_for"]


def blocks_for(tokens: int, block_size: int) -> int:
    """KV blocks holding ``tokens`` tokens."""
    return -(-tokens // block_size)


class Seq:
    """Mutable state of one request in the simulation (times in simulated seconds)."""

    __slots__ = ("id", "arrival", "prompt", "output", "generated", "tokens", "computed", "target",
                 "prefilling", "blocks", "preemptions", "prefill_tokens", "first_scheduled", "first_token",
                 "finish", "status", "reason", "replica", "prefill_replica", "transfer_s", "done", "d0", "epoch",
                 "req", "cached", "queried", "ckeys", "shared", "reg", "swapped")

    def __init__(self, req: Request):
        self.id = req.id
        self.arrival = req.arrival_s
        self.prompt = req.prompt_tokens
        self.output = req.output_tokens
        self.generated = 0          # output tokens produced
        self.tokens = req.prompt_tokens  # prompt + generated
        self.computed = 0           # tokens whose KV is cached
        self.target = req.prompt_tokens  # tokens the current prefill must cache
        self.prefilling = True
        self.blocks = 0             # KV blocks held on the current replica
        self.preemptions = 0
        self.prefill_tokens = 0     # prefill tokens processed, recomputation included
        self.first_scheduled: float | None = None
        self.first_token: float | None = None
        self.finish: float | None = None
        self.status = "pending"     # pending -> completed | dropped | unfinished
        self.reason = ""
        self.replica = -1           # replica that generated the tokens (decode replica when disaggregated)
        self.prefill_replica = -1   # prefill replica when disaggregated
        self.transfer_s = 0.0       # visible KV-transfer delay when disaggregated
        self.done = False           # left the current replica's running set
        self.d0 = 0                 # while decoding: computed = replica's decode clock - d0
        self.epoch = 0              # bumped at each preemption (invalidates scheduled finishes)
        self.req = req
        self.cached = 0             # prompt tokens found in a prefix cache, over all admissions
        self.queried = 0            # prompt tokens looked up in a prefix cache, over all admissions
        self.ckeys: list = []       # prefix-cache entries this sequence holds (the cache's handles)
        self.shared = 0             # of the blocks it holds, those owned by the prefix cache
        self.reg = 0                # blocks (or segments) it has offered to the prefix cache
        self.swapped = False        # its KV cache sits in host memory (swap preemption)
