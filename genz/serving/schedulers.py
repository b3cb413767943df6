"""Batching policies: which sequences run in the next iteration, and what an iteration did.

A scheduler owns its replica's waiting queue, running set and KV blocks. The replica process asks
:meth:`schedule` for the next iteration (prefill chunks, decode count and context sum, for the cost
model) and calls :meth:`complete` when the iteration's time has passed. Schedulers know nothing of
costs or time beyond the ``now`` they are given (Vidur's split of policy from cost).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from genz.serving.config import ContinuousBatching, StaticBatching
from genz.serving.entities import Seq, blocks_for
from genz.serving.preemption import preemption_mode
from genz.serving.prefix_cache import BlockPrefixCache
from genz.serving.registry import make_scheduler, register_scheduler

__all__ = ["ContinuousScheduler", "Scheduler", "StaticScheduler", "make_scheduler", "num_kv_blocks"]

Plan = tuple[tuple[tuple[int, int], ...], int, int]  # (prefill chunks, decode count, decode context sum)


def num_kv_blocks(cost, block_size: int, gpu_memory_utilization: float) -> int:
    """KV blocks of one replica.

    With the optional ``cost.memory_bytes`` or ``cost.device_memory_bytes`` (total memory of the
    replica) this is vLLM's rule: the cache gets
    ``utilization * memory - (weights + activations)``; otherwise ``utilization * kv_capacity_bytes``
    (assumption: the utilization margin scales the free memory, not the whole memory).
    """
    cap = cost.kv_capacity_bytes
    mem = getattr(cost, "memory_bytes", None) or getattr(cost, "device_memory_bytes", None)
    if isinstance(mem, int | float) and mem > 0:
        kv = gpu_memory_utilization * mem - (mem - cap)
    else:
        kv = gpu_memory_utilization * cap
    return max(0, int(kv // (cost.kv_bytes_per_token * block_size)))


def _nothing(*_args) -> None:
    return None


@runtime_checkable
class Scheduler(Protocol):
    """What the simulation asks of a replica's scheduler (the contract a new policy implements).

    The replica calls :meth:`add` when a request arrives, :meth:`schedule` when it is free (``None``:
    nothing to run, it sleeps until the next :meth:`add`), and :meth:`complete` when the iteration's
    time has passed; the scheduler then calls the hooks ``on_first_token(seq, now)``,
    ``on_finish(seq, now)`` and, in a prefill-only pool, ``on_prefilled(seq, now, start, blocks)``.
    ``never_fits`` says why a request can never run here ('' when it can: such requests are dropped
    with that reason). The counters are tokens produced (``tokens_out``), prompt tokens computed
    (``prefill_tokens``, recomputation included), decode tokens and preemptions.
    """

    waiting: object
    running: object
    tokens_out: int
    prefill_tokens: int
    decode_tokens: int
    preemptions: int

    def add(self, seq: Seq) -> None:
        """Queue an arriving sequence."""

    def schedule(self, now: float) -> Plan | None:
        """The next iteration's plan (prefill chunks, decodes, context sum), or None when idle."""

    def complete(self, now: float, start: float) -> None:
        """Finish the iteration planned last, started at ``start`` (s) and ending at ``now`` (s)."""

    def never_fits(self, seq: Seq) -> str:
        """Why ``seq`` can never run here ('' when it can)."""

    def release(self, blocks: int) -> None:
        """Blocks handed back later (a prefill replica's KV once it is on the wire)."""


class _Base:
    def __init__(self, num_blocks: int, block_size: int):
        self.num_blocks = num_blocks
        self.free = num_blocks
        self.block_size = block_size
        self.waiting: deque[Seq] = deque()
        self.running: list[Seq] = []
        # hooks, set by the simulation
        self.on_first_token: Callable[[Seq, float], None] = _nothing
        self.on_finish: Callable[[Seq, float], None] = _nothing
        self.on_prefilled: Callable[[Seq, float, float, int], None] | None = None
        # counters (tokens)
        self.tokens_out = 0
        self.prefill_tokens = 0
        self.decode_tokens = 0
        self.preemptions = 0
        self.cached_tokens = 0   # prompt tokens a prefix cache supplied
        self.queried_tokens = 0  # prompt tokens looked up in a prefix cache
        self.swap_blocks = 0     # blocks copied to or from host memory, taken by the replica each iteration
        self.cache = None

    def add(self, seq: Seq) -> None:
        self.waiting.append(seq)

    def release(self, blocks: int) -> None:
        """Blocks handed back later (a disaggregated prefill replica's KV once it is on the wire)."""
        self.free += blocks


class ContinuousScheduler(_Base):
    """vLLM-style continuous batching; see :class:`~genz.serving.config.ContinuousBatching`.

    Every iteration decodes all decoding sequences (``max_num_batched_tokens >= max_num_seqs``, as
    vLLM requires); when their new KV blocks are short, the newest running sequence is preempted (by
    its preemption mode, :mod:`genz.serving.preemption`) until they fit. With chunked prefill, running
    prompts then get chunks oldest first (preempting the newest when blocks run out, possibly
    themselves) and new prompts are admitted oldest first while ``max_num_seqs``, the token budget
    and the free blocks less the watermark allow. Unchunked, an iteration admitting prompts is a
    prefill-only batch of whole prompts; a recomputation may exceed the token budget when it is
    alone, so a long preempted sequence is never stuck. In a prefill-only replica (disaggregated) a
    sequence leaves when its prompt is done and keeps its blocks until its KV is on the wire.

    With a prefix cache (``enable_prefix_caching``, :mod:`genz.serving.prefix_cache`) an admitted prompt
    starts after its cached prefix, and the free blocks include cached blocks nobody holds (evicted
    when a block is needed). Subclasses change admission through ``mixed`` (prompts share iterations
    with decodes), ``split_prompts`` (prompts may be chunked), ``reserving`` with ``_reserve`` /
    ``_unreserve`` (an admission gate) and ``cache``.

    Decoding sequences are tracked in aggregate so an iteration costs O(1) plus its events: a decode
    clock ``D`` counts this replica's decode iterations, a decoding sequence's cached tokens are
    ``D - seq.d0``, it needs a new block when ``D % block_size == seq.d0 % block_size`` (blocks are
    allocated tightly), and its finish is filed under the clock value at which it completes.
    """

    def __init__(self, cfg: ContinuousBatching, num_blocks: int, prefill_only: bool = False):
        super().__init__(num_blocks, cfg.block_size)
        self.max_seqs = cfg.max_num_seqs
        self.budget = cfg.max_num_batched_tokens
        self.chunked = cfg.chunked_prefill
        self.mixed = self.chunked
        self.split_prompts = self.chunked
        self.watermark = int(getattr(cfg, "watermark", 0.0) * num_blocks)
        self.prefill_only = prefill_only
        self.preemption = preemption_mode(getattr(cfg, "preemption_mode", "recompute"))
        self.cache = BlockPrefixCache(cfg.block_size) if getattr(cfg, "enable_prefix_caching", False) else None
        self.reserving = False
        self.budget_knob = "max_num_batched_tokens"
        self.running: dict[Seq, None] = {}     # admission order; popitem() gives the newest
        self.prefilling: dict[Seq, None] = {}  # running sequences still in prefill, admission order
        self.D = 0                             # decode clock
        self.n_dec = 0                         # decoding sequences
        self.sum_d0 = 0
        self.need_at = [0] * cfg.block_size    # decoding sequences per residue d0 % block_size
        self.finish_at: dict[int, list[tuple[Seq, int]]] = {}
        self._prefill: list[tuple[Seq, int]] = []
        self._decoding = False
        self._allocated = -1

    # ------------------------------------------------------------------ admission limits
    def never_fits(self, seq: Seq) -> str:
        """Why a request can never run here ('' when it can)."""
        bs = self.block_size
        need = seq.prompt if self.prefill_only else seq.prompt + seq.output
        if blocks_for(need, bs) > self.num_blocks - self.watermark:
            what = "prompt" if self.prefill_only else "prompt + output"
            return (f"kv_cache: {what} ({need} tokens) needs {blocks_for(need, bs)} blocks, the replica has "
                    f"{self.num_blocks} ({self.watermark} kept free)")
        if not self.split_prompts and seq.prompt > self.budget:
            return (f"prompt ({seq.prompt} tokens) exceeds scheduler.{self.budget_knob} ({self.budget}) "
                    "with chunked prefill off")
        return ""

    def _reserve(self, s: Seq) -> bool:
        """Admission gate of ``reserving`` subclasses: True (and the reservation made) when ``s`` may run."""
        return True

    def _unreserve(self, s: Seq) -> None:
        """Hand back what :meth:`_reserve` took for ``s``."""

    # ------------------------------------------------------------------ decoding set
    def _start_decoding(self, s: Seq) -> None:
        d0 = self.D - s.computed
        s.d0 = d0
        self.n_dec += 1
        self.sum_d0 += d0
        self.need_at[d0 % self.block_size] += 1
        end = d0 + s.prompt + s.output - 1
        entry = (s, s.epoch)
        lst = self.finish_at.get(end)
        if lst is None:
            self.finish_at[end] = [entry]
        else:
            lst.append(entry)

    def _stop_decoding(self, s: Seq) -> int:
        """Take ``s`` out of the decoding set; return the blocks it holds."""
        self.n_dec -= 1
        self.sum_d0 -= s.d0
        self.need_at[s.d0 % self.block_size] -= 1
        s.computed = self.D - s.d0
        s.tokens = s.computed + 1
        s.generated = s.tokens - s.prompt
        return blocks_for(s.computed, self.block_size)

    def _free_seq(self, s: Seq, blocks: int) -> None:
        """``s`` gives back the ``blocks`` it holds (to the prefix cache first, when there is one)."""
        cache = self.cache
        if cache is None:
            self.free += blocks
        else:
            self.free += cache.offer(s, s.computed)
            self.free += cache.release(s, blocks)
        if self.reserving:
            self._unreserve(s)

    def _evict(self) -> None:
        """Keep the cached-but-unused blocks within the free ones (evicting the oldest)."""
        cache = self.cache
        if cache.evictable > self.free:
            cache.evict(cache.evictable - self.free)

    def _preempt_newest(self) -> Seq:
        victim, _ = self.running.popitem()
        if victim in self.prefilling:
            del self.prefilling[victim]
            blocks, decoding = victim.blocks, False
        else:
            blocks = self._stop_decoding(victim) + (victim.d0 % self.block_size == self._allocated)
            decoding = True
        self._free_seq(victim, blocks)
        victim.blocks = 0
        self.preemption.preempt(self, victim, decoding)
        victim.preemptions += 1
        victim.epoch += 1
        self.preemptions += 1
        self.waiting.appendleft(victim)
        return victim

    def _admit(self, s: Seq, blocks: int, now: float) -> None:
        self.waiting.popleft()
        self.free -= blocks
        s.blocks = blocks
        s.done = False
        if s.first_scheduled is None:
            s.first_scheduled = now
        self.running[s] = None

    def _try_prompt(self, s: Seq, budget: int, now: float) -> int:
        """Admit the waiting prompt ``s`` with at most ``budget`` tokens in this iteration (after its
        cached prefix); the tokens scheduled, 0 when it cannot be admitted now."""
        cache = self.cache
        hit = taken = 0
        if cache is not None:
            hit, taken, handle = cache.match(s, s.target)
        start = hit * self.block_size
        n = s.target - start
        if n > budget:
            if not self.split_prompts:
                return 0
            n = budget
        need = blocks_for(start + n, self.block_size) - hit
        if self.free - taken - need < self.watermark or (self.reserving and not self._reserve(s)):
            return 0
        self._admit(s, need, now)
        if cache is not None:
            cache.acquire(s, hit, handle)
            self.free -= taken
            s.blocks += hit
            s.computed = start
            s.cached += start
            s.queried += s.target
            self.cached_tokens += start
            self.queried_tokens += s.target
            self._evict()
        self.prefilling[s] = None
        return n

    # ------------------------------------------------------------------ one iteration
    def schedule(self, now: float) -> Plan | None:
        """The next iteration's plan (prefill chunks, decodes, context sum), or None when idle."""
        bs = self.block_size
        running = self.running
        waiting = self.waiting
        cache = self.cache
        prefill: list[tuple[Seq, int]] = []
        self._prefill = prefill
        self._decoding = False
        self._allocated = -1  # residue whose decode blocks this iteration already took
        # already-prefilled arrivals (disaggregated decode) and swapped-out sequences join the decoding set
        while waiting and not waiting[0].prefilling and len(running) < self.max_seqs:
            s = waiting[0]
            need = blocks_for(s.computed, bs)
            if self.free - need < self.watermark or (self.reserving and not self._reserve(s)):
                break
            self._admit(s, need, now)
            if s.swapped:
                self.preemption.readmit(self, s, need)
            self._start_decoding(s)
            if cache is not None:
                self._evict()
        if not self.mixed and waiting and waiting[0].prefilling and len(running) < self.max_seqs:
            tokens = 0
            while waiting and len(running) < self.max_seqs:
                s = waiting[0]
                if not s.prefilling:
                    break
                # a prompt alone may exceed the budget (a long recomputation is never stuck)
                n = self._try_prompt(s, self.budget - tokens if tokens else s.target, now)
                if not n:
                    break
                prefill.append((s, n))
                tokens += n
            if prefill:
                return tuple((n, s.computed) for s, n in prefill), 0, 0
        # decodes: one new block for each sequence whose cached tokens fill its last block
        if self.n_dec:
            r = self.D % bs
            while self.need_at[r] > self.free:
                self._preempt_newest()
            self.free -= self.need_at[r]
            self._allocated = r
            if cache is not None:
                self._evict()
        n_dec = self.n_dec
        self._decoding = n_dec > 0
        budget = self.budget - n_dec
        # running prompts get their next chunk, oldest first
        if self.prefilling and budget > 0:
            for s in list(self.prefilling):
                if budget <= 0:
                    break
                if s not in self.prefilling:
                    continue  # preempted meanwhile
                n = s.target - s.computed
                if n > budget:
                    n = budget
                need = blocks_for(s.computed + n, bs) - s.blocks
                while need > self.free and s in self.prefilling:
                    self._preempt_newest()
                if s not in self.prefilling:
                    continue
                self.free -= need
                s.blocks += need
                budget -= n
                prefill.append((s, n))
                if cache is not None:
                    self._evict()
        if self.mixed:
            while waiting and budget > 0 and len(running) < self.max_seqs:
                s = waiting[0]
                if not s.prefilling:
                    break
                n = self._try_prompt(s, budget, now)
                if not n:
                    break
                prefill.append((s, n))
                budget -= n
        n_dec = self.n_dec
        self._decoding = n_dec > 0
        if not prefill and not n_dec:
            return None
        return tuple((n, s.computed) for s, n in prefill), n_dec, n_dec * self.D - self.sum_d0

    def _finish(self, s: Seq, blocks: int, now: float) -> None:
        del self.running[s]
        self._free_seq(s, blocks)
        s.blocks = 0
        s.done = True
        self.on_finish(s, now)

    def complete(self, now: float, start: float) -> None:
        """Apply the iteration that ran from ``start`` to ``now``."""
        out = 0
        cache = self.cache
        if self._decoding:
            n_dec = self.n_dec
            self.decode_tokens += n_dec
            out += n_dec
            self.D += 1
            due = self.finish_at.pop(self.D, None)
            if due:
                for s, epoch in due:
                    if s.epoch == epoch:
                        self._finish(s, self._stop_decoding(s), now)
        for s, n in self._prefill:
            s.computed += n
            s.prefill_tokens += n
            self.prefill_tokens += n
            if cache is not None:
                self.free += cache.offer(s, s.computed)
            if s.computed != s.target:
                continue
            del self.prefilling[s]
            s.prefilling = False
            s.generated += 1
            s.tokens += 1
            out += 1
            if s.first_token is None:
                s.first_token = now
                self.on_first_token(s, now)
            if s.generated == s.output:
                self._finish(s, s.blocks, now)
            elif self.prefill_only:
                del self.running[s]
                if self.reserving:
                    self._unreserve(s)
                s.done = True
                held, s.blocks = s.blocks, 0
                self.on_prefilled(s, now, start, held)
            else:
                self._start_decoding(s)
        self.tokens_out += out


class StaticScheduler(_Base):
    """Static batching; see :class:`~genz.serving.config.StaticBatching`.

    The batch is taken oldest first while its padded KV cache fits (``n * blocks(longest prompt +
    longest output)``, or the sum of each sequence's own needs without padding). Decode iterations run
    the whole batch (finished sequences keep computing, as in a padded ``generate`` call) until the
    longest output is done; then every request of the batch completes.
    """

    def __init__(self, cfg: StaticBatching, num_blocks: int):
        super().__init__(num_blocks, cfg.block_size)
        self.batch_size = cfg.batch_size
        self.pad = cfg.pad_to_longest
        self.batch: list[Seq] = []
        self._step = 0
        self._steps = 0
        self._ctx0 = 0

    def never_fits(self, seq: Seq) -> str:
        """Why ``seq`` can never run here ('' when it can)."""
        need = blocks_for(seq.prompt + seq.output, self.block_size)
        if need > self.num_blocks:
            return (f"kv_cache: prompt + output ({seq.prompt + seq.output} tokens) needs {need} blocks, "
                    f"the replica has {self.num_blocks}")
        return ""

    def schedule(self, now: float) -> Plan | None:
        """The next iteration's plan (a padded batch's prefill, or its decode), or None when idle."""
        bs = self.block_size
        if not self.batch:
            waiting = self.waiting
            if not waiting:
                return None
            batch: list[Seq] = []
            max_p = max_o = used = 0
            while waiting and len(batch) < self.batch_size:
                s = waiting[0]
                p, o = max(max_p, s.prompt), max(max_o, s.output)
                if self.pad:
                    need = (len(batch) + 1) * blocks_for(p + o, bs)
                else:
                    need = used + blocks_for(s.prompt + s.output, bs)
                if need > self.num_blocks:
                    break
                waiting.popleft()
                batch.append(s)
                max_p, max_o, used = p, o, need
            self.batch = batch
            self.running = batch
            self.free = self.num_blocks - used
            for s in batch:
                s.first_scheduled = now
                s.blocks = 0
            self._step = 0
            self._steps = max_o - 1
            n = len(batch)
            self._ctx0 = n * max_p if self.pad else sum(s.prompt for s in batch)
            if self.pad:
                return ((max_p, 0),) * n, 0, 0
            return tuple((s.prompt, 0) for s in batch), 0, 0
        n = len(self.batch)
        return (), n, self._ctx0 + n * (self._step - 1)

    def complete(self, now: float, start: float) -> None:
        """Finish the iteration planned last, started at ``start`` (s) and ending at ``now`` (s)."""
        batch = self.batch
        if self._step == 0:
            for s in batch:
                s.computed = s.prompt
                s.prefill_tokens += s.prompt
                self.prefill_tokens += s.prompt
                s.generated = 1
                s.tokens += 1
                s.prefilling = False
                s.first_token = now
                self.on_first_token(s, now)
            self.tokens_out += len(batch)
        else:
            produced = sum(1 for s in batch if s.output > self._step)
            self.decode_tokens += produced
            self.tokens_out += produced
        self._step += 1
        if self._step > self._steps:
            for s in batch:
                s.generated = s.output
                s.tokens = s.prompt + s.output
                s.done = True
                self.on_finish(s, now)
            self.batch = []
            self.running = []
            self.free = self.num_blocks


register_scheduler(
    "continuous", ContinuousBatching, lambda cfg, blocks, prefill_only: ContinuousScheduler(cfg, blocks, prefill_only),
    "vLLM-style iteration-level batching, paged KV cache, preemption by recomputation, chunked prefill",
    prefill_pool=True)
register_scheduler(
    "static", StaticBatching, lambda cfg, blocks, prefill_only: StaticScheduler(cfg, blocks),
    "HuggingFace-pipelines static batches, padded to the longest prompt and output")
