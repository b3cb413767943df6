"""A replica as a simpy process: ask the scheduler for an iteration, pay its cost, apply it, repeat.

Also the routers that spread arriving requests over the replicas of a pool.
"""

from __future__ import annotations

import simpy

from genz.serving.cost import MemoizedStepCost
from genz.serving.entities import Seq
from genz.serving.registry import make_router, register_router

__all__ = ["LeastOutstandingTokens", "Replica", "RoundRobin", "make_router"]


class Replica:
    """One model instance (one or several devices) running its scheduler's iterations back to back."""

    def __init__(self, env: simpy.Environment, index: int, scheduler, memo: MemoizedStepCost, window_s: float,
                 swap_s_per_block: float = 0.0):
        self.env = env
        self.swap_s_per_block = swap_s_per_block  # host-link time of one swapped KV block (s)
        self.itl: dict[float, int] = {}    # iteration seconds -> decode tokens it produced (inter-token latencies)
        self.index = index
        self.scheduler = scheduler
        self.memo = memo
        self.window_s = window_s
        self.energy_j = 0.0
        self.busy_s = 0.0
        self.iterations = 0
        self.busy_bins: list[float] = []   # busy seconds per window
        self.token_bins: list[int] = []    # output tokens produced per window (by iteration end)
        self._sleep: simpy.Event | None = None
        self.process = env.process(self.run())

    @property
    def idle(self) -> bool:
        """Asleep with no wake-up pending: a woken replica stays ``_sleep``-set until simpy resumes it
        (possibly later in the same instant), and it is not idle then."""
        ev = self._sleep
        return ev is not None and not ev.triggered

    def submit(self, seq: Seq) -> None:
        """Queue an arriving sequence and wake the replica if it sleeps."""
        self.scheduler.add(seq)
        self.wake()

    def wake(self) -> None:
        """Wake a sleeping replica (new work or released blocks)."""
        ev = self._sleep
        if ev is not None and not ev.triggered:
            ev.succeed()

    def _record(self, start: float, end: float, tokens: int) -> None:
        w = self.window_s
        bins = self.busy_bins
        i, j = int(start / w), int(end / w)
        if j >= len(bins):
            extra = j + 1 - len(bins)
            bins.extend([0.0] * extra)
            self.token_bins.extend([0] * extra)
        if i == j:
            bins[i] += end - start
        else:
            bins[i] += (i + 1) * w - start
            for k in range(i + 1, j):
                bins[k] += w
            bins[j] += end - j * w
        self.token_bins[j] += tokens

    def run(self):
        """The replica's simpy process: schedule, cost and complete iterations until stopped."""
        env = self.env
        sched = self.scheduler
        cost = self.memo.cost
        itl = self.itl
        while True:
            plan = sched.schedule(env.now)
            if plan is None:
                self._sleep = env.event()
                yield self._sleep
                self._sleep = None
                continue
            dt, joules = cost(*plan)
            if sched.swap_blocks:  # KV blocks copied to or from host memory stall this iteration
                dt += sched.swap_blocks * self.swap_s_per_block
                sched.swap_blocks = 0
            start = env.now
            yield env.timeout(dt)
            before = sched.tokens_out
            dec = sched.decode_tokens
            sched.complete(env.now, start)
            dec = sched.decode_tokens - dec
            if dec:  # each decoding sequence's token came one iteration after its previous one
                itl[dt] = itl.get(dt, 0) + dec
            self.energy_j += joules
            self.busy_s += dt
            self.iterations += 1
            self._record(start, env.now, sched.tokens_out - before)


class RoundRobin:
    """Replica ``i mod n`` for the ``i``-th request."""

    def __init__(self, n: int):
        self.n = n
        self.next = 0

    def assign(self, seq: Seq, work: int) -> int:
        """Index of the replica for the next request (i mod n)."""
        i = self.next
        self.next = (i + 1) % self.n
        return i

    def release(self, index: int, work: int) -> None:
        """Nothing to update for round robin."""
        return None


class LeastOutstandingTokens:
    """The replica with the fewest tokens still to process (prompt tokens not yet prefilled plus output
    tokens not yet produced, updated when a prompt finishes and when a request leaves); ties go to the
    lowest index."""

    def __init__(self, n: int):
        self.outstanding = [0] * n

    def assign(self, seq: Seq, work: int) -> int:
        """Index of the replica for ``seq`` (the least loaded); adds its ``work`` tokens."""
        out = self.outstanding
        i = out.index(min(out))
        out[i] += work
        return i

    def release(self, index: int, work: int) -> None:
        """Take ``work`` tokens off replica ``index``'s outstanding count."""
        self.outstanding[index] -= work


register_router("round_robin", RoundRobin, "replica i mod n for the i-th request")
register_router("least_outstanding_tokens", LeastOutstandingTokens,
                "the replica with the fewest prompt and output tokens still to process")
