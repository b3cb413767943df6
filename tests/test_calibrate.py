"""Calibration: a known profile is recovered from rows it generated; the shipped H200 profile is a
calibration of the shipped dataset; the datasheet profile stays the plain roofline."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from hwmodels.gpu import GPU, EfficiencyProfile, load_device
from hwmodels.spec import load_gpu
from validation.calibrate import fit_kernels, fit_overheads
from validation.dataset import load_dataset
from validation.kernels import attention_table, gemm_table, memory_table

SPEC = load_gpu("h200")
DATA = Path(__file__).resolve().parents[1] / "validation" / "data" / "h200-2026-11-28"

#: The answer the synthetic dataset is generated from (numbers of the size the H200 shows).
TRUE = EfficiencyProfile(
    name="truth", compute_eff={"bf16": 0.74}, attention_eff=0.44, attn_decode_eff=0.48, memory_eff=0.9,
    write_eff=0.72, l2_read_eff=2.0, rw_mix_eff=1.0, overlap_p=4.0, gemm_min_rows=100.0,
    floor_s={"gemm/bf16": 4e-6, "attention": 5e-6, "elementwise": 1e-6, "elementwise/fp32": 7e-6},
    attn_tile_rows=128.0, attn_split_tile_rows=64.0, attn_cta_s=2.5e-6, attn_tail=1.0,
    attn_exp_rate=16 * 132 * 1.98e9, pj_per_flop={"bf16": 0.8, "attention": 1.3}, pj_per_byte={"hbm": 100.0},
    idle_power_w=121.0)


def _time_energy(table, prof=TRUE):
    """Seconds and joules of each configuration (measured energy is not capped: the board may exceed
    its limit for a while, as the H200 rows do)."""
    c = GPU(SPEC, prof).cost(table)
    t = c.time_s[0]
    return t, c.energy_j[0] + prof.idle_power_w * t


def _synthetic(tmp: Path) -> Path:
    """gemm.csv, attention.csv, membw.csv and env.json of rows timed by TRUE (energy on every 3rd row)."""
    ms = np.array([1, 8, 64, 256, 1024, 4096, 16384])
    shapes = [(m, n, k) for m in ms for n, k in ((4096, 4096), (28672, 4096), (4096, 14336), (1024, 4096))]
    m, n, k = (np.array(x, float) for x in zip(*shapes, strict=True))
    t, e = _time_energy(gemm_table(m, n, k, "bf16"))
    gemm = pd.DataFrame({"run": "run1", "dtype": "bf16", "m": m.astype(int), "n": n.astype(int), "k": k.astype(int),
                         "flops": 2 * m * n * k, "bytes": 2 * (n * k + m * k + m * n), "time_ms": t * 1e3,
                         "n_timed": 7, "timing": "cudagraph", "energy_j": np.where(np.arange(len(m)) % 3 == 0, e, np.nan)})
    att = []
    for phase, rows in (("prefill", [(1, 512), (1, 2048), (1, 8192), (4, 4096), (16, 512), (8, 8192)]),
                        ("decode", [(1, 512), (1, 32768), (8, 8192), (32, 2048), (128, 512), (64, 16384)])):
        for heads, kvh in ((32, 8), (40, 40)):
            b = np.array([r[0] for r in rows], float)
            kv = np.array([r[1] for r in rows], float)
            q = kv if phase == "prefill" else np.ones_like(kv)
            tab = attention_table(phase, b, heads, kvh, 128, q, kv, phase == "prefill")
            t, e = _time_energy(tab)
            att.append(pd.DataFrame({"run": "run1", "phase": phase, "batch": b.astype(int), "heads": heads,
                                     "kv_heads": kvh, "head_dim": 128, "q_len": q.astype(int), "kv_len": kv.astype(int),
                                     "causal": phase == "prefill", "flops": tab.flops[0],
                                     "bytes": tab.bytes_read[0] + tab.bytes_written[0], "time_ms": t * 1e3,
                                     "n_timed": 7, "timing": "cudagraph", "energy_j": e}))
    mem = []
    sizes = np.array([2**20, 2**23, 2**29, 2**31, 2**33], float)
    for op in ("copy", "read_sum", "write_fill"):
        t, e = _time_energy(memory_table(op, sizes))
        moved = sizes * (2 if op == "copy" else 1)
        mem.append(pd.DataFrame({"run": "run1", "op": op, "bytes_moved": moved.astype(np.int64),
                                 "size_bytes": sizes.astype(np.int64), "time_ms": t * 1e3, "n_timed": 9,
                                 "gbps": moved / t / 1e9, "timing": "cudagraph",
                                 "energy_j": e if op == "copy" else np.nan}))
    gemm.to_csv(tmp / "gemm.csv", index=False)
    pd.concat(att).to_csv(tmp / "attention.csv", index=False)
    pd.concat(mem).to_csv(tmp / "membw.csv", index=False)
    (tmp / "env.json").write_text(json.dumps({"device": {"name": "NVIDIA H200"}, "idle_power_w": 121.0}))
    return tmp


@pytest.fixture(scope="module")
def recovered(tmp_path_factory):
    ds = load_dataset(_synthetic(tmp_path_factory.mktemp("synthetic")))
    return ds, fit_kernels(ds, "h200")


def test_fit_recovers_the_generating_profile(recovered):
    _, prof = recovered
    assert prof.compute_eff["bf16"] == pytest.approx(0.74, rel=0.03)
    assert prof.memory_eff == pytest.approx(0.9, rel=0.03)
    assert prof.write_eff == pytest.approx(0.72, rel=0.03)
    assert prof.attention_eff == pytest.approx(0.44, rel=0.05)
    assert prof.floor_s["elementwise"] == pytest.approx(1e-6, rel=0.1)
    assert prof.floor_s["elementwise/fp32"] == pytest.approx(7e-6, rel=0.05)
    assert prof.pj_per_flop["bf16"] == pytest.approx(0.8, rel=0.05)
    assert prof.pj_per_flop["attention"] == pytest.approx(1.3, rel=0.05)
    assert prof.pj_per_byte["hbm"] == pytest.approx(100.0, rel=0.05)
    assert prof.idle_power_w == 121.0  # from env.json, not fitted


def test_fit_reproduces_the_rows_it_came_from(recovered):
    _, prof = recovered
    for f in ("gemm", "attention", "membw"):
        assert prof.extra["kernel_fit"]["time_residuals"][f]["mape_pct"] < 1.0


def test_overheads_are_fitted_only_on_the_named_models():
    ds = load_dataset(DATA)
    base = EfficiencyProfile.load(Path(__file__).resolve().parents[1] / "hwmodels/data/profiles/h200-sxm.json")
    base = replace(base, graph_gap_s=0.0, eager_launch_s=0.0, extra={})
    one = fit_overheads(ds, base, "h200", ("llama-3-8b",))
    # multiply the other model's rows by 10: the fit must not move
    e2e = ds.e2e.copy()
    e2e.loc[e2e["model"] == "llama-3.2-1b", "time_ms"] *= 10
    two = fit_overheads(replace(ds, e2e=e2e), base, "h200", ("llama-3-8b",))
    assert two.graph_gap_s == pytest.approx(one.graph_gap_s) and two.eager_launch_s == pytest.approx(one.eager_launch_s)
    assert 0.3e-6 < one.graph_gap_s < 3e-6 and 5e-6 < one.eager_launch_s < 50e-6
    assert one.extra["overhead_fit"]["graph_gap_s"]["models"] == ["llama-3-8b"]
    with pytest.raises(ValueError, match="overhead_models"):
        fit_overheads(ds, base, "h200", ("no-such-model",))


def test_shipped_profile_is_a_calibration_of_the_shipped_dataset():
    dev = load_device("h200")
    p = dev.profile
    assert p.extra["dataset"] == "h200-2026-11-28" and "h200-2026-11-28" in p.source
    assert 0.6 < p.compute_eff["bf16"] < 0.85 and 0.8 < p.memory_eff < 1.0
    assert p.idle_power_w == pytest.approx(120.99, abs=0.01)  # env.json idle_power_w
    assert set(p.extra["kernel_fit"]["files"]) == {"gemm", "attention", "membw"}
    assert all(v["mape_pct"] < 10 for v in p.extra["kernel_fit"]["time_residuals"].values())
    assert EfficiencyProfile.from_dict(json.loads(p.to_json())) == p  # JSON round trip


def test_datasheet_profile_is_the_plain_roofline():
    dev = load_device("h200", "datasheet")
    t = gemm_table([1, 16384], 4096, 4096)
    c = dev.cost(t)
    byt = t.bytes_read[0] + t.bytes_written[0]
    assert c.time_s[0] == pytest.approx(np.maximum(t.flops[0] / 989.4e12, byt / 4.8e12))
    a = attention_table("decode", 8, 32, 8, 128, 1, 8192)
    assert dev.cost(a).time_s[0, 0] == pytest.approx((a.bytes_read[0, 0] + a.bytes_written[0, 0]) / 4.8e12)


def test_profile_rejects_unknown_fields_and_bad_values():
    with pytest.raises(ValueError, match="unknown fields"):
        EfficiencyProfile.from_dict({"memory_eff": 0.9, "speed": 2})
    with pytest.raises(ValueError, match="floor_s"):
        EfficiencyProfile.from_dict({"floor_s": {"gpu": 1e-6}})


def test_calibrate_command_refuses_to_overwrite(tmp_path):
    from interfaces.cli.validation_cmds import calibrate

    out = tmp_path / "p.json"
    out.write_text("{}")
    r = CliRunner().invoke(calibrate, ["--data", str(DATA), "--out", str(out)])
    assert r.exit_code == 2 and "--force" in r.output
    assert out.read_text() == "{}"
    r = CliRunner().invoke(calibrate, ["--data", str(tmp_path / "missing"), "--out", str(tmp_path / "q.json")])
    assert r.exit_code == 2 and "does not exist" in r.output
