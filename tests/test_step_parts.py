"""Step parts (genz/stepcost.py): a serving iteration's device cost as the sum of cached parts is the
whole table's cost to rounding, whatever came first; the memo's buckets stay within their tolerance."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genz.predict import step_costs
from genz.serving import (
    ContinuousBatching,
    MemoConfig,
    MemoizedStepCost,
    SaturationConfig,
    Scenario,
    simulate,
)
from genz.stepcost import EngineStepCost
from workloads.requests import LogNormal, PoissonArrivals, WorkloadSpec

COSTS = {
    "llama-3-8b": EngineStepCost("llama-3-8b", "h100-sxm"),
    "llama-3-8b tp2 sglang": EngineStepCost("llama-3-8b", "h100-sxm", tp=2, runtime="sglang"),
    "mixtral ep4": EngineStepCost("mixtral-8x7b", "h100-sxm", ep=4, gpus_per_node=2),
    "llama-2-70b tp4 fp8": EngineStepCost("llama-2-70b", "h200", "fp8", tp=4),
    "llama-3-8b pp2 a100": EngineStepCost("llama-3-8b", "a100-80gb-sxm", pp=2),
    "deepseek-v3 mla ep64 tp8": EngineStepCost("deepseek-v3", "h200", "fp8", tp=8, ep=64),
    "opt-6.7b learned positions": EngineStepCost("opt-6.7b", "h100-sxm"),
}

chunks = st.lists(st.tuples(st.integers(1, 4096), st.integers(0, 8192)), max_size=3)
contexts = st.lists(st.integers(1, 16384), max_size=80)


def _whole_table(cost: EngineStepCost, pc, dc) -> tuple[float, float]:
    sc = step_costs(cost._dev, cost._table(pc, dc), cost.cuda_graphs)
    return float(sc["time"][0]), float(sc["energy"][0])


@settings(max_examples=60)
@given(name=st.sampled_from(sorted(COSTS)), pc=chunks, dc=contexts)
def test_parts_add_up_to_the_whole_table(name, pc, dc):
    if not pc and not dc:
        return
    cost = COSTS[name]
    got = cost._device_step(tuple(pc), tuple(dc))
    want = _whole_table(cost, tuple(pc), tuple(dc))
    assert got[0] == pytest.approx(want[0], rel=1e-12) and got[1] == pytest.approx(want[1], rel=1e-12)


def test_a_step_costs_the_same_whatever_was_costed_before():
    steps = [(((512, 0),), (1000,) * 30), ((), (1000,) * 30), (((512, 0), (64, 2048)), (900,) * 7),
             (((512, 0),), (700,) * 12), ((), (4000, 10, 99))]
    a = EngineStepCost("llama-3-8b", "h100-sxm")
    b = EngineStepCost("llama-3-8b", "h100-sxm")
    first = [a.step(*s) for s in steps]
    second = [b.step(*s) for s in reversed(steps)][::-1]
    assert first == second  # bit for bit: each part's value depends on its key alone


def test_eager_steps_cost_the_whole_table():
    """Eager execution overlaps host issue and device work per step, which does not add over rows."""
    cost = EngineStepCost("llama-3-8b", "h100-sxm", cuda_graphs=False, runtime="hf-transformers")
    assert cost._parts is None
    pc, dc = ((300, 0),), (800,) * 5
    assert cost._device_step(pc, dc) == _whole_table(cost, pc, dc)


def test_default_memo_buckets_keep_every_iteration_of_a_run_within_half_a_percent():
    """The stated tolerance (MemoConfig): every distinct iteration an exact run meets, costed through
    the default buckets, within 0.5 % of its exact time."""
    cost = EngineStepCost("llama-3-8b", "h100-sxm")
    seen = set()

    class Recorder:
        def __getattr__(self, name):
            return getattr(cost, name)

        def step(self, pc, dc):
            seen.add((tuple(pc), len(dc), sum(dc)))
            return cost.step(pc, dc)

    wl = WorkloadSpec(600, PoissonArrivals(60.0), LogNormal(1000, 0.6, max_tokens=6000), LogNormal(150, 0.5))
    simulate(Scenario(cost=Recorder(), scheduler=ContinuousBatching(), workload=wl, memo=MemoConfig(1, 1), seed=3,
                      saturation=SaturationConfig(stop=False)))
    memo = MemoizedStepCost(cost, MemoConfig().prefill_bucket, MemoConfig().context_bucket)
    worst = 0.0
    for pc, n, ctx in seen:
        q, r = divmod(ctx, n) if n else (0, 0)
        exact = cost.step(pc, (q + 1,) * r + (q,) * (n - r))[0]
        worst = max(worst, abs(memo.cost(pc, n, ctx)[0] / exact - 1))
    assert len(seen) > 300 and worst < 0.005
