"""genz recommend: ranked deployments under an SLA, a non-dominated Pareto front, the best confirmed
by simulation at the requested rate, a launch script written without overwriting the user's file."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from genz.serving import SLO
from interfaces.cli import main
from optimizers.recommend import launch_script, recommend
from optimizers.search import ServingObjective
from optimizers.search.space import VLLM_DEFAULTS


@pytest.fixture(scope="module")
def rec():
    return recommend("llama-3.2-1b", gpus=4, hardware=["h100", "a100-40gb"], rate_per_s=12, slo=SLO(0.5, 0.05),
                     precisions=("bf16", "fp8"), requests=60, confirm_requests=200, workers=1)


def test_best_meets_the_slo_in_simulation(rec):
    best = rec.best
    assert best is not None and best.gpus <= 4 and rec.confirmation["feasible"]
    assert rec.confirmation["deployment"] == best.label
    # an independent run of the recommended deployment at the requested rate meets the SLO
    ob = ServingObjective("llama-3.2-1b", precision=best.precision, slo=SLO(0.5, 0.05), rate_per_s=12,
                          num_requests=300, seed=5)
    ev = ob.evaluate({**VLLM_DEFAULTS, "tp": best.tp, "pp": 1, "ep": 1, "replicas": best.replicas,
                      "hardware": best.hardware})
    assert ev["feasible"] and ev["metrics"]["slo_attainment"] >= 0.9


def test_ranking_front_and_reasons(rec):
    ok = [d for d in rec.ranked if d.feasible]
    assert ok and [d.gpus for d in ok] == sorted(d.gpus for d in ok)
    assert all(d.reason for d in rec.ranked if not d.feasible)
    assert any("lacks" in d.reason or "fp8" in d.reason for d in rec.ranked if d.hardware.startswith("a100"))
    for d in rec.front:  # no listed deployment on the front is dominated by another feasible one
        assert not any(o.tok_s_per_gpu >= d.tok_s_per_gpu and o.per_user_tok_s >= d.per_user_tok_s
                       and (o.tok_s_per_gpu, o.per_user_tok_s) != (d.tok_s_per_gpu, d.per_user_tok_s) for o in ok)
    script = launch_script(rec.best, "llama-3.2-1b")
    assert script.count("vllm serve") == rec.best.replicas and f"--tensor-parallel-size {rec.best.tp}" in script


def test_cli_writes_the_launch_script_and_never_overwrites(tmp_path):
    args = ["recommend", "--model", "llama-3.2-1b", "--gpus", "2", "--hardware", "h100", "--rate", "4",
            "--requests", "40", "--confirm-requests", "80", "--workers", "1", "--json"]
    runner = CliRunner()
    with runner.isolated_filesystem(temp_dir=tmp_path):
        r = runner.invoke(main, args)
        assert r.exit_code == 0, r.output
        d = json.loads(r.output)
        assert d["best"] and d["launch"] == "genz-launch.sh" and d["confirmation"]["feasible"]
        r = runner.invoke(main, args)
        assert r.exit_code == 2 and "--launch" in r.output and "exists" in r.output
    r = runner.invoke(main, ["recommend", "--rate", "0"])
    assert r.exit_code == 2 and "--rate" in r.output
