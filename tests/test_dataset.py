"""The reader of measured datasets (validation.dataset) on the shipped H200 data and on broken copies."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from validation.dataset import (
    DATA_DIR,
    FILES,
    NOISE_KEYS,
    SCHEMAS,
    RejectedRow,
    load_dataset,
    noise_floor,
    required_columns,
    shipped_datasets,
)

H200 = DATA_DIR / "h200-2026-11-28"


@pytest.fixture(scope="module")
def h200():
    return load_dataset(H200)


@pytest.fixture
def copy_of_h200(tmp_path: Path) -> Path:
    target = tmp_path / "ds"
    shutil.copytree(H200, target)
    for p in target.iterdir():
        p.chmod(0o644)
    return target


def _edit_cell(path: Path, line: int, column: str, value: str) -> None:
    """Set one cell; ``line`` counts the header as line 1."""
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[line - 1].split(",")
    cells[header.index(column)] = value
    lines[line - 1] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------- shipped data
def test_shipped_dataset_row_counts(h200):
    # data lines of each file (wc -l minus the header): membw 42, gemm 486, attention 144, e2e 176, hf 8
    assert {n: len(df) for n, df in h200.tables.items()} == {
        "membw": 42, "gemm": 478, "attention": 144, "e2e": 176, "hf": 8}
    # the 8 GEMM rows the library refused (int8 with m = 16) are reported, not dropped silently
    assert len(h200.rejected) == 8
    assert {(r.file, r.column) for r in h200.rejected} == {("gemm.csv", "error")}
    assert all("greater than 16" in r.reason for r in h200.rejected)
    assert sorted(r.row_number for r in h200.rejected)[:2] == [158, 160]
    assert h200.ignored_files == []


def test_shipped_dataset_identity_and_types(h200):
    assert h200.device_name == "NVIDIA H200"
    assert h200.runs == ["run1", "run2"]
    assert h200.env["device"]["l2_bytes"] == 62914560
    assert h200.gemm["m"].dtype == "int64" and h200.gemm["flops"].dtype == "float64"
    assert h200.attention["causal"].dtype == bool
    assert set(h200.gemm["dtype"]) == {"bf16", "fp16", "tf32", "fp8", "int8"}
    assert set(h200.e2e["timing"]) == {"cudagraph", "eager"}
    # index = line in the file: the first data row is line 2
    first = h200.membw.loc[2]
    assert (first["op"], first["size_bytes"], first["bytes_moved"]) == ("copy", 1048576, 2097152)
    # hf prefill rows have no ctx_len: kept, as NaN
    assert h200.hf["ctx_len"].isna().sum() == 4


def test_shipped_dataset_by_name_and_table_access(h200):
    assert "h200-2026-11-28" in shipped_datasets()
    assert len(load_dataset("h200-2026-11-28").e2e) == 176
    assert h200.table("gemm") is h200.gemm
    with pytest.raises(ValueError, match="unknown table 'gpu'"):
        h200.table("gpu")


def test_shipped_files_are_byte_identical_to_shared_copy():
    # the project's shared/ folder sits beside the checkout (as in CI)
    shared = Path(__file__).resolve().parents[2] / "shared" / "validation" / "h200-2026-11-28"
    if not shared.is_dir():
        pytest.skip("shared copy not present on this machine")
    for p in shared.iterdir():
        assert (H200 / p.name).read_bytes() == p.read_bytes(), p.name


# ---------------------------------------------------------------------------------------- noise floor
def test_noise_floor_matches_readme(h200):
    """The README states medians rounded to one decimal (GEMM 1.7 %, p90 6.5 %; attention 0.9 %), so the
    exact values must lie within 0.05 percentage points of them. For CUDA-graph decode it says "about
    1 %" (whole percent: within 0.5 pp) and "90th percentile 2.8 %": the data gives 1.7 %, and 2.8 % is
    the largest pair, so 2.8 % is asserted as an upper bound only."""
    gemm = noise_floor(h200.gemm, NOISE_KEYS["gemm"])
    assert gemm.median == pytest.approx(0.017, abs=0.0005)
    assert gemm.p90 == pytest.approx(0.065, abs=0.0005)
    att = noise_floor(h200.attention, NOISE_KEYS["attention"])
    assert att.median == pytest.approx(0.009, abs=0.0005)
    assert att.pairs == 72
    e2e = h200.e2e
    decode = noise_floor(e2e[(e2e.timing == "cudagraph") & (e2e.phase == "decode")], NOISE_KEYS["e2e"])
    assert decode.pairs == 60
    assert decode.median == pytest.approx(0.01, abs=0.005)
    assert decode.p90 <= 0.028 + 1e-9


def test_noise_floor_eager_rows_are_noisier(h200):
    e2e = h200.e2e
    eager = noise_floor(e2e[(e2e.timing == "eager") & (e2e.phase == "decode")], NOISE_KEYS["e2e"])
    graph = noise_floor(e2e[(e2e.timing == "cudagraph") & (e2e.phase == "decode")], NOISE_KEYS["e2e"])
    # README: eager, launch-bound rows moved by up to 40 % between runs (here 28 % and 41 %)
    assert eager.pairs == 2 and eager.median > 10 * graph.median


@settings(max_examples=40, deadline=None)
@given(times=st.lists(st.floats(0.001, 1000.0), min_size=1, max_size=20), change=st.floats(-0.5, 0.5))
def test_noise_floor_of_uniform_change_is_that_change(times, change):
    df = pd.DataFrame({"run": ["run1"] * len(times) + ["run2"] * len(times),
                       "point": list(range(len(times))) * 2,
                       "time_ms": times + [t * (1 + change) for t in times]})
    nf = noise_floor(df, ["point"])
    assert nf.pairs == len(times)
    assert nf.median == pytest.approx(abs(change), rel=1e-9, abs=1e-12)
    assert nf.p90 == pytest.approx(abs(change), rel=1e-9, abs=1e-12)


def test_noise_floor_bad_keys_and_no_pairs(h200):
    with pytest.raises(ValueError, match="column.*nope"):
        noise_floor(h200.gemm, ["dtype", "nope"])
    nf = noise_floor(h200.hf, NOISE_KEYS["hf"])  # hf.csv holds run2 only
    assert nf.pairs == 0 and math.isnan(nf.median) and math.isnan(nf.p90)


# ---------------------------------------------------------------------------------------- bad input
def test_missing_required_column_names_file_and_column(tmp_path):
    df = pd.read_csv(H200 / "gemm.csv").drop(columns=["flops", "timing"])
    df.to_csv(tmp_path / "gemm.csv", index=False)
    with pytest.raises(ValueError, match=r"gemm\.csv lacks required column\(s\) flops, timing"):
        load_dataset(tmp_path)


def test_non_numeric_cell_is_rejected_with_file_row_column(copy_of_h200):
    _edit_cell(copy_of_h200 / "membw.csv", 5, "time_ms", "fast")
    ds = load_dataset(copy_of_h200)
    assert len(ds.membw) == 41
    assert 5 not in ds.membw.index and 6 in ds.membw.index
    (bad,) = [r for r in ds.rejected if r.file == "membw.csv"]
    assert (bad.file, bad.row_number, bad.column) == ("membw.csv", 5, "time_ms")
    assert "not a number: 'fast'" in bad.reason
    assert "membw.csv row 5, column time_ms" in ds.summary()


@pytest.mark.parametrize(
    ("file", "line", "column", "value", "reason"),
    [
        ("gemm.csv", 2, "dtype", "fp4", "unknown value 'fp4'"),
        ("gemm.csv", 3, "time_ms", "", "missing value"),
        ("gemm.csv", 4, "m", "2.5", "not an integer"),
        ("gemm.csv", 5, "time_ms", "-1", "must be > 0"),
        ("attention.csv", 2, "phase", "verify", "unknown value 'verify'"),
        ("attention.csv", 3, "causal", "maybe", "not a boolean"),
        ("e2e.csv", 2, "timing", "wallclock", "unknown value 'wallclock'"),
        ("e2e.csv", 3, "batch", "inf", "not a finite number"),
        ("hf.csv", 2, "error", "CUDA out of memory", "measurement failed: CUDA out of memory"),
    ],
)
def test_unusable_rows_are_rejected_not_dropped(copy_of_h200, file, line, column, value, reason):
    before = len(load_dataset(copy_of_h200).table(file.removesuffix(".csv")))
    _edit_cell(copy_of_h200 / file, line, column, value)
    ds = load_dataset(copy_of_h200)
    assert len(ds.table(file.removesuffix(".csv"))) == before - 1
    ours = [r for r in ds.rejected if r.file == file and r.row_number == line]
    assert ours == [RejectedRow(file, line, column, ours[0].reason)]
    assert reason in ours[0].reason


def test_optional_cells_may_be_empty_and_extra_columns_are_ignored(tmp_path):
    df = pd.read_csv(H200 / "e2e.csv")
    df["gpu_temp"] = 55  # a column the schema does not know
    df.loc[0, "model"] = "my-own-model"  # not a preset: kept, the model side decides
    df.to_csv(tmp_path / "e2e.csv", index=False)
    ds = load_dataset(tmp_path)
    assert len(ds.e2e) == 176 and ds.rejected == []
    assert "gpu_temp" not in ds.e2e.columns
    assert ds.e2e.loc[2, "model"] == "my-own-model"
    assert ds.device_name is None  # no env.json
    assert ds.e2e["energy_j"].isna().sum() == 156


def test_ragged_row_and_blank_lines(tmp_path):
    header = ",".join(c.name for c in SCHEMAS["membw"])
    good = "run1,copy,2097152,1048576,0.0013,0.0013,0.0014,9,1532.1,cudagraph,,"
    (tmp_path / "membw.csv").write_text(f"{header}\n{good}\n\n{good},extra,cells\n{good}\n")
    ds = load_dataset(tmp_path)
    assert list(ds.membw.index) == [2, 5]
    assert ds.rejected == [RejectedRow("membw.csv", 4, "", ds.rejected[0].reason)]
    assert "14 cells but the header has 12" in ds.rejected[0].reason


def test_empty_directory_names_dir_and_expected_files(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing measured")
    with pytest.raises(ValueError) as err:
        load_dataset(tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message
    assert all(name in message for name in FILES.values())


def test_other_bad_inputs_raise_value_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_dataset(tmp_path / "nowhere")
    (tmp_path / "gemm.csv").write_text("")
    with pytest.raises(ValueError, match=r"gemm\.csv is empty"):
        load_dataset(tmp_path)
    with pytest.raises(ValueError, match="not a directory"):
        load_dataset(tmp_path / "gemm.csv")
    shutil.copy(H200 / "membw.csv", tmp_path / "gemm.csv")
    with pytest.raises(ValueError, match=r"gemm\.csv lacks required column\(s\) dtype, m, n, k, flops, bytes"):
        load_dataset(tmp_path)
    shutil.copy(H200 / "gemm.csv", tmp_path / "gemm.csv")
    (tmp_path / "env.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"env\.json is not valid JSON"):
        load_dataset(tmp_path)
    (tmp_path / "env.json").write_text(json.dumps({"device": {"name": "NVIDIA A100-SXM4-80GB"}}))
    (tmp_path / "old_gemm.csv").write_text("x\n1\n")
    ds = load_dataset(tmp_path)
    assert ds.device_name == "NVIDIA A100-SXM4-80GB"
    assert ds.ignored_files == ["old_gemm.csv"]
    with pytest.raises(ValueError, match="no membw.csv"):
        ds.table("membw")


def test_required_columns_follow_the_readme():
    assert required_columns("gemm") == ("run", "dtype", "m", "n", "k", "flops", "bytes", "time_ms", "n_timed", "timing")
    assert "error" not in required_columns("gemm")  # optional: older or other collectors may omit it
    assert required_columns("e2e")[-2:] == ("timing", "params")
    with pytest.raises(ValueError, match="unknown table"):
        required_columns("power")
