"""The serving simulation on the analytical engine (EngineStepCost): agreement with genz.predict for a
lone request, token conservation, saturation past the knee, and an expert-parallel MoE replica."""

from __future__ import annotations

import numpy as np
import pytest

import genz
from genz.serving import (
    ContinuousBatching,
    MemoConfig,
    MemoizedStepCost,
    SaturationConfig,
    Scenario,
    StaticBatching,
    num_kv_blocks,
    simulate,
    unloaded_tpot,
    unloaded_ttft,
)
from genz.stepcost import EngineStepCost
from workloads.requests import Fixed, LogNormal, PoissonArrivals, Request, Uniform, WorkloadSpec

EXACT = MemoConfig(prefill_bucket=1, context_bucket=1)


@pytest.fixture(scope="module")
def h100_8b():
    return EngineStepCost("llama-3-8b", "h100-sxm")


@pytest.mark.parametrize("model,hardware,kw", [
    ("llama-3-8b", "h100-sxm", {}),
    ("llama-2-70b", "a100-80gb-sxm", {"tp": 8}),
])
@pytest.mark.parametrize("scheduler", [ContinuousBatching(), ContinuousBatching(chunked_prefill=False),
                                       StaticBatching(batch_size=4)], ids=["chunked", "unchunked", "static"])
@pytest.mark.parametrize("memo", [EXACT, MemoConfig()], ids=["exact", "default-buckets"])
def test_lone_request_takes_what_predict_says(model, hardware, kw, scheduler, memo):
    p = genz.predict(model, hardware, batch=1, prompt=1024, output=128, **kw)
    cost = EngineStepCost(model, hardware, **kw)
    r = simulate(Scenario(cost=cost, scheduler=scheduler, trace=[Request(0, 0.25, 1024, 128)], memo=memo))
    row = r.requests.iloc[0]
    assert row.status == "completed"
    assert row.ttft_s == pytest.approx(p.ttft_s, rel=0.01)
    assert row.e2e_s == pytest.approx(p.e2e_s, rel=0.01)
    assert row.tpot_s == pytest.approx(p.tpot_s, rel=0.01)
    # energy of a lone request: the engine's joules, the same the prediction integrates
    assert r.summary.energy_j == pytest.approx(p.energy_j, rel=0.01)
    # cost: the replica's price (tp GPUs at the data file's $/GPU-hour) over the request's life
    gpus = kw.get("tp", 1)
    price = {"h100-sxm": 4.75, "a100-80gb-sxm": 2.2}[hardware] * gpus
    assert r.summary.cost_usd == pytest.approx(price * row.e2e_s / 3600, rel=1e-9)


def test_chunked_prompt_longer_than_the_budget_costs_more_than_one_pass(h100_8b):
    # 4 chunks of 2048 re-read the weights four times: TTFT above predict's single pass, below 4x it
    p = genz.predict("llama-3-8b", "h100-sxm", prompt=8190, output=2)
    r = simulate(Scenario(cost=h100_8b, scheduler=ContinuousBatching(max_num_batched_tokens=2048),
                          trace=[Request(0, 0.0, 8190, 2)], memo=EXACT))
    ttft = r.requests.ttft_s.iloc[0]
    assert p.ttft_s < ttft < 4 * p.ttft_s
    assert ttft == pytest.approx(unloaded_ttft(MemoizedStepCost(h100_8b, 1, 1),
                                               ContinuousBatching(max_num_batched_tokens=2048), 8190), rel=1e-12)


def test_tokens_in_equal_tokens_out_with_preemptions():
    # little KV cache (vLLM's rule: 0.22 x 85.0 GB - (weights + activations = 17.3 GB), about 1.4 GB
    # = 11k tokens of 128 KiB) and long outputs, so sequences get preempted and recomputed
    cost = EngineStepCost("llama-3-8b", "h100-sxm", max_batched_tokens=2048)
    sched = ContinuousBatching(max_num_seqs=64, max_num_batched_tokens=2048, gpu_memory_utilization=0.22)
    assert 600 < num_kv_blocks(cost, 16, 0.22) < 760
    wl = WorkloadSpec(400, PoissonArrivals(30.0), LogNormal(600, 0.6, max_tokens=3000), Uniform(50, 400))
    r = simulate(Scenario(cost=cost, scheduler=sched, replicas=2, router="least_outstanding_tokens",
                          workload=wl, seed=5, saturation=SaturationConfig(stop=False)))
    f, s = r.requests, r.summary
    done = f[f.status == "completed"]
    assert s.preemptions > 0 and s.recomputed_tokens > 0
    assert set(f.status) == {"completed"}
    assert s.output_tokens == done.output_tokens.sum()
    assert s.prefill_tokens == done.prompt_tokens.sum() + done.recomputed_tokens.sum()
    assert s.completed == 400
    # every request at least as slow as it would be alone (costed with the run's memo buckets)
    memo = MemoizedStepCost(cost, MemoConfig().prefill_bucket, MemoConfig().context_bucket)
    alone = [unloaded_ttft(memo, sched, p) for p in done.prompt_tokens]
    assert (done.ttft_s.to_numpy() >= 0.999 * np.asarray(alone)).all()


def test_saturation_is_reported_past_the_knee(h100_8b):
    # Prefill alone bounds the rate: a 2048-token prompt takes t_p on an idle GPU, so more than
    # 1 / t_p requests per second cannot be served. Past 1.5x that bound the run must say so;
    # at a quarter of it the queue stays flat.
    t_p = unloaded_ttft(MemoizedStepCost(h100_8b, 1, 1), ContinuousBatching(), 2048)
    knee = 1.0 / t_p

    def run(rate):
        wl = WorkloadSpec(1500, PoissonArrivals(rate), Fixed(2048), Fixed(128))
        return simulate(Scenario(cost=h100_8b, workload=wl, seed=2)).summary

    hot, cool = run(1.5 * knee), run(0.25 * knee)
    assert hot.saturated and "outpace" in hot.saturation_reason
    assert hot.unfinished > 0
    assert not cool.saturated and cool.completed == 1500
    assert cool.throughput_rps == pytest.approx(0.25 * knee, rel=0.1)


def test_mixtral_expert_parallel_scenario_runs():
    cost = EngineStepCost("mixtral-8x7b", "h100-sxm", tp=2, ep=2)
    assert cost.devices == 2 and cost.kv_capacity_bytes > 0
    wl = WorkloadSpec(200, PoissonArrivals(5.0), LogNormal(1000, 0.5), LogNormal(150, 0.5))
    r = simulate(Scenario(cost=cost, workload=wl, seed=3))
    s = r.summary
    assert s.completed == 200 and not s.saturated
    floor = unloaded_tpot(MemoizedStepCost(cost, 1, 1), 1)
    assert s.tpot_s.p50 >= floor
    assert s.energy_per_output_token_j > 0
    assert s.cost_usd == pytest.approx(2 * 4.75 * s.duration_s / 3600, rel=1e-9)
