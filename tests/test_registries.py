"""Extension points: a policy, a router and a device family added by one plugin file (the recipes of
docs/architecture.md) reach scenario files, the search space, ``genz simulate --help``, ``genz tune``
and ``genz predict`` without editing any other file."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

import genz.serving  # noqa: F401  (built-in policies and routers)
from genz.serving import simulate
from genz.serving.build import build_scenario
from genz.serving.registry import ROUTERS, SCHEDULERS, make_router, scheduler_config
from genz.serving.scenario_file import resolve
from hwmodels import registry as hw_registry
from optimizers.search import SearchSpace

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "tests" / "plugins" / "example_plugin.py"


@pytest.fixture
def plugin():
    """Run the example plugin in this process; restore every registry afterwards."""
    saved = dict(SCHEDULERS), dict(ROUTERS), dict(hw_registry._FAMILIES)
    runpy.run_path(str(PLUGIN))
    yield
    for reg, old in zip((SCHEDULERS, ROUTERS, hw_registry._FAMILIES), saved, strict=True):
        reg.clear()
        reg.update(old)
    hw_registry._load_cached.cache_clear()


def _spec(**over):
    raw = {"model": "llama-3-8b", "hardware": "h100-sxm", "replicas": 2,
           "workload": {"prompt": "uniform:64:2048", "output": 64, "requests": 120, "rate_per_s": 20}} | over
    return resolve(raw)


def test_builtin_registries():
    assert {"continuous", "static"} <= set(SCHEDULERS)
    assert {"round_robin", "least_outstanding_tokens"} <= set(ROUTERS)
    assert set(hw_registry.families()) >= {"gpu", "flightllm", "luttc"}
    assert hw_registry.family_of("u280") == "flightllm" and hw_registry.family_of("a100-lut-4x") == "luttc"


def test_policy_from_a_plugin_runs_from_a_scenario_mapping(plugin):
    spec = _spec(scheduler={"kind": "shortest_prompt_first", "sort_window": 8}, router="fewest_requests")
    assert spec["scheduler"]["sort_window"] == 8 and spec["scheduler"]["max_num_seqs"] == 256
    res = simulate(build_scenario(spec))
    s = res.summary
    assert s.completed == 120 and s.dropped == 0
    # conservation: tokens in = tokens out (every request's 64 output tokens come out once)
    assert s.output_tokens == 120 * 64 and int(res.requests["output_tokens"].sum()) == 120 * 64
    fifo = simulate(build_scenario(_spec(router="fewest_requests"))).summary
    assert fifo.completed == 120
    # shortest-first lowers the median TTFT of a mixed-length queue compared with FIFO
    assert s.ttft_s.p50 <= fifo.ttft_s.p50 * 1.001


def test_policy_knobs_are_checked_by_its_config(plugin):
    with pytest.raises(ValueError, match="scheduler.sort_window: must be an integer >= 0"):
        resolve({"scheduler": {"kind": "shortest_prompt_first", "sort_window": -1}})
    with pytest.raises(ValueError, match="scheduler.sort_window: not a knob of the continuous scheduler"):
        resolve({"scheduler": {"sort_window": 4}})
    assert scheduler_config("shortest_prompt_first").sort_window == 64


def test_policy_in_the_search_space(plugin):
    space = SearchSpace(scheduler=("continuous", "shortest_prompt_first"), hardware=("h100",))
    assert space.size == 2
    assert make_router("fewest_requests", 3).assign(None, 1) == 0


def test_unknown_policy_names_the_registered_ones():
    with pytest.raises(ValueError, match="space.scheduler: values must be one of continuous, static"):
        SearchSpace(scheduler=("lottery",))


def test_device_family_from_a_plugin(plugin):
    from genz.predict import predict

    toy = predict("llama-3-8b", "toy-gpu", batch=8, prompt=512, output=64)
    h100 = predict("llama-3-8b", hw_registry.load_device("h100-sxm", "datasheet"), batch=8, prompt=512,
                   output=64)
    assert "toy-gpu" in hw_registry.all_hardware_names()
    assert toy.tpot_s > 1.5 * h100.tpot_s  # half the bandwidth: memory-bound decode nearly twice as slow


# --------------------------------------------------------------------------- the same, on the CLI
def _cli(*args, plugins=True):
    env = dict(os.environ, GENZ_PLUGINS=str(PLUGIN) if plugins else "")
    return subprocess.run([sys.executable, "-m", "interfaces.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_cli_shows_and_runs_a_plugin_policy(tmp_path):
    r = _cli("simulate", "--help")
    assert r.returncode == 0, r.stderr
    assert "shortest_prompt_first" in r.stdout and "--sort-window" in r.stdout and "fewest_requests" in r.stdout
    sc = tmp_path / "sjf.yaml"
    sc.write_text("scheduler: {kind: shortest_prompt_first, sort_window: 4}\nrouter: fewest_requests\n"
                  "replicas: 2\nworkload: {requests: 40, rate_per_s: 5}\n")
    r = _cli("simulate", "--scenario", str(sc), "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["inputs"]["scheduler"]["kind"] == "shortest_prompt_first" and d["completed"] == 40
    r = _cli("simulate", "--scheduler", "shortest_prompt_first", "--sort-window", "2", "--requests", "20", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["inputs"]["scheduler"]["sort_window"] == 2
    r = _cli("tune", "--scheduler", "continuous,shortest_prompt_first", "--sampler", "grid", "--requests", "20",
             "--model", "llama-3-8b", "--hardware", "h100", "--json", "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert {t["params"]["scheduler"] for t in json.loads(r.stdout)["trials"]} == {"continuous", "shortest_prompt_first"}
    r = _cli("predict", "--hardware", "toy-gpu", "--json")
    assert r.returncode == 0, r.stderr
    r = _cli("simulate", "--help", plugins=False)
    assert "shortest_prompt_first" not in r.stdout


def test_a_broken_plugin_is_a_named_error(tmp_path):
    bad = tmp_path / "broken.py"
    bad.write_text("raise RuntimeError('boom')\n")
    env = dict(os.environ, GENZ_PLUGINS=str(bad))
    r = subprocess.run([sys.executable, "-m", "interfaces.cli", "list", "models"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "GENZ_PLUGINS: cannot load plugin" in r.stderr and "boom" in r.stderr
    assert "Traceback" not in r.stderr


def test_entry_point_plugins_are_found_by_the_quick_scan_and_loaded(tmp_path, monkeypatch):
    """An installed package declaring a ``genz.plugins`` entry point: the start-up scan sees it and
    load_plugins imports it; without one, nothing is scanned beyond the dist-info folders."""
    import sys

    from genz import plugins

    monkeypatch.delenv("GENZ_PLUGINS", raising=False)
    monkeypatch.setattr(sys, "path", [str(tmp_path)])
    assert not plugins.any_plugins()
    (tmp_path / "genz_ep_demo.py").write_text("LOADED = True\n")
    dist = tmp_path / "genz_ep_demo-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: genz-ep-demo\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[genz.plugins]\ndemo = genz_ep_demo\n")
    assert plugins.any_plugins()
    assert "genz_ep_demo" in plugins.load_plugins("")
    assert sys.modules["genz_ep_demo"].LOADED
