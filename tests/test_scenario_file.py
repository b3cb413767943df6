"""Scenario files (YAML/TOML) and ``genz simulate``: field-named errors, defaults, flag overrides,
impossible scenarios, the shipped examples."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from genz.serving import ContinuousBatching, StaticBatching
from genz.serving.scenario_file import build_scenario, fit_problem, load_file, load_scenario, merge, resolve
from interfaces.cli import main
from interfaces.cli.serving_cmds import overrides_from_flags

EXAMPLES = sorted((Path(__file__).parent.parent / "docs" / "scenarios").glob("*.*"))


def run(*args):
    return CliRunner().invoke(main, ["simulate", *args])


# --------------------------------------------------------------------------- checks name the field
@pytest.mark.parametrize("raw,needle", [
    ({"scheduler": {"max_num_seqs": 0}}, "scheduler.max_num_seqs: must be an integer >= 1, got 0"),
    ({"scheduler": {"max_num_seqs": 512, "max_num_batched_tokens": 256}}, "scheduler.max_num_batched_tokens: must be >="),
    ({"scheduler": {"gpu_memory_utilization": 1.5}}, "scheduler.gpu_memory_utilization: must be in (0, 1]"),
    ({"scheduler": {"kind": "static", "max_num_seqs": 4}}, "scheduler.max_num_seqs: not a knob of the static"),
    ({"scheduler": {"kind": "dynamic"}}, "scheduler.kind: must be one of continuous, static"),
    ({"replicas": 0}, "replicas: must be an integer >= 1"),
    ({"router": "random"}, "router: must be one of round_robin, least_outstanding_tokens"),
    ({"workload": {"rate_per_s": -1}}, "workload.rate_per_s: must be a finite number >= 1e-06"),
    ({"workload": {"arrival": "bursty"}}, "workload.arrival: must be one of poisson, gamma, fixed"),
    ({"workload": {"cv": 2.0}}, "workload.cv: only applies to arrival: gamma"),
    ({"workload": {"prompt": "lognormal:abc"}}, "workload.prompt: lognormal arguments must be numbers"),
    ({"workload": {"prompt": "zipf:3"}}, "workload.prompt: must be an integer or one of"),
    ({"workload": {"output": {"dist": "uniform", "low": 10, "high": 5}}}, "workload.output.high: must be an integer >= 10"),
    ({"workload": {"use_case": "poetry"}}, "use case must be one of"),
    ({"workload": {"trace": "missing.csv"}}, "workload.trace: file"),
    ({"slo": {"ttft_s": 0}}, "slo.ttft_s: must be a finite number > 0"),
    ({"slo": {}}, "slo: give ttft_s, tpot_s or both"),
    ({"disaggregation": {"link": "ib-xdr9000"}}, "unknown link 'ib-xdr9000'"),
    ({"disaggregation": {"prefill_replicas": 0}}, "disaggregation.prefill_replicas: must be an integer >= 1"),
    ({"scheduler": {"kind": "static"}, "disaggregation": {}}, "scheduler.kind: must be one of continuous, guaranteed_no_evict, sglang, trtllm when disagg"),
    ({"disaggregation": {"scheduler": {"kind": "static"}}}, "disaggregation.scheduler.kind: must be one of continuous"),
    ({"memo": {"context_bucket": 0}}, "memo.context_bucket: must be an integer >= 1"),
    ({"tp": 0}, "tp: must be an integer >= 1"),
])
def test_bad_fields_are_named(raw, needle):
    with pytest.raises(ValueError) as e:
        resolve(raw)
    assert needle in str(e.value)


def test_unknown_keys_are_listed_with_the_allowed_ones():
    with pytest.raises(ValueError) as e:
        resolve({"schedular": {}, "model": "llama-3-8b"})
    msg = str(e.value)
    assert "'schedular' (did you mean 'scheduler'?)" in msg and "allowed: name, model, hardware" in msg
    with pytest.raises(ValueError) as e:
        resolve({"scheduler": {"max_seqs": 4}})
    msg = str(e.value)
    assert msg.startswith("scheduler: unknown key 'max_seqs'") and "max_num_seqs" in msg and "block_size" in msg


def test_defaults_and_use_case():
    spec = resolve({})
    assert (spec["model"], spec["hardware"], spec["replicas"], spec["scheduler"]["kind"]) == \
        ("llama-3-8b", "h200", 1, "continuous")
    # no workload given: GenZ's chatbot (2048 in / 128 out) and its SLO
    assert spec["workload"]["prompt"] == {"dist": "fixed", "tokens": 2048}
    assert spec["slo"] == {"ttft_s": 0.5, "tpot_s": 0.05}
    # lengths given but no use case: no SLO invented
    spec = resolve({"workload": {"prompt": 100, "output": "uniform:1:9"}})
    assert spec["slo"] is None and spec["workload"]["output"] == {"dist": "uniform", "low": 1, "high": 9}
    # one objective alone leaves the other unbounded
    assert resolve({"slo": {"tpot_s": 0.1}})["slo"] == {"ttft_s": math.inf, "tpot_s": 0.1}
    spec = resolve({"workload": {"use_case": "code", "length_sigma": 0.3}})
    assert spec["workload"]["prompt"] == {"dist": "lognormal", "mean": 20000.0, "sigma": 0.3}
    assert spec["slo"] == {"ttft_s": 2.0, "tpot_s": 0.05}


def test_built_scenario_carries_every_field(tmp_path):
    spec = resolve({"model": "llama-3-8b", "hardware": "h100-sxm", "replicas": 3, "router": "least_outstanding_tokens",
                    "scheduler": {"max_num_seqs": 32, "max_num_batched_tokens": 512, "chunked_prefill": False},
                    "workload": {"rate_per_s": 2, "requests": 7, "arrival": "gamma", "cv": 3, "prompt": 50,
                                 "output": "lognormal:20:0.1"},
                    "seed": 4, "disaggregation": {"prefill_replicas": 2, "hardware": "a100", "tp": 2,
                                                  "link": "ib-hdr200", "link_count": 4, "overlap": False}})
    sc = build_scenario(spec)
    assert sc.scheduler == ContinuousBatching(max_num_seqs=32, max_num_batched_tokens=512, chunked_prefill=False)
    assert (sc.replicas, sc.router, sc.seed, sc.workload.num_requests) == (3, "least_outstanding_tokens", 4, 7)
    assert sc.workload.arrival.cv == 3
    d = sc.disaggregation
    assert d.prefill_replicas == 2 and d.prefill_cost.tp == 2 and d.prefill_cost.devices == 2
    assert d.link.bandwidth_bytes_per_s == 4 * 25e9 and not d.link.overlap  # 4 x HDR 200 Gb/s
    assert d.prefill_scheduler == sc.scheduler  # the prefill pool inherits the scheduler
    assert sc.cost.price_per_hour_usd == pytest.approx(4.75) and d.prefill_cost.price_per_hour_usd == pytest.approx(4.4)
    static = build_scenario(resolve({"scheduler": {"kind": "static", "batch_size": 3}}))
    assert static.scheduler == StaticBatching(batch_size=3)


def test_yaml_and_toml_read_the_same(tmp_path):
    y = tmp_path / "a.yaml"
    y.write_text("model: llama-3-8b\nscheduler:\n  max_num_seqs: 8\nworkload:\n  prompt: {dist: lognormal, mean: 900}\n")
    t = tmp_path / "a.toml"
    t.write_text('model = "llama-3-8b"\n[scheduler]\nmax_num_seqs = 8\n[workload]\n'
                 'prompt = { dist = "lognormal", mean = 900 }\n')
    assert resolve(load_file(y)) == resolve(load_file(t))
    bad = tmp_path / "b.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match="must end in .yaml, .yml or .toml"):
        load_file(bad)
    broken = tmp_path / "c.yaml"
    broken.write_text("model: [unclosed\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_file(broken)


def test_trace_paths_are_relative_to_the_file(tmp_path):
    (tmp_path / "t.csv").write_text("arrival_s,prompt_tokens,output_tokens\n0.0,100,5\n0.5,200,6\n1.0,300,7\n")
    f = tmp_path / "s.yaml"
    f.write_text("workload:\n  trace: t.csv\n  requests: 2\n")
    sc, spec = load_scenario(f)
    assert [q.prompt_tokens for q in sc.trace] == [100, 200]
    assert spec["workload"]["trace"] == str(tmp_path / "t.csv")
    with pytest.raises(ValueError, match="workload.rate_per_s: give either workload.trace"):
        resolve({"workload": {"trace": str(tmp_path / "t.csv"), "rate_per_s": 3}})


def test_merge_and_flag_overrides():
    base = {"replicas": 2, "scheduler": {"max_num_seqs": 8, "block_size": 32}, "disaggregation": {"link": "ib-hdr200"}}
    out = merge(base, {"scheduler": {"max_num_seqs": 16}, "disaggregation": None})
    assert out == {"replicas": 2, "scheduler": {"max_num_seqs": 16, "block_size": 32}}
    assert base["scheduler"]["max_num_seqs"] == 8  # inputs untouched
    file_raw = {"workload": {"rate_per_s": 3, "prompt": 100}}
    over = overrides_from_flags({"trace": "x.csv"}, file_raw)
    assert merge(file_raw, over)["workload"] == {"trace": "x.csv"}
    file_raw = {"workload": {"trace": "x.csv"}}
    assert merge(file_raw, overrides_from_flags({"rate": 2.0}, file_raw))["workload"] == {"rate_per_s": 2.0}
    over = overrides_from_flags({"prefill_replicas": 3, "max_num_seqs": 4}, {})
    assert over == {"disaggregation": {"prefill_replicas": 3}, "scheduler": {"max_num_seqs": 4}}


def test_model_that_does_not_fit_is_named():
    assert fit_problem(resolve({"model": "llama-2-70b", "hardware": "h100-sxm", "tp": 8})) == ""
    msg = fit_problem(resolve({"model": "llama-2-70b", "hardware": "h100-sxm"}))
    assert msg.startswith("model does not fit: llama-2-70b bf16 weights need 138.0 GB per device")
    msg = fit_problem(resolve({"model": "llama-2-70b", "hardware": "h100-sxm", "tp": 8, "disaggregation": {"tp": 1}}))
    assert msg.startswith("prefill pool: model does not fit")


# --------------------------------------------------------------------------- the command
def test_simulate_json_has_summary_and_inputs():
    r = run("--model", "llama-3-8b", "--hardware", "h100", "--rate", "5", "--requests", "60", "--seed", "3", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["completed"] == 60 and d["feasible"] is True
    assert {"ttft_s", "tpot_s", "e2e_s", "goodput_rps", "energy_j", "cost_usd", "saturated"} <= set(d)
    assert set(d["ttft_s"]) == {"mean", "p50", "p90", "p99"}
    assert d["inputs"]["workload"]["rate_per_s"] == 5.0 and d["inputs"]["seed"] == 3
    assert d["inputs"]["slo"] == {"ttft_s": 0.5, "tpot_s": 0.05}


def test_flags_override_the_scenario_file(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("hardware: h100-sxm\nreplicas: 2\nworkload: {rate_per_s: 3, requests: 40}\n"
                 "scheduler: {max_num_seqs: 16}\n")
    d = json.loads(run("--scenario", str(f), "--replicas", "1", "--max-num-seqs", "4", "--json").output)
    assert d["inputs"]["replicas"] == 1 and d["inputs"]["scheduler"]["max_num_seqs"] == 4
    assert d["inputs"]["workload"]["rate_per_s"] == 3.0 and d["completed"] == 40


def test_out_requests_refuses_to_overwrite(tmp_path):
    out = tmp_path / "req.csv"
    args = ["--rate", "4", "--requests", "30", "--out-requests", str(out)]
    assert run(*args).exit_code == 0
    frame = pd.read_csv(out, comment="#")
    assert len(frame) == 30 and {"ttft_s", "tpot_s", "e2e_s", "meets_slo"} <= set(frame.columns)
    r = run(*args)
    assert r.exit_code == 2 and "--force" in r.output
    assert run(*args, "--force").exit_code == 0


@pytest.mark.parametrize("args,needle", [
    (["--model", "llama-2-70b", "--hardware", "h100"], "model does not fit"),
    (["--slo-ttft", "0.001", "--requests", "10"], "SLO unattainable: slo.ttft_s = 0.001 s is below the unloaded TTFT"),
])
def test_impossible_scenarios_exit_1_without_simulating(args, needle):
    r = run(*args)
    assert r.exit_code == 1 and needle in r.output and "Traceback" not in r.output
    r = run(*args, "--json")
    assert r.exit_code == 1
    d = json.loads(r.output)
    assert d["feasible"] is False and needle in d["infeasible_reason"] and d["completed"] == 0


@pytest.mark.parametrize("args,needle", [
    (["--max-num-seqs", "0"], "--max-num-seqs"),
    (["--rate", "-2"], "--rate"),
    (["--prompt", "lognormal:x"], "workload.prompt"),
    (["--scenario", "nope.yaml"], "does not exist"),
    (["--link", "ib-xdr9000"], "unknown link"),
    (["--colocated", "--prefill-replicas", "2"], "--colocated"),
])
def test_bad_flags_exit_2(args, needle):
    r = run(*args)
    assert r.exit_code == 2, r.output
    assert needle in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_shipped_examples_run(path):
    assert len(EXAMPLES) >= 3
    r = run("--scenario", str(path), "--requests", "80", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["completed"] == 80 and not d["saturated"] and d["slo_attainment"] > 0.9
