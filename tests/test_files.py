"""Nothing written is lost: atomic writes, a sweep killed half-way resumes to the same file, readers
refuse tables cut short."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from interfaces.cli import main
from interfaces.reports.formats import load_results, read_table, write_table
from workloads.files import atomic_path, atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
SLOW_SWEEP = ["--model", "llama-3-8b,llama-3.2-1b,mistral-7b", "--hardware", "h100,h200", "--batch", "1:1200:1",
              "--prompt", "128,1024,4096", "--tp", "1,2"]


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path):
    p = tmp_path / "out.txt"
    p.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(p) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert p.read_text() == "old" and list(tmp_path.iterdir()) == [p]  # no temporary left behind
    atomic_write_text(p, "new")
    assert p.read_text() == "new"


def _cli(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "interfaces.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _kill_when(proc, manifest: Path, parts: int, timeout: float = 120.0) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout and proc.poll() is None:
        try:
            if len(json.loads(manifest.read_text())["parts"]) >= parts:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.01)
    assert proc.poll() is None, "the sweep finished before it could be killed: make it slower"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_sweep_killed_midway_keeps_the_old_file_and_resumes_to_the_same_file(tmp_path):
    whole = tmp_path / "whole.csv"
    assert _cli("sweep", *SLOW_SWEEP, "--out", str(whole), "--json", cwd=tmp_path).wait() == 0
    out = tmp_path / "out.csv"
    out.write_text("my old results\n")
    proc = _cli("sweep", *SLOW_SWEEP, "--out", str(out), "--force", "--json", cwd=tmp_path)
    _kill_when(proc, tmp_path / "out.csv.partial" / "manifest.json", parts=2)
    assert out.read_text() == "my old results\n"  # untouched: the parts live in out.csv.partial/
    done = len(json.loads((tmp_path / "out.csv.partial" / "manifest.json").read_text())["parts"])
    assert 2 <= done < 12
    out.unlink()  # the user moves the old file away and runs the same command again: it resumes
    r = CliRunner().invoke(main, ["sweep", *SLOW_SWEEP, "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "resuming" in r.output
    assert out.read_bytes() == whole.read_bytes()
    assert not (tmp_path / "out.csv.partial").exists()


def test_a_partial_sweep_with_other_inputs_is_not_mixed_in(tmp_path):
    out = tmp_path / "s.csv"
    proc = _cli("sweep", *SLOW_SWEEP, "--out", str(out), "--json", cwd=tmp_path)
    _kill_when(proc, tmp_path / "s.csv.partial" / "manifest.json", parts=1)
    r = CliRunner().invoke(main, ["sweep", "--batch", "1,2", "--out", str(out)])
    assert r.exit_code == 2 and "other inputs" in r.output
    r = CliRunner().invoke(main, ["sweep", "--batch", "1,2", "--out", str(out), "--force"])
    assert r.exit_code == 0 and len(read_table(out)) == 2


def test_tables_carry_a_completeness_marker_that_readers_check(tmp_path):
    df = pd.DataFrame({"model": ["m"] * 3, "tpot_s": [0.1, 0.2, 0.3]})
    p = write_table(df, tmp_path / "t.csv")
    assert p.read_text().splitlines()[-1] == "# genz: complete, 3 rows"
    pd.testing.assert_frame_equal(read_table(p), df)
    cut = tmp_path / "cut.csv"
    cut.write_text("\n".join(p.read_text().splitlines()[:-2]) + "\n")  # a file cut short
    with pytest.raises(ValueError, match="completeness marker"):
        read_table(cut)
    pq = pytest.importorskip("pyarrow")
    assert pq
    q = write_table(df, tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(read_table(q), df)


def test_report_refuses_a_truncated_sweep(tmp_path):
    out = tmp_path / "s.csv"
    assert CliRunner().invoke(main, ["sweep", "--batch", "1:64:x2", "--out", str(out)]).exit_code == 0
    lines = out.read_text().splitlines()
    out.write_text("\n".join(lines[:4]) + "\n")
    r = CliRunner().invoke(main, ["report", "sweep", "--in", str(out), "--out", str(tmp_path / "r.html")])
    assert r.exit_code == 2 and "completeness marker" in r.output
    assert not (tmp_path / "r.html").exists()


def test_results_never_make_genz_read_a_path_named_inside_them(tmp_path):
    secret = tmp_path / "elsewhere.csv"
    write_table(pd.DataFrame({"id": [1], "arrival_s": [0.0], "ttft_s": [0.1]}), secret)
    sim = json.loads(CliRunner().invoke(main, ["simulate", "--requests", "5", "--json"]).output)
    sim["out_requests"] = str(secret)
    p = tmp_path / "sim.json"
    p.write_text(json.dumps(sim))
    _, payload = load_results(p)
    assert payload["requests"].empty and payload["requests_file_named"] == str(secret)


def test_atomic_writes_get_the_permissions_of_a_plain_write(tmp_path):
    plain, atomic = tmp_path / "plain.txt", tmp_path / "atomic.txt"
    plain.write_text("x")
    atomic_write_text(atomic, "x")
    assert (atomic.stat().st_mode & 0o777) == (plain.stat().st_mode & 0o777)


def test_reports_can_share_one_plotlyjs(tmp_path):
    r = CliRunner().invoke(main, ["report", "--shared-plotlyjs", "predict", "--out", str(tmp_path / "a.html")])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["report", "--shared-plotlyjs", "predict", "--model", "llama-3.2-1b", "--out",
                                  str(tmp_path / "b.html")])
    assert r.exit_code == 0, r.output
    pages = [tmp_path / "a.html", tmp_path / "b.html"]
    assert all("src='plotly.min.js'" in p.read_text() and p.stat().st_size < 500_000 for p in pages)
    assert (tmp_path / "plotly.min.js").stat().st_size > 1_000_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.html", "b.html", "plotly.min.js"]
