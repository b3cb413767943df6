"""Knob search: the space, the objective, the loop (grid/random/TPE/NSGA-II, resume, parallel, Ray),
the rate bisection, and the hyperparameter-study reproduction."""

from __future__ import annotations

import importlib.util
import math
from dataclasses import replace

import numpy as np
import pytest

from genz.serving import MemoConfig, SaturationConfig, Scenario, StaticBatching, simulate
from genz.stepcost import EngineStepCost
from optimizers.search import (
    KNOBS,
    SearchSpace,
    ServingObjective,
    canonical,
    config_problem,
    pareto_front,
    search,
)
from optimizers.search.rates import max_rate
from validation.reproductions.hyperparameter_study import (
    StudySetup,
    _fallback,
    _peaks,
    landscape,
    prompt_lengths,
    retune_gains,
    run_study,
)
from workloads.requests import Request

needs_optuna = pytest.mark.skipif(importlib.util.find_spec("optuna") is None,
                                  reason="the search loop needs Optuna (pip install -e '.[search]')")

SMALL = "llama-3.2-1b"


def objective(**kw) -> ServingObjective:
    return ServingObjective(SMALL, use_case="chatbot", num_requests=kw.pop("num_requests", 40), **kw)


# --------------------------------------------------------------------------- the space
def test_space_sizes_baseline_and_duplicates():
    s = SearchSpace(max_num_seqs=(64, 256), tp=(1, 2), scheduler=("continuous", "static"), batch_size=(1, 8),
                    hardware=("h100",))
    assert s.grid_size == 2 * 2 * 2 * 2
    # continuous: 2 seqs x 2 tp (batch_size ignored); static: 2 batch x 2 tp (seqs ignored)
    assert s.size == 8
    b = s.baseline()
    assert b["max_num_seqs"] == 256 and b["scheduler"] == "continuous" and b["tp"] == 1 and b["batch_size"] == 1
    c = canonical({**b, "scheduler": "static"})
    assert c["max_num_seqs"] is None and c["batch_size"] == 1
    assert set(s.to_dict()) == set(KNOBS) | {"max_gpus"}
    assert SearchSpace.from_dict(s.to_dict()) == s


@pytest.mark.parametrize("kw,needle", [
    ({"max_num_seqs": ()}, "knob 'max_num_seqs' has no values"),
    ({"tp": (0,)}, "space.tp"),
    ({"chunked_prefill": ("yes",)}, "chunked_prefill"),
    ({"gpu_memory_utilization": (1.5,)}, "gpu_memory_utilization"),
    ({"scheduler": ("dynamic",)}, "continuous, static"),
    ({"max_num_seqs": (512,), "max_num_batched_tokens": (256,)}, "search space is empty"),
    ({"tp": (4,), "replicas": (2,), "max_gpus": 4}, "max_gpus"),
])
def test_space_rejects_bad_input_naming_the_knob(kw, needle):
    with pytest.raises(ValueError, match=needle):
        SearchSpace(**kw)


def test_space_from_dict_rejects_unknown_knob():
    with pytest.raises(ValueError, match="unknown knob"):
        SearchSpace.from_dict({"max_num_sequences": [1]})


def test_config_problem_rules():
    base = SearchSpace().baseline()
    assert config_problem(base) == ""
    assert "vLLM requires" in config_problem({**base, "max_num_seqs": 512, "max_num_batched_tokens": 256})
    assert config_problem({**base, "scheduler": "static", "max_num_seqs": 512, "max_num_batched_tokens": 256}) == ""
    assert "8 GPUs" in config_problem({**base, "tp": 4, "replicas": 2}, max_gpus=4)


# --------------------------------------------------------------------------- pareto and bisection
def test_pareto_front_by_hand():
    # (throughput up, latency down): (10, 5) dominates (8, 6); (12, 9) and (6, 1) trade off; (10, 5) twice ties
    pts = [(10, 5), (8, 6), (12, 9), (6, 1), (10, 5)]
    assert pareto_front(pts, ["maximize", "minimize"]) == [0, 2, 3, 4]


def test_max_rate_brackets_and_bisects_to_tolerance():
    calls = []

    def run(r):
        calls.append(r)
        return {"feasible": r <= 7.3}

    rs = max_rate(run, 1.0, rel_tol=0.02)
    assert 7.3 / 1.02 <= rs.rate <= 7.3
    # 1, 2, 4, 8 (fail), then bisection of [4, 8] down to 2 %: log2(log(2)/log(1.02)) ~ 5.1 -> 6 steps
    assert calls[:4] == [1.0, 2.0, 4.0, 8.0] and len(calls) == 10


def test_max_rate_shrinks_caps_and_stops_on_structural_failures():
    rs = max_rate(lambda r: {"feasible": r <= 0.3}, 4.0, rel_tol=0.05)
    assert 0.3 / 1.05 <= rs.rate <= 0.3
    capped = max_rate(lambda r: {"feasible": True}, 1.0, upper=5.0)
    assert capped.rate == 5.0 and capped.history[-1] == (5.0, True)
    dead = max_rate(lambda r: {"feasible": False, "structural": True, "reason": "model does not fit"}, 1.0)
    assert dead.rate == 0 and dead.evaluations == 1 and "does not fit" in dead.reason


# --------------------------------------------------------------------------- the objective
def test_objective_metrics_are_consistent():
    ob = objective()
    cfg = {**SearchSpace(hardware=("h100",)).baseline(), "replicas": 2}
    ev = ob(cfg)
    m = ev["metrics"]
    assert ev["feasible"], ev["reason"]
    assert m["gpus"] == 2 and m["completed"] == 40
    assert m["output_tokens_per_s_per_gpu"] == pytest.approx(m["output_tokens_per_s"] / 2)
    # offline: every request arrives at t = 0, so the run lasts as long as its slowest request
    assert m["duration_s"] == pytest.approx(m["e2e_p99_s"], rel=0.05)
    # the cost of two H100s (4.75 USD/h each, data file) over the run, per million output tokens
    tokens = 40 * 128
    assert m["cost_per_million_output_tokens_usd"] == pytest.approx(2 * 4.75 * m["duration_s"] / 3600 / tokens * 1e6,
                                                                    rel=1e-6)


def test_objective_reports_impossible_splits_as_infeasible_trials():
    ev = objective()({**SearchSpace().baseline(), "tp": 3})
    assert not ev["feasible"] and ev["structural"] and "tp" in ev["reason"]


@needs_optuna
def test_objective_price_override_and_missing_price():
    cfg = SearchSpace(hardware=("h100",)).baseline()
    a = objective()(cfg)["metrics"]["cost_per_million_output_tokens_usd"]
    b = objective(prices={"h100": 9.5})(cfg)["metrics"]["cost_per_million_output_tokens_usd"]
    assert b == pytest.approx(2 * a)
    with pytest.raises(ValueError, match=r"rtx-4090.*--price rtx-4090="):
        search(SearchSpace(hardware=("rtx-4090",)), objective(), objectives=("cost",), sampler="grid")


@needs_optuna
def test_goodput_needs_a_rate_and_objective_names_are_checked():
    with pytest.raises(ValueError, match="needs an arrival rate"):
        search(SearchSpace(), objective(), objectives=("goodput",), sampler="grid")
    with pytest.raises(ValueError, match="objective must be one of"):
        search(SearchSpace(), objective(), objectives=("speed",), sampler="grid")
    with pytest.raises(ValueError, match="sampler must be one of"):
        search(SearchSpace(), objective(), sampler="bayes")


def test_slo_constraint_with_a_rate():
    # 1000 requests/s of chat turns swamp one H100: the run cannot keep up or misses the SLO
    ev = objective(rate_per_s=1000.0, num_requests=300)(SearchSpace(hardware=("h100",)).baseline())
    assert not ev["feasible"] and not ev["structural"]
    assert "keep up" in ev["reason"] or "SLO attainment" in ev["reason"]
    ok = objective(rate_per_s=2.0)(SearchSpace(hardware=("h100",)).baseline())
    assert ok["feasible"] and ok["metrics"]["slo_attainment"] >= 0.9


# --------------------------------------------------------------------------- the loop
@needs_optuna
def test_grid_search_finds_the_maximum_and_reports_the_baseline():
    space = SearchSpace(max_num_seqs=(4, 16, 256), max_num_batched_tokens=(2048, 8192), hardware=("h100",))
    r = search(space, objective(), sampler="grid")
    assert len(r.trials) == 6 and all(t["feasible"] for t in r.trials)
    assert r.best["value"] == max(t["value"] for t in r.trials)
    # the baseline (vLLM defaults: 256 / 8192) is in the grid, so a grid search can only match or beat it
    base = next(t for t in r.trials if t["params"]["max_num_seqs"] == 256 and t["params"]["max_num_batched_tokens"] == 8192)
    assert r.baseline["value"] == pytest.approx(base["value"])
    assert r.improvement == pytest.approx((r.best["value"] - r.baseline["value"]) / r.baseline["value"])
    assert r.improvement >= 0
    # fewer concurrent sequences cannot raise offline throughput here: 4 seqs is the worst
    worst = min(r.trials, key=lambda t: t["value"])
    assert worst["params"]["max_num_seqs"] == 4
    payload = r.to_payload()
    assert payload["objective"] == "throughput" and payload["direction"] == "maximize"
    assert payload["space"]["max_num_seqs"] == [4, 16, 256]
    df = r.frame()
    assert len(df) == 6 and {"number", "feasible", "max_num_seqs", "throughput", "e2e_p99_s"} <= set(df.columns)


@needs_optuna
def test_duplicate_configurations_are_simulated_once():
    # block_size is ignored by nothing, but batch_size is ignored by the continuous scheduler: 2 distinct configs
    space = SearchSpace(max_num_seqs=(16, 64), batch_size=(1, 2, 4), hardware=("h100",))
    r = search(space, objective(), sampler="grid")
    assert len(r.trials) == 6
    assert r.evaluations == 2 + 1  # two distinct configurations and the baseline
    dups = [t for t in r.trials if t["duplicate_of"] is not None]
    assert len(dups) == 4
    by_num = {t["number"]: t for t in r.trials}
    assert all(t["value"] == by_num[t["duplicate_of"]]["value"] for t in dups)


@needs_optuna
def test_infeasible_configurations_are_kept_with_a_reason():
    space = SearchSpace(max_num_seqs=(64, 512), max_num_batched_tokens=(256, 8192), tp=(1, 3), hardware=("h100",))
    r = search(space, objective(), sampler="grid")
    bad = [t for t in r.trials if not t["feasible"]]
    assert {t["params"]["tp"] for t in bad if "tp" in t["reason"]} == {3}
    assert any("vLLM requires" in t["reason"] for t in bad)
    assert all(t["value"] is None for t in bad)
    assert r.best["params"]["tp"] == 1


@pytest.mark.parametrize("sampler", ["random", "tpe", "nsga2"])
@needs_optuna
def test_samplers_run_and_best_is_the_best_feasible_trial(sampler):
    space = SearchSpace(max_num_seqs=(4, 8, 16, 32, 64, 128, 256), max_num_batched_tokens=(1024, 8192),
                        hardware=("h100",))
    r = search(space, objective(num_requests=30), sampler=sampler, n_trials=8, seed=1)
    assert len(r.trials) == 8
    ok = [t["value"] for t in r.trials if t["feasible"]]
    assert r.best["value"] == max(ok)


@needs_optuna
def test_multi_objective_front_is_non_dominated():
    space = SearchSpace(max_num_seqs=(2, 8, 32, 128), hardware=("h100",))
    r = search(space, objective(), objectives=("throughput", "p99_tpot"), sampler="grid")
    assert r.directions == ("maximize", "minimize")
    front = [tuple(p["values"]) for p in r.pareto]
    allv = [tuple(t["values"]) for t in r.trials if t["feasible"]]
    for f in front:
        assert not any(a[0] >= f[0] and a[1] <= f[1] and a != f for a in allv)
    # throughput rises and TPOT worsens with concurrency: every distinct point is on the front
    assert len(front) == len(set(allv))


@needs_optuna
def test_resume_runs_only_the_missing_trials(tmp_path):
    space = SearchSpace(max_num_seqs=(4, 8, 16, 32, 64, 128), hardware=("h100",))
    store = tmp_path / "study.log"
    r1 = search(space, objective(), sampler="random", n_trials=3, storage=store, seed=3)
    r2 = search(space, objective(), sampler="random", n_trials=5, storage=store, seed=3)
    assert len(r2.trials) == 5
    assert [t["params"] for t in r2.trials[:3]] == [t["params"] for t in r1.trials]
    # new distinct configurations were simulated, repeats of earlier ones were not
    seen = {t["params"]["max_num_seqs"] for t in r1.trials}
    new = {t["params"]["max_num_seqs"] for t in r2.trials[3:]} - seen
    assert r2.evaluations == len(new) + 1
    db = search(space, objective(), sampler="grid", storage=tmp_path / "study.db")
    assert len(db.trials) == 6
    with pytest.raises(ValueError, match="different space"):
        search(SearchSpace(max_num_seqs=(4, 8), hardware=("h100",)), objective(), sampler="random", n_trials=4,
               storage=store, seed=3)


@needs_optuna
def test_resume_requeues_a_trial_left_running_by_a_killed_run(tmp_path):
    import optuna

    from optimizers.search.study import _storage

    space = SearchSpace(max_num_seqs=(4, 8, 16, 32), hardware=("h100",))
    store = tmp_path / "study.log"
    search(space, objective(num_requests=20), sampler="random", n_trials=2, storage=store, seed=0)
    study = optuna.load_study(study_name="genz-tune", storage=_storage(store))
    stale = study.ask()  # a run killed after asking: the trial stays RUNNING in the file
    stale_params = {k: stale.suggest_categorical(k, list(getattr(space, k))) for k in KNOBS}
    r = search(space, objective(num_requests=20), sampler="random", n_trials=3, storage=store, seed=0)
    assert [t["number"] for t in r.trials] == [0, 1, stale.number + 1]
    assert r.trials[-1]["params"] == stale_params
    states = {t.number: t.state.name for t in optuna.load_study(study_name="genz-tune", storage=_storage(store)).trials}
    assert states[stale.number] == "FAIL"


@needs_optuna
def test_process_pool_gives_the_serial_answer():
    space = SearchSpace(max_num_seqs=(4, 16, 64), hardware=("h100",))
    serial = search(space, objective(), sampler="grid", workers=1)
    pool = search(space, objective(), sampler="grid", workers=2)
    key = lambda r: sorted((t["params"]["max_num_seqs"], t["value"]) for t in r.trials)  # noqa: E731
    assert key(serial) == key(pool)
    assert pool.baseline["value"] == serial.baseline["value"]


@needs_optuna
def test_ray_local_instance_gives_the_serial_answer():
    pytest.importorskip("ray")
    space = SearchSpace(max_num_seqs=(4, 64), hardware=("h100",))
    serial = search(space, objective(), sampler="grid", workers=1)
    ray_r = search(space, objective(), sampler="grid", workers=2, ray_address="local")
    key = lambda r: sorted((t["params"]["max_num_seqs"], t["value"]) for t in r.trials)  # noqa: E731
    assert key(serial) == key(ray_r)


@needs_optuna
def test_capacity_objective_bisects_the_rate():
    space = SearchSpace(max_num_seqs=(256,), hardware=("h100",))
    r = search(space, objective(num_requests=60), objectives=("capacity",), sampler="grid")
    m = r.best["metrics"]
    assert r.best["value"] == m["capacity_rps"] > 0
    # capped by what the replica serves flat out, and the run at the capacity meets the SLO
    assert m["capacity_rps"] <= m["offline_throughput_rps"] + 1e-9
    assert m["slo_attainment"] >= 0.9 and m["capacity_evaluations"] >= 2


# --------------------------------------------------------------------------- the study reproduction
def test_landscape_equals_the_static_batching_simulation():
    setup = StudySetup(models=(SMALL,), num_prompts=20, batch_sizes=(1, 8, 32), tp=(1, 2), max_new_tokens=(5,))
    grid = landscape(setup, SMALL, "a100-80gb-sxm", 5)
    lengths = prompt_lengths(setup)
    trace = [Request(i, 0.0, int(p), 5) for i, p in enumerate(lengths)]
    for r, tp in enumerate(setup.tp):
        for k, b in enumerate(setup.batch_sizes):
            cost = EngineStepCost(SMALL, "a100-80gb-sxm", "fp16", tp=tp, runtime="hf-transformers", cuda_graphs=False,
                                  max_batched_tokens=b * int(lengths.max()))
            sim = simulate(Scenario(cost=cost, scheduler=StaticBatching(batch_size=b), trace=trace,
                                    memo=MemoConfig(1, 1), saturation=SaturationConfig(stop=False)))
            assert grid[r, k] == pytest.approx(sim.summary.output_tokens_per_s, rel=1e-9)


def test_landscape_marks_out_of_memory_and_impossible_splits():
    setup = StudySetup(models=("llama-2-13b",), batch_sizes=(1, 64, 1024), tp=(1, 3), max_new_tokens=(20,))
    g = landscape(setup, "llama-2-13b", "v100-sxm2", 20)
    assert np.isnan(g[1]).all()            # 40 heads are not divisible by 3
    assert not np.isnan(g[0, 0])           # 26 GB of weights fit a 32 GB V100 at batch 1
    assert np.isnan(g[0, 2])               # 164 padded prompts do not


def test_retune_gains_by_hand():
    setup = StudySetup(models=("m",), hardware=("a", "b"), batch_sizes=(1, 2, 4), tp=(1, 2), max_new_tokens=(5,))
    nan = np.nan
    grids = {("m", "a", 5): np.array([[1.0, 5.0, 2.0], [3.0, 4.0, 1.0]]),   # best on a: tp1, batch 2
             ("m", "b", 5): np.array([[2.0, 4.0, nan], [1.0, 8.0, 6.0]])}   # best on b: tp2, batch 2
    (t,) = retune_gains(setup, grids, "a", "b")
    assert t.source_best == {"tp": 1, "batch": 2, "throughput": 5.0}
    assert t.transferred["throughput"] == 4.0 and not t.fallback
    assert t.gain == pytest.approx(8.0 / 4.0 - 1)
    (back,) = retune_gains(setup, grids, "b", "a")
    assert back.transferred == {"tp": 2, "batch": 2, "throughput": 4.0} and back.gain == pytest.approx(0.25)
    # per GPU: a's best is tp1 batch 2 (5), b at tp1 batch 2 gives 4 of b's best 4 -> no gain
    (pg,) = retune_gains(setup, grids, "a", "b", per_gpu=True)
    assert pg.gain == pytest.approx(0.0)


def test_fallback_halves_the_batch_then_adds_gpus_and_peaks_count_local_maxima():
    nan = np.nan
    g = np.array([[1.0, nan, nan], [2.0, 3.0, nan]])
    assert _fallback(g, (0, 2)) == (0, 0)
    assert _fallback(np.array([[nan, nan], [2.0, nan]]), (0, 1)) == (1, 0)
    assert _fallback(np.array([[nan, nan]]), (0, 1)) is None
    assert _peaks(np.array([[1.0, 3.0, 2.0, 4.0]])) == 2
    assert _peaks(np.array([[1.0, 2.0, 3.0]])) == 1


def test_study_runs_and_reports_both_directions():
    setup = StudySetup(models=("llama-2-7b", "llama-2-13b"), max_new_tokens=(5, 20))
    res = run_study(setup)
    assert len(res.grids) == 2 * 2 * 2
    for st in res.summary.values():
        assert st["settings"] == 4
        assert st["mean_gain"] is None or st["mean_gain"] >= 0  # re-tuning on the target never loses
    payload = res.to_payload()
    assert set(payload["paper_gains"]) == {"v100-sxm2->a100-80gb-sxm", "a100-80gb-sxm->v100-sxm2"}
    assert all(math.isfinite(x) for row in payload["landscapes"][0]["throughput_tok_s"] for x in row if x is not None)


def test_registered_objective():
    """The recipe of docs/architecture.md: an objective derived from the metrics reaches the search."""
    from optimizers.search import METRICS, register_metric

    try:
        register_metric("tokens_per_usd", "maximize", "tok/USD", "output tokens per dollar",
                        lambda m: m["output_tokens_per_s"] * 3600 / m["price_per_hour_usd"])
        space = SearchSpace(max_num_seqs=(4, 64), hardware=("h100",))
        res = search(space, ServingObjective("llama-3.2-1b", num_requests=20), objectives=["tokens_per_usd"],
                     sampler="grid", workers=1)
        best = res.best["metrics"]
        assert best["tokens_per_usd"] == pytest.approx(best["output_tokens_per_s"] * 3600 / best["price_per_hour_usd"])
        assert best["tokens_per_usd"] > 0
    finally:
        METRICS.pop("tokens_per_usd", None)


@pytest.mark.skipif(importlib.util.find_spec("optuna") is None, reason="optuna is not installed")
def test_same_seed_same_study_for_any_worker_count():
    """TPE asks in batches told in trial order: 1 and 2 workers give the same trials and best."""
    space = SearchSpace(max_num_seqs=(4, 16, 64, 256), max_num_batched_tokens=(2048, 8192), hardware=("h100",))
    ob = ServingObjective("llama-3.2-1b", num_requests=20)
    runs = [search(space, ob, sampler="tpe", n_trials=10, seed=3, workers=w, batch=4) for w in (1, 2)]
    assert [t["params"] for t in runs[0].trials] == [t["params"] for t in runs[1].trials]
    assert [t["values"] for t in runs[0].trials] == [t["values"] for t in runs[1].trials]
    assert runs[0].best["params"] == runs[1].best["params"]


def test_tune_capacity_is_confirmed_and_agrees_with_plan():
    """tune's capacity comes from the same bisection as plan's per-candidate capacity, and is then
    confirmed by a longer run (stepping down until one holds), whose SLO attainment is reported."""
    from optimizers.capacity import Demand, SimulationSettings, compute_capacities, make_candidates

    cand = make_candidates(["h100"], [1], disaggregated=False)[0]
    settings = SimulationSettings("llama-3.2-1b", num_requests=60, confirm_requests=240)
    demand = Demand("chatbot", 5.0)
    table = compute_capacities([cand], [demand], settings)
    ob = settings.objective(demand)
    raw = ob.evaluate(cand.config())
    assert raw["metrics"]["capacity_rps"] == pytest.approx(table.rate[0][0])
    confirmed = replace(ob, confirm_requests=240).evaluate(cand.config())
    m = confirmed["metrics"]
    assert m["capacity_confirmed"] is True and m["confirm_requests"] == 240
    assert 0 < m["capacity_rps"] <= raw["metrics"]["capacity_rps"]
    assert m["confirm_slo_attainment"] >= ob.min_slo_attainment
