"""Closed-loop clients, conversations, pooled inter-token latency, saturation that sees the running
batch, capacity confirmed by a long run, and prices that are never a silent zero."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from genz.serving import ContinuousBatching, LinearStepCost, Scenario, simulate
from genz.serving.scenario_file import build_scenario, resolve
from interfaces.cli import main
from optimizers.search import ServingObjective
from workloads.requests import AllAtOnce, Fixed, PoissonArrivals, WorkloadSpec

COST = LinearStepCost()


def _closed(n_users, think=0.0, n=400, prompt=500, output=100, cost=COST, **kw):
    wl = WorkloadSpec(n, AllAtOnce(), Fixed(prompt), Fixed(output))
    return simulate(Scenario(cost=cost, workload=wl, concurrency=n_users, think_time_s=think, **kw))


# --------------------------------------------------------------------------- closed loop
@pytest.mark.parametrize("users,think", [(1, 0.0), (8, 0.0), (8, 0.5), (64, 0.2)])
def test_closed_loop_invariants(users, think):
    r = _closed(users, think)
    s = r.summary
    assert s.completed == 400 and s.peak_in_system <= users
    assert r.queue["in_system"].max() <= users
    # a closed system's law: throughput = users / (latency + think time), up to the last requests' drain
    assert s.throughput_rps == pytest.approx(users / (s.e2e_s.mean + think), rel=0.03 + users / 400)


def test_one_user_sends_each_request_when_the_last_is_done_plus_its_think_time():
    f = _closed(1, think=0.25, n=20).requests.sort_values("arrival_s")
    gaps = f["arrival_s"].to_numpy()[1:] - f["finish_s"].to_numpy()[:-1]
    assert gaps == pytest.approx([0.25] * 19)
    # alone, every token after the first comes one decode step after the previous one
    s = _closed(1, n=20).summary
    assert s.itl_s.p50 == pytest.approx(s.tpot_s.p50, rel=0.01) and s.itl_s.p99 == pytest.approx(s.tpot_s.p99, rel=0.02)


def test_closed_loop_curve_is_flat_then_bends():
    rows = [_closed(n, n=600).summary for n in (1, 4, 16, 64, 256)]
    thr = [s.output_tokens_per_s for s in rows]
    assert all(a < b for a, b in zip(thr, thr[1:], strict=False))
    assert thr[-1] / thr[-2] < thr[1] / thr[0]  # diminishing returns past the knee
    itl = [s.itl_s.p50 for s in rows]
    assert itl[1] < 1.3 * itl[0]  # flat at low concurrency
    ttft = [s.ttft_s.p50 for s in rows]
    assert ttft[-1] > 5 * ttft[0]  # past the knee requests queue for their first token


def test_conversations_send_each_turn_after_the_last_one_plus_think_time():
    wl = WorkloadSpec(12, PoissonArrivals(2.0), Fixed(100), Fixed(20), turns=3)
    f = simulate(Scenario(cost=COST, workload=wl, think_time_s=1.5)).requests.set_index("id")
    for i in range(12):
        if i % 3:
            assert f.loc[i, "arrival_s"] == pytest.approx(f.loc[i - 1, "finish_s"] + 1.5)
    assert list(f["prompt_tokens"])[:3] == [100, 220, 340]  # each turn resends the history


# --------------------------------------------------------------------------- saturation
def test_an_overload_the_running_batch_absorbs_is_flagged():
    # a huge KV cache and no cap on running sequences: every arrival is admitted at once and nothing
    # waits, but the decode batch grows without bound. At 1 ms per token a 30-token request needs
    # 30 ms of work, so the replica serves at most ~31 requests/s once its 5 ms per step is counted.
    cost = LinearStepCost(b_s_per_token=1e-3, kv_capacity_bytes=LinearStepCost.kv_bytes_per_token * 5e6)
    sched = ContinuousBatching(max_num_seqs=100_000, max_num_batched_tokens=200_000)

    def run(rate):
        return simulate(Scenario(cost=cost, scheduler=sched, seed=1,
                                 workload=WorkloadSpec(3000, PoissonArrivals(rate), Fixed(20), Fixed(10))))

    assert not run(20.0).saturated and not run(28.0).saturated
    r = run(36.0)
    assert r.queue["waiting"].max() <= 10  # only those arriving during an iteration: waiting growth cannot see it
    assert r.saturated and "in the system" in r.summary.saturation_reason


# --------------------------------------------------------------------------- the one builder
def test_scenario_files_take_closed_loops_and_shared_prompts():
    spec = resolve({"model": "llama-3-8b", "hardware": "h100",
                    "workload": {"concurrency": 8, "think_time_s": 0.5, "requests": 40, "shared_prefix_tokens": 500,
                                 "turns": 2},
                    "scheduler": {"enable_prefix_caching": True}})
    sc = build_scenario(spec)
    assert sc.concurrency == 8 and sc.think_time_s == 0.5
    reqs = sc.requests()
    assert (reqs[0].prefix_id, reqs[0].prefix_tokens) == (0, 500) and reqs[1].follows == 0
    assert reqs[1].prefix[0] == (0, 500)  # the next turn resends the system prompt and the first turn
    assert resolve({"workload": {"turns": 3, "think_time_s": 2}})["workload"]["think_time_s"] == 2
    with pytest.raises(ValueError, match="workload.concurrency"):
        resolve({"workload": {"concurrency": 0}})


def test_simulate_prints_the_closed_loop_curve():
    r = CliRunner().invoke(main, ["simulate", "--model", "llama-3.2-1b", "--hardware", "h100", "--requests", "60",
                                  "--concurrency", "1,16", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert [c["concurrency"] for c in d["curve"]] == [1, 16]
    assert d["curve"][1]["throughput_rps"] > d["curve"][0]["throughput_rps"]
    assert d["curve"][1]["peak_in_system"] <= 16 and d["curve"][1]["itl_p50_s"] > 0


def test_the_search_objective_runs_closed_loops():
    ob = ServingObjective("llama-3.2-1b", num_requests=40, concurrency=8)
    ev = ob.evaluate({"hardware": "h100", "tp": 1, "pp": 1, "replicas": 1, "scheduler": "continuous"})
    assert ev["feasible"] and ev["metrics"]["completed"] == 40
    with pytest.raises(ValueError, match="concurrency"):
        ServingObjective("llama-3.2-1b", rate_per_s=2.0, concurrency=8)


# --------------------------------------------------------------------------- capacity confirmed
def test_tune_capacity_is_confirmed_by_a_long_run_and_plan_agrees():
    from optimizers.capacity import Candidate, Demand, SimulationSettings, hardware_catalog, plan_capacity

    cfg = {"hardware": "h100", "tp": 1, "pp": 1, "replicas": 1, "scheduler": "continuous"}
    ob = ServingObjective("llama-3.2-1b", num_requests=60, find_capacity=True, confirm_requests=300)
    ev = ob.evaluate(cfg)
    m = ev["metrics"]
    assert ev["feasible"] and m["capacity_confirmed"] and m["confirm_requests"] == 300
    assert m["requests"] == 300 and m["confirm_slo_attainment"] >= 0.9  # the metrics are the confirming run's
    # the plan for that demand on that GPU needs one unit, and its own confirming run passes
    plan = plan_capacity([Demand("chatbot", m["capacity_rps"])], [Candidate("h100")], hardware_catalog(["h100"]),
                         settings=SimulationSettings("llama-3.2-1b", num_requests=60, confirm_requests=300))
    assert plan.solution.gpus == {"h100": 1} and plan.confirmed


# --------------------------------------------------------------------------- prices
def test_no_gpu_costs_a_silent_zero():
    from hwmodels.spec import DATA_DIR, load_gpu

    for path in sorted((DATA_DIR / "gpus").glob("*.json")):
        g = load_gpu(path.stem)
        p = g.price_per_hour_usd
        assert p is None or (p > 0 and g.sources["price_per_hour_usd"])
    assert load_gpu("h200").price_per_hour_usd > load_gpu("h100").price_per_hour_usd  # one basis
    spec = resolve({"model": "llama-3.2-1b", "hardware": "mi300x", "workload": {"requests": 10, "rate_per_s": 2}})
    s = simulate(build_scenario(spec)).summary
    assert math.isnan(s.cost_usd) and math.isnan(s.cost_per_million_output_tokens_usd)
    r = CliRunner().invoke(main, ["simulate", "--model", "llama-3.2-1b", "--hardware", "mi300x", "--requests", "10"])
    assert r.exit_code == 0 and "price unknown" in r.output and "$0.0000" not in r.output
