"""MoE cluster layouts in the serving simulation (issue 18, "into serving"): a pool of a layout is
one replica whose iteration costs what the cluster model says for the busiest GPU's batch; a layout
with both pools runs disaggregated with its KV over the prefill pool's NICs; bad combinations are
errors naming the field."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from genz.moe_cluster import ClusterLayout, PoolLayout, load_layout, predict_cluster
from genz.moe_cluster.serving import LayoutStepCost
from genz.serving.scenario_file import load_scenario, resolve
from interfaces.cli import main as cli

LAYOUT = Path(__file__).resolve().parents[1] / "docs" / "layouts" / "deepseek-v3-sglang-96xh100.yaml"


def test_a_pool_step_at_the_layouts_batch_is_the_cluster_models_step():
    """The step the simulation charges for the layout's own batch is predict_cluster's step."""
    lay = load_layout(LAYOUT)
    pred = predict_cluster(lay)
    dec, pre = LayoutStepCost(lay, "decode"), LayoutStepCost(lay, "prefill")
    t, j = dec.step((), (2000,) * (256 * 72))
    assert t == pytest.approx(pred.pools["decode"].step_s, rel=1e-12)
    assert j == pytest.approx(t * 72 * dec.device.power_limit_w)
    t, _ = pre.step(((4096, 0),) * (16384 * 32 // 4096), ())
    assert t == pytest.approx(pred.pools["prefill"].step_s, rel=1e-12)
    # the busiest GPU sets the step: one request more than fills every GPU costs a step of 2 per GPU
    one, two = dec.step((), (2000,) * 72)[0], dec.step((), (2000,) * 73)[0]
    assert two > one == dec.step((), (2000,) * 10)[0]


def test_pool_memory_becomes_the_replicas_kv_capacity():
    lay = load_layout(LAYOUT)
    c = LayoutStepCost(lay, "decode")
    pred = predict_cluster(lay).pools["decode"]
    non_kv = pred.memory["total"] - pred.memory["kv_cache"]
    assert c.kv_capacity_bytes == pytest.approx(72 * (pred.capacity_bytes - non_kv))
    assert c.kv_bytes_per_token == pytest.approx(70272.0)  # DeepSeek-V3 MLA, BF16 KV (ISCA'25 paper: 70,272 B)


def test_scenario_with_a_layout_is_disaggregated_with_the_layouts_pools():
    spec = resolve({"layout": str(LAYOUT), "workload": {"requests": 50, "rate_per_s": 10, "prompt": 1000,
                                                       "output": 20}})
    assert spec["model"] == "deepseek-v3" and spec["hardware"] == "h100-sxm" and spec["ep"] == 72
    d = spec["disaggregation"]
    assert d["layout"]["role"] == "prefill" and spec["layout"]["role"] == "decode"
    # KV over the prefill pool's 32 GPUs' NICs: 8 x 400 Gb/s per node at the cluster's achievable 0.8
    assert d["link"]["bandwidth_bytes_per_s"] * d["link_count"] == pytest.approx(32 * 50e9 * 0.8)
    assert spec["scheduler"]["max_num_seqs"] == 256 * 72
    assert d["scheduler"]["max_num_batched_tokens"] == 16384 * 32
    scen, _ = load_scenario(overrides={"layout": str(LAYOUT), "workload": {"requests": 50, "rate_per_s": 10,
                                                                          "prompt": 1000, "output": 20}})
    from genz.serving import simulate

    res = simulate(scen).summary
    assert res.completed == 50 and res.dropped == 0
    assert res.output_tokens == 50 * 20  # tokens out = tokens asked for
    assert res.prefill_tokens == 50 * 1000  # tokens in, prefilled once each on the prefill pool


@pytest.mark.parametrize("extra,field", [
    ({"tp": 2}, "layout"), ({"model": "mixtral-8x7b"}, "layout"),
    ({"placement": "place.json"}, "placement"),
    ({"disaggregation": {"hardware": "h100"}}, "disaggregation.hardware"),
    ({"layout": "no-such-layout.yaml"}, "layout"),
    ({"layout": 3}, "layout"),
])
def test_layout_errors_name_the_field(extra, field):
    raw = {"layout": str(LAYOUT), **extra}
    with pytest.raises(ValueError, match=rf"^{field}:"):
        resolve(raw)


def test_decode_only_layout_runs_colocated(tmp_path):
    f = tmp_path / "dec.yaml"
    f.write_text("model: deepseek-v3\ncluster: dgx-h100\ndecode: {nodes: 2, ep: 16, a2a: low_latency, "
                 "batch_per_gpu: 64, context: 1024}\n")
    spec = resolve({"layout": str(f), "workload": {"requests": 30, "rate_per_s": 5, "prompt": 500, "output": 10}})
    assert spec["disaggregation"] is None and spec["scheduler"]["max_num_batched_tokens"] == 8192 * 16
    with pytest.raises(ValueError, match="^disaggregation:"):
        resolve({"layout": str(f), "disaggregation": {"prefill_replicas": 2}})
    # prefill steps of a co-located low-latency pool run DeepEP's normal kernels
    c = LayoutStepCost(load_layout(f), "decode")
    assert c.step(((500, 0),), ())[0] > 0 and math.isfinite(c.price_per_hour_usd)
    only_prefill = tmp_path / "pre.yaml"
    only_prefill.write_text("model: deepseek-v3\ncluster: dgx-h100\nprefill: {nodes: 4, ep: 32, "
                            "batch_per_gpu: 4096, context: 2048}\n")
    with pytest.raises(ValueError, match="no decode pool"):
        resolve({"layout": str(only_prefill)})


def test_cli_simulate_with_a_layout():
    r = CliRunner().invoke(cli, ["simulate", "--layout", str(LAYOUT), "--requests", "40", "--rate", "10",
                                 "--prompt", "1000", "--output", "20"])
    assert r.exit_code == 0, r.output
    flat = " ".join(r.output.split())  # rich wraps lines at the terminal width
    assert "layout deepseek-v3-sglang-96xh100.yaml" in flat and "requests completed" in flat
    bad = CliRunner().invoke(cli, ["simulate", "--layout", str(LAYOUT), "--tp", "2"])
    assert bad.exit_code == 2 and "layout" in bad.output


def test_layout_pool_does_not_fit_is_a_result():
    lay = ClusterLayout("deepseek-v3", "dgx-h100", decode=PoolLayout("decode", nodes=1, ep=8, a2a="low_latency",
                                                                      batch_per_gpu=8, context=512))
    c = LayoutStepCost(lay, "decode")
    assert c.kv_capacity_bytes < 0  # 671 GB of FP8 weights on 8 x 80 GB


def test_plan_with_a_layout_candidate():
    """genz plan counts whole layouts as units: GPUs of both pools, capacity from simulations sized to
    the unit, confirmed at the planned rate."""
    from optimizers.capacity import (
        Limits,
        SimulationSettings,
        hardware_catalog,
        layout_candidate,
        plan_capacity,
    )
    from optimizers.capacity.inputs import parse_demand

    cand = layout_candidate(LAYOUT)
    assert cand.gpus == 104 and cand.prefill_replicas == 1 and cand.request_scale == 13
    assert cand.config()["layout"] == str(LAYOUT) and "layout deepseek-v3-sglang-96xh100" in cand.label
    demands = parse_demand("chatbot=50")
    settings = SimulationSettings(model="deepseek-v3", num_requests=60, confirm_requests=120)
    res = plan_capacity(demands, [cand], hardware_catalog([cand.hardware]), Limits(), settings=settings, workers=1)
    assert res.feasible and res.confirmed, res.confirmation
    (row,) = res.deployment
    assert row["units"] >= 1 and row["gpus_by_hardware"] == {"h100-sxm": 104 * row["units"]}
    assert row["capacity_rps_per_unit"] * row["units"] >= 50
    with pytest.raises(ValueError, match="--layout"):
        layout_candidate("no-such-layout.yaml")


def test_a_layout_for_another_model_is_refused_by_the_objective():
    from optimizers.search.objective import ServingObjective

    ob = ServingObjective(model="mixtral-8x7b", num_requests=20)
    ev = ob.evaluate_at({"layout": str(LAYOUT), "replicas": 1, "prefill_replicas": 1, "scheduler": "continuous"}, 5.0)
    assert not ev["feasible"] and "serves deepseek-v3" in ev["reason"] and ev["metrics"]["gpus"] == 104


def test_recommend_considers_a_layout_and_writes_sglang_commands_for_it():
    from optimizers.recommend import Deployment, recommend, sglang_launch_script

    rec = recommend("deepseek-v3", gpus=256, hardware=[], rate_per_s=60, layouts=[str(LAYOUT)], requests=40,
                    confirm_requests=80)
    (d,) = [x for x in rec.ranked if x.layout]
    assert d.feasible, d.reason
    assert d.unit_gpus == 104 and d.gpus == 104 * d.replicas and d.replicas == -(-60 // d.capacity_rps)
    assert rec.best is d and rec.confirmation["feasible"]
    script = sglang_launch_script(d, "deepseek-ai/DeepSeek-V3")
    for text in ("--disaggregation-mode prefill", "--disaggregation-mode decode", "--tp-size 32", "--dp-size 72",
                 "--deepep-mode normal", "--deepep-mode low_latency", "--ep-num-redundant-experts 32",
                 "--enable-two-batch-overlap", "--chunked-prefill-size 524288", "--nnodes 9"):
        assert text in script
    with pytest.raises(ValueError, match="--layout"):
        recommend("deepseek-v3", gpus=8, hardware=[], rate_per_s=1, layouts=["missing.yaml"])
    assert Deployment("h100-sxm", "fp8", 1, layout=str(LAYOUT), unit_gpus=104, layout_prefill=True,
                      replicas=2).config(2) == {
        "layout": str(LAYOUT), "replicas": 2, "scheduler": "continuous", "prefill_replicas": 2}


def test_cli_plan_with_only_a_layout():
    r = CliRunner().invoke(cli, ["plan", "--workload", "chatbot=40", "--model", "deepseek-v3", "--layout", str(LAYOUT),
                                 "--workers", "1", "--requests", "40", "--no-confirm", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["feasible"] and [c["mode"] for c in d["candidates"]] == ["layout"]  # no GPU catalog without --hardware
    assert d["deployment"][0]["gpus_by_hardware"] == {"h100-sxm": 104 * d["deployment"][0]["units"]}
    bad = CliRunner().invoke(cli, ["plan", "--workload", "chatbot=3", "--layout", "missing.yaml"])
    assert bad.exit_code == 2 and "--layout" in bad.output
