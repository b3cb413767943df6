"""The one-configuration path of ``predict`` (issue 14: a what-if in 0.1 ms) gives the reference
path's answers: every output of :func:`genz.predict_one.evaluate_one` against
:func:`genz.predict.evaluate_reference` and :func:`genz.predict.evaluate` on random configurations
(relative 1e-9), the compiled operator table against ``build_table``, and the cases the fast path
must leave to the vectorized one."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import genz
from genz.affine import NotAffine, SymbolicShape, compile_table, features
from genz.operators import build_table
from genz.parallel import check_parallelism
from genz.predict import check_device_precision, evaluate, evaluate_reference
from genz.predict_one import evaluate_one, plan_for
from genz.runtime import load_runtime
from genz.shapes import StepShape, decode, mixed, prefill
from hwmodels.registry import load_device
from workloads import Precision, load_model

REL = 1e-9
DENSE = ("llama-3-8b", "llama-3-70b", "opt-6.7b", "bitnet-b1.58-3b", "llama-3.2-1b", "qwen2.5-7b", "gpt3-175b")
GPUS = ("h200", "h100", "a100-40gb", "v100", "mi300x", "l40s")
PRECISIONS = ("bf16", "fp8", "int4", "w4a16", "fp16", "w8a8kv8", "fp8+kvfp8", "fp32")
RUNTIMES = ("vllm", "sglang", "trt-llm", "hf-transformers", "plain-pytorch")


@st.composite
def setups(draw):
    m = load_model(draw(st.sampled_from(DENSE)))
    prec = Precision.parse(draw(st.sampled_from(PRECISIONS)))
    tp, pp = draw(st.sampled_from((1, 2, 4, 8))), draw(st.sampled_from((1, 2, 3)))
    try:
        check_parallelism(m, tp, pp, 1)
        dev = load_device(draw(st.sampled_from(GPUS)), draw(st.sampled_from(("auto", "datasheet"))))
        check_device_precision(dev, prec)
    except ValueError:
        return None
    return m, dev, prec, dict(tp=tp, pp=pp, runtime=load_runtime(draw(st.sampled_from(RUNTIMES))),
                              cuda_graphs=draw(st.booleans()), gpus_per_node=draw(st.sampled_from((4, 8))))


@given(setups(), st.integers(1, 512), st.integers(1, 32768), st.integers(1, 4096), st.sampled_from((1, 3)))
@example(None, 1, 1, 1, 1)
def test_one_configuration_matches_reference(setup, B, S, Out, dp):
    if setup is None:
        return
    m, dev, prec, split = setup
    kw = dict(tp=split["tp"], pp=split["pp"], gpus_per_node=split["gpus_per_node"], cuda_graphs=split["cuda_graphs"])
    plan = plan_for(m, dev, prec, split["runtime"], **kw) or plan_for(m, dev, prec, split["runtime"], **kw)
    assert plan is not None, "a dense model on a GPU has an affine table"
    fast = evaluate_one(plan, float(B), float(S), float(Out), dp)
    for fn in (evaluate_reference, evaluate):
        ref = fn(m, dev, prec, B, S, Out, dp=dp, **split)
        assert list(fast) == list(ref)
        for k, v in ref.items():
            want = v[0].item()
            if isinstance(want, bool):
                assert fast[k] is want, k
            else:
                assert fast[k] == pytest.approx(want, rel=REL, abs=0), (fn.__name__, k)


def test_predict_uses_the_plan_and_agrees():
    """``genz.predict`` answers through the plan and gives what the vectorized path gives."""
    first = genz.predict("llama-3-8b", "h200", batch=8, prompt=2000, output=300, gpus_per_node=7)
    p = genz.predict("llama-3-8b", "h200", batch=8, prompt=2000, output=300, gpus_per_node=7)
    m, dev, prec = load_model("llama-3-8b"), load_device("h200"), Precision.parse("bf16")
    assert plan_for(m, dev, prec, load_runtime("vllm"), gpus_per_node=7) is not None, "made on the second call"
    for key in ("ttft_s", "tpot_s", "e2e_s", "energy_j", "memory_bytes", "power_w"):  # vectorized, then planned
        assert getattr(first, key) == pytest.approx(getattr(p, key), rel=REL, abs=0)
    assert first.breakdown.keys() == p.breakdown.keys() and first.basis == p.basis
    ref = evaluate_reference(m, dev, prec, 8, 2000, 300)
    for key in ("ttft_s", "tpot_s", "e2e_s", "energy_j", "memory_bytes"):
        assert getattr(p, key) == pytest.approx(ref[key][0], rel=REL, abs=0)
    assert p.breakdown["decode"]["by_bound_s"]["memory"] == pytest.approx(ref["decode_memory_bound_s"][0], rel=REL)
    p.expected_error["ttft"] = 99.0  # one answer's dicts are its own, not the plan's
    assert genz.predict("llama-3-8b", "h200", batch=8, prompt=2000, output=300,
                        gpus_per_node=7).expected_error["ttft"] != 99.0


@pytest.mark.parametrize("model,hardware", [("mixtral-8x7b", "h200"), ("deepseek-v3", "h200"),
                                            ("llama-3-8b", "flightllm-u280"), ("llama-3-8b", "a100-lut-4x")])
def test_left_to_the_vectorized_path(model, hardware):
    """MoE tables are not affine in the shape (expert coverage); FPGAs and LUT Tensor Cores cost their
    own way: no plan, and predict still answers."""
    m, dev = load_model(model), load_device(hardware)
    for _ in range(2):  # the second sighting of a setting would make its plan
        assert plan_for(m, dev, Precision.parse("bf16"), load_runtime("vllm"), tp=8 if m.is_moe else 1) is None


def test_compiled_table_equals_build_table():
    """Compiled once, the table of any shapes (prefill, decode, mixed, chunked) is build_table's."""
    m, prec, rt = load_model("llama-3-70b"), Precision.parse("fp8"), load_runtime("sglang")
    ct = compile_table(m, prec, rt, tp=4, pp=2)
    shape = StepShape.concat([prefill(3, 700), decode(5, 900), mixed([(256, 1024), (12, 0)], [30, 4000]),
                              prefill(1, 128, cached=4096), decode(0, 0)])
    ref = build_table(m, shape, prec, tp=4, pp=2, runtime=rt)
    got = ct.table(features(shape))
    for f in ("flops", "bytes_read", "bytes_written", "weight_bytes", "kernels", "m", "n", "k", "coll_bytes"):
        np.testing.assert_allclose(getattr(got, f), getattr(ref, f), rtol=1e-12, atol=0, err_msg=f)
    assert got.name.tolist() == ref.name.tolist()
    # a GEMM's weights are read only in steps that give it rows: the gate closes on the empty step
    o = got.name.tolist().index("o_proj")
    assert got.bytes_read[o, -1] == 0.0 and got.kernels[o, -1] == 0.0 and got.bytes_read[o, 0] > 0


def test_symbols_refuse_what_is_not_affine():
    s = SymbolicShape()
    (s.prefill_tokens * 3.0 + 1.0) / 2.0  # affine: fine
    with pytest.raises(NotAffine):
        s.prefill_tokens * s.decode_seqs
    with pytest.raises(TypeError):  # numpy refuses a symbol (compile_table catches both)
        np.maximum(s.prefill_tokens, 1.0)
    with pytest.raises(NotAffine):
        float(s.lm_rows)
    with pytest.raises(NotAffine):
        bool(s.tokens > 0)
