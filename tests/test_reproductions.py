"""Reduced reproductions (seconds): static vs continuous batching, and Splitwise's co-located vs
disaggregated clusters. Only directions the model gives robustly are asserted."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genz.serving import simulate
from validation.reproductions import batching_gap, splitwise
from validation.reproductions.common import SharedStepCache, max_rate
from workloads.requests import Request


# --------------------------------------------------------------------------- helpers
def test_max_rate_brackets_and_bisects_a_threshold():
    res = max_rate(lambda r: (r <= 7.3, "too fast"), guess=1.0, rel_tol=0.01, max_probes=40)
    assert 7.3 / 1.01 <= res.rate <= 7.3 < res.failed_rate <= 7.3 * 1.01
    assert res.reason == "too fast"
    res = max_rate(lambda r: (r <= 7.3, "too fast"), guess=100.0, rel_tol=0.01, max_probes=40)
    assert 7.3 / 1.01 <= res.rate <= 7.3


def test_shared_cache_returns_the_model_cost_and_passes_attributes_through():
    from genz.stepcost import EngineStepCost

    model = EngineStepCost("llama-3-8b", "h100-sxm")
    c = SharedStepCache(model)
    assert c.step(((100, 0),), (5, 6)) == model.step(((100, 0),), (5, 6))
    c.step(((100, 0),), (5, 6))
    assert len(c) == 1
    assert c.device_memory_bytes == model.device_memory_bytes and c.idle_power_w == model.idle_power_w
    assert c.price_per_hour_usd == model.price_per_hour_usd == pytest.approx(4.75)


# --------------------------------------------------------------------------- static vs continuous
@pytest.fixture(scope="module")
def gap():
    return batching_gap.offline("h200", batches=(1, 16), max_new_tokens=(10,), requests=64)


def test_batch_of_one_schedules_identically(gap):
    row = gap[gap.batch == 1].iloc[0]
    assert row.sched_x == pytest.approx(1.0, rel=1e-9)  # one request at a time either way
    assert row.hf_x > 2  # HF eager on the H200: host-bound decode steps (measured host work per layer)


def test_continuous_beats_static_and_hf_is_slowest(gap):
    row = gap[gap.batch == 16].iloc[0]
    assert row.vllm_tok_s > row.static_tok_s > row.hf_tok_s > 0
    assert 1 < row.sched_x < row.hf_x < 100
    assert np.isfinite(gap[["sched_x", "hf_x"]].to_numpy()).all()


def test_below_capacity_every_server_keeps_up():
    df = batching_gap.online("h200", batch=8, max_new_tokens=10, loads=(0.3, 3.0), requests=64)
    light, heavy = df.iloc[0], df.iloc[1]
    assert light.hf_x == pytest.approx(1.0, rel=0.1) and light.sched_x == pytest.approx(1.0, rel=0.05)
    assert heavy.hf_x > 1.5 * light.hf_x


# --------------------------------------------------------------------------- Splitwise
def test_lone_request_has_slowdown_one_on_a_dgx_a100():
    d = splitwise.Design("Baseline-A100", "A100", 1)
    sc = splitwise.scenario(d, "coding", 1.0, 1)
    sc.workload, sc.trace = None, [Request(0, 0.0, 1500, 40)]
    r = simulate(sc)
    f = r.requests
    base = splitwise.unloaded_a100(f.prompt_tokens.to_numpy(), f.output_tokens.to_numpy())
    assert f.ttft_s.iloc[0] / base["ttft"][0] == pytest.approx(1.0, rel=0.01)
    assert f.e2e_s.iloc[0] / base["e2e"][0] == pytest.approx(1.0, rel=0.01)
    assert splitwise.slowdown_check(r) == (True, "")


def test_kv_transfer_hides_behind_the_last_prefill_iteration():
    # 8 x 200 Gb/s carry 1500 x 320 KiB = 492 MB in 2.5 ms, within the ~0.1 s prefill: only the
    # 5 us link latency stays visible
    d = splitwise.Design("Splitwise-AA", "A100", 1, "A100", 1)
    sc = splitwise.scenario(d, "coding", 1.0, 1)
    sc.workload, sc.trace = None, [Request(0, 0.0, 1500, 40)]
    f = simulate(sc).requests
    assert f.kv_transfer_s.iloc[0] == pytest.approx(5e-6)


def test_splitwise_designs_match_the_budget():
    ds = splitwise.designs(10)
    assert [d.cost for d in ds["Baseline-H100"]] == [152.0]
    assert [d.token for d in ds["Baseline-A100"]] == [8]
    for d in ds["Splitwise-HA"]:
        assert d.cost <= 152.0 + 1e-9 and d.prompt_kind == "H100" and d.token_kind == "A100"
    assert len(ds["Splitwise-AA"]) == 7 and len(ds["Splitwise-HH"]) == 3


def test_reduced_splitwise_disaggregated_a100s_beat_colocated_a100s():
    df = splitwise.reproduce(requests=150, traces=("coding",), scale=20,
                             names=("Baseline-A100", "Splitwise-AA"), rel_tol=0.2)
    assert list(df.design) == ["Baseline-A100", "Splitwise-AA"]
    assert (df.max_rate_rps > 0).all() and np.isfinite(df.iso_cost_rps).all()
    base, aa = df.iloc[0], df.iloc[1]
    assert base.cost_x_A100 == 1.0
    # mixed batching stretches every decode step a prompt joins; separate pools do not
    assert aa.cost_x_A100 > 1.0
    assert aa.iso_power_rps == pytest.approx(aa.max_rate_rps * 20.4 / aa.kw)
    assert not math.isnan(aa.kv_visible_ms) and math.isnan(base.kv_visible_ms)
    assert base.limit and aa.limit  # the criterion that failed just above the rate found
