"""Every reproduced paper figure stays within its goal; the report's text and JSON forms."""

import json

import numpy as np
import pytest

from genz import prefill, step_costs
from hwmodels.luttc import load_lut_gpu
from validation.papers import Figure, figures_report, luttc, paper_figures, paper_fits, paper_leave_one_out
from validation.papers import flightllm as fl

FIGURES = paper_figures()
#: Predicted figures the mechanism models miss, with the band their error must stay in (so a
#: change that makes them worse, or better, fails here and gets looked at).
KNOWN_MISSES = {
    "Length-adaptive compilation: instruction storage cut": (-85.0, -70.0),
    "Table precompute overhead, prefill, unfused": (-70.0, -50.0),
    "Table precompute overhead, decode, unfused": (-80.0, -65.0),
}


@pytest.mark.parametrize("fig", FIGURES, ids=[f"{f.paper}: {f.name}" for f in FIGURES])
def test_figure_within_goal(fig):
    if fig.name in KNOWN_MISSES:
        lo, hi = KNOWN_MISSES[fig.name]
        assert fig.kind == "predicted" and lo <= fig.error_pct <= hi, f"{fig.name}: {fig.error_pct:+.1f} %"
        return
    assert abs(fig.error_pct) <= fig.goal_pct, f"{fig.name}: paper {fig.paper_value}, model {fig.model_value:.4g}"


def test_every_figure_a_fit_uses_is_marked_fitted():
    by_name = {(f.paper, f.name): f for f in FIGURES}
    used = {(x.paper, n) for x in paper_fits() for n in x.figures}
    assert used, "the LUT Tensor Core fits name their figures"
    for key in used:
        assert key in by_name, f"fit names an unknown figure {key}"
        assert by_name[key].kind == "fitted", f"{key} is used by a fit but marked {by_name[key].kind}"
    # and nothing is marked fitted without a fit that uses it
    assert {k for k, f in by_name.items() if f.kind == "fitted"} == used


def test_stored_latency_parameters_are_the_fit():
    f = luttc.fit_latency()
    s = luttc.setup()
    assert f["attention_score_passes"] == s["attention_score_passes"]
    assert f["gemm_efficiency_a100"] == pytest.approx(s["gemm_efficiency_a100"], abs=0.005)
    assert f["gemm_efficiency_h100"] == pytest.approx(s["gemm_efficiency_h100"], abs=0.005)


def test_leave_one_out_covers_every_fitted_figure():
    loo = paper_leave_one_out()
    fitted = {f.name for f in FIGURES if f.kind == "fitted"}
    assert {r.figure for r in loo} == fitted
    refit = [r for r in loo if r.error_pct is not None]
    assert len(refit) == 12 and all(abs(r.error_pct) < 25 for r in refit)


def test_kinds_and_predicted_totals_in_json():
    data = json.loads(figures_report(json=True))
    assert all(row["kind"] in ("fitted", "by construction", "predicted") for row in data["figures"])
    for paper, t in data["papers"].items():
        assert t["fitted"] + t["by construction"] + t["predicted"] == sum(
            r["paper"] == paper for r in data["figures"])
    pred = [abs(f.error_pct) for f in FIGURES if f.kind == "predicted"]
    assert data["totals"]["predicted"] == len(pred) >= 28
    assert data["totals"]["predicted_errors"]["worst_abs_error_pct"] == pytest.approx(max(pred))
    assert len(data["leave_one_out"]) == sum(f.kind == "fitted" for f in FIGURES)


def test_goals_and_coverage():
    flight = [f for f in FIGURES if f.paper == "FlightLLM"]
    lut = [f for f in FIGURES if f.paper == "LUT Tensor Core"]
    times = [f for f in flight if f.unit in ("ms", "tokens/s")]
    assert len(times) == 13 and all(f.goal_pct == 10 for f in times)
    assert all(f.goal_pct in (20, 25) for f in flight if f.unit == "x")
    assert len(lut) == 6 * 5 + 5 + 3 + 4 and all(f.goal_pct == 15 for f in lut if "precompute" not in f.name)
    assert {f.confidence for f in FIGURES} == {"[paper]", "[secondary]"}


def test_error_is_relative_to_the_paper():
    f = Figure("p", "n", paper_value=10.0, model_value=11.0, unit="ms")
    assert f.error_pct == pytest.approx(10.0) and f.within_goal


def test_json_report_has_the_documented_fields():
    data = json.loads(figures_report(json=True))
    assert len(data["figures"]) == len(FIGURES)
    for row in data["figures"]:
        assert {"paper", "name", "paper_value", "model_value", "error_pct", "confidence"} <= set(row)
    assert data["secondary"] == sum(f.confidence == "[secondary]" for f in FIGURES)


def test_text_report_names_secondary_figures():
    text = figures_report()
    assert "[secondary]" in text and "U280 LLaMA2-7B decode step, KV 128" in text
    assert f"of {len(FIGURES)} figures within their goal" in text
    assert "Leave-one-out" in text and "predicted: median" in text


def test_always_on_chip_decode_is_worth_its_bandwidth():
    on = fl.decode_bandwidth_utilization("u280")
    off = fl.decode_bandwidth_utilization("u280", always_on_chip_decode=False)
    assert on == pytest.approx(0.70) and off == pytest.approx(0.35)
    slow = fl.decode_step_s("u280", [512], always_on_chip_decode=False)[0]
    assert slow > fl.decode_step_s("u280", [512])[0]


def test_sensitivity_table_moves_figures_for_every_assumption():
    from validation.papers.sensitivity import sensitivity, sensitivity_report

    rows = sensitivity()
    assert len(rows) >= 12
    assert all(r["figures_moved"] >= 1 and abs(r["max_change_pct"]) > 0.5 for r in rows)
    assert "core_efficiency" in sensitivity_report()


# Each mechanism switched off moves its figure the way the paper reports, by roughly its size.
def test_sparse_dsp_chain_off_costs_compute_like_the_paper():
    gain = fl.sparse_chain_gain()
    assert 1.2 < gain < 2.0  # paper: 1.6x compute efficiency
    # on the model's own sparsity (q, k at 0.7) a compute-bound prefill gets faster with the chain
    assert fl.prefill_s("vhk158", [512])[0] < fl.prefill_s("vhk158", [512], sparse_dsp_chain=False)[0]


def test_always_on_chip_decode_off_halves_bandwidth_and_slows_decode():
    on = fl.decode_bandwidth_utilization("u280")
    off = fl.decode_bandwidth_utilization("u280", always_on_chip_decode=False)
    assert 1.5 < on / off < 2.5  # paper: 65.9 % / 35.6 % = 1.85
    assert fl.decode_step_s("vhk158", [512], always_on_chip_decode=False)[0] > fl.decode_step_s("vhk158", [512])[0]


def test_length_adaptive_compilation_off_multiplies_instruction_storage():
    assert fl.instruction_storage_ratio() > 50  # paper: about 500x (the model's count gets ~113x)


def test_vhk158_beats_the_a100_like_the_paper():
    assert 1.0 < fl.vhk158_over_a100() < 1.4  # paper: 1.2x


def test_operator_fusion_off_raises_table_precompute_overhead():
    for fused, unfused in zip(luttc.precompute_share(True), luttc.precompute_share(False), strict=True):
        assert 0.01 < fused < 0.05  # paper: 2.62 % (prefill), 2.52 % (decode)
        assert 2.0 < unfused / fused < 12.0  # paper: 6.3x (prefill), 9.7x (decode)
    a = luttc.kernel_latencies("a100-lut-4x", "ternary")
    shape = prefill(np.array([1.0, 1024.0]), np.array([2048.0, 1.0]))
    t = luttc.kernel_table(shape, "ternary")
    s = luttc.setup()
    dev = load_lut_gpu("a100-lut-4x", luttc._profile("a100-lut-4x"), clock_hz=s["clock_hz"], fused_precompute=False)
    slow = step_costs(dev, t)["time"]
    assert slow[0] > a[0] and slow[1] > a[1]


def test_lut_8x_has_its_own_tile_not_twice_4x():
    from hwmodels.luttc import load_variant

    v4, v8 = load_variant("a100-lut-4x"), load_variant("a100-lut-8x")
    assert v8.tile != v4.tile
    area = {f.name: f.model_value for f in FIGURES}
    r = area["Table 1 A100-LUT-8X: tensor-core area per SM"] / area["Table 1 A100-LUT-4X: tensor-core area per SM"]
    assert 1.9 < r < 2.0  # the longer N shares each table over more lanes: a little under twice
