"""FlightLLM device model: hand-computed rates and bytes, switches move results the right way,
unsupported options say what is supported."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import genz
from genz import build_table, decode, prefill, step_costs
from hwmodels.device import Device
from hwmodels.flightllm import (
    FlightLLMOptions,
    chain_compute_fraction,
    check_weight_bits,
    fpga_names,
    instruction_programs,
    instruction_storage_bytes,
    layer_instructions,
    load_fpga,
    load_fpga_spec,
    parse_sparsity,
    stored_weight_bytes,
)
from workloads import load_model

L2 = load_model("llama-2-7b")


def step(dev, shape, precision="w4a8kv8"):
    return float(step_costs(dev, build_table(L2, shape, precision))["time"][0])


def test_u280_spec_numbers_and_dsp_throughput_by_hand():
    s = load_fpga_spec("u280")
    assert (s.clock_hz, s.dsp_count, s.dsp_used, s.macs_per_dsp) == (225e6, 9024, 6345, 2)
    assert s.int8_macs_per_s() == pytest.approx(6345 * 2 * 225e6)  # 2.855 TMAC/s
    assert s.mv_macs_per_s() == pytest.approx(2 * 1024 * 225e6 * 0.8)
    assert s.mm_macs_per_s() == pytest.approx(2 * 4096 * 225e6 * 0.8)
    assert s.hbm_bandwidth == 460e9 and s.hbm_channels == 32 and s.hbm_bytes == 8e9
    assert s.ddr_bytes == 32e9 and s.ddr_bandwidth == 38e9 and s.board_power_w == 45
    assert all(src for src in s.sources.values())
    assert {"u280", "vhk158", "alveo-u280"} <= set(fpga_names())


def test_stream_bandwidth_with_and_without_always_on_chip_decode():
    assert load_fpga("u280").stream_bandwidth() == pytest.approx(460e9 * 0.7)
    assert load_fpga("u280", always_on_chip_decode=False).stream_bandwidth() == pytest.approx(460e9 * 0.35)
    assert load_fpga("vhk158").stream_bandwidth() == pytest.approx(819e9 * 0.7)


def test_stored_weight_bytes_by_hand():
    n = 4096 * 4096
    assert stored_weight_bytes(n, 1.0, 4) == n / 2
    # half density: kept weights at 4 bits + a 4-bit index each, one info byte per 16 x 16 block
    assert stored_weight_bytes(n, 0.5, 4) == n * 0.5 + n / 256


def test_decode_gemv_time_by_hand():
    """INT8 dense gate/up GEMV of LLaMA2-7B on the U280: memory-bound at 460 GB/s x 0.7."""
    dev = load_fpga("u280", sparsity=None)
    t = build_table(L2, decode(1, 127), "w8a8kv8")
    i = list(t.name).index("gate_up_proj")
    c = dev.cost(t)
    n, k = 2 * 11008, 4096
    t_load = n * k / (460e9 * 0.7)
    t_mv = n * k / (2 * 1024 * 225e6 * 0.8)  # 22016 is 43 x 512: no padding
    assert t_load > t_mv
    assert c.time_s[i, 0] == pytest.approx(t_load)
    assert c.bound[i, 0] == 1
    assert c.energy_j[i, 0] == pytest.approx(t_load * (45 - 25))


def test_prefill_gemm_time_by_hand():
    """Prefill of 128 tokens: the o_proj GEMM is compute-bound on the matrix engines."""
    dev = load_fpga("vhk158", sparsity=None)
    t = build_table(L2, prefill(1, 128), "w4a8kv8")
    i = list(t.name).index("o_proj")
    expect = 128 * 4096 * 4096 / (4 * 4096 * 225e6 * 0.8)
    assert dev.cost(t).time_s[i, 0] == pytest.approx(expect)


def test_turning_off_always_on_chip_decode_slows_decode():
    on, off = load_fpga("u280"), load_fpga("u280", always_on_chip_decode=False)
    assert step(off, decode(1, 511)) > 1.2 * step(on, decode(1, 511))


def test_sparse_dsp_chain_raises_effective_compute():
    assert chain_compute_fraction(0.5, True) == 0.5 and chain_compute_fraction(0.5, False) == 1.0
    sparse = load_fpga("vhk158", sparsity="8:16")
    dense_chain = load_fpga("vhk158", sparsity="8:16", sparse_dsp_chain=False)
    assert step(sparse, prefill(1, 128)) < 0.6 * step(dense_chain, prefill(1, 128))


def test_mixed_precision_cuts_decode_bytes():
    mixed, int8 = load_fpga("u280"), load_fpga("u280", mixed_precision=False)
    assert step(int8, decode(1, 127)) > 1.1 * step(mixed, decode(1, 127))
    t = build_table(L2, decode(1, 127), "w3a8kv8")
    assert (mixed.hbm_bytes(t) * t.count[:, None]).sum() < (int8.hbm_bytes(t) * t.count[:, None]).sum()


def test_length_adaptive_compilation_buckets_and_storage():
    lac, exact = load_fpga("vhk158"), load_fpga("vhk158", length_adaptive=False)
    # KV 129 runs the program compiled for 144 tokens
    assert float(lac.decode_bucket(129)) == 144
    assert step(lac, decode(1, 128)) == pytest.approx(step(lac, decode(1, 143)))
    assert step(exact, decode(1, 128)) < step(lac, decode(1, 128))
    assert instruction_programs(2048) == 2048 // 128 + 2048 // 16
    assert instruction_programs(2048, length_adaptive=False) == 4096
    # instruction counts by hand (LLaMA2-7B layer): decode at KV 512 = 24 + 8 + 43 + 8 MV
    # instructions, 32 heads x (1 + 1) attention MVs, 7 SFU = 154; prefill of 128 tokens, one tile:
    # 83 MM + 32 x 1 x 2 attention tiles + 7 = 154
    assert float(layer_instructions("decode", 512)) == 154
    assert float(layer_instructions("prefill", 128)) == 154
    # up to 16 tokens: one prefill and one decode program with it, 16 of each without: 16x
    assert instruction_storage_bytes(16, False) / instruction_storage_bytes(16) == pytest.approx(16.0)
    ratio = instruction_storage_bytes(4096, False) / instruction_storage_bytes(4096)
    assert 16 < ratio < 128  # between the decode (16) and prefill (128) bucket widths


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=1, max_value=4096))
def test_decode_step_grows_with_context(ctx):
    dev = load_fpga("vhk158")
    assert step(dev, decode(1, ctx + 16)) >= step(dev, decode(1, ctx))


def test_unsupported_sparsity_lists_supported_patterns():
    for bad in ("3:16", "8:32", "2:4", "1.5", "nonsense"):
        with pytest.raises(ValueError, match="2:16"):
            parse_sparsity(bad)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        parse_sparsity(1.5)
    with pytest.raises(ValueError, match="4:16"):
        load_fpga("u280", sparsity={"qkv_proj": "5:16"})
    assert parse_sparsity("4:16") == 0.25 and parse_sparsity(0.7) == 0.7


def test_unsupported_weight_width_lists_supported_widths():
    assert check_weight_bits(3.5) == 3.5 and check_weight_bits(16) == 8
    with pytest.raises(ValueError, match="2, 3, 4, 8"):
        check_weight_bits(1.58)
    with pytest.raises(ValueError, match="2, 3, 4, 8"):
        step(load_fpga("u280"), decode(1, 127), "ternary")


def test_bad_names_and_parallelism_are_errors():
    with pytest.raises(ValueError, match="u280"):
        load_fpga("u290")
    with pytest.raises(ValueError, match="always_on_chip_decode"):
        load_fpga("u280", on_chip=False)
    with pytest.raises(ValueError, match="one board"):
        genz.predict("llama-2-7b", load_fpga("u280"), tp=2, precision="w4a8kv8")


def test_device_protocol_and_registry():
    dev = load_fpga("u280", FlightLLMOptions())
    assert isinstance(dev, Device)
    assert dev.memory_bytes == 8e9 and dev.power_limit_w == 225
    p = genz.predict("llama-2-7b", "u280", batch=1, prompt=128, output=32, precision="w4a8kv8")
    assert p.fits and 0.015 < p.tpot_s < 0.025
    assert p.power_w == pytest.approx(45.0)
    assert np.isfinite(p.energy_per_token_j)
