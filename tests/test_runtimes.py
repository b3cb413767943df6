"""Runtimes as kernel stacks, per-iteration CPU time, FP8 KV caches and MoE as engines run it."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

import genz
from genz.operators import build_table, device_load_factor, expert_coverage
from genz.runtime import list_runtimes, load_runtime, parse_runtime
from genz.shapes import decode, prefill
from genz.stepcost import EngineStepCost
from hwmodels.registry import load_device
from interfaces.cli import main
from workloads import Precision, load_model

H200 = load_device("h200")


def test_every_runtime_states_its_kernel_choices_and_cpu_sources():
    assert {"vllm", "sglang", "trt-llm", "plain-pytorch", "hf-transformers"} <= set(list_runtimes())
    for name in list_runtimes():
        rt = load_runtime(name)
        assert rt.choice("decode_attention") in ("sdpa", "paged") and rt.choice("moe") in ("loop", "fused")
        if any(rt.cpu.get(k) for k in ("per_step_s", "per_seq_s", "per_token_s")):
            assert len(rt.cpu["source"]) > 40, name
    # the measured stack is what the H200 dataset ran: SDPA attention, a per-expert loop, no engine
    pp = load_runtime("plain-pytorch")
    assert pp.choices == {"decode_attention": "sdpa", "moe": "loop"} and not pp.cpu
    assert load_runtime("vllm").choices == {"decode_attention": "paged", "moe": "fused"}


def test_runtime_files_are_checked():
    base = json.loads(json.dumps({"name": "x", "kernels": {k: 1 for k in (
        "gemm", "norm", "rope", "kv_write", "attention", "act", "residual", "embedding", "final_norm", "router",
        "moe_per_expert", "moe_fixed", "step")}, "passes": {k: 1 for k in ("norm", "rope", "kv_write", "act",
                                                                           "residual", "moe")}}))
    assert parse_runtime(base).choices == {"decode_attention": "sdpa", "moe": "loop"}
    for bad, match in (({"choices": {"moe": "magic"}}, "choices.moe"), ({"cpu": {"overlap": 2}}, "cpu.overlap"),
                       ({"cpu": {"per_step_s": 1e-3}}, "source"), ({"cpu": {"speed": 1}}, "cpu.speed")):
        with pytest.raises(ValueError, match=match):
            parse_runtime({**base, **bad})


def test_paged_decode_attention_streams_the_kv_cache_near_bandwidth():
    # 256 sequences at 1,500 tokens of context: 256 x 1,501 x 128 KiB of KV cache per step
    m = load_model("llama-3-8b")
    kv_bytes = 256 * 1501 * 32 * 2 * 8 * 128 * 2
    bound = kv_bytes / (H200.spec.memory_bandwidth * H200.profile.memory_eff)
    att = {}
    for rt in ("plain-pytorch", "vllm"):
        t = build_table(m, decode(256, 1500), "bf16", runtime=rt)
        c = H200.cost(t)
        i = list(t.name).index("attention_decode")
        att[rt] = float(c.time_s[i, 0] * t.count[i])
    assert att["vllm"] < 1.15 * bound  # within the bandwidth bound's reach
    assert att["plain-pytorch"] > 1.5 * bound  # SDPA pads 4 query rows per KV head to a 128-row tile
    t = build_table(m, decode(256, 1500), "bf16", runtime="vllm")
    c = H200.cost(t)
    i = list(t.name).index("attention_decode")
    assert c.bound[i, 0] == 1  # memory: streaming the KV cache, not computing padded tiles
    p = genz.predict("llama-3-8b", "h200", batch=256, prompt=1500, output=2, runtime="vllm")
    by_bound = p.breakdown["decode"]["by_bound_s"]
    # the step is set by streaming (KV, and weights) and by the GEMMs, which are compute-bound at 256 rows
    assert by_bound["memory"] > 0.55 * p.tpot_s and by_bound["memory"] + by_bound["compute"] > 0.9 * p.tpot_s


def test_cpu_time_per_iteration_reaches_predictions_and_the_serving_simulation():
    vllm = load_runtime("vllm")
    assert vllm.cpu_seconds(8, 8) == pytest.approx(3.0e-4 + 8 * 3.3e-6)
    p = genz.predict("llama-3-8b", "h200", batch=8, runtime="vllm")
    assert p.breakdown["decode"]["cpu_s"] == pytest.approx(3.0e-4 + 8 * 3.3e-6)
    # SGLang's scheduler overlaps the GPU: its CPU time hides behind a 5 ms step
    s = genz.predict("llama-3-8b", "h200", batch=8, runtime="sglang")
    assert s.breakdown["decode"]["cpu_s"] == 0.0
    assert load_runtime("sglang").exposed_cpu(1e-3, 4e-4) == pytest.approx(6e-4)  # except what outlasts the GPU
    # one simulated iteration costs the engine's step plus the exposed CPU time
    cost = EngineStepCost("llama-3-8b", "h200", runtime="vllm")
    plain = EngineStepCost("llama-3-8b", "h200", runtime="vllm", profile="auto")
    t1, _ = cost.step((), tuple([1024] * 8))
    rt_free = parse_runtime({**json.loads(json.dumps(_as_dict(vllm))), "cpu": {}})
    plain._rt = rt_free
    t0, _ = plain.step((), tuple([1024] * 8))
    assert t1 - t0 == pytest.approx(3.0e-4 + 8 * 3.3e-6, rel=1e-9)
    d = json.loads(CliRunner().invoke(main, ["predict", "--json"]).output)
    assert d["breakdown"]["decode"]["cpu_s"] > 0


def _as_dict(rt):
    return {"name": rt.name, "kernels": rt.kernels, "passes": rt.passes, "choices": rt.choices, "cpu": rt.cpu}


def test_fpgas_run_their_own_program_without_engine_cpu_time():
    p = genz.predict("llama-2-7b", "u280", batch=1, prompt=128, output=32, precision="w4a8kv8", runtime="vllm")
    assert p.breakdown["decode"]["cpu_s"] == 0.0


def test_fp8_kv_cache_halves_the_cache_and_the_bytes_attention_reads():
    m = load_model("llama-3-70b")
    a = genz.predict(m, "h200", tp=4, batch=32, prompt=4096, precision="fp8")
    b = genz.predict(m, "h200", tp=4, batch=32, prompt=4096, precision="fp8+kvfp8")
    assert b.memory["kv_cache_bytes"] == pytest.approx(a.memory["kv_cache_bytes"] / 2)
    assert b.tpot_s < a.tpot_s
    ta = build_table(m, decode(32, 4096), "fp8", tp=4)
    tb = build_table(m, decode(32, 4096), "fp8+kvfp8", tp=4)
    i = list(ta.name).index("attention_decode")
    q_bytes = 32 * (64 / 4) * 128 * 2.0
    assert tb.bytes_read[i, 0] - q_bytes == pytest.approx((ta.bytes_read[i, 0] - q_bytes) / 2)
    # the KV cache of a serving replica holds twice the tokens
    c16 = EngineStepCost(m, "h200", "fp8", tp=4)
    c8 = EngineStepCost(m, "h200", "fp8+kvfp8", tp=4)
    assert c8.kv_bytes_per_token == pytest.approx(c16.kv_bytes_per_token / 2)


def test_precision_grammar_covers_deployments():
    assert Precision.parse("fp8+kvfp8") == Precision.parse("fp8").with_kv_cache("fp8")
    p = Precision.parse("w4a16+kvfp8")
    assert (p.weight_bits, p.act_bits, p.kv_bits, p.kv_dtype, p.compute_dtype) == (4, 16, 8, "fp8", "bf16")
    assert Precision.parse("fp8").with_kv_cache("auto").kv_bits == 16
    for bad in ("fp8+kv3", "fp8+fp8", "bf16+kvfp9"):
        with pytest.raises(ValueError, match="KV-cache part"):
            Precision.parse(bad)
    r = CliRunner().invoke(main, ["list", "precisions", "--json"])
    names = [i["name"] for i in json.loads(r.output)]
    assert "fp8+kvfp8" in names and "w4a16+kvfp8" in names
    r = CliRunner().invoke(main, ["predict", "--precision", "fp8", "--kv-cache-dtype", "fp8", "--json"])
    assert json.loads(r.output)["precision"] == "fp8+kvfp8"
    assert CliRunner().invoke(main, ["predict", "--kv-cache-dtype", "fp9"]).exit_code == 2


# ---- MoE as engines run it -------------------------------------------------------------------------------
def test_uniform_coverage_is_the_closed_form_and_skew_touches_fewer_experts():
    E, K, T = 8, 2, np.array([1.0, 4.0, 64.0])
    uniform = expert_coverage(np.full(E, K / E), T)
    assert uniform == pytest.approx(E * (1 - (1 - K / E) ** T))
    zipf = 1.0 / np.arange(1, E + 1)
    skew = zipf / zipf.sum() * K
    assert expert_coverage(skew, T)[0] == pytest.approx(K)  # one token reaches top_k experts either way
    assert (expert_coverage(skew, T)[1:] < uniform[1:]).all()
    assert device_load_factor(np.full(E, K / E), 4) == 1.0
    assert device_load_factor(skew, 4) == pytest.approx(skew[:2].sum() / (K / 4))


def test_a_skewed_routing_makes_the_busiest_expert_parallel_device_slower():
    m = load_model("mixtral-8x7b")
    zipf = 1.0 / np.arange(1, 9) ** 1.2
    skew = zipf / zipf.sum() * 2
    uni = build_table(m, decode(256, 1024), "bf16", tp=1, ep=4)
    hot = build_table(m, decode(256, 1024), "bf16", tp=1, ep=4, expert_probs=skew)
    i = list(uni.name).index("experts_gate_up")
    assert hot.flops[i, 0] == pytest.approx(uni.flops[i, 0] * device_load_factor(skew, 4))
    assert H200.cost(hot).time_s[i, 0] > H200.cost(uni).time_s[i, 0]
    with pytest.raises(ValueError, match="sum to top_k"):
        build_table(m, decode(8, 128), "bf16", expert_probs=np.full(8, 0.1))


def test_fused_moe_launches_one_kernel_per_gemm_and_the_loop_one_per_expert():
    m = load_model("mixtral-8x7b")
    shape = decode(4, 512)
    loop = build_table(m, shape, "bf16", runtime="plain-pytorch")
    fused = build_table(m, shape, "bf16", runtime="vllm")
    touched = 8 * (1 - (1 - 2 / 8) ** 4)  # distinct experts 4 tokens x top-2 of 8 reach
    i = list(loop.name).index("experts_gate_up")
    assert loop.kernels[i, 0] == pytest.approx(touched) and fused.kernels[i, 0] == 1.0
    assert fused.variant[i] == "fused_moe" and loop.variant[i] == ""
    # the eager loop waits for the GPU once per expert and MoE layer; CUDA graphs do not
    s = list(loop.name).index("moe_host_sync")
    assert loop.kernels[s, 0] == 8 and loop.count[s] == 32
    eager = H200.cost(loop, cuda_graphs=False).time_s[s, 0]
    assert eager == pytest.approx(8 * (H200.profile.eager_launch_s + 10e-6))
    assert H200.cost(loop, cuda_graphs=True).time_s[s, 0] == 0.0
    assert "moe_host_sync" not in list(fused.name)


def test_fused_moe_pays_a_16_row_block_not_the_library_gemm_tile():
    m = load_model("mixtral-8x7b")
    shape = prefill(1, 64)
    loop = build_table(m, shape, "bf16", runtime="plain-pytorch")
    fused = build_table(m, shape, "bf16", runtime="vllm")
    i = list(loop.name).index("experts_gate_up")
    assert H200.cost(fused).time_s[i, 0] < H200.cost(loop).time_s[i, 0]
