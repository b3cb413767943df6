"""The fast paths give the reference path's answers (issue 14): distinct steps costed once
(``evaluate``), the grid of a sweep (``grid_steps``), the step costs in chunks, on random
configurations; relative agreement 1e-9 (in practice the same bits: the same operations run on the
same numbers)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from genz.parallel import check_parallelism
from genz.predict import check_device_precision, evaluate, evaluate_reference, evaluate_steps, grid_steps
from genz.stepcost import EngineStepCost
from hwmodels.registry import load_device
from workloads import Precision, load_model

REL = 1e-9
MODELS = ("llama-3-8b", "mixtral-8x7b", "deepseek-v3", "opt-6.7b", "bitnet-b1.58-3b", "llama-3-70b")
HARDWARE = ("h200", "h100", "a100-40gb", "v100", "mi300x", "flightllm-u280", "a100-lut-4x")
PRECISIONS = ("bf16", "fp8", "int4", "w4a16", "fp16", "w8a8kv8")
RUNTIMES = ("vllm", "sglang", "trt-llm", "hf-transformers", "plain-pytorch")


def _setup(data):
    """A valid (model, device, precision, split, runtime, cuda graphs), or None."""
    m = load_model(data.draw(st.sampled_from(MODELS)))
    prec = Precision.parse(data.draw(st.sampled_from(PRECISIONS)))
    tp, pp = data.draw(st.sampled_from((1, 2, 8))), data.draw(st.sampled_from((1, 2, 4)))
    ep = data.draw(st.sampled_from((1, 2, 8))) if m.is_moe else 1
    try:
        check_parallelism(m, tp, pp, ep)
        dev = load_device(data.draw(st.sampled_from(HARDWARE)), data.draw(st.sampled_from(("auto", "datasheet"))))
        check_device_precision(dev, prec)
    except ValueError:
        return None
    split = dict(tp=tp, pp=pp, ep=ep, dp=data.draw(st.sampled_from((1, 3))),
                 runtime=data.draw(st.sampled_from(RUNTIMES)), cuda_graphs=data.draw(st.booleans()))
    return m, dev, prec, split


def _agree(fast: dict, ref: dict) -> None:
    assert list(fast) == list(ref)
    for k in ref:
        a, b = np.asarray(fast[k]), np.asarray(ref[k])
        assert a.dtype == b.dtype and a.shape == b.shape, k
        if a.dtype == bool:
            assert (a == b).all(), k
        else:
            np.testing.assert_allclose(a, b, rtol=REL, atol=0, err_msg=k)


def _evaluate(setup, B, S, Out, fn=evaluate):
    m, dev, prec, split = setup
    try:
        return fn(m, dev, prec, B, S, Out, **split)
    except ValueError:  # a split a device family refuses (FlightLLM: one board) is no answer
        return None


sizes = st.lists(st.sampled_from((1, 2, 3, 7, 64, 300, 1000, 4096)), min_size=9, max_size=30)


@given(st.data(), sizes, sizes, sizes)
def test_distinct_steps_agree_with_every_configurations_own_steps(data, b, s, o):
    setup = _setup(data)
    if setup is None:
        return
    n = min(len(b), len(s), len(o))
    B, S, Out = (np.array(x[:n], float) for x in (b, s, o))
    ref = _evaluate(setup, B, S, Out, evaluate_reference)
    if ref is not None:
        _agree(_evaluate(setup, B, S, Out), ref)


axis = st.lists(st.sampled_from((1, 2, 3, 5, 64, 129, 1000, 2048)), min_size=1, max_size=5)


@given(st.data(), axis, axis, axis)
def test_a_sweep_grid_agrees_with_the_reference(data, b, s, o):
    setup = _setup(data)
    if setup is None:
        return
    m, dev, prec, split = setup
    B, S, Out, steps = grid_steps(b, s, o)
    assert len(B) == len(b) * len(s) * len(o)
    ref = _evaluate(setup, B, S, Out, evaluate_reference)
    if ref is not None:
        _agree(evaluate_steps(m, dev, prec, B, S, Out, steps, **split), ref)


def test_distinct_steps_are_fewer_and_chunked_costs_agree(monkeypatch):
    """A grid over outputs shares prefills and first decodes; costs split into chunks agree."""
    import importlib

    gp = importlib.import_module("genz.predict")  # the module (genz.predict is also the function)
    m, dev, prec = load_model("mixtral-8x7b"), load_device("h200"), Precision.parse("fp8")
    B, S, Out, steps = grid_steps(range(1, 33), (128, 1024, 4096), (1, 2, 64, 128, 1000))
    assert len(steps.pre_batch) == 32 * 3 and len(steps.pre_batch) + len(steps.dec_batch) < 3 * len(B) / 2
    ref = evaluate_reference(m, dev, prec, B, S, Out, tp=2, pp=2, ep=2)
    monkeypatch.setattr(gp, "STEP_CHUNK", 7)
    _agree(evaluate_steps(m, dev, prec, B, S, Out, steps, tp=2, pp=2, ep=2), ref)


def test_pipeline_factor_reaches_decode_time_not_decode_energy():
    """With pp > 1 decode time carries the GPipe factor and dynamic energy the micro-batch count:
    hand check of one configuration against its own operator-table costs."""
    from genz.predict import step_costs, step_tables

    m, dev, prec = load_model("llama-3-8b"), load_device("h200", "datasheet"), Precision.parse("bf16")
    r = evaluate(m, dev, prec, [8] * 10, [512] * 10, [3] * 10, pp=2)
    tabs = step_tables(m, prec, 8, 512, 3, pp=2)
    t = {k: float(step_costs(dev, v)["time"][0]) for k, v in tabs.items()}
    factor = (2 + 2 - 1) / 2  # 2 micro-batches of 4 over 2 stages
    assert r["tpot_s"][0] == pytest.approx(0.5 * (t["decode_first"] + t["decode_last"]) * factor
                                           + r["decode_cpu_s"][0], rel=1e-12)


def test_engine_step_cost_is_unchanged_by_its_fast_path():
    """EngineStepCost.step agrees with the operator table built from scratch."""
    from genz.operators import build_table
    from genz.predict import step_costs
    from genz.shapes import mixed

    c = EngineStepCost("llama-3-8b", "h100-sxm")
    chunks, decodes = ((300, 1000), (17, 0)), (5, 900, 4000)
    t, _ = c.step(chunks, decodes)
    table = build_table(c._m, mixed(list(chunks), list(decodes)), c._prec, runtime=c._rt)
    gpu = float(step_costs(c._dev, table)["time"][0])
    assert t == pytest.approx(gpu + float(c._rt.exposed_cpu(c._rt.cpu_seconds(5, 320), gpu)), rel=REL)


def test_a_multi_group_sweep_is_its_groups_one_after_another():
    """Columns filled group by group (allocated once) hold what each group's own sweep gives, in
    order, with text columns categorical, and skipped groups leave no rows."""
    import pandas as pd

    from genz.sweep import sweep

    kw = dict(batch=[1, 8, 64], prompt=[128, 1024], output=[16, 200])
    whole = sweep(["llama-3-8b", "mixtral-8x7b"], ["h100", "h200"], tp=[1, 2, 3], precision=["bf16", "fp8"], **kw)
    parts, skipped = [], 0
    for m in ("llama-3-8b", "mixtral-8x7b"):
        for hw in ("h100", "h200"):
            for prec in ("bf16", "fp8"):
                for tp in (1, 2, 3):
                    one = sweep([m], [hw], tp=[tp], precision=[prec], **kw)
                    skipped += len(one.skipped)
                    parts.append(one.frame)
    want = pd.concat([p for p in parts if len(p)], ignore_index=True)
    assert len(whole.skipped) == skipped > 0 and whole.configurations == len(want)
    for col in want.columns:
        a, b = whole.frame[col], want[col]
        if isinstance(a.dtype, pd.CategoricalDtype):
            assert (a.astype(str).to_numpy() == b.astype(str).to_numpy()).all(), col
        else:
            np.testing.assert_array_equal(a.to_numpy(), b.to_numpy(), err_msg=col)
    assert isinstance(whole.frame["model"].dtype, pd.CategoricalDtype)
