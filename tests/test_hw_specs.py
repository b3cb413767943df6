"""Shipped hardware data files: every GPU and link loads, every number has a source, hand-checked values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwmodels import hardware_names, list_gpus, load_gpu, load_link
from hwmodels.spec import DATA_DIR

GPU_FILES = sorted((DATA_DIR / "gpus").glob("*.json"))
LINK_FILES = sorted((DATA_DIR / "links").glob("*.json"))
GPUS = [json.loads(p.read_text())["name"] for p in GPU_FILES]
SCALARS = ("memory_bytes", "memory_bandwidth", "l2_bytes", "sm_count", "clock_hz", "power_limit_w", "idle_power_w")
EXPECTED = {"a100-40gb-sxm", "a100-80gb-sxm", "h100-sxm", "h100-pcie", "h200-sxm", "b200", "mi300x", "l40s",
            "v100s", "v100-sxm2", "rtx-4090"}
GiB = 2**30


def test_the_expected_gpus_ship():
    assert EXPECTED <= set(list_gpus())


@pytest.mark.parametrize("path", GPU_FILES, ids=lambda p: p.stem)
def test_file_name_matches_gpu_name_and_names_are_lowercase(path: Path):
    data = json.loads(path.read_text())
    assert data["name"] == path.stem
    for n in [data["name"], *data.get("aliases", ())]:
        assert n == n.lower() and n.strip() == n


def test_no_name_or_alias_is_claimed_twice():
    seen: dict[str, str] = {}
    for p in GPU_FILES:
        data = json.loads(p.read_text())
        for n in [data["name"], *data.get("aliases", ())]:
            assert n not in seen, f"{n} in both {seen.get(n)} and {p.name}"
            seen[n] = p.name


@pytest.mark.parametrize("name", GPUS)
def test_gpu_loads_with_core_figures(name: str):
    g = load_gpu(name)
    assert g.name == name
    assert max(g.peak_flops.get("bf16", 0.0), g.peak_flops.get("fp16", 0.0)) > 1e13
    assert 8 * GiB < g.memory_bytes < 512 * GiB
    assert 1e11 < g.memory_bandwidth < 2e13
    assert 1e6 < g.l2_bytes < 1e9
    assert g.sm_count > 0 and 1e9 < g.clock_hz < 3e9
    assert 0 < g.idle_power_w < g.power_limit_w <= 1500
    assert g.vendor in ("nvidia", "amd")


@pytest.mark.parametrize("name", GPUS)
def test_every_number_has_a_source(name: str):
    g = load_gpu(name)
    needed = set(SCALARS)
    needed |= {f"peak_flops.{d}" for d in g.peak_flops}
    needed |= {f"energy.pj_per_flop.{d}" for d in g.pj_per_flop}
    needed |= {f"energy.pj_per_byte.{k}" for k in g.pj_per_byte}
    needed |= {k for k in ("price_usd", "price_per_hour_usd") if getattr(g, k) is not None}
    assert needed <= set(g.sources)
    for key in needed:
        assert g.sources[key].strip(), f"{name}.{key} has an empty source"


@pytest.mark.parametrize("name", GPUS)
def test_energy_covers_every_compute_dtype_and_memory_levels(name: str):
    g = load_gpu(name)
    assert set(g.peak_flops) <= set(g.pj_per_flop)
    assert {"hbm", "l2"} <= set(g.pj_per_byte)
    assert all(v > 0 for v in [*g.pj_per_flop.values(), *g.pj_per_byte.values()])
    # Reading the device DRAM costs more per byte than reading L2.
    assert g.pj_per_byte["hbm"] > g.pj_per_byte["l2"]


@pytest.mark.parametrize("name", GPUS)
def test_dense_rates_grow_as_precision_shrinks(name: str):
    p = load_gpu(name).peak_flops
    order = [d for d in ("fp32", "tf32", "bf16", "fp8", "fp4") if d in p]
    assert [p[d] for d in order] == sorted(p[d] for d in order)
    if "int4" in p:
        assert p["int4"] >= p["int8"]
    if "bf16" in p and "fp16" in p:
        assert p["bf16"] == p["fp16"]


@pytest.mark.parametrize("name", GPUS)
def test_referenced_links_load(name: str):
    g = load_gpu(name)
    assert g.scale_up_link, f"{name} has no scale-up link"
    for link in (g.scale_up_link, g.scale_out_link):
        if link:
            spec = load_link(link)
            assert spec.bandwidth > 0 and spec.latency_s > 0


@pytest.mark.parametrize("path", LINK_FILES, ids=lambda p: p.stem)
def test_every_link_file_loads_with_sources(path: Path):
    spec = load_link(path.stem)
    assert spec.name == path.stem
    assert 1e9 <= spec.bandwidth <= 2e12 and 1e-7 <= spec.latency_s <= 1e-4
    assert spec.sources["bandwidth"].strip() and spec.sources["latency_s"].strip()


@pytest.mark.parametrize(
    ("alias", "name"),
    [("a100", "a100-80gb-sxm"), ("a100-80gb", "a100-80gb-sxm"), ("a100-40gb", "a100-40gb-sxm"),
     ("h100", "h100-sxm"), ("H100-80GB", "h100-sxm"), ("b200-sxm", "b200"), ("v100s-pcie", "v100s"),
     ("v100", "v100-sxm2"), ("4090", "rtx-4090"), (" MI300X ", "mi300x"), ("h200", "h200-sxm")],
)
def test_aliases_resolve(alias: str, name: str):
    assert load_gpu(alias).name == name
    assert alias.strip().lower() in hardware_names()


def test_unknown_name_suggests_close_ones():
    with pytest.raises(ValueError, match="h10") as err:
        load_gpu("h10")
    assert "Did you mean" in str(err.value) and "h100" in str(err.value)


def test_unknown_link_names_the_known_ones():
    with pytest.raises(ValueError, match="nvlink4"):
        load_link("nvlink9")


def test_missing_dtype_names_what_the_device_has():
    with pytest.raises(ValueError, match="fp16"):
        load_gpu("v100s").peak("bf16")


# Hand-checked against the datasheets and papers named in the files.
def test_h100_sxm_bf16_dense():
    assert load_gpu("h100").peak("bf16") == pytest.approx(1979e12 / 2, rel=0.01)


def test_a100_80gb_bandwidth_and_splitwise_price():
    g = load_gpu("a100")
    assert g.memory_bandwidth == pytest.approx(2.039e12)
    assert g.price_per_hour_usd == pytest.approx(17.6 / 8)
    assert load_gpu("h100").price_per_hour_usd == pytest.approx(38 / 8)


def test_mi300x_has_192_gb():
    g = load_gpu("mi300x")
    assert g.memory_bytes == 192 * GiB
    assert g.sm_count == 304
    assert g.peak("bf16") == pytest.approx(304 * 2048 * 2.1e9, rel=0.001)  # CUs x FLOP/clk/CU x clock


def test_b200_dense_rates():
    g = load_gpu("b200")
    assert g.peak("bf16") == pytest.approx(2.25e15)
    assert g.peak("fp4") == pytest.approx(4 * g.peak("bf16"))


def test_gb200_is_the_nvl72_rack_divided_by_72():
    g = load_gpu("gb200")
    # GB200 NVL72 datasheet, per rack with sparsity: FP8 720 PFLOPS, BF16 360, FP4 1,440; 13.4 TB HBM at 576 TB/s
    assert g.peak("fp8") == pytest.approx(720e15 / 72 / 2)
    assert g.peak("bf16") == pytest.approx(360e15 / 72 / 2)
    assert g.peak("fp4") == pytest.approx(1440e15 / 72 / 2)
    assert g.memory_bytes == pytest.approx(13.4e12 / 72, rel=0.001)
    assert g.memory_bandwidth == pytest.approx(576e12 / 72)
    assert g.peak("bf16") > load_gpu("b200").peak("bf16")  # the same GPU at 1,200 W instead of 1,000 W


def test_a100_rates_follow_from_sms_and_clock():
    g = load_gpu("a100-40gb")
    # 108 SMs x 4 tensor cores x 256 FMA x 2 FLOP x 1.41 GHz = 312 TFLOP/s.
    assert g.peak("bf16") == pytest.approx(108 * 4 * 256 * 2 * 1.41e9, rel=0.001)
    assert g.memory_bandwidth == pytest.approx(1.555e12)


def test_consumer_and_legacy_prices():
    assert load_gpu("4090").price_usd == 1599
    assert load_gpu("v100s").price_usd == pytest.approx(12_000)


def test_link_bandwidths_per_direction():
    assert load_link("nvlink4").bandwidth == pytest.approx(900e9 / 2)
    assert load_link("nvlink3").bandwidth == pytest.approx(600e9 / 2)
    assert load_link("nvlink5").bandwidth == pytest.approx(1.8e12 / 2)
    assert load_link("pcie5").bandwidth == pytest.approx(32e9 * 16 * 128 / 130 / 8, rel=0.001)
    assert load_link("ib-hdr200").bandwidth == pytest.approx(200e9 / 8)
