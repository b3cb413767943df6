"""Fuzzing the command line and the files it reads: no traceback, no hang, no accepted nonsense, the
right exit code (0 ok, 1 a failed or infeasible run, 2 bad input).

Runs in the normal suite with a few dozen examples per test (the derandomized ``ci`` profile) and,
marked ``fuzz``, as a longer run with fresh random inputs: ``HYPOTHESIS_PROFILE=fuzz python -m pytest
-m fuzz tests/test_fuzz_cli.py``; ``.ci/run`` runs the same length derandomized (``fuzz-ci``), so CI
is deterministic. Each case runs under a
time limit; a failure found by the fuzz run becomes an ``@example`` here.
"""

from __future__ import annotations

import copy
import json
import signal
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from interfaces.cli import main

pytestmark = pytest.mark.fuzz
ROOT = Path(__file__).resolve().parents[1]
FUZZ = settings._current_profile.startswith("fuzz")
N = 500 if FUZZ else 25
LIMIT_S = 30.0
OPTS = settings(max_examples=N, deadline=None, suppress_health_check=list(HealthCheck))

# values that a flag taking a positive integer must refuse (exit 2), and oddities it must survive
_NOT_A_NUMBER = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12).filter(
    lambda t: not t.strip().lstrip("+").isdigit())
BAD_POSITIVE_INT = st.one_of(
    st.sampled_from(["0", "-1", "-999", "abc", "", "1.5", "nan", "inf", "1e400", "0x10", " "]),
    st.integers(max_value=0).map(str),
    st.floats(allow_nan=True, allow_infinity=True).filter(lambda x: x != int(x) if x == x and abs(x) != float("inf")
                                                           else True).map(repr),
    _NOT_A_NUMBER)
BAD_FRACTION = st.one_of(st.sampled_from(["-0.1", "1.5", "nan", "inf", "-inf", "abc", ""]),
                         st.floats(min_value=1.0, exclude_min=True).map(repr), st.floats(max_value=-1e-9).map(repr))
BAD_POSITIVE_FLOAT = st.one_of(st.sampled_from(["0", "-1", "-0.5", "nan", "inf", "-inf", "abc", "", "1e999"]),
                               st.floats(max_value=0.0).map(repr))
BAD_NAME = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
HELP = ("-h", "--help")  # the CLI's help options: as an argument they ask for help, exit 0


class Hang(Exception):
    pass


@contextmanager
def time_limit(seconds: float):
    def raise_hang(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, raise_hang)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


CASES = {"n": 0}


def invoke(args: list[str], cwd: Path | None = None):
    """Run ``genz ARGS`` in-process; fail on a traceback or a hang, return the click result."""
    CASES["n"] += 1
    runner = CliRunner()
    with time_limit(LIMIT_S):
        if cwd is not None:
            with runner.isolated_filesystem(temp_dir=cwd):
                r = runner.invoke(main, args, catch_exceptions=True)
        else:
            r = runner.invoke(main, args, catch_exceptions=True)
    if isinstance(r.exception, Hang):
        pytest.fail(f"genz {' '.join(args)!r} hung (> {LIMIT_S} s)")
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        pytest.fail(f"genz {' '.join(args)!r} raised {type(r.exception).__name__}: {r.exception}")
    assert r.exit_code in (0, 1, 2), (args, r.exit_code, r.output)
    assert "Traceback" not in r.output, (args, r.output)
    return r


# ---- flags -----------------------------------------------------------------------------------------------
PREDICT_INTS = ["--batch", "--prompt", "--output", "--tp", "--pp", "--ep", "--dp"]


@OPTS
@given(flag=st.sampled_from(PREDICT_INTS), value=BAD_POSITIVE_INT)
@example(flag="--prompt", value="10000000")  # beyond the model's context: refused unless asked for
def test_predict_refuses_bad_numbers(flag, value):
    r = invoke(["predict", flag, value, "--json"])
    assert r.exit_code == 2, (flag, value, r.output)


@OPTS
@given(flag=st.sampled_from(["--model", "--hardware", "--precision", "--runtime", "--profile"]), value=BAD_NAME)
@example(flag="--model", value="")
@example(flag="--model", value="/")
@example(flag="--profile", value="")
@example(flag="--hardware", value="x.json")
def test_predict_names_are_known_or_refused(flag, value):
    r = invoke(["predict", flag, value, "--json"])
    assert r.exit_code in (0, 2)
    if r.exit_code == 0:  # accepted: it really was a valid name (case, spaces)
        assert json.loads(r.output)["tpot_s"] > 0


@OPTS
@given(flag=st.sampled_from(["--batch", "--prompt", "--output", "--tp", "--pp", "--ep"]),
       value=st.one_of(BAD_POSITIVE_INT, st.sampled_from(["1:1000000000:1", "0:64:x2", "1:64:x1", "5:1:1",
                                                           "1:64:x0.5", "1:2:3:4"])))
def test_sweep_refuses_bad_axes_before_any_work(flag, value, tmp_path_factory):
    d = tmp_path_factory.mktemp("sweep")
    r = invoke(["sweep", flag, value, "--out", str(d / "s.csv"), "--json"])
    assert r.exit_code == 2, (flag, value, r.output)
    assert not (d / "s.csv").exists() and not (d / "s.csv.partial").exists()


@OPTS
@given(what=st.one_of(st.sampled_from(["models", "hardware", "runtimes", "precisions"]), BAD_NAME))
@example(what="--help")  # found by the CI fuzz run: a help request is valid input (exit 0), not a bad name
@example(what="-h")
def test_list(what):
    r = invoke(["list", what, "--json"])
    valid = what in ("models", "hardware", "runtimes", "precisions") or what in HELP
    assert r.exit_code == (0 if valid else 2), (what, r.output)


PLACE_FLAGS = {"--experts": BAD_POSITIVE_INT, "--tokens": BAD_POSITIVE_INT, "--layers": BAD_POSITIVE_INT,
               "--top-k": BAD_POSITIVE_INT, "--nodes": BAD_POSITIVE_INT, "--gpus-per-node": BAD_POSITIVE_INT,
               "--threads": BAD_POSITIVE_INT, "--time-limit": BAD_POSITIVE_FLOAT, "--holdout": BAD_FRACTION,
               "--synthetic": BAD_FRACTION,
               "--skew": st.one_of(st.sampled_from(["-1", "nan", "inf", "11", "abc", ""]),
                                   st.floats(max_value=-1e-9).map(repr), st.floats(min_value=10.0, exclude_min=True).map(repr))}


@OPTS
@given(data=st.data(), flag=st.sampled_from(sorted(PLACE_FLAGS)))
@example(data=None, flag="--experts")  # 100000 experts once tried to allocate 522 GiB
def test_place_refuses_bad_sizes(data, flag):
    value = "100000" if data is None else data.draw(PLACE_FLAGS[flag])
    base = {"--synthetic": "0.9", "--experts": "8", "--layers": "2", "--tokens": "100", "--time-limit": "2",
            "--gpus-per-node": "4"}
    base[flag] = value
    r = invoke(["place", *[x for kv in base.items() for x in kv], "--json"])
    assert r.exit_code == 2, (flag, value, r.output)


@OPTS
@given(kind=st.sampled_from(["sweep", "simulate", "auto", "predict", "plan", "validate"]),
       content=st.one_of(st.binary(max_size=200), st.sampled_from([b"{", b"[]", b"{}", b'{"genz_result": "x"}',
                                                                   b"a,b\n1,2\n", b'{"genz_result": "sweep"}'])),
       suffix=st.sampled_from([".json", ".csv", ".parquet", ".txt"]))
def test_report_on_damaged_files_is_bad_input(kind, content, suffix, tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    p = d / f"in{suffix}"
    p.write_bytes(content)
    r = invoke(["report", kind, "--in", str(p), "--out", str(d / "r.html")])
    assert r.exit_code == 2, (kind, content, r.output)
    assert not (d / "r.html").exists()


@OPTS
@given(path=st.sampled_from(["/nonexistent", "/", "validation", "docs"]), cmd=st.sampled_from(["validate", "calibrate"]))
def test_validate_and_calibrate_need_a_dataset(path, cmd, tmp_path_factory):
    d = tmp_path_factory.mktemp("val")
    args = [cmd, "--data", path] + (["--out", str(d / "p.json")] if cmd == "calibrate" else [])
    r = invoke(args)
    assert r.exit_code == 2, (cmd, path, r.output)


# ---- files -----------------------------------------------------------------------------------------------
LLAMA = json.loads((ROOT / "workloads/models/llama-3-8b.json").read_text())
MIXTRAL = json.loads((ROOT / "workloads/models/mixtral-8x7b.json").read_text())
H100 = json.loads((ROOT / "hwmodels/data/gpus/h100-sxm.json").read_text())
H200_PROFILE = json.loads((ROOT / "hwmodels/data/profiles/h200-sxm.json").read_text())
JUNK = st.one_of(st.integers(-10**6, 0), st.sampled_from(["32", "", None, [], {}, True, float("nan"), float("inf"),
                                                          -float("inf"), 1e300, -1.5]))


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, allow_nan=True))


@OPTS
@given(base=st.sampled_from(["llama", "mixtral"]), key=st.sampled_from(
    ["hidden_size", "num_attention_heads", "num_key_value_heads", "num_hidden_layers", "intermediate_size",
     "vocab_size", "head_dim", "num_local_experts", "num_experts_per_tok", "max_position_embeddings",
     "tie_word_embeddings"]), value=JUNK)
@example(base="llama", key="num_attention_heads", value=0)
def test_model_files_with_bad_fields_are_bad_input(base, key, value, tmp_path_factory):
    cfg = copy.deepcopy(LLAMA if base == "llama" else MIXTRAL)
    cfg[key] = value
    p = tmp_path_factory.mktemp("model") / "m.json"
    _write_json(p, cfg)
    r = invoke(["predict", "--model", str(p), "--json"])
    valid = ((value is None and key in ("num_key_value_heads", "head_dim", "max_position_embeddings",
                                        "intermediate_size", "vocab_size", "num_experts_per_tok",
                                        "tie_word_embeddings", "num_local_experts"))  # null: the HF default
             or (key == "num_local_experts" and value == 0)  # no experts: a dense model
             or (key == "num_experts_per_tok" and base == "llama")  # ignored without experts
             or (key == "tie_word_embeddings" and value is True))
    if valid:
        assert r.exit_code in (0, 2)
    else:
        assert r.exit_code == 2, (key, value, r.output)


@OPTS
@given(path=st.sampled_from([("memory_bandwidth",), ("memory_bytes",), ("sm_count",), ("clock_hz",),
                             ("power_limit_w",), ("idle_power_w",), ("peak_flops", "bf16"),
                             ("energy", "pj_per_byte", "hbm")]),
       value=st.one_of(st.sampled_from([0, -1.0, "fast", None, [], True, float("nan"), float("inf")]),
                       st.just("drop-source")))
def test_gpu_files_with_bad_numbers_are_bad_input(path, value, tmp_path_factory):
    spec = copy.deepcopy(H100)
    spec["aliases"] = []
    node = spec
    for k in path:
        node = node[k]
    if value == "drop-source":
        node.pop("source")
    else:
        node["value"] = value
    if value == 0 and path in (("energy", "pj_per_byte", "hbm"), ("idle_power_w",)):
        return  # zero energy per byte or zero idle power: strange, but valid assumptions
    p = tmp_path_factory.mktemp("gpu") / "gpu.json"
    _write_json(p, spec)
    r = invoke(["predict", "--hardware", str(p), "--json"])
    assert r.exit_code == 2, (path, value, r.output)


@OPTS
@given(key=st.sampled_from(["memory_eff", "compute_eff", "floor_s", "attn_tile_rows", "idle_power_w", "basis",
                            "expected_error", "overlap_p", "name"]),
       value=st.sampled_from(["x", -1, None, [], {"bf16": "a"}, float("nan"), 99.0, True]))
def test_profile_files_with_bad_fields_are_bad_input(key, value, tmp_path_factory):
    prof = copy.deepcopy(H200_PROFILE)
    prof[key] = value
    if (key == "idle_power_w" and value in (None, 99.0)) or (key == "name" and value == "x") or (
            key in ("attn_tile_rows", "overlap_p") and value == 99.0):
        return  # valid: null idle power means the spec's; 99 W; any name; any tile size or overlap exponent
    p = tmp_path_factory.mktemp("prof") / "p.json"
    _write_json(p, prof)
    r = invoke(["predict", "--profile", str(p), "--json"])
    assert r.exit_code == 2, (key, value, r.output)


# ---- serving, search and planning -------------------------------------------------------------------------
SIMULATE_INTS = ["--requests", "--replicas", "--tp", "--pp", "--ep", "--max-num-seqs", "--max-num-batched-tokens",
                 "--block-size", "--batch-size", "--prefill-replicas", "--link-count", "--max-requests"]
SIMULATE_FLOATS = ["--rate", "--cv", "--slo-ttft", "--slo-tpot"]


@OPTS
@given(flag=st.sampled_from(SIMULATE_INTS), value=BAD_POSITIVE_INT)
@example(flag="--requests", value="1000000000")  # once generated a billion requests up front
@example(flag="--replicas", value="100000")
def test_simulate_refuses_bad_numbers(flag, value):
    r = invoke(["simulate", flag, value, "--requests" if flag != "--requests" else "--seed", "5"])
    assert r.exit_code == 2, (flag, value, r.output)


@OPTS
@given(content=st.one_of(st.binary(max_size=120), st.sampled_from([b"{}", b"[]", b'{"cluster": {}, "methods": {}}',
                                                                  b'{"cluster": {"nodes": 2, "gpus_per_node": 4}, '
                                                                  b'"methods": {"ilp": {"cross_gpu_hops_per_token_layer": '
                                                                  b'-1, "inter_node_hops_per_token_layer": 0}}}'])))
def test_simulate_refuses_damaged_placement_files(content, tmp_path_factory):
    f = tmp_path_factory.mktemp("pl") / "place.json"
    f.write_bytes(content)
    r = invoke(["simulate", "--model", "mixtral-8x7b", "--ep", "8", "--placement", str(f), "--requests", "5"])
    assert r.exit_code == 2 and "placement" in r.output, r.output


@OPTS
@given(flag=st.sampled_from(SIMULATE_FLOATS), value=BAD_POSITIVE_FLOAT)
@example(flag="--rate", value="1e-300")  # once gave TTFT 0.0
def test_simulate_refuses_bad_rates_and_slos(flag, value):
    r = invoke(["simulate", flag, value, "--requests", "5"])
    assert r.exit_code == 2, (flag, value, r.output)


_SCENARIO_KEYS = st.sampled_from(["replicas", "tp", "seed", "window_s", "router", "scheduler", "workload", "slo",
                                  "disaggregation", "memo", "saturation", "model", "hardware", "name", "placement"])
_JUNK = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                  st.text(max_size=20), st.lists(st.integers(), max_size=3),
                  st.dictionaries(st.text(max_size=8), st.integers(), max_size=3))


@OPTS
@given(key=_SCENARIO_KEYS, value=_JUNK)
@example(key="window_s", value=1e-9)  # once cut a run into a billion windows
@example(key="tp", value=1.8446744073709552e+19)  # once overflowed numpy (TypeError) instead of a named error
@example(key="placement", value={"file": "nowhere.json"})
@example(key="placement", value=3)
def test_scenario_files_with_junk_fields_fail_cleanly(key, value, tmp_path_factory):
    import yaml

    d = tmp_path_factory.mktemp("sc")
    f = d / "s.yaml"
    f.write_text(yaml.safe_dump({key: value, "workload": {"requests": 5}} if key != "workload" else {key: value}))
    r = invoke(["simulate", "--scenario", str(f), "--json"])
    assert r.exit_code in (0, 1, 2)


TUNE_LISTS = ["--max-num-seqs", "--max-num-batched-tokens", "--block-size", "--tp", "--pp", "--ep", "--replicas",
              "--batch-size"]


@OPTS
@given(flag=st.sampled_from(TUNE_LISTS), value=BAD_POSITIVE_INT)
def test_tune_refuses_bad_knob_values(flag, value):
    r = invoke(["tune", flag, value, "--requests", "5", "--sampler", "grid", "--workers", "1"])
    assert r.exit_code == 2, (flag, value, r.output)


@OPTS
@given(flag=st.sampled_from(["--requests", "--trials", "--batch", "--workers"]), value=BAD_POSITIVE_INT)
@example(flag="--trials", value="10000000")
def test_tune_refuses_bad_sizes(flag, value):
    args = ["tune", flag, value, "--sampler", "grid"] + (["--requests", "5"] if flag != "--requests" else [])
    r = invoke(args)
    assert r.exit_code == 2, (flag, value, r.output)


@OPTS
@given(flag=st.sampled_from(["--requests", "--confirm-requests", "--tp", "--pp", "--gpus-per-server",
                             "--servers-per-rack"]), value=BAD_POSITIVE_INT)
@example(flag="--confirm-requests", value="0")  # was silently replaced by --requests
def test_plan_refuses_bad_numbers(flag, value):
    r = invoke(["plan", "--workload", "chatbot=3", flag, value])
    assert r.exit_code == 2, (flag, value, r.output)


@OPTS
@given(text=st.one_of(st.text(max_size=60), st.sampled_from(["chatbot=", "=3", "chatbot=-1", "chatbot=nan",
                                                             "nosuch=3", "chatbot=1e999", "chatbot=3,chatbot=4"])))
def test_plan_workloads_are_parsed_or_refused(text):
    r = invoke(["plan", "--workload", text, "--no-confirm", "--requests", "5", "--hardware", "h100", "--tp", "1"])
    assert r.exit_code in (0, 1, 2)


@pytest.mark.skipif(not FUZZ, reason="counts the cases of the long fuzz run (HYPOTHESIS_PROFILE=fuzz)")
def test_the_fuzz_run_tried_enough_bad_inputs():
    assert CASES["n"] >= 500, f"only {CASES['n']} cases ran"
