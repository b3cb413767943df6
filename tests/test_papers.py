"""Every reproduced paper figure stays within its goal; the report's text and JSON forms."""

import json

import pytest

from validation.papers import Figure, figures_report, paper_figures
from validation.papers import flightllm as fl

FIGURES = paper_figures()


@pytest.mark.parametrize("fig", FIGURES, ids=[f"{f.paper}: {f.name}" for f in FIGURES])
def test_figure_within_goal(fig):
    assert abs(fig.error_pct) <= fig.goal_pct, f"{fig.name}: paper {fig.paper_value}, model {fig.model_value:.4g}"


def test_goals_and_coverage():
    flight = [f for f in FIGURES if f.paper == "FlightLLM"]
    lut = [f for f in FIGURES if f.paper == "LUT Tensor Core"]
    times = [f for f in flight if f.unit in ("ms", "tokens/s")]
    assert len(times) == 13 and all(f.goal_pct == 10 for f in times)
    assert all(f.goal_pct == 20 for f in flight if f.unit == "x")
    assert len(lut) == 6 * 5 + 5 + 3 and all(f.goal_pct == 15 for f in lut)
    assert {f.confidence for f in FIGURES} == {"[paper]", "[secondary]"}
    # figures not used to set any parameter (real predictions) stay a large share
    assert sum(not f.calibration_point for f in FIGURES) >= 35


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
