"""Work is sized before it starts: limits named with the flag that raises them, alias bombs refused,
tune and plan killed half-way leave the user's files whole, and flags are never silently replaced."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from genz.serving import LinearStepCost, Scenario, simulate
from genz.serving.config import MAX_REPLICAS
from interfaces.cli import main
from workloads.requests import PoissonArrivals, Request, WorkloadSpec
from workloads.yamlfile import load_yaml

ROOT = Path(__file__).resolve().parents[1]
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{k}: &{k} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, k in zip("abcdefgh", "bcdefghi",
                                                                                         strict=True))


def _run(*args):
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize("args,needle", [
    (["simulate", "--requests", "1000000000"], "workload.requests: 1,000,000,000 requests is above the limit"),
    (["simulate", "--requests", "30", "--max-requests", "10"], "above the limit of 10 per run"),
    (["simulate", "--rate", "1e-300", "--requests", "5"], "workload.rate_per_s: must be a finite number >= 1e-06"),
    (["simulate", "--replicas", "100000", "--requests", "5"], f"replicas: at most {MAX_REPLICAS} replicas"),
    (["tune", "--trials", "10000000", "--requests", "5"], "n_trials: 10,000,000 is above the limit"),
    (["tune", "--requests", "100000000"], "num_requests: 100,000,000 is above the limit"),
    (["tune", "--batch", "0"], "--batch"),
    (["plan", "--workload", "chatbot=3", "--confirm-requests", "0"], "confirm_requests: must be an integer >= 1"),
    (["plan", "--workload", "chatbot=3", "--requests", "0"], "num_requests: must be an integer >= 1"),
])
def test_oversized_or_replaced_inputs_are_refused_by_name(args, needle):
    r = _run(*args)
    assert r.exit_code == 2, r.output
    assert needle in r.output and "Traceback" not in r.output


def test_alias_bomb_is_refused_before_it_expands(tmp_path):
    assert len(BOMB) < 400
    with pytest.raises(ValueError, match="expands to more than 100000 values"):
        load_yaml(BOMB, "bomb")
    f = tmp_path / "bomb.yaml"
    f.write_text("name: x\nworkload: {requests: 5}\nmemo: {}\n" + BOMB.replace("a:", "zz_a:", 1))
    r = _run("simulate", "--scenario", str(f))
    assert r.exit_code == 2 and "expands to more than" in r.output
    w = tmp_path / "mix.yaml"
    w.write_text(BOMB)
    r = _run("plan", "--workload", str(w))
    assert r.exit_code == 2 and "expands to more than" in r.output
    with pytest.raises(ValueError, match="refers to itself"):
        load_yaml("a: &a [*a]", "loop")


def test_python_api_limits():
    wl = WorkloadSpec(5_000_000, PoissonArrivals(1.0), 10, 5)
    with pytest.raises(ValueError, match="workload.num_requests: 5,000,000 requests is above the limit"):
        simulate(Scenario(cost=LinearStepCost(), workload=wl))
    far = [Request(0, 0.0, 10, 5), Request(1, 1e12, 10, 5)]
    with pytest.raises(ValueError, match="trace: an arrival at 1e\\+12 s is beyond"):
        simulate(Scenario(cost=LinearStepCost(), trace=far))
    with pytest.raises(ValueError, match="window_s: 1e-09 s would cut a run"):
        simulate(Scenario(cost=LinearStepCost(), trace=[Request(0, 0.0, 10, 5)], window_s=1e-9))
    ok = simulate(Scenario(cost=LinearStepCost(), workload=WorkloadSpec(20, PoissonArrivals(1.0), 10, 5)),
                  max_requests=20)
    assert ok.summary.completed == 20


def _kill_after(args, cwd, seconds: float) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "interfaces.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(seconds)
    assert proc.poll() is None, "finished before it could be killed: make it slower"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_tune_and_plan_killed_midway_keep_the_users_files(tmp_path):
    out, cache = tmp_path / "tune.json", tmp_path / "caps.json"
    out.write_text("my old results\n")
    cache.write_text(json.dumps({"genz_capacity_cache": 1, "entries": {}}))
    _kill_after(["tune", "--max-num-seqs", "4:1024:x2", "--max-num-batched-tokens", "2048,4096,8192",
                 "--sampler", "grid", "--requests", "400", "--workers", "1", "--out", str(out), "--force"],
                tmp_path, 4.0)
    assert out.read_text() == "my old results\n"
    _kill_after(["plan", "--workload", "chatbot=30,code_generation=5", "--hardware", "a100,h100,h200",
                 "--tp", "1,2,4", "--workers", "1", "--cache", str(cache)], tmp_path, 4.0)
    assert json.loads(cache.read_text()) == {"genz_capacity_cache": 1, "entries": {}}
    leftovers = [p.name for p in tmp_path.iterdir() if p.name not in ("tune.json", "caps.json")]
    assert leftovers == []  # no temporary files left behind either
