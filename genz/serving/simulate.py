"""``simulate(scenario)``: replay a trace through replicas on a simpy clock and report.

The story, as processes: an arrival process hands each request to its pool's router, which picks a
replica; each replica runs iterations back to back while it has work (:mod:`genz.serving.replica`);
with disaggregation, a prefill replica's finished prompt is shipped over its KV link to a decode
replica; a monitor samples the queues each window, reports progress and watches for saturation.
"""

from __future__ import annotations

import math

import pandas as pd
import simpy

from genz.serving.config import MAX_ARRIVAL_S, MAX_REQUESTS, MAX_WINDOWS, ProgressCallback, Scenario
from genz.serving.cost import MemoizedStepCost
from genz.serving.entities import Seq
from genz.serving.replica import Replica, make_router
from genz.serving.results import ServingResult, Summary, request_frame, summarize
from genz.serving.schedulers import make_scheduler, num_kv_blocks

__all__ = ["simulate", "unloaded_tpot", "unloaded_ttft"]


class _Stalled(RuntimeError):
    pass


def unloaded_ttft(memo: MemoizedStepCost, scheduler, prompt: int) -> float:
    """Time to first token of a request alone on an idle replica (seconds): one prefill iteration,
    or several chunks of ``max_num_batched_tokens`` when chunked prefill is on."""
    budget = getattr(scheduler, "max_num_batched_tokens", prompt)
    if not getattr(scheduler, "chunked_prefill", False):
        return memo.cost(((prompt, 0),), 0, 0)[0]
    t, done = 0.0, 0
    while done < prompt:
        n = min(budget, prompt - done)
        t += memo.cost(((n, done),), 0, 0)[0]
        done += n
    return t


def unloaded_tpot(memo: MemoizedStepCost, prompt: int) -> float:
    """One decode iteration of a lone sequence with ``prompt`` cached tokens (a lower bound on TPOT)."""
    return memo.cost((), 1, prompt)[0]


def _swap_seconds_per_block(cost, cfg) -> float:
    """Host-link seconds to copy one KV block of a replica (swap preemption): its bytes over the
    ``swap_link`` of each of the replica's devices (each moves its share); 0 without swapping."""
    if getattr(cfg, "preemption_mode", "recompute") != "swap":
        return 0.0
    from hwmodels.spec import load_link

    link = load_link(cfg.swap_link)
    devices = getattr(cost, "devices", 1) or 1
    return cfg.block_size * cost.kv_bytes_per_token / (link.bandwidth * devices)


class _Pool:
    def __init__(self, env, name, cost, sched_cfg, replicas, router, memo_cfg, window_s, role):
        self.name = name
        self.cost = cost
        self.cfg = sched_cfg
        self.role = role  # "both" | "prefill" | "decode"
        self.memo = MemoizedStepCost(cost, memo_cfg.prefill_bucket, memo_cfg.context_bucket)
        self.num_blocks = num_kv_blocks(cost, sched_cfg.block_size, sched_cfg.gpu_memory_utilization)
        self.router = make_router(router, replicas)
        self.replicas = []
        swap_s = _swap_seconds_per_block(cost, sched_cfg)
        for i in range(replicas):
            sched = make_scheduler(sched_cfg, self.num_blocks, prefill_only=(role == "prefill"))
            self.replicas.append(Replica(env, i, sched, self.memo, window_s, swap_s))
        self.link_free_at = [0.0] * replicas

    def never_fits(self, seq: Seq) -> str:
        return self.replicas[0].scheduler.never_fits(seq)


class _Run:
    def __init__(self, sc: Scenario, reqs, window_s: float, progress: ProgressCallback | None):
        self.sc = sc
        self.env = env = simpy.Environment()
        self.window = window_s
        self.progress = progress
        self.seqs = [Seq(q) for q in reqs]
        self.total = len(self.seqs)
        ids = {q.id for q in reqs}
        # the next turn of each conversation, sent when its predecessor is done
        self.follower = {s.req.follows: s for s in self.seqs if s.req.follows is not None and s.req.follows in ids}
        self.heads = [s for s in self.seqs if s.req.follows is None or s.req.follows not in ids]
        self.closed = sc.concurrency is not None
        self.think = float(sc.think_time_s)
        self.chained = self.closed or bool(self.follower)
        self.next_head = 0
        self.first_arrival = 0.0 if self.closed or not self.heads else self.heads[0].arrival
        self.last_arrival = math.inf if self.closed or not self.heads else self.heads[-1].arrival
        self.peak_in_system = 0
        dis = sc.disaggregation
        self.decode = _Pool(env, "decode" if dis else "replica", sc.cost, sc.scheduler, sc.replicas, sc.router,
                            sc.memo, window_s, "decode" if dis else "both")
        self.prefill = None
        if dis is not None:
            self.prefill = _Pool(env, "prefill", dis.prefill_cost, dis.prefill_scheduler or sc.scheduler,
                                 dis.prefill_replicas, dis.prefill_router, sc.memo, window_s, "prefill")
            self.link = dis.link
        self.pools = [p for p in (self.prefill, self.decode) if p is not None]
        self.arrived = self.completed = self.dropped = 0
        self.in_transfer = 0
        self.end_time: float | None = None
        self.saturated, self.saturation_reason = False, ""
        self.samples: list[tuple[float, int, int, int, int, int, float]] = []
        self._cum = [0]  # running sums of the sampled requests in the system
        self.done = env.event()
        self._wire_hooks()

    # ------------------------------------------------------------------ wiring
    def _wire_hooks(self) -> None:
        front = self.prefill or self.decode
        for pool in self.pools:
            for rep in pool.replicas:
                s = rep.scheduler
                if pool.role == "both":
                    s.on_first_token = self._first_token_colocated(pool, rep.index)
                    s.on_finish = self._finish_fn(pool, rep.index, lambda q: q.output)
                elif pool.role == "prefill":
                    s.on_finish = self._finish_fn(pool, rep.index, lambda q: q.prompt)
                    s.on_prefilled = self._prefilled_fn(pool, rep)
                else:
                    s.on_finish = self._finish_fn(pool, rep.index, lambda q: q.output)
        self.front = front

    def _first_token_colocated(self, pool, index):
        release = pool.router.release

        def on_first_token(seq, now):
            release(index, seq.prompt)
        return on_first_token

    def _finish_fn(self, pool, index, work):
        release = pool.router.release

        def on_finish(seq, now):
            release(index, work(seq))
            seq.finish = now
            seq.status = "completed"
            self.completed += 1
            if self.chained:
                self._after(seq)
            if self.completed + self.dropped == self.total:
                self._stop()
        return on_finish

    def _prefilled_fn(self, pool, rep):
        env = self.env
        link = self.link
        kv_per_token = pool.cost.kv_bytes_per_token
        decode = self.decode
        index = rep.index

        def on_prefilled(seq, now, start, held_blocks):
            pool.router.release(index, seq.prompt)
            seq.prefill_replica = index
            wire = kv_per_token * seq.computed / link.bandwidth_bytes_per_s
            ready = start if link.overlap else now
            begin = max(ready, pool.link_free_at[index])
            wire_end = begin + wire
            pool.link_free_at[index] = wire_end
            arrive = max(wire_end, now) + link.latency_s
            seq.transfer_s = arrive - now
            self.in_transfer += 1

            def freed(_ev):
                rep.scheduler.release(held_blocks)
                rep.wake()

            def delivered(_ev):
                self.in_transfer -= 1
                j = decode.router.assign(seq, seq.output)
                seq.replica = j
                decode.replicas[j].submit(seq)

            env.timeout(max(0.0, wire_end - now)).callbacks.append(freed)
            env.timeout(arrive - now).callbacks.append(delivered)
        return on_prefilled

    def _stop(self) -> None:
        if not self.done.triggered:
            self.end_time = self.env.now
            self.done.succeed()

    # ------------------------------------------------------------------ processes
    def _dispatch(self, seq: Seq) -> None:
        """``seq`` arrives now: dropped if it can never fit, else routed to a replica of the front pool."""
        self.arrived += 1
        in_system = self.arrived - self.completed - self.dropped
        if in_system > self.peak_in_system:
            self.peak_in_system = in_system
        reason = ""
        for pool in self.pools:
            reason = pool.never_fits(seq)
            if reason:
                reason = f"{pool.name}: {reason}" if self.prefill else reason
                break
        if reason:
            seq.status, seq.reason = "dropped", reason
            self.dropped += 1
            if self.chained:
                self._after(seq)
            if self.completed + self.dropped == self.total:
                self._stop()
            return
        front = self.front
        i = front.router.assign(seq, seq.prompt if self.prefill else seq.prompt + seq.output)
        if self.prefill:
            seq.prefill_replica = i
        else:
            seq.replica = i
        front.replicas[i].submit(seq)

    def _send(self, seq: Seq | None) -> None:
        """A user sends ``seq`` now (``None``: the next request of the closed loop's pool, if any left)."""
        if seq is None:
            if self.next_head >= len(self.heads):
                return
            seq = self.heads[self.next_head]
            self.next_head += 1
        seq.arrival = self.env.now
        self._dispatch(seq)

    def _after(self, seq: Seq) -> None:
        """``seq`` is done (completed or dropped): its user thinks, then sends the conversation's next
        turn, or (closed loop) the next request of the pool."""
        nxt = self.follower.get(seq.id)
        if nxt is None and not self.closed:
            return
        self.env.timeout(self.think).callbacks.append(lambda _ev: self._send(nxt))

    def start_clients(self) -> None:
        """Closed loop: ``concurrency`` users each send a request at t = 0."""
        for _ in range(min(self.sc.concurrency, len(self.heads))):
            self._send(None)

    def arrivals(self):
        """Open loop: each conversation's first request at its arrival time (later turns follow
        their predecessors)."""
        env = self.env
        for seq in self.heads:
            dt = seq.arrival - env.now
            if dt > 0:
                yield env.timeout(dt)
            self._dispatch(seq)

    def _counts(self) -> tuple[int, int, float]:
        """Requests waiting and running, and the fraction of KV blocks held by running requests."""
        waiting = running = used = blocks = 0
        for pool in self.pools:
            for rep in pool.replicas:
                sched = rep.scheduler
                waiting += len(sched.waiting)
                running += len(sched.running)
                used += sched.num_blocks - sched.free
                blocks += sched.num_blocks
        return waiting, running, used / blocks if blocks else 0.0

    def _in_system_growth(self, k: int, arrivals: int, fraction: float, min_arrivals: int) -> str:
        """Why the requests in the system (waiting + running + in transfer) grow without bound ('' when
        they do not). At sample ``k`` (time t), with m0..m3 their means over the quarters of (0, t]:
        the climb from the second quarter to the last (m3 - m1, the growth over t/2 for a steady
        climb) must exceed ``fraction`` of the arrivals over (t/2, t] and 4 standard deviations of a
        stationary count (Poisson, from m1), and must not be slowing down as a system filling up to a
        steady state does (m3 - m2 > (m1 - m0) / 2: linear growth keeps its pace; an exponential
        fill-up checked at t = 4 latencies has slowed to 14 % of it), once the requests that arrived in
        the first quarter have taken less than an eighth on average (counting the unfinished ones'
        wait so far; early requests find the system empty, so their latency understates a loaded
        one's), so a stable system has had time to fill up. This catches an overload the running
        batch absorbs while nothing waits; an overload whose latency outgrows the run is left to the
        waiting queue (once KV blocks or max_num_seqs bind) and to the confirming runs of capacity."""
        samples, cum = self.samples, self._cum
        a, b, c = k // 4, k // 2, (3 * k) // 4
        if arrivals < min_arrivals or not self.completed:
            return ""
        m0 = (cum[a + 1] - cum[1]) / a
        m1 = (cum[b + 1] - cum[a + 1]) / (b - a)
        m2 = (cum[c + 1] - cum[b + 1]) / (c - b)
        m3 = (cum[k + 1] - cum[c + 1]) / (k - c)
        growth = m3 - m1
        if growth <= max(fraction * arrivals, 4 * math.sqrt(2 * m1 + 1)) or m3 - m2 <= (m1 - m0) / 2:
            return ""
        # filled up? the requests that arrived in the first quarter must have taken (or, unfinished,
        # been waiting) less than a quarter on average
        now = samples[k][0]
        early = self.heads[:samples[a][1]]
        if not early or 2 * sum((s.finish if s.finish is not None else now) - s.arrival for s in early) / len(early) \
                > samples[a][0] - self.first_arrival:
            return ""
        (t1, t2, t3, now) = samples[a][0], samples[b][0], samples[c][0], samples[k][0]
        lo, hi = samples[b], samples[k]
        return (f"arrivals outpace completions: the requests in the system grew from a mean of {m1:.0f} over "
                f"({t1:.4g} s, {t2:.4g} s] to {m3:.0f} over ({t3:.4g} s, {now:.4g} s] (waiting {lo[4]} -> {hi[4]}, "
                f"running {lo[5]} -> {hi[5]}, KV blocks used {100 * lo[6]:.0f} -> {100 * hi[6]:.0f} %), more than "
                f"saturation.growth_fraction = {fraction} of the {arrivals} arrivals since t = {t2:.4g} s, "
                "and not slowing down")

    def monitor(self):
        env = self.env
        sat = self.sc.saturation
        w = self.window
        if self.first_arrival > 0:
            yield env.timeout(self.first_arrival)
        samples = self.samples
        cum = self._cum
        while True:
            yield env.timeout(w)
            now = env.now
            waiting, running, kv_used = self._counts()
            in_system = self.arrived - self.completed - self.dropped
            samples.append((now, self.arrived, self.completed + self.dropped, in_system, waiting, running, kv_used))
            cum.append(cum[-1] + in_system)
            if self.progress is not None:
                self.progress(self.completed + self.dropped, self.total)
            reason = ""
            k = len(samples) - 1
            if not self.closed and now <= self.last_arrival + w and k >= 2:  # a closed loop cannot outrun itself
                half = samples[k // 2]
                arrivals = self.arrived - half[1]
                growth = waiting - half[4]
                if arrivals >= sat.min_arrivals and growth > sat.growth_fraction * arrivals:
                    reason = (f"arrivals outpace completions: {growth} more requests waiting at t = {now:.4g} s "
                              f"than at t = {half[0]:.4g} s, over {arrivals} arrivals "
                              f"(> saturation.growth_fraction = {sat.growth_fraction})")
                if not reason and k >= 8:
                    reason = self._in_system_growth(k, arrivals, sat.growth_fraction, sat.min_arrivals)
            if not reason and sat.max_queue is not None and waiting > sat.max_queue:
                reason = f"{waiting} requests waiting > saturation.max_queue = {sat.max_queue}"
            if not reason and sat.max_sim_time_s is not None and now >= sat.max_sim_time_s:
                reason = f"simulated time {now:.4g} s reached saturation.max_sim_time_s = {sat.max_sim_time_s}"
            if reason and not self.saturated:
                self.saturated, self.saturation_reason = True, reason
                if sat.stop or sat.max_sim_time_s is not None and now >= sat.max_sim_time_s:
                    self._stop()
                    return
            if (self.arrived == self.total and in_system > 0 and not self.in_transfer and running == 0
                    and all(r.idle for p in self.pools for r in p.replicas)):
                raise _Stalled(f"serving simulation stalled at t = {now} s with {in_system} requests in the "
                               "system and every replica idle (a scheduler bug)")

    def run(self) -> None:
        env = self.env
        if self.closed:
            self.start_clients()
        else:
            env.process(self.arrivals())
        env.process(self.monitor())
        if self.total == 0:
            return
        env.run(until=self.done)
        if self.progress is not None:
            self.progress(self.completed + self.dropped, self.total)

    # ------------------------------------------------------------------ results
    def result(self) -> ServingResult:
        sc = self.sc
        for s in self.seqs:
            if s.status == "pending":
                s.status = "unfinished"
                s.reason = "run stopped: " + self.saturation_reason if self.saturated else "run stopped"
        frame = request_frame(self.seqs, sc.slo)
        end = self.end_time if self.end_time is not None else self.env.now
        duration = max(0.0, end - self.first_arrival)
        out_tokens = prefill_tokens = preemptions = 0
        energy = cost = 0.0
        util_rows = []
        busy_total = 0.0
        itl: dict[float, int] = {}
        for pool in self.pools:
            idle_w = float(getattr(pool.cost, "idle_power_w", 0.0) or 0.0)
            for rep in pool.replicas:
                s = rep.scheduler
                out_tokens += s.tokens_out  # first tokens of disaggregated requests come from the prefill pool
                prefill_tokens += s.prefill_tokens
                preemptions += s.preemptions
                for dt, n in rep.itl.items():
                    itl[dt] = itl.get(dt, 0) + n
                energy += rep.energy_j + idle_w * max(0.0, duration - rep.busy_s)
                busy_total += rep.busy_s
                for k, b in enumerate(rep.busy_bins):
                    util_rows.append((pool.name, rep.index, k * self.window, (k + 1) * self.window,
                                      b / self.window, rep.token_bins[k]))
            cost += pool.cost.price_per_hour_usd * len(pool.replicas) * duration / 3600
        n_rep = sum(len(p.replicas) for p in self.pools)
        util = pd.DataFrame(util_rows, columns=["pool", "replica", "window_start_s", "window_end_s",
                                                "busy_fraction", "output_tokens"])
        queue = pd.DataFrame(self.samples, columns=["time_s", "arrived", "done", "in_system", "waiting",
                                                    "running", "kv_used_fraction"])
        mean_in_system = float(queue["in_system"].mean()) if len(queue) else math.nan
        summary = summarize(frame, duration_s=duration, output_tokens=out_tokens, prefill_tokens=prefill_tokens,
                            preemptions=preemptions, energy_j=energy, cost_usd=cost,
                            mean_in_system=mean_in_system,
                            mean_utilization=busy_total / (n_rep * duration) if duration > 0 else math.nan,
                            saturated=self.saturated, saturation_reason=self.saturation_reason,
                            has_slo=sc.slo is not None, itl=itl, peak_in_system=self.peak_in_system)
        memo = {p.name: p.memo.stats() for p in self.pools}
        return ServingResult(summary, frame, util, queue, memo, sc.name)


def _infeasible(sc: Scenario, reqs, reason: str) -> ServingResult:
    frame = request_frame([], sc.slo)
    summary = Summary(requests=len(reqs), feasible=False, infeasible_reason=reason)
    return ServingResult(summary, frame, pd.DataFrame(), pd.DataFrame(), {}, sc.name)


def _check_feasible(sc: Scenario, reqs) -> str:
    pools = [("cost", sc.cost, sc.scheduler)]
    if sc.disaggregation is not None:
        d = sc.disaggregation
        pools.insert(0, ("disaggregation.prefill_cost", d.prefill_cost, d.prefill_scheduler or sc.scheduler))
    for name, cost, cfg in pools:
        if cost.kv_capacity_bytes <= 0:
            return (f"model does not fit: {name}.kv_capacity_bytes = {cost.kv_capacity_bytes:.4g} B <= 0 "
                    "(weights and activations fill the memory)")
        blocks = num_kv_blocks(cost, cfg.block_size, cfg.gpu_memory_utilization)
        if blocks < 1:
            return (f"KV cache holds no block: {name} leaves {cost.kv_capacity_bytes:.4g} B, x "
                    f"gpu_memory_utilization {cfg.gpu_memory_utilization} < one block of {cfg.block_size} tokens "
                    f"x {cost.kv_bytes_per_token:.4g} B")
    if sc.slo is not None and reqs:
        p_min = min(q.prompt_tokens for q in reqs)
        first = pools[0]
        memo = MemoizedStepCost(first[1], sc.memo.prefill_bucket, sc.memo.context_bucket)
        ttft = unloaded_ttft(memo, first[2], p_min)
        if ttft > sc.slo.ttft_s:
            return (f"SLO unattainable: slo.ttft_s = {sc.slo.ttft_s:.4g} s is below the unloaded TTFT "
                    f"{ttft:.4g} s of the shortest prompt ({p_min} tokens)")
        if any(q.output_tokens > 1 for q in reqs):
            memo = MemoizedStepCost(sc.cost, sc.memo.prefill_bucket, sc.memo.context_bucket)
            tpot = unloaded_tpot(memo, p_min)
            if tpot > sc.slo.tpot_s:
                return (f"SLO unattainable: slo.tpot_s = {sc.slo.tpot_s:.4g} s is below the unloaded time per "
                        f"output token {tpot:.4g} s (one decode step at {p_min} cached tokens)")
    return ""


def _lone_latency(sc: Scenario, reqs) -> float:
    """End-to-end latency of an average request alone (s)."""
    memo = MemoizedStepCost(sc.cost, 64, 4096)
    p = max(1, round(sum(q.prompt_tokens for q in reqs) / len(reqs)))
    o = max(1, round(sum(q.output_tokens for q in reqs) / len(reqs)))
    return unloaded_ttft(memo, sc.scheduler, p) + (o - 1) * unloaded_tpot(memo, p + o // 2)


def _expected_span(sc: Scenario, reqs) -> float:
    """Rough length of the run (s): the arrival span (open loop) or the requests one client would run
    back to back, over the clients (closed loop), and at least one lone request."""
    if not reqs:
        return 0.0
    lone = _lone_latency(sc, reqs)
    if sc.concurrency is not None:
        return max(lone, -(-len(reqs) // sc.concurrency) * (lone + sc.think_time_s))
    return max(reqs[-1].arrival_s - reqs[0].arrival_s, lone)


def _default_window(sc: Scenario, reqs) -> float:
    if sc.window_s is not None:
        return float(sc.window_s)
    span = _expected_span(sc, reqs)
    return span / 200 if span > 0 else 1.0


def _check_size(sc: Scenario, max_requests: int) -> None:
    """Refuse, before generating anything, a run too large to finish (see the limits in
    :mod:`genz.serving.config`)."""
    n = len(sc.trace) if sc.trace is not None else sc.workload.num_requests
    if n > max_requests:
        where = "trace" if sc.trace is not None else "workload.num_requests"
        raise ValueError(f"{where}: {n:,} requests is above the limit of {max_requests:,} per run; pass "
                         "max_requests (genz simulate --max-requests) to raise it")


def _check_clock(sc: Scenario, reqs) -> None:
    if reqs and reqs[-1].arrival_s > MAX_ARRIVAL_S:
        raise ValueError(f"trace: an arrival at {reqs[-1].arrival_s:.3g} s is beyond {MAX_ARRIVAL_S:g} s (~32 years), "
                         "where the simulated clock could no longer resolve a step; is the rate (or the time unit) "
                         "right?")
    if sc.window_s is not None and reqs:
        est = _expected_span(sc, reqs)
        if est / sc.window_s > MAX_WINDOWS:
            raise ValueError(f"window_s: {sc.window_s:g} s would cut a run of about {est:.3g} s into more than "
                             f"{MAX_WINDOWS:,} windows; give window_s >= {est / MAX_WINDOWS:.3g} or leave it out")


def simulate(scenario: Scenario, progress: ProgressCallback | None = None,
             max_requests: int = MAX_REQUESTS) -> ServingResult:
    """Run a serving scenario; see :class:`~genz.serving.config.Scenario` and
    :class:`~genz.serving.results.ServingResult`.

    Raises ``ValueError`` naming the field for a malformed scenario. An impossible one (the model
    does not fit, or an SLO below a lone request's latency) returns a result with ``feasible=False``
    and the reason, without simulating. ``progress(done, total)`` is called once per window. Runs above
    ``max_requests`` requests, a ``window_s`` cutting the run into more than a million windows, or
    arrivals beyond 1e9 s are refused with a ``ValueError`` before any work.
    """
    scenario.validate()
    _check_size(scenario, max_requests)
    reqs = scenario.requests()
    _check_clock(scenario, reqs)
    reason = _check_feasible(scenario, reqs)
    if reason:
        return _infeasible(scenario, reqs, reason)
    run = _Run(scenario, reqs, _default_window(scenario, reqs), progress)
    run.run()
    return run.result()
