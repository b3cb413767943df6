"""LUT Tensor Core unit and GPU variants: table sizes, bit-serial rates, area/energy rules,
mechanism switches, device behaviour and errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import genz
from genz import build_table, decode, prefill, step_costs
from hwmodels.device import Device
from hwmodels.gpu import load_device
from hwmodels.luttc import (
    LUTTile,
    MACUnit,
    load_lut_gpu,
    load_parts,
    load_variant,
    lut_gpu_names,
    mac_dp4_per_sm,
    scale_area,
    scale_energy,
    table_entries,
    weight_planes,
)
from workloads import load_model

BITNET = load_model("bitnet-b1.58-3b")


@settings(max_examples=50, deadline=None)
@given(m=st.integers(1, 8), k=st.integers(1, 8), fmt=st.sampled_from(["int8", "fp16"]), sym=st.booleans())
def test_table_size_is_m_times_entries_times_bits(m, k, fmt, sym):
    t = LUTTile(m=m, k=k, table_format=fmt, symmetric=sym)
    bits = 8 if fmt == "int8" else 16
    assert t.table_bits() == m * 2 ** (k - 1 if sym else k) * bits


def test_table_size_by_hand_and_symmetrization_halves_it():
    assert LUTTile().table_bits() == 2 * 8 * 8  # M2, K4: 8 entries of INT8
    assert LUTTile(symmetric=False).table_bits() == 2 * 16 * 8
    assert table_entries(4) == 8 and table_entries(4, symmetric=False) == 16
    assert LUTTile(symmetric=False).area_um2() > LUTTile().area_um2()


def test_bit_serial_passes_and_rates():
    assert [weight_planes(b) for b in (1, 1.58, 2, 3, 4)] == [1, 2, 2, 3, 4]
    t = LUTTile()  # M2 N64 K4
    assert t.macs_per_cycle(1) == 512 and t.macs_per_cycle(2) == 256 and t.macs_per_cycle(4) == 128
    assert t.table_reuse() == 64


def test_unsupported_weight_widths_list_the_supported_ones():
    for bad in (3.5, 5, 8, 16, 0.5):
        with pytest.raises(ValueError, match="1, 1.58, 2, 3, 4"):
            weight_planes(bad)
    with pytest.raises(ValueError, match="table_format"):
        LUTTile(table_format="int4")
    with pytest.raises(ValueError, match="MAC format"):
        MACUnit("int2")


def test_variant_peaks_by_hand():
    g = load_lut_gpu("a100-lut-4x")
    per_sm = 16 * 128 * 2 * 4  # tiles x lanes x ops per lane (2K) at one plane
    assert g.lut_peak(1) == pytest.approx(per_sm * 108 * 1.41e9)
    assert g.lut_peak(2) == pytest.approx(per_sm / 2 * 108 * 1.41e9)  # about 1248 TOPs
    assert g.lut_peak(4) == pytest.approx(g.lut_peak(2) / 2)
    assert load_lut_gpu("a100-lut-8x").lut_peak(2) == pytest.approx(2 * g.lut_peak(2))
    h = load_lut_gpu("h100-lut-8x", clock_hz=1.41e9)
    assert h.lut_peak(2) == pytest.approx(32 * 128 * 4 * 132 * 1.41e9)
    assert h.spec.peak("fp8") == pytest.approx(1978.9e12 * 1.41 / 1.83)
    assert sorted(lut_gpu_names()) == ["a100-lut-4x", "a100-lut-8x", "h100-lut-8x"]


def test_scaling_rules():
    p = load_parts()
    assert scale_area(100.0, p, clock_hz=2e9) == pytest.approx(200.0)  # area proportional to clock
    assert scale_area(100.0, p, node_nm=14) == pytest.approx(25.0)  # (node / 28)^2
    assert scale_energy(1.0, p, node_nm=7) == pytest.approx(0.25)  # node / 28
    assert scale_energy(1.0, p, voltage_v=0.45) == pytest.approx(0.25)  # (V / 0.9)^2
    # density does not depend on the clock under the area rule
    t = LUTTile()
    assert t.density(1, clock_hz=1.41e9) == pytest.approx(t.density(1))


def test_k4_is_the_best_table_width_and_elongated_tiles_share_tables():
    area_per_mac = {k: LUTTile(k=k).area_um2() / LUTTile(k=k).macs_per_cycle(1) for k in range(2, 7)}
    assert min(area_per_mac, key=area_per_mac.get) == 4
    # more lanes per table (longer N) -> less table storage per lane
    share = [LUTTile(m=1, n=n).table_bits() / LUTTile(m=1, n=n).lanes for n in (8, 16, 64)]
    assert share[0] > share[1] > share[2]
    fp = {(m, 128 // m): LUTTile(m=m, n=128 // m, table_format="fp16", acc="fp16").area_um2() for m in (1, 2, 4, 8)}
    assert min(fp, key=fp.get) == (2, 64)


def test_fused_precompute_saves_area_and_energy():
    fused, inside = LUTTile(), LUTTile(fused_precompute=False)
    assert inside.area_um2() > fused.area_um2()
    assert inside.energy_per_cycle_pj(2) > fused.energy_per_cycle_pj(2)


def test_lut_area_and_energy_beat_the_mac_units():
    lut = LUTTile()
    assert lut.density(2) > 3 * MACUnit("int8").density()
    assert lut.ops_per_joule(2) > MACUnit("int8").ops_per_joule()
    assert mac_dp4_per_sm(load_device("a100-40gb-sxm").spec, "fp16") == pytest.approx(312e12 / (108 * 1.41e9) / 8)


def test_device_runs_low_bit_gemms_on_lut_and_keeps_fp16_rows():
    g, base = load_lut_gpu("a100-lut-8x"), load_device("a100-80gb-sxm")
    assert isinstance(g, Device)
    t = build_table(BITNET, prefill(8, 512), "ternary")
    c, cb = g.cost(t), base.cost(t)
    gemm = t.name == "gate_up_proj"
    assert c.time_s[gemm][0, 0] < 0.5 * cb.time_s[gemm][0, 0]  # compute-bound: LUT is 8x the fp16 rate
    other = ~g.lut_rows(t)
    assert np.allclose(c.time_s[other], cb.time_s[other])
    assert not g.lut_rows(build_table(BITNET, decode(1, 10), "fp16")).any()


def test_unfused_precompute_costs_time():
    t = build_table(BITNET, decode(1, 1024), "ternary")
    fused = step_costs(load_lut_gpu("a100-lut-4x"), t)["time"][0]
    unfused = step_costs(load_lut_gpu("a100-lut-4x", fused_precompute=False), t)["time"][0]
    assert unfused > fused


def test_lut_device_rejects_unsupported_widths():
    t = build_table(BITNET, decode(1, 16), "w3.5a16")
    with pytest.raises(ValueError, match="1, 1.58, 2, 3, 4"):
        load_lut_gpu("a100-lut-4x").cost(t)
    with pytest.raises(ValueError, match="a100-lut-4x"):
        load_variant("a100-lut-3x")


@pytest.mark.parametrize("precision", ["ternary", "w1a16", "w2a16", "w4a16"])
def test_low_bit_models_run_through_the_normal_flow(precision):
    model = "bitnet-b1.58-3b" if precision == "ternary" else "llama-2-7b"
    lut = genz.predict(model, "a100-lut-8x", batch=16, prompt=512, output=32, precision=precision)
    gpu = genz.predict(model, "a100-40gb-sxm", batch=16, prompt=512, output=32, precision=precision)
    assert lut.fits and lut.ttft_s < gpu.ttft_s
    # decode is memory-bound on both; the tables (2 bytes per activation) add a little traffic
    assert lut.tpot_s <= gpu.tpot_s * 1.02
