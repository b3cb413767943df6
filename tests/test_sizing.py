"""A configuration that does not fit prints no latency, and says the smallest split that fits."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import genz
from genz.sizing import fitting_splits
from interfaces.cli import main


@pytest.mark.parametrize("model,hw,prec", [("llama-3.1-405b", "h200", "bf16"), ("llama-3-70b", "h100", "bf16"),
                                           ("mixtral-8x7b", "a100-40gb", "bf16")])
def test_the_suggested_split_is_the_smallest_that_fits(model, hw, prec):
    splits = fitting_splits(model, hw, precision=prec)
    assert splits and splits[0][0] == prec
    for name, tp, need in splits:
        assert need <= genz.predict(model, hw, precision=name, tp=tp).capacity_bytes
        assert genz.predict(model, hw, precision=name, tp=tp).fits
        if tp > 1:  # half the tp does not fit at that precision (when it is a valid split at all)
            try:
                assert not genz.predict(model, hw, precision=name, tp=tp // 2).fits
            except ValueError:
                pass
    # lower precisions are only listed when they need fewer devices
    assert all(s[1] <= splits[0][1] for s in splits[1:])


def test_cli_does_not_fit_prints_no_latency_and_the_fix():
    r = CliRunner().invoke(main, ["predict", "--model", "llama-3.1-405b", "--hardware", "h200"])
    assert r.exit_code == 0, r.output
    assert "does not fit" in r.output and "fits with tp 8" in r.output
    assert "time per output token" not in r.output and "throughput" not in r.output
    d = json.loads(CliRunner().invoke(main, ["predict", "--model", "llama-3.1-405b", "--hardware", "h200",
                                             "--json"]).output)
    assert d["fits"] is False and d["fit_hint"].startswith("fits with tp 8")
