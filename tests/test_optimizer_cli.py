"""``genz tune`` and ``genz plan``: JSON output, results files, and bad input (exit code 2)."""

from __future__ import annotations

import importlib.util
import json

import pandas as pd
import pytest
from click.testing import CliRunner

from interfaces.cli import main

needs_optuna = pytest.mark.skipif(importlib.util.find_spec("optuna") is None,
                                  reason="genz tune needs Optuna (pip install -e '.[search]')")

SMALL = ["--model", "llama-3.2-1b", "--workers", "1"]


def run(*args):
    return CliRunner().invoke(main, list(args))


@needs_optuna
def test_tune_json_and_results_files(tmp_path):
    out = tmp_path / "tune.json"
    r = run("tune", *SMALL, "--max-num-seqs", "4,64", "--requests", "30", "--sampler", "grid", "--out", str(out),
            "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["objective"] == "throughput" and d["direction"] == "maximize" and len(d["trials"]) == 2
    assert d["best"]["params"]["max_num_seqs"] == 64 and d["baseline"]["params"]["max_num_seqs"] == 256
    assert d["improvement"] is not None
    saved = json.loads(out.read_text())
    assert saved["genz_result"] == "search" and saved["format_version"] == 1
    assert saved["trials"] == json.loads(json.dumps(d["trials"]))
    csv = pd.read_csv(out.with_suffix(".csv"), comment="#")
    assert list(csv["max_num_seqs"]) == [t["params"]["max_num_seqs"] for t in d["trials"]]
    assert "throughput" in csv.columns
    # the file is what `genz report search` reads
    from interfaces.reports.formats import load_results

    kind, payload = load_results(out)
    assert kind == "search" and payload["best"]["value"] == d["best"]["value"]
    # and an existing --out needs --force
    again = run("tune", *SMALL, "--max-num-seqs", "4", "--requests", "10", "--sampler", "grid", "--out", str(out))
    assert again.exit_code == 2 and "--force" in again.output


@needs_optuna
def test_tune_text_output_names_best_and_baseline():
    r = run("tune", *SMALL, "--max-num-seqs", "4,16", "--requests", "20", "--sampler", "grid",
            "--objective", "throughput,p99_tpot")
    assert r.exit_code == 0, r.output
    assert "best throughput:" in r.output and "baseline:" in r.output and "Pareto front" in r.output


@needs_optuna
@pytest.mark.parametrize("args,needle", [
    (["--max-num-seqs", "abc"], "--max-num-seqs"),
    (["--max-num-seqs", "512", "--max-num-batched-tokens", "256"], "search space is empty"),
    (["--objective", "speed"], "objective must be one of"),
    (["--objective", "goodput"], "needs an arrival rate"),
    (["--hardware", "rtx-4090", "--objective", "cost"], "--price rtx-4090="),
    (["--hardware", "h2000"], "h200"),
    (["--chunked-prefill", "maybe"], "--chunked-prefill"),
    (["--price", "h100=cheap"], "--price"),
    (["--workers", "0"], "--workers"),
    (["--use-case", "poetry"], "use case must be one of"),
    (["--runtime", "tgi"], "unknown runtime 'tgi'"),  # once an infeasible trial with exit 0 (issue 11)
    (["--length-sigma", "nan"], "length_sigma"),
    (["--length-sigma", "-1"], "length_sigma"),
])
def test_tune_bad_input_exits_2_with_a_message(args, needle):
    r = run("tune", *SMALL, "--requests", "10", "--sampler", "grid", *args)
    assert r.exit_code == 2, r.output
    assert needle in r.output and "Traceback" not in r.output


def test_tune_with_nothing_feasible_exits_1():
    """A search that ran and found no configuration meeting the SLO is a failed run (1), not success."""
    args = ("tune", *SMALL, "--max-num-seqs", "4", "--requests", "10", "--sampler", "grid", "--rate", "2",
            "--slo-ttft", "1e-6")
    r = run(*args)
    assert r.exit_code == 1, r.output
    assert "none feasible" in r.output and "no configuration met the SLOs" in r.output
    rj = run(*args, "--json")
    assert rj.exit_code == 1 and json.loads(rj.output)["best"] is None


def test_plan_json_and_file(tmp_path):
    out = tmp_path / "plan.json"
    r = run("plan", *SMALL, "--workload", "chatbot=3", "--hardware", "h100", "--tp", "1", "--colocated-only",
            "--requests", "40", "--confirm-requests", "80", "--out", str(out), "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["feasible"] and d["confirmed"] and d["totals"]["gpus"] == {"h100": 1}
    assert d["totals"]["cost_usd_per_hour"] == pytest.approx(4.75)
    assert d["deployment"][0]["candidate"] == "h100 tp1" and d["confirmation"][0]["passed"]
    saved = json.loads(out.read_text())
    assert saved["genz_result"] == "plan" and saved["totals"] == json.loads(json.dumps(d["totals"]))


def test_plan_workload_file_with_slo(tmp_path):
    f = tmp_path / "mix.yaml"
    f.write_text("use_cases:\n  - {use_case: chatbot, rate_per_s: 2, ttft_slo_s: 1.0}\n")
    r = run("plan", *SMALL, "--workload", str(f), "--hardware", "h100", "--tp", "1", "--colocated-only",
            "--requests", "40", "--no-confirm", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["demand"][0]["ttft_slo_s"] == 1.0 and d["demand"][0]["tpot_slo_s"] == 0.05
    assert d["confirmation"] == []


def test_plan_infeasible_names_the_binding_limit(tmp_path):
    r = run("plan", *SMALL, "--workload", "chatbot=3", "--hardware", "h100", "--tp", "1", "--colocated-only",
            "--requests", "40", "--budget", "1")
    assert r.exit_code == 1  # a run that worked and found no plan (bad input is 2)
    assert "budget binds" in r.output and "$4.75/h" in r.output and "$1.00/h" in r.output
    rj = run("plan", *SMALL, "--workload", "chatbot=3", "--hardware", "h100", "--tp", "1", "--colocated-only",
             "--requests", "40", "--budget", "1", "--json")
    assert rj.exit_code == 1
    d = json.loads(rj.output)
    assert d["feasible"] is False and d["binding"] == ["budget"]


@pytest.mark.parametrize("args,needle", [
    (["--workload", "chatbot"], "USE_CASE=RATE"),
    (["--workload", "chatbot=0"], "rate_per_s"),
    (["--workload", "sonnets=3"], "use case must be one of"),
    (["--workload", "missing.yaml"], "does not exist"),
    (["--workload", "chatbot=3", "--hardware", "rtx-4090"], "--price rtx-4090="),
    (["--workload", "chatbot=3", "--pd-ratios", "1-1"], "--pd-ratios"),
    (["--workload", "chatbot=3", "--racks", "0"], "limits.racks"),
    (["--workload", "chatbot=3", "--tp", "16"], "fits in a server"),
])
def test_plan_bad_input_exits_2(args, needle):
    r = run("plan", *SMALL, "--requests", "10", *args)
    assert r.exit_code == 2, r.output
    assert needle in r.output and "Traceback" not in r.output


# --------------------------------------------------------------------------- genz place
needs_placement = pytest.mark.skipif(importlib.util.find_spec("optimizers.placement.report") is None,
                                     reason="optimizers.placement is not in this checkout")


@needs_placement
def test_place_json_and_report_file(tmp_path):
    out = tmp_path / "place.json"
    r = run("place", "--synthetic", "1.0", "--experts", "4", "--layers", "3", "--tokens", "200", "--top-k", "1",
            "--gpus-per-node", "2", "--time-limit", "20", "--out", str(out), "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    # deterministic chains on 2 GPUs: the ILP keeps every chain on one GPU, round robin does not
    assert d["methods"]["ilp"]["objective"] == 0.0 and d["methods"]["round_robin"]["objective"] > 0
    assert d["baseline"] == "round_robin" and len(d["methods"]["ilp"]["gpu_of"]) == 3
    from interfaces.reports.formats import load_results

    kind, payload = load_results(out)
    assert kind == "placement" and payload["methods"]["ilp"]["objective"] == 0.0


@needs_placement
def test_place_text_output():
    r = run("place", "--synthetic", "1.0", "--experts", "4", "--layers", "3", "--tokens", "200", "--top-k", "1",
            "--gpus-per-node", "2", "--time-limit", "20")
    assert r.exit_code == 0, r.output
    assert "round_robin" in r.output and "ilp" in r.output


@needs_placement
@pytest.mark.parametrize("csv,args,needle", [
    ("token,layer,e0\n0,0,1\n0,1,9\n", ["--experts", "8"], "out of range"),
    ("token,layer,e0\n0,0,1\n0,1,2\n1,0,3\n", [], "ragged layers"),
    ("token,layer,e0\n0,0,1\n0,1,2\n1,0,3\n1,1,5\n", ["--experts", "6", "--gpus-per-node", "4"], "not divisible"),
])
def test_place_bad_traces_exit_2(tmp_path, csv, args, needle):
    f = tmp_path / "routing.csv"
    f.write_text(csv)
    r = run("place", "--trace", str(f), *args)
    assert r.exit_code == 2, r.output
    assert needle in r.output and "Traceback" not in r.output


@needs_placement
@pytest.mark.parametrize("args,needle", [
    ([], "give a routing trace"),
    (["--trace", "nowhere.npy"], "does not exist"),
    (["--trace", "routing.txt", "--synthetic", "0.5"], "give one of them"),
    (["--synthetic", "0.5"], "needs --experts"),
    (["--synthetic", "0.5", "--experts", "8", "--model", "llama-3-8b"], "has no experts"),
])
def test_place_bad_input_exits_2(args, needle):
    r = run("place", *args)
    assert r.exit_code == 2, r.output
    assert needle in r.output
