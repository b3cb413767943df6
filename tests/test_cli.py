"""The command line: default what-if, JSON keys, bad input exit codes, sweeps."""

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from interfaces.cli import main
from interfaces.cli.values import parse_values

JSON_KEYS = {"ttft_s", "tpot_s", "e2e_s", "throughput_tok_s", "memory_bytes", "fits", "energy_per_token_j", "breakdown"}


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_default_predict_runs():
    r = run("predict")
    assert r.exit_code == 0, r.output
    assert "llama-3-8b" in r.output and "h200" in r.output


def test_predict_json_has_stable_keys():
    r = run("predict", "--model", "llama-3-8b", "--hardware", "h200", "--batch", "4", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert JSON_KEYS <= set(d)
    assert d["batch"] == 4 and d["fits"] is True and d["tpot_s"] > 0


@pytest.mark.parametrize("args,needle", [
    (["--batch", "0"], "--batch"),
    (["--prompt", "-5"], "--prompt"),
    (["--tp", "3"], "tp"),
    (["--model", "llama-3-8c"], "llama-3-8b"),
    (["--hardware", "h2000"], "h200"),
    (["--precision", "w7a3"], "precision"),
])
def test_bad_input_exits_2_without_traceback(args, needle):
    r = run("predict", *args)
    assert r.exit_code == 2, r.output
    assert needle in r.output
    assert "Traceback" not in r.output


def test_not_fitting_is_reported_not_raised():
    r = run("predict", "--model", "llama-3.1-405b", "--hardware", "h200", "--json")
    assert r.exit_code == 0
    assert json.loads(r.output)["fits"] is False


def test_list_commands():
    assert "deepseek-v3" in run("list", "models").output
    out = run("list", "hardware").output
    for hw in ("h200", "h100", "a100", "mi300x", "b200"):
        assert hw in out


def test_sweep_writes_csv_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "s.csv"
    r = run("sweep", "--model", "llama-3-8b", "--hardware", "h200,h100", "--batch", "1:8:x2", "--tp", "1,2,3",
            "--out", str(out))
    assert r.exit_code == 0, r.output
    df = pd.read_csv(out, comment="#")  # the last line is the completeness marker
    assert len(df) == 2 * 4 * 2  # tp=3 skipped with a reason
    assert "skipped" in r.output
    r2 = run("sweep", "--out", str(out))
    assert r2.exit_code == 2 and "--force" in r2.output


def test_parse_values():
    assert parse_values("1,2,4") == [1, 2, 4]
    assert parse_values("128:512:128") == [128, 256, 384, 512]
    assert parse_values("1:256:x2")[-1] == 256
    with pytest.raises(ValueError, match="--batch"):
        parse_values("8:1:x2", "--batch")
