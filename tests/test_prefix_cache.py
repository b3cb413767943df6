"""Automatic prefix caching (vLLM's): hits skip the prefill of cached full blocks, LRU eviction when
allocations reuse the blocks, nothing changes without shared prefixes, and a shared system prompt
makes TTFT and throughput better as the hit rate grows."""

from __future__ import annotations

import dataclasses

import pytest

from genz.serving import ContinuousBatching, LinearStepCost, Scenario, simulate
from genz.serving.build import build_scenario
from genz.serving.scenario_file import resolve
from workloads.requests import PoissonArrivals, Request, WorkloadSpec, with_shared_prefix

APC = ContinuousBatching(enable_prefix_caching=True)
SMALL = LinearStepCost(kv_bytes_per_token=1.0, kv_capacity_bytes=3560.0)  # 0.9 * 3560 / 16 = 200 blocks


def _run(trace, sched=APC, cost=None):
    return simulate(Scenario(cost=cost or LinearStepCost(), scheduler=sched, trace=trace))


def test_a_hit_skips_the_cached_full_blocks():
    # prefix 1030 tokens: 64 full blocks (1024 tokens) are reusable; the second request computes the rest
    a = Request(0, 0.0, 1030 + 100, 4, prefix_id=7, prefix_tokens=1030)
    b = Request(1, 10.0, 1030 + 50, 4, prefix_id=7, prefix_tokens=1030)
    r = _run([a, b])
    f = r.requests.set_index("id")
    assert f.loc[0, "prefix_hit_tokens"] == 0 and f.loc[1, "prefix_hit_tokens"] == 1024
    assert r.summary.prefill_tokens == 1130 + (1080 - 1024)
    assert r.summary.prefix_hit_rate == pytest.approx(1024 / (1130 + 1080))
    assert f.loc[1, "ttft_s"] < f.loc[0, "ttft_s"]
    # another prefix, or caching off: no hit
    c = dataclasses.replace(b, prefix_id=8)
    assert _run([a, c]).summary.prefix_hit_tokens == 0
    assert _run([a, b], ContinuousBatching()).summary.prefix_hit_tokens == 0


def test_concurrent_holders_share_and_a_full_prompt_still_computes_one_token():
    a = Request(0, 0.0, 512, 50, prefix_id=1, prefix_tokens=512)
    b = Request(1, 0.5, 512, 50, prefix_id=1, prefix_tokens=512)  # arrives while a decodes: a holds it
    r = _run([a, b]).requests.set_index("id")
    assert r.loc[1, "prefix_hit_tokens"] == 496  # 31 full blocks: the last token is computed again


def test_lru_eviction_when_allocations_reuse_the_blocks():
    """vLLM evicts cached blocks, not whole prefixes: what survives is the leading run of blocks."""
    a = Request(0, 0.0, 1024 + 16, 2, prefix_id=3, prefix_tokens=1024)   # 64 prefix blocks, released at its end
    big = Request(1, 5.0, 2800, 2)                                       # 175 blocks: > 200 - 64 free
    b = Request(2, 10.0, 1024 + 16, 2, prefix_id=3, prefix_tokens=1024)
    assert _run([a, b], cost=SMALL).summary.prefix_hit_tokens == 1024     # nothing in between: still cached
    # the big one overwrote blocks, least recently freed first, a's tail first: its prompt (2800 tokens)
    # needs 175 blocks where 200 - 65 are free of a's cached 65 (64 prefix + 1 own): 40 evicted (a's own
    # block, prefix blocks 63..25), then its first decode block evicts block 24; blocks 0..23 remain
    assert _run([a, big, b], cost=SMALL).summary.prefix_hit_tokens == 24 * 16
    small = Request(1, 5.0, 1500, 2)                                      # 94 blocks: 106 free >= 64
    assert _run([a, small, b], cost=SMALL).summary.prefix_hit_tokens == 1024


@pytest.mark.parametrize("chunked", [True, False])
def test_no_shared_prefixes_no_change(chunked):
    wl = WorkloadSpec(300, PoissonArrivals(30.0), 700, 80)
    trace = wl.generate(4)
    off = _run(trace, ContinuousBatching(chunked_prefill=chunked))
    on = _run(trace, ContinuousBatching(chunked_prefill=chunked, enable_prefix_caching=True))
    assert dataclasses.asdict(on.summary) == dataclasses.asdict(off.summary)
    assert on.requests.equals(off.requests)


def test_shared_system_prompt_gets_better_with_hit_rate():
    """Every prompt = a 2,000-token system prompt + 200 tokens; the number of distinct system prompts
    sets the hit rate (one: nearly all hits; one per request: none) while lengths stay equal. TTFT at a
    fixed Poisson rate, throughput with 16 closed-loop clients."""
    def run(groups, load):
        spec = resolve({"model": "llama-3-8b", "hardware": "h100", "scheduler": {"enable_prefix_caching": True},
                        "workload": {"requests": 300, "prompt": 200, "output": 64, **load,
                                     "shared_prefix_tokens": 2000, "prefix_groups": groups}})
        return simulate(build_scenario(spec)).summary

    open_loop = {g: run(g, {"rate_per_s": 8.0}) for g in (1, 16, 100_000)}
    closed = {g: run(g, {"concurrency": 16}) for g in (1, 100_000)}
    one, some, none = open_loop[1], open_loop[16], open_loop[100_000]
    assert one.prefix_hit_rate > some.prefix_hit_rate > none.prefix_hit_rate
    assert one.prefix_hit_rate > 0.85 and none.prefix_hit_rate < 0.01
    assert one.ttft_s.mean < some.ttft_s.mean < none.ttft_s.mean
    assert closed[1].output_tokens_per_s > 1.05 * closed[100_000].output_tokens_per_s


def test_with_shared_prefix_workload():
    reqs = WorkloadSpec(1000, PoissonArrivals(1.0), 100, 10).generate(0)
    shared = with_shared_prefix(reqs, 500, fraction=0.3, groups=3, seed=1)
    n = sum(q.prefix_id >= 0 for q in shared)
    assert 240 < n < 360 and {q.prefix_id for q in shared if q.prefix_id >= 0} == {0, 1, 2}
    assert all(q.prompt_tokens == 600 and q.prefix_tokens == 500 for q in shared if q.prefix_id >= 0)
    assert [q.arrival_s for q in shared] == [q.arrival_s for q in reqs]
    with pytest.raises(ValueError, match="workload.prefix_groups: only applies with workload.shared_prefix_tokens"):
        resolve({"workload": {"prefix_groups": 2}})
