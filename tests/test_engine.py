"""The analytical engine: hand-computed FLOPs and bytes, memory, roofline honesty, properties."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import genz
from genz.memory import kv_bytes_per_token, weight_bytes_per_device
from genz.operators import build_table
from genz.shapes import decode, mixed, prefill
from hwmodels.gpu import load_device
from workloads import Precision, load_model

L3 = load_model("llama-3-8b")
# linear weights of one llama-3-8b layer: qkv 4096x6144, o 4096x4096, gate_up 4096x28672, down 14336x4096
LAYER_W = 4096 * 6144 + 4096 * 4096 + 4096 * 28672 + 14336 * 4096
LM_HEAD = 128256 * 4096


def rows(table, col=0):
    return {n: i for i, n in enumerate(table.name)}, col


def total(table, field, names=None, col=0):
    v = getattr(table, field)[:, col] * table.count
    if names is None:
        return v.sum()
    return sum(v[i] for i, n in enumerate(table.name) if n in names)


GEMMS = ("qkv_proj", "o_proj", "gate_up_proj", "down_proj")


def test_llama3_8b_decode_flops_and_weight_bytes_by_hand():
    t = build_table(L3, decode(1, 1024), "bf16")
    assert LAYER_W == 218_103_808
    assert total(t, "flops", GEMMS) == 2 * 32 * LAYER_W
    assert total(t, "flops", ("lm_head",)) == 2 * LM_HEAD
    assert total(t, "weight_bytes", GEMMS + ("lm_head",)) == 2 * (32 * LAYER_W + LM_HEAD)
    # decode attention: 4 H d FLOPs per key over ctx + 1 keys; reads K and V of 8 heads x 128 x 2 bytes
    assert total(t, "flops", ("attention_decode",)) == 4 * 32 * 128 * 1025 * 32
    q_bytes = 32 * 128 * 2
    assert total(t, "bytes_read", ("attention_decode",)) == 32 * (1025 * 2 * 8 * 128 * 2 + q_bytes)


def test_llama3_8b_prefill_counts_half_the_causal_matrix():
    B, S = 2, 512
    t = build_table(L3, prefill(B, S), "bf16")
    assert total(t, "flops", ("attention_prefill",)) == 32 * 4 * 32 * 128 * B * S * S / 2  # = 4·B·H·S²·d/2 per layer
    assert total(t, "flops", GEMMS) == 2 * B * S * 32 * LAYER_W
    # LM head on the last token of each sequence only
    assert total(t, "flops", ("lm_head",)) == 2 * B * LM_HEAD


def test_weights_scale_with_precision():
    w16 = total(build_table(L3, decode(1, 10), "bf16"), "weight_bytes", GEMMS)
    w4 = total(build_table(L3, decode(1, 10), "w4a16"), "weight_bytes", GEMMS)
    assert w4 == pytest.approx(w16 / 4)


def test_kv_cache_bytes_per_token():
    assert kv_bytes_per_token(L3, Precision.parse("bf16")) == 131072  # 32 layers x 2 x 8 heads x 128 x 2 B
    assert kv_bytes_per_token(L3, Precision.parse("bf16"), tp=2) == 65536
    assert kv_bytes_per_token(L3, Precision.parse("bf16"), tp=8) == 16384
    assert kv_bytes_per_token(L3, Precision.parse("bf16"), tp=16) == 16384  # one KV head per device, replicated
    ds = load_model("deepseek-v3")
    assert kv_bytes_per_token(ds, Precision.parse("bf16")) == 61 * 576 * 2


def test_mixtral_decode_reads_only_touched_experts():
    mx = load_model("mixtral-8x7b")
    expert = 3 * 4096 * 14336 * 2  # one expert's weights in bf16
    for T in (1, 4, 64):
        t = build_table(mx, decode(T, 100), "bf16")
        touched = 8 * (1 - (1 - 2 / 8) ** T)
        got = total(t, "weight_bytes", ("experts_gate_up", "experts_down"))
        assert got == pytest.approx(32 * touched * expert)
    # prefill of many tokens touches all experts
    t = build_table(mx, prefill(1, 2048), "bf16")
    assert total(t, "weight_bytes", ("experts_gate_up", "experts_down")) == pytest.approx(32 * 8 * expert)


def test_deepseek_v3_uses_mla_and_shared_experts():
    ds = load_model("deepseek-v3")
    t = build_table(ds, decode(1, 1000), "fp8")
    names = set(t.name)
    assert {"q_a_proj", "kv_b_proj", "shared_gate_up_proj", "experts_gate_up", "gate_up_proj"} <= names
    # one token touches top-8 of 256 experts in each of the 58 MoE layers
    per_expert = 3 * 7168 * 2048 * 1.0  # fp8: one byte per weight
    got = total(t, "weight_bytes", ("experts_gate_up", "experts_down"))
    assert got == pytest.approx(58 * 8 * per_expert)


def test_tensor_parallel_adds_all_reduce_and_splits_weights():
    t1 = build_table(L3, decode(1, 100), tp=1)
    t4 = build_table(L3, decode(1, 100), tp=4)
    assert "tp_all_reduce" in set(t4.name) and "tp_all_reduce" not in set(t1.name)
    assert total(t4, "weight_bytes", GEMMS) == pytest.approx(total(t1, "weight_bytes", GEMMS) / 4)
    i = list(t4.name).index("tp_all_reduce")
    assert t4.count[i] == 64 and t4.coll_bytes[i, 0] == 4096 * 2


def test_mixed_step_equals_its_parts_for_gemm_flops():
    s = mixed([(256, 0), (128, 512)], [100, 200, 300])
    t = build_table(L3, s)
    assert total(t, "flops", GEMMS) == 2 * (256 + 128 + 3) * 32 * LAYER_W
    pairs = 256 * 256 / 2 + 128 * 512 + 128 * 128 / 2
    assert total(t, "flops", ("attention_prefill",)) == 32 * 4 * 32 * 128 * pairs
    assert total(t, "flops", ("attention_decode",)) == 32 * 4 * 32 * 128 * (101 + 201 + 301)


def test_datasheet_roofline_decode_is_weights_over_bandwidth():
    p = genz.predict("llama-3-8b", "h200", batch=1, prompt=1024, output=128, profile="datasheet")
    streamed = 2 * (32 * LAYER_W + LM_HEAD)
    gpu = p.tpot_s - p.breakdown["decode"]["cpu_s"]  # the engine's CPU time per step is the runtime's, not the GPU's
    assert p.breakdown["decode"]["cpu_s"] == pytest.approx(3.0e-4 + 3.3e-6)  # vllm.json: per step + one sequence
    assert gpu == pytest.approx(streamed / 4.8e12, rel=0.03)
    assert gpu >= streamed / 4.8e12


def test_does_not_fit_is_a_result():
    p = genz.predict("llama-3.1-405b", "h200", batch=1, prompt=1024, output=16)
    assert not p.fits
    assert p.memory_bytes > 800e9 > p.capacity_bytes
    assert "does not fit" in p.fit_message()


def test_every_preset_predicts_on_h200():
    for name in load_model.__globals__["list_models"]():
        p = genz.predict(name, "h200", batch=2, prompt=256, output=8)
        assert p.ttft_s > 0 and p.tpot_s > 0 and np.isfinite(p.energy_per_token_j)


@pytest.mark.parametrize("kw,field", [({"batch": 0}, "batch"), ({"prompt": -1}, "prompt"), ({"tp": 3}, "tp"),
                                      ({"ep": 2}, "ep"), ({"pp": 64}, "pp")])
def test_bad_input_names_the_field(kw, field):
    with pytest.raises(ValueError, match=field):
        genz.predict("llama-3-8b", "h200", **kw)


def test_unknown_hardware_suggests():
    with pytest.raises(ValueError, match="h200"):
        genz.predict("llama-3-8b", "h2000")


def test_vectorized_evaluate_matches_scalar_predict():
    dev = load_device("h200")
    r = genz.evaluate(L3, dev, Precision.parse("bf16"), [1, 8, 64], [512, 1024, 2048], [16, 64, 128])
    for i, (b, s, o) in enumerate([(1, 512, 16), (8, 1024, 64), (64, 2048, 128)]):
        p = genz.predict("llama-3-8b", "h200", batch=b, prompt=s, output=o)
        assert r["tpot_s"][i] == pytest.approx(p.tpot_s)
        assert r["ttft_s"][i] == pytest.approx(p.ttft_s)


def test_weight_bytes_per_device_splits():
    w1 = weight_bytes_per_device(L3, Precision.parse("bf16"))
    assert w1 == pytest.approx(2 * L3.params(), rel=0.001)
    w2 = weight_bytes_per_device(L3, Precision.parse("bf16"), tp=2)
    assert w2 == pytest.approx(w1 / 2, rel=0.01)


@settings(max_examples=40, deadline=None)
@given(b=st.integers(1, 512), s=st.integers(1, 8192), extra=st.integers(1, 64))
def test_more_batch_never_fewer_bytes_or_flops(b, s, extra):
    t = build_table(L3, decode(np.array([b, b + extra]), s))
    assert t.total_bytes()[1] >= t.total_bytes()[0]
    assert t.total_flops()[1] > t.total_flops()[0]


@settings(max_examples=30, deadline=None)
@given(b=st.integers(1, 256), s=st.integers(1, 16384), extra=st.integers(1, 4096),
       model=st.sampled_from(["llama-3-8b", "mixtral-8x7b", "deepseek-v3", "opt-6.7b"]))
def test_longer_context_never_faster(b, s, extra, model):
    m = load_model(model)
    dev = load_device("h200")
    r = genz.evaluate(m, dev, Precision.parse("bf16"), [b, b], [s, s + extra], [2, 2])
    assert r["tpot_s"][1] >= r["tpot_s"][0]
    assert r["kv_cache_bytes"][1] > r["kv_cache_bytes"][0]


@settings(max_examples=30, deadline=None)
@given(b=st.integers(1, 128), s=st.integers(16, 4096))
def test_lower_precision_never_more_memory_or_slower_decode(b, s):
    dev = load_device("h200")
    r16 = genz.evaluate(L3, dev, Precision.parse("bf16"), b, s, 8)
    r4 = genz.evaluate(L3, dev, Precision.parse("w4a16"), b, s, 8)
    assert r4["weights_bytes"][0] < r16["weights_bytes"][0]
    assert r4["tpot_s"][0] <= r16["tpot_s"][0] * 1.0001


def test_energy_never_exceeds_power_limit():
    for b in (1, 64, 512):
        p = genz.predict("llama-3-8b", "h200", batch=b, prompt=2048, output=64)
        assert p.power_w <= 700 + 1e-6
        assert p.power_w >= 80 - 1e-6  # never below idle
