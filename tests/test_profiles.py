"""Profiles with a basis: transfer rules, the prior ratio rule, user profiles, error bands, dtypes."""

import json
import math
from dataclasses import replace

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import genz
from genz.predict import evaluate
from hwmodels.gpu import GPU, EfficiencyProfile
from hwmodels.profiles import apply_published, resolve_profile, transfer
from hwmodels.registry import load_device
from hwmodels.spec import list_gpus, load_gpu
from interfaces.cli import main
from workloads import Precision, load_model

H200 = load_device("h200").profile


def test_every_shipped_gpu_has_a_profile_with_a_basis_and_error_bands():
    for name in list_gpus():
        p = load_device(name).profile
        assert p.basis in ("measured", "transferred", "prior"), name
        assert {"tpot", "ttft", "energy"} <= set(p.expected_error), name
        assert all(f"expected_error.{q}" in p.sources for q in p.expected_error), name
        assert p.memory_eff < 1.0 and all(v <= 1.0 for v in p.compute_eff.values()), name
    assert load_device("h100", "datasheet").profile.basis == "datasheet"


def test_transfer_keeps_fractions_and_seconds_and_scales_clock_and_sm_tied_costs():
    src, dst = load_gpu("h200"), load_gpu("h100-pcie")
    t = transfer(H200, src, dst)
    assert t.basis == "transferred" and t.transferred_from == "h200-sxm" and t.architecture == "hopper"
    assert t.compute_eff == H200.compute_eff and t.floor_s == H200.floor_s
    for f in ("memory_eff", "attention_eff", "attn_decode_eff", "write_eff", "graph_gap_s", "eager_launch_s",
              "gemm_min_rows", "attn_tile_rows", "overlap_p"):
        assert getattr(t, f) == getattr(H200, f), f
    assert t.attn_cta_s == pytest.approx(H200.attn_cta_s * 1.98e9 / 1.755e9)
    assert t.attn_exp_rate == pytest.approx(H200.attn_exp_rate * (114 * 1.755e9) / (132 * 1.98e9))
    assert t.idle_power_w == pytest.approx(H200.idle_power_w * 350 / 700)
    assert t.pj_per_flop == H200.pj_per_flop
    assert "transferred from h200-sxm" in t.sources["memory_eff"]


def test_the_shipped_h100_is_the_h200_profile_transferred():
    h100 = load_device("h100").profile
    assert h100.basis == "transferred"
    assert h100.compute_eff == H200.compute_eff and h100.memory_eff == H200.memory_eff


def test_h100_is_slower_than_h200_on_llama_3_8b():
    a, b = genz.predict("llama-3-8b", "h100"), genz.predict("llama-3-8b", "h200")
    assert a.tpot_s > b.tpot_s and a.ttft_s >= b.ttft_s
    # decode is weight streaming: the gap follows the bandwidth ratio 4.8 / 3.35 within the fixed costs
    assert 1.15 < a.tpot_s / b.tpot_s < 4.8 / 3.35


def test_prior_ratio_rule_and_cap(tmp_path, monkeypatch):
    recipe = {"name": "a100-test-prior", "basis": "prior", "architecture": "ampere", "transfer_from": "h200-sxm",
              "published": {
                  "gemm_best_eff.bf16": {"value": 0.869, "reference": 0.803, "source": "s1", "reference_source": "r1"},
                  "hbm_bw_eff": {"value": 0.80, "reference": 0.884, "source": "s2", "reference_source": "r2"},
                  "attention_fwd_eff.bf16": {"value": 0.9, "reference": 0.3, "source": "s3", "reference_source": "r3"},
                  "idle_power_w": {"value": 55.0, "source": "s4"}},
              "expected_error": {q: {"value": 0.3, "source": "stated"} for q in ("tpot", "ttft", "energy")},
              "checks": []}
    (tmp_path / "a100-80gb-sxm.json").write_text(json.dumps(recipe))
    monkeypatch.setenv("GENZ_PROFILE_PATH", str(tmp_path))
    p = load_device("a100-80gb-sxm").profile
    assert p.basis == "prior" and p.name == "a100-test-prior"
    r_bf16 = 0.869 / 0.803
    assert p.compute_eff["bf16"] == pytest.approx(H200.compute_eff["bf16"] * r_bf16)
    assert p.compute_eff["fp16"] == pytest.approx(H200.compute_eff["fp16"] * r_bf16)  # bf16 ratio, named
    assert "assumption" in p.sources["compute_eff.fp16"]
    assert p.memory_eff == pytest.approx(H200.memory_eff * 0.80 / 0.884)
    assert p.attention_eff == 1.0  # 3x the H200's fraction is capped at the datasheet
    assert p.idle_power_w == 55.0 and p.sources["idle_power_w"].startswith("published: s4")
    assert p.expected_error["tpot"] == 0.3
    assert "across architectures" in p.sources["graph_gap_s"]


def test_apply_published_scales_only_what_a_figure_informs():
    base = transfer(H200, load_gpu("h200"), load_gpu("b200"))
    p = apply_published(base, {"hbm_bw_eff": {"value": 0.85, "reference": 0.884, "source": "s",
                                              "reference_source": "r"}}, H200)
    assert p.compute_eff == base.compute_eff and p.attention_eff == base.attention_eff
    assert p.memory_eff == pytest.approx(H200.memory_eff * 0.85 / 0.884)


def test_transferred_needs_the_same_architecture(tmp_path, monkeypatch):
    bad = {"name": "x", "basis": "transferred", "architecture": "ampere", "transfer_from": "h200-sxm"}
    (tmp_path / "a100-80gb-sxm.json").write_text(json.dumps(bad))
    monkeypatch.setenv("GENZ_PROFILE_PATH", str(tmp_path))
    with pytest.raises(ValueError, match="same architecture"):
        load_device("a100-80gb-sxm")


def test_a_users_calibration_wins_and_feeds_the_transferred_profiles(tmp_path, monkeypatch):
    mine = replace(H200, name="my-h200", memory_eff=0.5, basis="measured")
    (tmp_path / "h200-sxm.json").write_text(mine.to_json())
    before_h100 = genz.predict("llama-3-8b", "h100").tpot_s
    monkeypatch.setenv("GENZ_PROFILE_PATH", str(tmp_path))
    assert load_device("h200").profile.name == "my-h200"
    h100 = load_device("h100").profile
    assert h100.memory_eff == 0.5 and h100.transferred_from == "h200-sxm"
    assert genz.predict("llama-3-8b", "h100").tpot_s > 1.4 * before_h100
    # and by name, from the same directory
    assert resolve_profile(load_gpu("h100"), "h200-sxm").name == "my-h200"


def test_profile_names_that_do_not_exist_are_clear_errors():
    for bad in ("", "nosuch", "missing.json"):
        with pytest.raises(ValueError, match="profile"):
            load_device("h100", bad)
    r = CliRunner().invoke(main, ["predict", "--profile", ""])
    assert r.exit_code == 2 and "profile" in r.output and "Traceback" not in r.output


def test_measured_bands_match_the_validation_residuals_of_the_shipped_dataset():
    from validation.bands import error_bands
    from validation.report import validate

    bands = error_bands(validate("validation/data/h200-2026-11-28").rows)
    assert {q: b["value"] for q, b in bands.items()} == H200.expected_error


def test_transferred_bands_are_wider_than_the_measured_ones():
    for name in ("h100-sxm", "h100-pcie"):
        p = load_device(name).profile
        for q in ("tpot", "ttft", "energy"):
            assert p.expected_error[q] >= H200.expected_error[q]


def test_a_gpu_without_the_dtype_says_what_it_supports():
    with pytest.raises(ValueError, match=r"v100s has no bf16 compute.*fp16"):
        genz.predict("llama-3-8b", "v100s", precision="bf16")
    with pytest.raises(ValueError, match="no fp8"):
        genz.predict("llama-3-8b", "a100", precision="fp8")
    assert genz.predict("llama-3-8b", "v100s", precision="fp16").tpot_s > 0
    assert genz.predict("llama-3-8b", "v100s", precision="w4a16").tpot_s > 0  # 16-bit activations run as fp16
    r = CliRunner().invoke(main, ["predict", "--hardware", "v100s"])
    assert r.exit_code == 2 and "fp16" in r.output


def test_every_answer_states_its_basis():
    p = genz.predict("llama-3-8b", "h100")
    assert p.profile_basis == "transferred" and p.expected_error["tpot"] >= 0.05
    assert p.basis.startswith("basis: transferred from h200-sxm")
    d = json.loads(CliRunner().invoke(main, ["predict", "--hardware", "h100", "--json"]).output)
    assert d["profile_basis"] == "transferred" and d["expected_error"]["tpot"] == p.expected_error["tpot"]
    r = CliRunner().invoke(main, ["predict"])
    assert "basis: measured" in r.output and "expected error" in r.output
    items = json.loads(CliRunner().invoke(main, ["list", "hardware", "--json"]).output)
    names = [i["name"] for i in items]
    assert len(names) == len(set(names)) and "h100" not in names  # aliases folded into their device
    h100 = next(i for i in items if i["name"] == "h100-sxm")
    assert "h100" in h100["aliases"] and h100["profile_basis"] == "transferred"
    assert h100["profile_sources"]["memory_eff"] and h100["spec_sources"]["memory_bandwidth"]


# ---- ordering, as properties over the catalogue ----------------------------------------------------------
WORK = dict(model=st.sampled_from(["llama-3-8b", "llama-3.2-1b", "mistral-7b"]),
            batch=st.sampled_from([1, 4, 32, 128]), prompt=st.sampled_from([128, 1024, 4096]),
            output=st.sampled_from([2, 64, 512]), precision=st.sampled_from(["fp16", "w4a16", "int8"]))


def _times(model, hw, batch, prompt, output, precision):
    dev = load_device(hw)
    r = evaluate(load_model(model), dev, Precision.parse(precision), batch, prompt, output)
    return float(r["ttft_s"][0]), float(r["tpot_s"][0])


def _dominates(a, b) -> bool:
    """``a`` has at least ``b``'s bandwidth and every dense peak ``b`` has."""
    sa, sb = load_gpu(a), load_gpu(b)
    return sa.memory_bandwidth >= sb.memory_bandwidth and all(
        d in sa.peak_flops and sa.peak_flops[d] >= v for d, v in sb.peak_flops.items())


PAIRS = [(a, b) for a in list_gpus() for b in list_gpus()
         if a != b and load_gpu(a).architecture == load_gpu(b).architecture and _dominates(a, b)]


def test_there_are_same_family_pairs_to_compare():
    assert ("h200-sxm", "h100-sxm") in PAIRS and ("a100-80gb-sxm", "a100-40gb-sxm") in PAIRS


@settings(max_examples=30, deadline=None)
@given(pair=st.sampled_from(PAIRS), **WORK)
def test_within_a_family_more_bandwidth_and_compute_is_never_slower(pair, model, batch, prompt, output, precision):
    fast, slow = pair
    if precision == "int8" and "int8" not in load_gpu(slow).peak_flops:
        precision = "fp16"
    tf, ts = _times(model, fast, batch, prompt, output, precision), _times(model, slow, batch, prompt, output, precision)
    assert tf[0] <= ts[0] * (1 + 1e-9) and tf[1] <= ts[1] * (1 + 1e-9)


@settings(max_examples=30, deadline=None)
@given(**WORK)
def test_h200_not_slower_than_h100_and_b200_not_slower_than_h200(model, batch, prompt, output, precision):
    h100, h200, b200 = (_times(model, hw, batch, prompt, output, precision) for hw in ("h100", "h200", "b200"))
    assert h200[0] <= h100[0] * (1 + 1e-9) and h200[1] <= h100[1] * (1 + 1e-9)
    assert b200[0] <= h200[0] * (1 + 1e-9) and b200[1] <= h200[1] * (1 + 1e-9)


@settings(max_examples=30, deadline=None)
@given(factor=st.floats(1.0, 4.0), hw=st.sampled_from(list_gpus()), **WORK)
def test_more_bandwidth_never_raises_decode_time(factor, hw, model, batch, prompt, output, precision):
    dev = load_device(hw)
    if precision == "int8" and "int8" not in dev.spec.peak_flops:
        precision = "fp16"
    faster = GPU(replace(dev.spec, memory_bandwidth=dev.spec.memory_bandwidth * factor), dev.profile)
    m, prec = load_model(model), Precision.parse(precision)
    a = evaluate(m, dev, prec, batch, prompt, output)["tpot_s"][0]
    b = evaluate(m, faster, prec, batch, prompt, output)["tpot_s"][0]
    assert b <= a * (1 + 1e-9) and math.isfinite(b)


def test_a_profile_file_round_trips_with_its_basis_and_bands():
    p = EfficiencyProfile.from_dict(json.loads(H200.to_json()))
    assert p == H200 and p.basis == "measured" and p.expected_error == H200.expected_error


#: Prior GPUs for which no public measurement to check against was found (docs/hardware-profiles.md
#: says so next to their rows); a check added to their profile file takes them off this list.
UNCHECKED = {"l40s", "v100-sxm2", "v100s"}


def test_every_prior_gpu_has_public_checks_and_they_land_within_its_band():
    from validation.prior_checks import run_checks

    priors = [g for g in list_gpus() if load_device(g).profile.basis == "prior"]
    results = run_checks(priors + ["h100-sxm"])
    for g in priors:
        mine = [r for r in results if r.hardware == g]
        if g in UNCHECKED:
            assert not mine, f"{g} has checks now: take it off UNCHECKED"
            continue
        assert mine, f"{g}: a prior needs at least one public check"
        assert all(r.within for r in mine), [(r.what, round(r.error_pct, 1), r.band_pct) for r in mine]
        # every parameter says where it came from: a published figure, a named assumption, or the spec file
        for key, src in load_device(g).profile.sources.items():
            assert src.startswith("published:") or "assumption" in src or "spec file" in src, (g, key, src)
