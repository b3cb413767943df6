"""Routing traces: validation, files, synthetic affinity and transition counts."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workloads.routing import (
    RoutingTrace,
    affinity_concentration,
    affinity_matrices,
    load_routing_csv,
    load_routing_npy,
    save_routing_csv,
    save_routing_npy,
    synthetic_routing,
)


def _trace() -> RoutingTrace:
    # 2 tokens, 3 layers, top-2, 4 experts
    ids = np.array([
        [[0, 1], [2, 3], [2, 0]],
        [[0, 2], [2, 1], [3, 1]],
    ])
    return RoutingTrace(ids, experts=4)


def test_shape_properties_and_top1_from_2d():
    tr = _trace()
    assert (tr.tokens, tr.layers, tr.top_k, tr.experts) == (2, 3, 2, 4)
    t1 = RoutingTrace(np.array([[0, 1, 2], [3, 3, 0]]), experts=4)
    assert t1.top_k == 1 and t1.expert_ids.shape == (2, 3, 1)
    assert t1.expert_load().tolist() == [[1, 0, 0, 1], [0, 1, 0, 1], [1, 0, 1, 0]]


def test_affinity_matrices_by_hand():
    tr = _trace()
    home = affinity_matrices(tr)  # (e_l[0] -> every e_{l+1}[s])
    assert home.shape == (2, 4, 4)
    # layer 0 -> 1: token 0 home 0 -> {2, 3}; token 1 home 0 -> {2, 1}
    assert home[0, 0].tolist() == [0, 1, 2, 1]
    assert home[0].sum() == 4
    # layer 1 -> 2: token 0 home 2 -> {2, 0}; token 1 home 2 -> {3, 1}
    assert home[1, 2].tolist() == [1, 1, 1, 1]
    first = affinity_matrices(tr, pairs="first")
    assert first[0, 0, 2] == 2 and first.sum() == 4
    assert affinity_matrices(tr, pairs="all").sum() == 2 * 2 * 2 * 2
    with pytest.raises(ValueError, match="pairs"):
        affinity_matrices(tr, pairs="some")


@pytest.mark.parametrize(
    ("ids", "experts", "match"),
    [
        (np.array([[[0], [4]]]), 4, r"expert_ids: expert 4 out of range \[0, 4\) at token 0, layer 1, slot 0"),
        (np.array([[[0], [-1]]]), 4, "out of range"),
        (np.array([[[1, 1]]]), 4, "more than once"),
        (np.zeros((2,), dtype=int), 4, "expert_ids"),
        (np.array([[[0, 1, 2]]]), 2, "top_k"),
        (np.array([[[0]]]), 0, "experts"),
        (np.array([[[0.5]]]), 2, "integer"),
    ],
)
def test_bad_traces_raise(ids, experts, match):
    with pytest.raises(ValueError, match=match):
        RoutingTrace(ids, experts)


def test_synthetic_is_seeded_and_validated():
    a = synthetic_routing(50, 4, 8, 2, affinity=0.5, seed=3)
    b = synthetic_routing(50, 4, 8, 2, affinity=0.5, seed=3)
    c = synthetic_routing(50, 4, 8, 2, affinity=0.5, seed=4)
    assert np.array_equal(a.expert_ids, b.expert_ids)
    assert not np.array_equal(a.expert_ids, c.expert_ids)
    for kw, field in [({"affinity": 1.5}, "affinity"), ({"top_k": 9}, "top_k"), ({"tokens": 0}, "tokens")]:
        args = {"tokens": 10, "layers": 2, "experts": 8, "top_k": 2, "affinity": 0.0} | kw
        with pytest.raises(ValueError, match=field):
            synthetic_routing(**args)


def test_full_affinity_is_a_deterministic_function_of_the_slot0_expert():
    tr = synthetic_routing(400, 5, 8, 2, affinity=1.0, seed=1)
    for layer in range(4):
        for e in range(8):
            nxt = tr.expert_ids[tr.expert_ids[:, layer, 0] == e, layer + 1, :]
            assert len(np.unique(nxt, axis=0)) == 1
    assert affinity_concentration(tr) == 1.0
    # each slot map is a bijection, so loads stay balanced-ish as at layer 0
    assert tr.expert_load()[-1].sum() == 800


def test_no_affinity_concentration_is_near_uniform():
    tr = synthetic_routing(3000, 4, 8, 1, affinity=0.0, seed=0)
    assert 1 / 8 < affinity_concentration(tr) < 0.2


def test_npy_and_csv_round_trip(tmp_path):
    tr = synthetic_routing(7, 3, 6, 2, affinity=0.3, seed=0)
    save_routing_npy(tr, tmp_path / "r.npy")
    assert np.array_equal(load_routing_npy(tmp_path / "r.npy", experts=6).expert_ids, tr.expert_ids)
    save_routing_csv(tr, tmp_path / "r.csv")
    back = load_routing_csv(tmp_path / "r.csv", experts=6)
    assert np.array_equal(back.expert_ids, tr.expert_ids) and back.experts == 6
    assert (tmp_path / "r.csv").read_text().splitlines()[0] == "token,layer,e0,e1"


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("token,layer,e0\n0,0,1\n0,1,9\n", r"row 3: expert e0=9 out of range \[0, 4\)"),
        ("token,layer,e0\n0,0,1\n0,1,2\n1,0,3\n", r"row 4: ragged layers: token 1 has layers \[0\]"),
        ("token,layer,e0,e1\n0,0,1\n", r"row 2: expected 4 columns"),
        ("token,layer,e0\n0,0,1\n0,0,2\n", "row 3: token 0 layer 0 appears twice"),
        ("tok,layer,e0\n0,0,1\n", "header"),
        ("token,layer,e1\n0,0,1\n", "header: expert columns"),
        ("token,layer,e0\n0,x,1\n", "row 2: non-integer"),
        ("token,layer,e0\n", "no data rows"),
    ],
)
def test_csv_errors_name_the_row(tmp_path, body, match):
    path = tmp_path / "bad.csv"
    path.write_text(body)
    with pytest.raises(ValueError, match=match):
        load_routing_csv(path, experts=4)


@settings(max_examples=25, deadline=None)
@given(tokens=st.integers(1, 20), layers=st.integers(2, 4), experts=st.integers(2, 6),
       top_k=st.integers(1, 2), affinity=st.floats(0, 1), seed=st.integers(0, 1000))
def test_home_affinity_counts_every_dispatched_copy(tokens, layers, experts, top_k, affinity, seed):
    top_k = min(top_k, experts)
    tr = synthetic_routing(tokens, layers, experts, top_k, affinity, seed)
    mats = affinity_matrices(tr)
    assert np.all(mats.sum(axis=(1, 2)) == tokens * top_k)
    for layer in range(layers - 1):
        homes = np.bincount(tr.expert_ids[:, layer, 0], minlength=experts)
        assert np.array_equal(mats[layer].sum(axis=1), homes * top_k)
