"""Traces, arrival processes, length distributions, trace files and use-case presets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workloads.requests import (
    Empirical,
    Fixed,
    FixedRateArrivals,
    GammaArrivals,
    LogNormal,
    PoissonArrivals,
    Request,
    Uniform,
    WorkloadSpec,
    generate_trace,
    read_trace,
    write_trace,
)
from workloads.usecases import USE_CASES, get_use_case, list_use_cases


def _gaps(proc, n=40_000, seed=3):
    return proc.interarrivals(n, np.random.default_rng(seed))


# --------------------------------------------------------------------------- arrivals
def test_same_seed_same_trace_and_different_seed_different_trace():
    args = (500, GammaArrivals(3.0, cv=2.0), LogNormal(800, 0.7), Uniform(10, 300))
    a, b, c = generate_trace(*args, seed=7), generate_trace(*args, seed=7), generate_trace(*args, seed=8)
    assert a == b
    assert a != c
    assert [q.id for q in a] == list(range(500))


def test_streams_are_independent_so_rate_sweeps_share_lengths():
    slow = generate_trace(200, PoissonArrivals(1.0), LogNormal(500, 0.5), LogNormal(100, 0.5), seed=4)
    fast = generate_trace(200, PoissonArrivals(9.0), LogNormal(500, 0.5), LogNormal(100, 0.5), seed=4)
    assert [(q.prompt_tokens, q.output_tokens) for q in slow] == [(q.prompt_tokens, q.output_tokens) for q in fast]
    assert slow[-1].arrival_s == pytest.approx(9 * fast[-1].arrival_s)  # same exponential draws, scaled


def test_poisson_rate_and_unit_cv():
    g = _gaps(PoissonArrivals(4.0))
    assert g.mean() == pytest.approx(0.25, rel=0.02)
    assert g.std() / g.mean() == pytest.approx(1.0, rel=0.03)


@pytest.mark.parametrize("cv", [0.5, 1.0, 3.0])
def test_gamma_keeps_rate_and_sets_burstiness(cv):
    g = _gaps(GammaArrivals(10.0, cv=cv), n=200_000)
    assert g.mean() == pytest.approx(0.1, rel=0.03)
    assert g.std() / g.mean() == pytest.approx(cv, rel=0.05)


def test_fixed_rate_is_exact():
    t = generate_trace(4, FixedRateArrivals(2.0), 10, 5, seed=0, start_s=1.0)
    assert [q.arrival_s for q in t] == [1.5, 2.0, 2.5, 3.0]
    assert t[0] == Request(0, 1.5, 10, 5)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_bad_rate_names_the_field(bad):
    with pytest.raises(ValueError, match="rate_per_s"):
        PoissonArrivals(bad)


def test_bad_cv_names_the_field():
    with pytest.raises(ValueError, match="cv"):
        GammaArrivals(1.0, cv=0)


# --------------------------------------------------------------------------- lengths
def test_length_distributions():
    rng = np.random.default_rng(0)
    assert (Fixed(7).sample(5, rng) == 7).all()
    u = Uniform(3, 5).sample(30_000, rng)
    assert set(np.unique(u)) == {3, 4, 5}
    assert u.mean() == pytest.approx(4.0, rel=0.01)
    ln = LogNormal(1000, 0.5).sample(100_000, rng)
    assert ln.mean() == pytest.approx(1000, rel=0.01)
    assert ln.min() >= 1
    clipped = LogNormal(100, 1.0, min_tokens=50, max_tokens=120).sample(10_000, rng)
    assert clipped.min() == 50 and clipped.max() == 120
    e = Empirical((10, 20, 30), weights=(0, 1, 3)).sample(20_000, rng)
    assert set(np.unique(e)) == {20, 30}
    assert (e == 30).mean() == pytest.approx(0.75, abs=0.02)


@pytest.mark.parametrize("make, field", [(lambda: Fixed(0), "Fixed.tokens"),
                                         (lambda: Uniform(5, 4), "Uniform.high"),
                                         (lambda: LogNormal(0.5), "LogNormal.mean"),
                                         (lambda: Empirical(()), "Empirical.values")])
def test_bad_lengths_name_the_field(make, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        make()


def test_empirical_from_files(tmp_path):
    plain = tmp_path / "lengths.txt"
    plain.write_text("12\n30\n\n7\n")
    assert Empirical.from_file(plain).values == (12, 30, 7)
    table = tmp_path / "t.csv"
    table.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n0,100,5\n1,200,6\n")
    assert Empirical.from_file(table, column="prompt_tokens").values == (100, 200)
    assert Empirical.from_file(table, column="GeneratedTokens").values == (5, 6)
    with pytest.raises(ValueError, match="several columns"):
        Empirical.from_file(table)
    table.write_text("n\n3\nx\n")
    with pytest.raises(ValueError, match=r"row 3, column 'n'"):
        Empirical.from_file(table)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(0, 50), rate=st.floats(0.01, 1e4), cv=st.floats(0.1, 5.0), seed=st.integers(0, 2**32 - 1),
       lo=st.integers(1, 100), span=st.integers(0, 1000))
def test_generated_traces_are_well_formed(n, rate, cv, seed, lo, span):
    t = generate_trace(n, GammaArrivals(rate, cv), Uniform(lo, lo + span), LogNormal(lo + span, 0.8), seed=seed)
    assert len(t) == n
    times = [q.arrival_s for q in t]
    assert times == sorted(times) and all(x >= 0 for x in times)
    assert all(lo <= q.prompt_tokens <= lo + span and q.output_tokens >= 1 for q in t)


# --------------------------------------------------------------------------- trace files
def test_trace_round_trip(tmp_path):
    t = generate_trace(100, PoissonArrivals(3.3), LogNormal(300, 1.0), Uniform(1, 9), seed=2)
    path = tmp_path / "trace.csv"
    write_trace(path, t)
    assert read_trace(path) == t
    assert WorkloadSpec(100, PoissonArrivals(3.3), LogNormal(300, 1.0), Uniform(1, 9)).generate(2) == t


def test_trace_synonyms_extra_columns_and_sorting(tmp_path):
    path = tmp_path / "vidur.csv"
    path.write_text("request_id,arrived_at,num_prefill_tokens,num_decode_tokens,note\n"
                    "a,2.5,100,10,x\nb,0.5,200,20,y\n")
    assert read_trace(path) == [Request(1, 0.5, 200, 20), Request(0, 2.5, 100, 10)]


def test_trace_with_datetimes_is_relative_to_the_first(tmp_path):
    path = tmp_path / "azure.csv"
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                    "2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:50.9951690,396,109\n")
    t = read_trace(path)
    assert [q.arrival_s for q in t] == pytest.approx([0.0, 4.314579])
    assert (t[1].prompt_tokens, t[1].output_tokens) == (396, 109)


@pytest.mark.parametrize("body, message", [
    ("arrival_s,prompt_tokens,output_tokens\n0,10,5\n1,abc,5\n", r"row 2, column 'prompt_tokens'.*'abc'"),
    ("arrival_s,prompt_tokens,output_tokens\n0,10,0\n", r"row 1, column 'output_tokens'.*>= 1"),
    ("arrival_s,prompt_tokens,output_tokens\n-1,10,5\n", r"row 1, column 'arrival_s'"),
    ("arrival_s,prompt_tokens,output_tokens\n0,10\n", r"row 1, column 'output_tokens': missing"),
    ("time,input_len\n0,10\n", r"no column for 'output_tokens'"),
    ("", "empty file"),
])
def test_bad_trace_files_name_row_and_column(tmp_path, body, message):
    path = tmp_path / "bad.csv"
    path.write_text(body)
    with pytest.raises(ValueError, match=message):
        read_trace(path)


# --------------------------------------------------------------------------- use cases
def test_genz_use_cases_have_the_papers_lengths():
    expected = {"question_answering": (1000, 200), "summarization": (15000, 1000), "chatbot": (2048, 128),
                "code_generation": (20000, 50)}
    for name, lengths in expected.items():
        uc = USE_CASES[name]
        assert (uc.prompt_tokens, uc.output_tokens) == lengths
        assert "GenZ" in uc.source
    assert {"retrieval_augmented_generation", "reasoning"} <= set(list_use_cases())
    for uc in USE_CASES.values():
        assert 0 < uc.tpot_slo_s < uc.ttft_slo_s
        assert "assumption" in uc.source


def test_use_case_lookup_and_workloads():
    assert get_use_case("RAG") is USE_CASES["retrieval_augmented_generation"]
    with pytest.raises(ValueError, match="did you mean chatbot"):
        get_use_case("chatbott")
    uc = get_use_case("qa")
    fixed = uc.trace(2.0, 50, seed=1)
    assert {(q.prompt_tokens, q.output_tokens) for q in fixed} == {(1000, 200)}
    varied = uc.trace(2.0, 2000, seed=1, arrival="gamma", cv=2.0, length_sigma=0.5)
    assert np.mean([q.prompt_tokens for q in varied]) == pytest.approx(1000, rel=0.05)
    with pytest.raises(ValueError, match="arrival must be one of"):
        uc.workload(1.0, 10, arrival="weibull")
