"""Validation: error arithmetic on hand-made numbers, rows that cannot be used are reported, the
kernel tables follow the dataset's conventions, and the shipped dataset stays within the goals."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from hwmodels.gpu import load_device
from validation.dataset import load_dataset
from validation.kernels import attention_table, gemm_table, memory_table
from validation.report import GOALS, error_stats, group_errors, validate

DATA = Path(__file__).resolve().parents[1] / "validation" / "data" / "h200-2026-11-28"


@pytest.fixture(scope="module")
def shipped():
    return validate(DATA)


# ---------------------------------------------------------------------------------- arithmetic
def test_error_stats_by_hand():
    s = error_stats([1.1, 0.8, 1.0, 1.3], [1.0, 1.0, 1.0, 1.0])  # |errors| 10, 20, 0, 30 %
    assert s["n"] == 4 and s["mape"] == pytest.approx(15.0) and s["median"] == pytest.approx(15.0)
    assert s["p90"] == pytest.approx(27.0)  # linear interpolation between 20 and 30 at 0.9 * 3 = 2.7
    assert s["worst"] == pytest.approx(30.0) and s["worst_at"] == 3
    e = error_stats([2.0, np.nan, 3.0], [1.0, 1.0, np.nan])  # unusable pairs are not counted
    assert e["n"] == 1 and e["mape"] == pytest.approx(100.0)
    assert error_stats([], [])["n"] == 0 and math.isnan(error_stats([], [])["mape"])


def test_group_errors_by_hand():
    rows = pd.DataFrame({
        "file": ["e2e"] * 4, "model": ["a", "a", "b", "b"], "phase": "decode", "timing": "cudagraph", "dtype": "bf16",
        "row_number": [2, 3, 4, 5], "run": "run1", "label": ["r2", "r3", "r4", "r5"],
        "measured_s": [1.0, 2.0, 1.0, 4.0], "predicted_s": [1.1, 1.8, 1.0, 5.0],
        "measured_j": [np.nan, np.nan, 2.0, np.nan], "predicted_j": [1.0, 1.0, 1.5, 1.0],
        "seen_by_fit": [True, True, False, False]})
    a, b = group_errors(rows)
    assert (a.model, a.n, b.model, b.n) == ("a", 2, "b", 2)
    assert a.mape_time_pct == pytest.approx(10.0) and a.worst_time_pct == pytest.approx(10.0)
    assert b.mape_time_pct == pytest.approx(12.5) and "row 5" in b.worst_time_row
    assert a.mape_energy_pct is None and a.n_energy == 0  # nothing measured
    assert b.n_energy == 1 and b.mape_energy_pct == pytest.approx(25.0)
    assert a.seen_by_fit and not b.seen_by_fit


# ---------------------------------------------------------------------------------- conventions
def test_kernel_tables_count_what_the_dataset_counts():
    ds = load_dataset(DATA)
    for dt, g in ds.gemm.groupby("dtype"):
        t = gemm_table(g["m"], g["n"], g["k"], dt)
        np.testing.assert_allclose(t.flops[0], g["flops"])
        np.testing.assert_allclose(t.bytes_read[0] + t.bytes_written[0], g["bytes"])
    for phase, g in ds.attention.groupby("phase"):
        t = attention_table(phase, g["batch"], g["heads"], g["kv_heads"], g["head_dim"], g["q_len"], g["kv_len"],
                            g["causal"].to_numpy())
        np.testing.assert_allclose(t.flops[0], g["flops"])
        np.testing.assert_allclose(t.bytes_read[0] + t.bytes_written[0], g["bytes"])
    m = ds.membw
    t = memory_table("copy", m.loc[m["op"] == "copy", "size_bytes"])
    np.testing.assert_allclose(t.bytes_read[0] + t.bytes_written[0], m.loc[m["op"] == "copy", "bytes_moved"])
    with pytest.raises(ValueError, match="dtype"):
        gemm_table(1, 2, 3, "int3")


def test_graph_gap_is_paid_between_operators_not_by_a_repeated_kernel():
    dev = load_device("h200")
    one = gemm_table(64, 4096, 4096)
    alone = dev.cost(one).time_s[0, 0]
    both = dev.cost(_stack(one, memory_table("copy", 2**20)))
    assert both.time_s[0, 0] == pytest.approx(alone + dev.profile.graph_gap_s)
    assert dev.cost(one, cuda_graphs=False).time_s[0, 0] >= alone  # eager: never faster than the device


def _stack(a, b):
    from hwmodels.optable import OperatorTable

    return OperatorTable(**{f: np.concatenate([getattr(a, f), getattr(b, f)]) for f in OperatorTable.__dataclass_fields__})


# ---------------------------------------------------------------------------------- bad rows
def test_rows_that_cannot_be_used_are_listed_with_the_reason(tmp_path):
    for f in ("e2e.csv", "env.json", "membw.csv"):
        shutil.copy(DATA / f, tmp_path / f)
    e2e = pd.read_csv(tmp_path / "e2e.csv", dtype=str, keep_default_na=False)
    n = len(e2e)
    e2e.loc[0, "time_ms"] = "fast"  # schema problem
    e2e.loc[1, "model"] = "gpt-9"  # no such preset
    e2e.loc[2, "params"] = "12345"  # the preset has other weights
    e2e.to_csv(tmp_path / "e2e.csv", index=False)
    r = validate(tmp_path)
    bad = {(x.file, x.row_number): x for x in r.rejected}
    assert bad[("e2e.csv", 2)].column == "time_ms" and "not a number" in bad[("e2e.csv", 2)].reason
    assert bad[("e2e.csv", 3)].column == "model" and "gpt-9" in bad[("e2e.csv", 3)].reason
    assert bad[("e2e.csv", 4)].column == "params"
    assert (r.rows["file"] == "e2e").sum() + 3 == n  # nothing dropped silently
    assert len(r.to_json()["rejected"]) == len(r.rejected) == 3
    assert "Rejected rows: 3" in r.to_text()


def test_a_directory_without_data_is_bad_input(tmp_path):
    with pytest.raises(ValueError, match="none of the known files"):
        validate(tmp_path)


# ---------------------------------------------------------------------------------- the shipped dataset
def test_shipped_dataset_meets_the_goals(shipped):
    goals = {g.name: g for g in shipped.goals}
    for model in ("llama-3-8b", "llama-3.2-1b"):
        assert goals[f"e2e {model} decode (CUDA graphs)"].value_pct <= GOALS["decode"]
        assert goals[f"e2e {model} prefill"].value_pct <= GOALS["prefill"]
    assert goals["gemm rows"].value_pct <= GOALS["kernels"]
    assert goals["attention rows"].value_pct <= GOALS["kernels"]
    assert goals["energy, all rows measured"].value_pct <= GOALS["energy"]
    assert all(g.passed for g in shipped.goals)
    # the 1B rows were not seen by the overhead fit (it used llama-3-8b only)
    assert goals["e2e llama-3.2-1b decode (CUDA graphs)"].held_out


def test_shipped_report_json_text_and_html(shipped, tmp_path):
    obj = json.loads(json.dumps(shipped.to_json()))
    keys = {"file", "model", "phase", "timing", "dtype", "n", "mape_time_pct", "mape_energy_pct",
            "median_time_pct", "p90_time_pct", "worst_time_pct", "worst_time_row"}
    assert obj["groups"] and all(keys <= set(g) for g in obj["groups"])
    gemm = [g for g in obj["groups"] if g["file"] == "gemm"]
    assert all(g["model"] == "" for g in gemm)
    assert any(g["mape_energy_pct"] is None for g in obj["groups"])  # fp16 GEMMs had no energy reading
    assert sum(g["n"] for g in obj["groups"]) == len(shipped.rows) == 478 + 144 + 42 + 176 + 8
    assert obj["noise_floor"]["gemm"]["median_pct"] == pytest.approx(1.7, abs=0.05)
    text = shipped.to_text()
    assert "llama-3.2-1b" in text and "Goals" in text and "MAPE" in text
    page = shipped.to_html(tmp_path / "r.html").read_text()
    assert "Plotly.newPlot" in page and "<script src=" not in page and len(page) > 1_000_000  # offline


def test_validate_command_json_and_bad_input(tmp_path):
    from interfaces.cli.validation_cmds import validate as cmd

    r = CliRunner().invoke(cmd, ["--data", str(DATA), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["dataset"] == "h200-2026-11-28"
    r = CliRunner().invoke(cmd, ["--data", str(tmp_path / "nothing")])
    assert r.exit_code == 2 and "does not exist" in r.output
    r = CliRunner().invoke(cmd, ["--data", str(DATA), "--profile", str(tmp_path / "none.json")])
    assert r.exit_code == 2 and "profile" in r.output
