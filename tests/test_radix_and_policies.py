"""Prefix caches (vLLM block hashes, SGLang radix), the engine-style policies and swap preemption:
hit counts worked out by hand on small traces, conservation of prompt tokens, eviction order,
longest-prefix-match admission, and the KV accounting closing at the end of every run."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from genz.serving import ContinuousBatching, LinearStepCost, Scenario, simulate
from genz.serving.entities import Seq
from genz.serving.policies.sglang import SGLangConfig, SGLangScheduler
from genz.serving.policies.trtllm import TRTLLMConfig, TRTLLMScheduler
from genz.serving.prefix_cache import BlockPrefixCache, RadixPrefixCache
from genz.serving.schedulers import ContinuousScheduler
from workloads.requests import Fixed, FixedRateArrivals, PoissonArrivals, Request, SharedPrefix, WorkloadSpec

COST = LinearStepCost()


def _drive(sched, reqs):
    """Run a scheduler alone (every request waiting at t = 0, one time unit per iteration) to the end."""
    seqs = [Seq(q) for q in reqs]
    done = []
    sched.on_finish = lambda s, now: done.append(s)
    for s in seqs:
        sched.add(s)
    t = 0.0
    for _ in range(100_000):
        if sched.schedule(t) is None:
            break
        sched.complete(t + 1, t)
        t += 1
    return seqs, done


def _sequential(n, system, own, out=4):
    """``n`` requests, one per 10 s (each finishes before the next), all opening with the same system prompt."""
    return [Request(i, 10.0 * i, system + own, out, prefix=((0, system),)) for i in range(n)]


def _run(sched, reqs, cost=COST):
    return simulate(Scenario(cost=cost, scheduler=sched, trace=reqs)).summary


# --------------------------------------------------------------------------- hit rates by hand
def test_block_cache_hits_whole_blocks_of_the_shared_prompt():
    # system prompt 100 tokens, block 16: the 6 blocks (96 tokens) inside it are shared; block 6 holds
    # tokens 96..111, 4 of the system prompt and 12 of each request's own text, so it is not
    s = _run(ContinuousBatching(enable_prefix_caching=True), _sequential(3, 100, 20))
    assert s.prefix_hit_tokens == 2 * 96
    assert s.prefix_hit_rate == pytest.approx(192 / 360)
    assert s.prefill_tokens + s.prefix_hit_tokens == 3 * 120  # every prompt token computed or reused


def test_radix_cache_hits_the_whole_shared_prompt():
    s = _run(SGLangConfig(), _sequential(3, 100, 20))
    assert s.prefix_hit_tokens == 2 * 100
    assert s.prefill_tokens + s.prefix_hit_tokens == 360


def test_at_least_one_prompt_token_is_computed():
    # a repeated identical prompt: vLLM caps the hit at (prompt - 1) // block tokens, SGLang drops the
    # last node (the request's own text) so the logits come from a computed token
    reqs = [Request(i, 10.0 * i, 64, 4, prefix=((7, 64),)) for i in range(2)]
    assert _run(ContinuousBatching(enable_prefix_caching=True), reqs).prefix_hit_tokens == 48  # 3 of 4 blocks
    assert _run(SGLangConfig(), reqs).prefix_hit_tokens == 0  # the whole prompt is one segment


def test_conversations_reuse_their_history():
    # 3 turns of 100 new + 50 output tokens: turn 2 reuses turn 1's prompt and 49 of its 50 output
    # tokens (the last one's KV is never computed), turn 3 reuses 100 + 50 + 100 + 49
    wl = WorkloadSpec(3, FixedRateArrivals(1.0), Fixed(100), Fixed(50), turns=3)
    for cfg in (SGLangConfig(), ContinuousBatching(enable_prefix_caching=True, block_size=1)):
        s = simulate(Scenario(cost=COST, scheduler=cfg, workload=wl)).summary
        assert s.prefix_hit_tokens == 149 + 299
        assert s.prefill_tokens == 100 + 250 + 400 - 448


def test_no_sharing_gives_the_same_results_with_the_cache_on():
    wl = WorkloadSpec(200, PoissonArrivals(8.0), Fixed(300), Fixed(50))
    off = simulate(Scenario(cost=COST, scheduler=ContinuousBatching(), workload=wl, seed=3))
    on = simulate(Scenario(cost=COST, scheduler=ContinuousBatching(enable_prefix_caching=True), workload=wl, seed=3))
    assert on.summary.preemptions == 0 and on.summary.prefix_hit_tokens == 0
    assert off.requests.equals(on.requests)


def test_a_shared_system_prompt_raises_throughput_and_cuts_ttft_with_its_hit_rate():
    # the same prompts (a 2000-token system prompt and 200 of the user's), shared by fewer or more of them
    rows = []
    for distinct in (10_000, 8, 1):
        wl = WorkloadSpec(300, FixedRateArrivals(1.0), Fixed(200), Fixed(50),
                          shared_prefix=SharedPrefix(2000, 1.0, distinct))
        closed = simulate(Scenario(cost=COST, scheduler=ContinuousBatching(enable_prefix_caching=True), workload=wl,
                                   concurrency=16)).summary  # 16 users: how much they get through
        wl = dataclasses.replace(wl, arrival=PoissonArrivals(6.0))  # a fixed load: how long they wait
        s = simulate(Scenario(cost=COST, scheduler=ContinuousBatching(enable_prefix_caching=True), workload=wl)).summary
        assert not s.saturated and s.prefix_hit_rate == pytest.approx(closed.prefix_hit_rate, abs=0.05)
        rows.append((s.prefix_hit_rate, closed.throughput_rps, s.ttft_s.mean))
    hit, thr, ttft = zip(*rows, strict=True)
    assert hit[0] < 0.05 < hit[1] < hit[2] and hit[2] > 0.85
    assert thr[0] < thr[1] < thr[2]
    assert ttft[0] > ttft[1] > ttft[2]


# --------------------------------------------------------------------------- eviction
def test_block_cache_evicts_the_least_recently_freed_tail_first():
    cache = BlockPrefixCache(block_size=4)
    a = Seq(Request(0, 0.0, 12, 1, prefix=((5, 8),)))  # blocks: 2 of the shared text, 1 of its own
    b = Seq(Request(1, 0.0, 12, 1, prefix=((5, 8),)))
    for s in (a, b):
        hit, taken, handle = cache.match(s, s.target)
        cache.acquire(s, hit, handle)
        cache.offer(s, 12)
    assert len(cache.ref) == 4  # 2 shared blocks (b hit them) + a's own + b's own
    assert cache.ref[next(iter(cache.ref))] == 2
    assert cache.release(a, 3) == 1  # only its own block becomes free (cached, evictable); b holds the shared ones
    assert cache.release(b, 3) == 3  # its own and, now nobody holds them, the shared ones
    assert cache.evictable == 4
    assert [end for _, end in cache.lru] == [12, 12, 8, 4]  # a's block, then b's tail first
    cache.evict(2)
    assert cache.evictable == 2
    c = Seq(Request(2, 0.0, 12, 1, prefix=((5, 8),)))
    assert cache.match(c, 12)[0] == 2  # the shared blocks, freed last, are still there


def test_radix_cache_evicts_leaves_before_the_shared_prompt():
    cache = RadixPrefixCache()
    seqs = [Seq(Request(i, 0.0, 110, 3, prefix=((9, 100),))) for i in range(2)]
    for s in seqs:
        hit, taken, handle = cache.match(s, s.target)
        cache.acquire(s, hit, handle)
        cache.offer(s, 110)
    for s in seqs:
        cache.release(s, 110)
    assert cache.evictable == 100 + 10 + 10
    cache.evict(15)  # the two 10-token leaves (own texts), oldest first; the system prompt stays
    assert cache.evictable == 100
    fresh = Seq(Request(5, 0.0, 120, 3, prefix=((9, 100),)))
    assert cache.match(fresh, 120)[0] == 100
    cache.evict(1)
    assert cache.evictable == 0 and cache.match(fresh, 120)[0] == 0


# --------------------------------------------------------------------------- SGLang's admission order
def test_lpm_admits_the_longest_cached_prefix_first():
    cfg = SGLangConfig(max_running_requests=1, chunked_prefill_size=4096)
    sched = SGLangScheduler(cfg, num_blocks=100_000)
    seqs, _ = _drive(sched, [Request(0, 0.0, 600, 2, prefix=((1, 500),))])
    cold = Seq(Request(1, 0.0, 50, 2))
    warm = Seq(Request(2, 0.0, 600, 2, prefix=((1, 500),)))
    sched.add(cold)
    sched.add(warm)
    plan = sched.schedule(100.0)
    assert plan[0] == ((100, 500),)  # the warm request, after its 500 cached tokens
    fcfs = SGLangScheduler(dataclasses.replace(cfg, schedule_policy="fcfs"), num_blocks=100_000)
    _drive(fcfs, [Request(0, 0.0, 600, 2, prefix=((1, 500),))])
    fcfs.add(Seq(Request(1, 0.0, 50, 2)))
    fcfs.add(Seq(Request(2, 0.0, 600, 2, prefix=((1, 500),))))
    assert fcfs.schedule(100.0)[0] == ((50, 0),)


# --------------------------------------------------------------------------- accounting closes
_POLICIES = {
    "vllm-apc": lambda: (ContinuousScheduler, ContinuousBatching(max_num_seqs=8, max_num_batched_tokens=64,
                                                                 block_size=4, enable_prefix_caching=True)),
    "vllm-swap": lambda: (ContinuousScheduler, ContinuousBatching(max_num_seqs=8, max_num_batched_tokens=64,
                                                                  block_size=4, preemption_mode="swap")),
    "sglang": lambda: (SGLangScheduler, SGLangConfig(max_running_requests=8, chunked_prefill_size=64)),
    "trtllm": lambda: (TRTLLMScheduler, TRTLLMConfig(max_batch_size=8, max_num_tokens=64, block_size=4,
                                                     enable_chunked_context=True, enable_prefix_caching=True)),
    "trtllm-maxutil": lambda: (TRTLLMScheduler, TRTLLMConfig(max_batch_size=8, max_num_tokens=64, block_size=4,
                                                             capacity_scheduler_policy="max_utilization")),
}


@settings(max_examples=25, deadline=None)
@example(policy="vllm-apc", blocks=20, reqs=[(2, 1, 2), (2, 13, 1)])
@example(policy="vllm-swap", blocks=20, reqs=[(2, 1, 2), (2, 13, 1)])
@given(policy=st.sampled_from(sorted(_POLICIES)), blocks=st.integers(20, 60),
       reqs=st.lists(st.tuples(st.integers(0, 2), st.integers(1, 30), st.integers(1, 30)), min_size=1, max_size=12))
def test_every_block_comes_back_and_every_prompt_token_is_accounted(policy, blocks, reqs):
    cls, cfg = _POLICIES[policy]()
    num_blocks = blocks * (4 if cfg.block_size == 1 else 1)
    trace = [Request(i, 0.0, (16 * g if g else 0) + own, out, prefix=((g, 16 * g),) if g else ())
             for i, (g, own, out) in enumerate(reqs)]
    sched = cls(cfg, num_blocks)
    fits = [q for q in trace if not sched.never_fits(Seq(q))]
    seqs, done = _drive(sched, fits)
    assert len(done) == len(fits)
    assert sched.free == sched.num_blocks and not sched.running and not sched.waiting
    if sched.cache is not None:
        assert sched.cache.evictable <= sched.free
        # each admission computes what the cache did not supply; a prompt preempted half-way leaves some undone
        done_or_reused = sched.prefill_tokens + sched.cached_tokens
        assert done_or_reused == sched.queried_tokens if not sched.preemptions else done_or_reused <= sched.queried_tokens
    if policy == "vllm-swap":  # generated tokens are never recomputed (a prompt in progress may be)
        assert all(s.prefill_tokens <= s.prompt * (1 + s.preemptions) for s in seqs)
    if policy == "trtllm":
        assert sched.preemptions == 0 and sched.reserved == 0


# --------------------------------------------------------------------------- policies under KV pressure
def _pressure(cfg):
    wl = WorkloadSpec(80, PoissonArrivals(40.0), Fixed(400), Fixed(200))
    cost = dataclasses.replace(COST, kv_capacity_bytes=COST.kv_bytes_per_token * 6000)
    return simulate(Scenario(cost=cost, scheduler=cfg, workload=wl, seed=2)).summary


def test_guaranteed_no_evict_never_preempts_where_vllm_does():
    vllm = _pressure(ContinuousBatching())
    trt = _pressure(TRTLLMConfig())
    assert vllm.preemptions > 0 and trt.preemptions == 0
    assert trt.completed == vllm.completed == 80


def test_swap_preemption_recomputes_nothing_and_pays_the_host_link():
    rec = _pressure(ContinuousBatching())
    fast = _pressure(ContinuousBatching(preemption_mode="swap", swap_link="pcie5"))
    slow = _pressure(ContinuousBatching(preemption_mode="swap", swap_link="pcie3"))
    assert rec.recomputed_tokens > 0 and fast.preemptions > 0
    assert fast.recomputed_tokens == 0 and fast.prefill_tokens == 80 * 400
    assert slow.e2e_s.mean > fast.e2e_s.mean  # same decisions, slower copies


def test_bad_knobs_are_named():
    with pytest.raises(ValueError, match="scheduler.preemption_mode"):
        ContinuousBatching(preemption_mode="pause").validate()
    with pytest.raises(ValueError, match="scheduler.swap_link"):
        ContinuousBatching(swap_link="carrier-pigeon").validate()
    with pytest.raises(ValueError, match="scheduler.block_size"):
        SGLangConfig(block_size=16).validate()
    with pytest.raises(ValueError, match="scheduler.capacity_scheduler_policy"):
        TRTLLMConfig(capacity_scheduler_policy="yolo").validate()
