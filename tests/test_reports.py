"""Reports: results-file formats, figure builders (numbers checked by hand), offline HTML pages,
and the `genz report` / `genz doctor` / `genz dashboard` commands."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import genz
from interfaces.cli import main
from interfaces.reports import build_report, load_results, render_html, write_result
from interfaces.reports.formats import write_table
from interfaces.reports.operators import energy_by_class, step_operators
from interfaces.reports.predict_report import roofline_figure
from interfaces.reports.sweep_report import pareto_mask
from interfaces.reports.validation_report import error_table, with_errors

H200_BW = 4.8e12  # bytes/s, hwmodels/data/gpus/h200-sxm.json
H200_BF16 = 989.4e12  # FLOP/s dense


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def pred():
    return genz.predict("llama-3-8b", "h200", batch=1, prompt=1024, output=128, profile="datasheet").to_dict()


@pytest.fixture(scope="module")
def ops(pred):
    return step_operators(pred, "datasheet")


# --- operators behind the roofline -------------------------------------------------------------

def test_lm_head_point_by_hand(ops):
    # decode LM head of llama-3-8b, batch 1: y = x W^T, x (1, 4096), W (128256, 4096) bf16
    row = ops.frame[(ops.frame["phase"] == "decode") & (ops.frame["name"] == "lm_head")].iloc[0]
    flops = 2 * 1 * 128256 * 4096
    nbytes = 128256 * 4096 * 2 + 4096 * 2 + 128256 * 2
    assert row["flops"] == flops
    assert row["bytes"] == nbytes
    assert row["intensity"] == pytest.approx(flops / nbytes)
    assert row["time_s"] == pytest.approx(nbytes / H200_BW)  # memory-bound on the datasheet roofline
    assert row["achieved_flops_s"] == pytest.approx(flops / (nbytes / H200_BW))
    assert row["bound"] == "memory"


def test_step_totals_match_prediction(pred, ops):
    t = ops.frame.groupby("phase")["step_time_s"].sum()
    assert t["prefill"] == pytest.approx(pred["ttft_s"], rel=1e-9)
    assert t["decode"] == pytest.approx(pred["tpot_s"], rel=1e-6)
    assert ops.peaks == {"bf16": H200_BF16} and ops.bandwidth == H200_BW


def test_no_operator_above_its_roof(ops):
    f = ops.frame[(ops.frame["flops"] > 0) & (ops.frame["bytes"] > 0)]
    roof = np.minimum(H200_BF16, f["intensity"] * H200_BW)
    assert (f["achieved_flops_s"] <= roof * (1 + 1e-9)).all()


def test_roofline_draws_every_operator_with_flops(ops):
    fig = roofline_figure(ops)
    markers = sum(len(t.x) for t in fig.data if t.mode == "markers")
    assert markers == int(((ops.frame["flops"] > 0) & (ops.frame["bytes"] > 0)).sum())
    roofs = [t for t in fig.data if t.mode == "lines"]
    assert len(roofs) == 1 and max(roofs[0].y) == pytest.approx(H200_BF16 / 1e12)


def test_idle_energy_is_idle_power_times_step_time(ops):
    e = energy_by_class(ops)
    idle = e[(e["part"] == "idle") & (e["phase"] == "decode")]["energy_j"].iloc[0]
    step = ops.frame[ops.frame["phase"] == "decode"]["step_time_s"].sum()
    assert idle == pytest.approx(80.0 * step)  # h200 idle power 80 W (spec file)


def test_predict_report_sections_and_memory_bars(pred):
    rep = build_report("predict", {"prediction": pred})
    assert [s.heading for s in rep.sections] == ["Roofline", "Latency breakdown", "Energy breakdown", "Memory"]
    mem = rep.sections[3].figure
    bars = {t.name: t.x[0] for t in mem.data if t.type == "bar"}
    assert bars["weights"] == pytest.approx(pred["memory"]["weights_bytes"] / 1e9)
    cap = [t for t in mem.data if t.name == "capacity"][0]
    assert cap.x[0] == pytest.approx(150.10988032)


def test_predict_report_keeps_going_without_operator_tables(pred):
    bad = dict(pred, model="no-such-model")
    rep = build_report("predict", {"prediction": bad})
    assert any("Operator-level figures left out" in n for n in rep.notes)
    assert [s.heading for s in rep.sections] == ["Latency breakdown", "Memory"]


# --- the page ----------------------------------------------------------------------------------

def test_page_is_self_contained(pred):
    page = render_html(build_report("predict", {"prediction": pred}))
    assert not re.search(r"<script[^>]+src\s*=\s*[\"']?(https?:)?//", page, re.I)
    assert not re.search(r"<link[^>]+href\s*=\s*[\"']?(https?:)?//", page, re.I)
    assert page.count("Plotly.newPlot(") == 4
    assert "plotly.js v" in page  # the library itself is inline


# --- results files -----------------------------------------------------------------------------

def test_bare_predict_json_is_read(tmp_path, pred):
    p = tmp_path / "p.json"
    p.write_text(json.dumps(pred))
    kind, payload = load_results(p)
    assert kind == "predict" and payload["prediction"]["ttft_s"] == pred["ttft_s"]


def test_envelope_round_trip_with_frames(tmp_path):
    df = pd.DataFrame({"measured_s": [1e-3, 2e-3], "predicted_s": [1.1e-3, np.nan], "kind": ["gemm", "gemm"]})
    path = write_result("validate", {"dataset": "x", "rows": df}, tmp_path / "v.json")
    data = json.loads(path.read_text())
    assert data["genz_result"] == "validate" and data["format_version"] == 1
    assert data["rows"]["data"][1][1] is None  # NaN -> null
    kind, payload = load_results(path)
    assert kind == "validate" and list(payload["rows"]["kind"]) == ["gemm", "gemm"]


@pytest.mark.parametrize("content,needle", [
    ({"genz_result": "nope"}, "known kinds"),
    ({"genz_result": "predict", "format_version": 99, "prediction": {}}, "format_version"),
    ({"out": "s.csv", "configurations": 3}, "summary printed by `genz sweep --json`"),
    ({"hello": 1}, "not a genz results file"),
])
def test_bad_results_files_name_the_problem(tmp_path, content, needle):
    p = tmp_path / "r.json"
    p.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=re.escape(needle)):
        load_results(p)


def test_kind_mismatch_is_reported(tmp_path, pred):
    p = tmp_path / "p.json"
    p.write_text(json.dumps(pred))
    with pytest.raises(ValueError, match="holds a predict result, not a sweep result"):
        load_results(p, "sweep")


# --- sweeps ------------------------------------------------------------------------------------

def test_pareto_mask_by_hand():
    lat = np.array([1.0, 2.0, 3.0, 4.0, 3.0])
    thr = np.array([10.0, 5.0, 20.0, 20.0, 15.0])
    assert pareto_mask(lat, thr).tolist() == [True, False, True, False, False]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0.01, 100), st.floats(0.01, 100)), min_size=1, max_size=40))
def test_pareto_front_is_exactly_the_undominated_points(points):
    lat, thr = (np.array(v) for v in zip(*points, strict=True))
    mask = pareto_mask(lat, thr)
    for i in range(len(lat)):
        dominated = ((lat <= lat[i]) & (thr > thr[i])).any()
        if mask[i]:
            assert not dominated
        else:  # off the front: a front point is as fast and at least as good
            assert ((lat[mask] <= lat[i]) & (thr[mask] >= thr[i])).any()


@pytest.fixture(scope="module")
def sweep_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("sweep") / "s.csv"
    r = run("sweep", "--model", "llama-3-70b", "--hardware", "h100,h200", "--batch", "1,64,512",
            "--prompt", "512,8192", "--out", path, "--json")
    assert r.exit_code == 0, r.output
    return path


def test_sweep_report_marks_out_of_memory_cells(sweep_csv):
    kind, payload = load_results(sweep_csv)
    assert kind == "sweep"
    rep = build_report(kind, payload)
    heat = rep.sections[0].figure.data
    assert len(heat) == 2 and [t.visible for t in heat] == [True, False]  # one per hardware, menu
    df = payload["rows"]
    h100 = df[df["hardware"] == "h100-sxm"]
    z = np.asarray(heat[0].z, dtype=float)
    assert np.isnan(z).sum() == int((~h100["fits"]).sum()) > 0  # llama-3-70b bf16 does not fit one H100
    assert "OOM" in np.asarray(heat[0].text).ravel().tolist()


# --- simulation, placement, search, validation ---------------------------------------------------

def _requests(n=10):
    return pd.DataFrame({"id": range(n), "arrival_s": np.arange(n) * 0.1, "status": ["completed"] * n,
                         "prompt_tokens": 100, "output_tokens": 10,
                         "ttft_s": np.linspace(0.1, 1.0, n), "tpot_s": np.full(n, 0.02)})


def test_simulation_report_slo_lines(tmp_path):
    util = pd.DataFrame({"pool": "replica", "replica": [0, 0], "window_start_s": [0.0, 1.0],
                         "window_end_s": [1.0, 2.0], "busy_fraction": [0.5, 0.9], "output_tokens": [10, 20]})
    summary = {"requests": 10, "duration_s": 2.0, "throughput_rps": 5.0, "ttft_s": {"p50": 0.55, "p99": 0.99},
               "tpot_s": {"p50": 0.02, "p99": 0.02}, "slo_attainment": 0.5}
    path = write_result("simulate", {"name": "demo", "slo": {"ttft_s": 0.5, "tpot_s": 0.05}, "summary": summary,
                                     "requests": _requests(), "utilization": util, "queue": None},
                        tmp_path / "sim.json")
    rep = build_report(*load_results(path))
    assert [s.heading for s in rep.sections] == ["TTFT and TPOT", "Utilization"]
    notes = [a.text for a in rep.sections[0].figure.layout.annotations]
    # TTFT 0.1, 0.2, ... 1.0 s: five of ten are <= 0.5 s; every TPOT (20 ms) meets 50 ms
    assert "SLO 500 ms (50.0% meet)" in notes and "SLO 50 ms (100.0% meet)" in notes
    assert ("SLO attainment", "50.0 %") in rep.numbers


def test_requests_csv_alone_is_a_simulation(tmp_path):
    p = tmp_path / "req.csv"
    write_table(_requests(), p)
    kind, payload = load_results(p)
    rep = build_report(kind, payload)
    assert kind == "simulate" and any("No SLO" in n for n in rep.notes)


def test_placement_report_reduction():
    payload = {"cluster": {"nodes": 2, "gpus_per_node": 2}, "layers": 2, "experts": 4, "baseline": "round_robin",
               "methods": {"round_robin": {"objective": 1.0, "gpu_of": [[0, 1, 2, 3], [0, 1, 2, 3]]},
                           "ilp": {"objective": 0.4, "gpu_of": [[0, 0, 1, 1], [2, 2, 3, 3]], "status": "optimal"}}}
    rep = build_report("placement", payload)
    assert ("reduction vs baseline", "60.0 %") in rep.numbers and ("best method", "ilp") in rep.numbers
    assert rep.sections[0].figure.data[0].text[1] == "0.4 (-60%)"


def test_search_report_running_best():
    trials = [{"number": i, "params": {"batch": b, "tp": t}, "value": v}
              for i, (b, t, v) in enumerate([(1, 1, 5.0), (8, 1, 9.0), (64, 2, 7.0), (128, 2, 12.0)])]
    rep = build_report("search", {"objective": "throughput", "direction": "maximize", "trials": trials,
                                  "baseline": {"value": 6.0}})
    best = [t for t in rep.sections[0].figure.data if t.name == "best so far"][0]
    assert list(best.y) == [5.0, 9.0, 9.0, 12.0]
    assert ("best vs baseline", "+100.0%") in rep.numbers and ("best", "12") in rep.numbers


def test_validation_errors_by_hand():
    rows = pd.DataFrame({"kind": ["gemm", "gemm", "e2e"], "measured_s": [1.0, 2.0, 4.0],
                         "predicted_s": [1.1, 1.6, 4.0]})
    tab = error_table(with_errors(rows)).set_index("kind")
    assert tab.loc["gemm", "MAPE %"] == 15.0  # (10 % + 20 %) / 2
    assert tab.loc["gemm", "bias %"] == -5.0  # median of +10 % and -20 %
    assert tab.loc["e2e", "worst %"] == 0.0
    rep = build_report("validate", {"rows": rows})
    assert ("within 10 %", "66.7 %") in rep.numbers


# --- commands ----------------------------------------------------------------------------------

def test_report_predict_from_flags(tmp_path):
    out = tmp_path / "p.html"
    r = run("report", "predict", "--model", "llama-3.2-1b", "--batch", "4", "--out", out, "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["kind"] == "predict" and d["figures"] == 4 and out.stat().st_size == d["bytes"]
    assert "llama-3.2-1b" in out.read_text()


def test_report_from_sweep_file_and_auto(tmp_path, sweep_csv):
    r = run("report", "sweep", "--in", sweep_csv, "--out", tmp_path / "s.html", "--metric", "tpot_s")
    assert r.exit_code == 0, r.output
    r = run("report", "auto", "--in", sweep_csv, "--out", tmp_path / "a.html", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["kind"] == "sweep"


@pytest.mark.parametrize("args,needle", [
    (["predict", "--out", "x.png"], "--out: must end in .html"),
    (["predict", "--batch", "0", "--out", "{tmp}/b.html"], "--batch"),
    (["sweep", "--in", "{tmp}/missing.csv", "--out", "{tmp}/s.html"], "does not exist"),
    (["predict", "--in", "{tmp}/p.json", "--batch", "4", "--out", "{tmp}/c.html"], "not both"),
    (["placement", "--in", "{tmp}/p.json", "--out", "{tmp}/d.html"], "not a placement result"),
])
def test_report_bad_input_exits_2(tmp_path, pred, args, needle):
    (tmp_path / "p.json").write_text(json.dumps(pred))
    r = run("report", *[a.format(tmp=tmp_path) for a in args])
    assert r.exit_code == 2, r.output
    assert needle in r.output and "Traceback" not in r.output


def test_report_refuses_to_overwrite(tmp_path):
    out = tmp_path / "p.html"
    out.write_text("mine")
    assert run("report", "predict", "--out", out).exit_code == 2
    assert out.read_text() == "mine"
    assert run("report", "predict", "--out", out, "--force").exit_code == 0


def test_doctor_json():
    r = run("doctor", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    names = {p["name"] for p in d["parts"]}
    assert {"pulp", "highspy", "ray", "optuna", "dash", "torch", "pyarrow", "chromium", "CBC (solver)"} <= names
    pulp = next(p for p in d["parts"] if p["name"] == "pulp")
    assert pulp["installed"] and pulp["version"]
    assert run("doctor", "--require", "pulp").exit_code == 0
    assert run("doctor", "--require", "warp-drive").exit_code == 2


def test_dashboard_without_dash_says_how_to_install(monkeypatch):
    import interfaces.dashboard as dashboard

    monkeypatch.setattr(dashboard, "dash_available", lambda: False)
    r = run("dashboard")
    assert r.exit_code == 1 and 'pip install -e ".[dashboard]"' in r.output


def test_dashboard_numbers_compare_two_devices():
    pytest.importorskip("dash", reason="the dashboard extra (dash) is not installed")
    from interfaces.dashboard.app import DEFAULTS, numbers_table, predict_pair

    values = dict(DEFAULTS, cuda_graphs=True)
    preds = predict_pair(values)
    assert [p["hardware"] for p in preds] == ["h200-sxm", "h100-sxm"]
    table = str(numbers_table(preds, 500, 50))
    ratio = preds[1]["tpot_s"] / preds[0]["tpot_s"]
    assert f"{ratio:.2f}x" in table and "num-b-tpot" in table


# --- results of the other parts, end to end ------------------------------------------------------

def test_real_serving_result_round_trips(tmp_path):
    from genz.serving import SLO, ContinuousBatching, LinearStepCost, Scenario, simulate
    from interfaces.reports import serving_payload
    from workloads.requests import PoissonArrivals, WorkloadSpec

    sc = Scenario(cost=LinearStepCost(), scheduler=ContinuousBatching(max_num_seqs=32), replicas=2,
                  workload=WorkloadSpec(150, PoissonArrivals(4.0), 256, 32), slo=SLO(0.5, 0.05), seed=3)
    res = simulate(sc)
    path = write_result("simulate", serving_payload(res, sc.slo, {"replicas": 2}), tmp_path / "sim.json")
    kind, payload = load_results(path)
    assert kind == "simulate" and len(payload["requests"]) == res.summary.requests == 150
    assert payload["summary"]["ttft_s"]["p99"] == pytest.approx(res.summary.ttft_s.p99)
    rep = build_report(kind, payload)
    assert [s.heading for s in rep.sections] == ["TTFT and TPOT", "Utilization", "Queues"]
    assert ("SLO attainment", f"{100 * res.summary.slo_attainment:.1f} %") in rep.numbers


def test_real_placement_result():
    placement = pytest.importorskip("optimizers.placement.baselines", reason="optimizers.placement not installed")
    from interfaces.reports.formats import placement_payload
    from optimizers.placement.problem import Cluster, PlacementProblem
    from workloads.routing import synthetic_routing

    trace = synthetic_routing(tokens=200, layers=3, experts=4, top_k=2, affinity=0.8, seed=0)
    problem, cluster = PlacementProblem.from_trace(trace), Cluster(nodes=2, gpus_per_node=2)
    methods = {"round_robin": placement.round_robin(3, 4, cluster), "greedy": placement.greedy(problem, cluster)}
    payload = placement_payload(problem, cluster, methods, baseline="round_robin")
    assert payload["methods"]["greedy"]["objective"] == problem.hop_cost(methods["greedy"].gpu_of, cluster)
    rep = build_report("placement", json.loads(json.dumps(payload)))
    assert rep.sections[1].figure.data[0].z is not None


def test_plan_report_from_planner_payload(tmp_path):
    payload = {
        "objective": "cost", "feasible": True, "confirmed": True, "binding": ["budget"],
        "demand": [{"use_case": "chatbot", "rate_per_s": 8.0, "ttft_slo_s": 0.5, "tpot_slo_s": 0.05}],
        "totals": {"cost_usd_per_hour": 9.5, "power_w": 1400.0, "gpus": {"h100": 2}, "racks": 1,
                   "cost_per_million_output_tokens_usd": 2.5},
        "deployment": [{"use_case": "chatbot", "candidate": "h100 tp1", "units": 2, "gpus": 2,
                        "rate_share_per_s": 8.0, "capacity_rps_per_unit": 5.0, "utilization": 0.8}],
        "confirmation": [{"use_case": "chatbot", "candidate": "h100 tp1", "passed": True, "slo_attainment": 0.97,
                          "ttft_p99_s": 0.25, "tpot_p99_s": 0.04}],
        "capacities": [{"candidate": "h100 tp1", "use_case": "chatbot", "capacity_rps_per_gpu": 5.0, "reason": ""}],
    }
    kind, data = load_results(_plain(tmp_path, payload))
    rep = build_report(kind, data)
    assert kind == "plan" and ("cost", "$9.50/h") in rep.numbers and ("power", "1.4 kW") in rep.numbers
    conf = rep.sections[2].figure
    assert list(conf.data[0].y) == [0.5] and list(conf.data[1].y) == pytest.approx([0.8])  # 0.25/0.5, 0.04/0.05


def _plain(tmp_path: Path, payload: dict) -> Path:
    """A results object written without the envelope (as the optimizers' to_payload())."""
    path = tmp_path / "r.json"
    path.write_text(json.dumps(payload))
    return path


def test_search_payload_without_envelope_is_recognised(tmp_path):
    kind, _ = load_results(_plain(tmp_path, {"objective": "throughput", "direction": "maximize",
                                   "trials": [{"number": 0, "params": {"tp": 1}, "value": None, "feasible": False}]}))
    assert kind == "search"


def test_genz_simulate_json_with_its_requests_csv(tmp_path):
    from interfaces.cli.report_cmds import _attach_requests

    write_table(_requests().assign(ttft_s=0.2), tmp_path / "req.csv")
    printed = {"requests": 10, "throughput_rps": 5.0, "slo_attainment": 1.0, "ttft_s": {"p50": 0.2, "p99": 0.2},
               "tpot_s": {"p50": 0.02, "p99": 0.02}, "memo": {}, "wall_s": 0.1, "out_requests": "req.csv",
               "inputs": {"name": "chat", "slo": {"ttft_s": 0.5, "tpot_s": None}}}
    (tmp_path / "sim.json").write_text(json.dumps(printed))
    kind, payload = load_results(tmp_path / "sim.json")
    # the path inside the results is not opened; the user names the file (genz report --requests)
    assert kind == "simulate" and payload["requests"].empty and payload["requests_file_named"] == "req.csv"
    _attach_requests(payload, str(tmp_path / "req.csv"))
    assert len(payload["requests"]) == 10
    rep = build_report(kind, payload)
    notes = [a.text for a in rep.sections[0].figure.layout.annotations]
    assert "SLO 500 ms (100.0% meet)" in notes and not any("SLO" in n and "ms (" in n and "50 ms" in n for n in notes)
    assert rep.title == "Serving simulation: chat"


def test_devices_can_describe_their_own_roofs(pred):
    from hwmodels.registry import load_device

    class WithRoofs:  # a device (here a wrapped GPU) whose roofs are not per dtype
        def __init__(self, base):
            self.base, self.name, self.idle_power_w = base, "custom", base.idle_power_w

        def cost(self, table, *, cuda_graphs=True):
            return self.base.cost(table, cuda_graphs=cuda_graphs)

        def roofline(self, dtypes):
            return {"compute": {"LUT W2": 2e15}, "bandwidth": 1e12}

    ops = step_operators(dict(pred, hardware=WithRoofs(load_device("h200", "datasheet"))))
    assert ops.peaks == {"LUT W2": 2e15} and ops.bandwidth == 1e12
    roof = [t for t in roofline_figure(ops).data if t.mode == "lines"][0]
    assert roof.name.startswith("roof LUT W2") and max(roof.y) == pytest.approx(2000.0)


def test_validation_groups_only_and_goals(tmp_path):
    printed = {"dataset": "d", "device": "h200-sxm", "profile": "p",
               "groups": [{"file": "gemm", "model": "", "phase": "gemm", "timing": "cudagraph", "dtype": "bf16",
                           "n": 4, "mape_time_pct": 6.5, "mape_energy_pct": None}],
               "goals": [{"name": "gemm rows", "value_pct": 6.5, "limit_pct": 10.0, "passed": True, "n": 4},
                         {"name": "e2e", "value_pct": 12.0, "limit_pct": 5.0, "passed": False, "n": 2}],
               "rejected": [{"file": "gemm.csv", "row": 3}], "noise_floor": {"gemm": {"median_pct": 1.7, "p90_pct": 6.5}}}
    (tmp_path / "v.json").write_text(json.dumps(printed))
    kind, payload = load_results(tmp_path / "v.json")
    rep = build_report(kind, payload)
    assert kind == "validate" and ("goals met", "1 of 2") in rep.numbers
    assert list(rep.sections[0].figure.data[0].y) == [6.5]
    assert "gemm 1.7 / 6.5" in rep.notes[0]


def test_plan_confirmation_colours_follow_the_rule():
    """A confirmation passed on SLO attainment with p99 above the SLO is amber, not green."""
    import pandas as pd

    from interfaces.reports.plan_report import confirmation_figure

    conf = pd.DataFrame({"use_case": ["chatbot", "chatbot"], "candidate": ["a", "b"], "ttft_p99_s": [0.4, 0.59],
                         "tpot_p99_s": [0.04, 0.06], "passed": [True, True]})
    demand = pd.DataFrame({"use_case": ["chatbot"], "ttft_slo_s": [0.5], "tpot_slo_s": [0.05]})
    fig = confirmation_figure(conf, demand)
    assert list(fig.data[1].marker.color) == ["#1e7d32", "#E6A100"]
    assert "amber" in fig.layout.title.text
