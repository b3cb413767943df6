"""The collector (validation.collect): its dry run on the CPU, checked against the README's formulas."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from validation.collect.kernels import attention_bytes, attention_flops, gemm_bytes
from validation.collect.plan import AttentionPoint, dry_run_plan, tiny_model
from validation.dataset import DATA_DIR, FILES, NOISE_KEYS, load_dataset, noise_floor

H200 = DATA_DIR / "h200-2026-11-28"
ROOT = Path(__file__).resolve().parents[1]
# bytes per element (inputs, output) by dtype, from the README: fp8 has bf16 output, int8 int32 output
ELEMENT = {"bf16": (2, 2), "fp16": (2, 2), "tf32": (4, 4), "fp8": (1, 2), "int8": (1, 4)}


def _hand_params(m) -> int:
    """Weights of every GEMM and embedding of a Llama/Mixtral-style model (norm gains excluded)."""
    q, kv = m.heads * m.head_dim, m.kv_heads * m.head_dim
    attn = m.hidden * (q + 2 * kv) + q * m.hidden
    mlp = m.hidden * m.experts + m.experts * 3 * m.hidden * m.expert_intermediate if m.is_moe else 3 * m.hidden * m.intermediate
    embeddings = m.vocab * m.hidden * (1 if m.tied_embeddings else 2)
    return embeddings + m.layers * (attn + mlp)


@pytest.fixture(scope="module")
def dry(tmp_path_factory) -> Path:
    pytest.importorskip("torch")
    out = tmp_path_factory.mktemp("dry") / "ds"
    proc = subprocess.run([sys.executable, "-m", "validation.collect", "--out", str(out), "--dry-run"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out


# ---------------------------------------------------------------------------------------- formulas vs. shipped data
def test_collector_formulas_reproduce_every_shipped_row():
    """No torch needed: the collector's FLOP/byte formulas give the shipped H200 numbers exactly."""
    ds = load_dataset(H200)
    for row in ds.gemm.itertuples():
        assert gemm_bytes(row.dtype, row.m, row.n, row.k) == row.bytes
    for row in ds.attention.itertuples():
        p = AttentionPoint(row.phase, row.batch, row.heads, row.kv_heads, row.head_dim, row.kv_len)
        assert attention_flops(p) == row.flops
        assert attention_bytes(p) == row.bytes
    # the shipped attention bytes include the output written once: Q + K + V + O, e.g. decode B=1 H=32/8 L=512
    assert (8192 + 2 * 1048576 + 8192) == ds.attention.query("phase == 'decode'").iloc[0]["bytes"]


def test_torch_missing_gives_a_clear_message(monkeypatch):
    from validation.collect.bench import import_torch
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ValueError, match=r"needs PyTorch.*pip install"):
        import_torch()


# ---------------------------------------------------------------------------------------- dry run
def test_dry_run_loads_cleanly_in_the_shipped_schema(dry):
    ds = load_dataset(dry)
    assert set(ds.tables) == {"membw", "gemm", "attention", "e2e"}
    for name in ds.tables:
        with (dry / FILES[name]).open() as fh, (H200 / FILES[name]).open() as ref:
            assert next(csv.reader(fh)) == next(csv.reader(ref)), name
    # a torch build may refuse fp8/int8 on the CPU: such rows carry `error` and are reported as rejected
    assert all(r.file == "gemm.csv" and r.column == "error" for r in ds.rejected)
    plan = dry_run_plan()
    assert len(ds.gemm) + len(ds.rejected) == len(plan.gemm)
    assert {"bf16", "fp16", "tf32"} <= set(ds.gemm["dtype"])
    assert len(ds.attention) == len(plan.attention)
    assert len(ds.membw) == 3 * len(plan.membw_sizes)
    assert len(ds.e2e) == len(plan.e2e) * len(plan.models)
    assert ds.runs == ["run1"]
    assert ds.device_name.startswith("cpu") and ds.env["dry_run"] is True
    for df in ds.tables.values():  # no graphs, no NVML in a dry run
        assert set(df["timing"]) == {"eager"}
        assert df["energy_j"].isna().all() and df["power_w"].isna().all()
        assert (df["time_ms_min"] <= df["time_ms"]).all() and (df["time_ms"] <= df["time_ms_max"]).all()


def test_dry_run_gemm_and_membw_match_hand_formulas(dry):
    ds = load_dataset(dry)
    g = ds.gemm
    assert (g["flops"] == 2 * g["m"] * g["n"] * g["k"]).all()
    for row in g.itertuples():
        a, o = ELEMENT[row.dtype]
        assert row.bytes == (row.m * row.k + row.n * row.k) * a + row.m * row.n * o
    assert g["tflops"].to_numpy() == pytest.approx((g["flops"] / (g["time_ms"] * 1e-3) / 1e12).to_numpy())
    assert g["gbps"].to_numpy() == pytest.approx((g["bytes"] / (g["time_ms"] * 1e-3) / 1e9).to_numpy())
    row = g[(g["dtype"] == "bf16") & (g["m"] == 32)].iloc[0]  # 32 x 96 x 64 by hand
    assert (row.flops, row.bytes) == (393216.0, (32 * 64 + 96 * 64) * 2 + 32 * 96 * 2)
    mb = ds.membw
    factor = mb["op"].map({"copy": 2, "read_sum": 1, "write_fill": 1})
    assert (mb["bytes_moved"] == factor * mb["size_bytes"]).all()
    assert set(mb["size_bytes"]) == {65536, 1048576}
    assert mb["gbps"].to_numpy() == pytest.approx((mb["bytes_moved"] / (mb["time_ms"] * 1e-3) / 1e9).to_numpy())


def test_dry_run_attention_matches_hand_formulas(dry):
    a = load_dataset(dry).attention
    two = 2  # bf16 bytes
    for row in a.itertuples():
        if row.phase == "prefill":
            assert row.causal and row.q_len == row.kv_len
            assert row.flops == 4 * row.batch * row.heads * row.q_len**2 * row.head_dim / 2
        else:
            assert not row.causal and row.q_len == 1
            assert row.flops == 4 * row.batch * row.heads * row.kv_len * row.head_dim
        q_and_o = 2 * row.batch * row.heads * row.q_len * row.head_dim
        k_and_v = 2 * row.batch * row.kv_heads * row.kv_len * row.head_dim
        assert row.bytes == (q_and_o + k_and_v) * two
    first = a.loc[2]  # prefill B=1 H=4 kv=2 d=16 S=32, by hand
    assert (first.flops, first.bytes) == (4 * 4 * 32 * 32 * 16 / 2, (2 * 4 * 32 * 16 + 2 * 2 * 32 * 16) * 2)


def test_dry_run_e2e_matches_hand_formulas(dry):
    e = load_dataset(dry).e2e
    prefill, decode = e[e["phase"] == "prefill"], e[e["phase"] == "decode"]
    assert (prefill["ctx_len"] == 0).all() and (decode["prompt_len"] == 0).all()
    assert prefill["tokens_per_s"].to_numpy() == pytest.approx(
        (prefill["batch"] * prefill["prompt_len"] / (prefill["time_ms"] * 1e-3)).to_numpy())
    assert decode["tokens_per_s"].to_numpy() == pytest.approx((decode["batch"] / (decode["time_ms"] * 1e-3)).to_numpy())
    for name in ("llama-3.2-1b", "mixtral-8x7b"):
        tiny = tiny_model(name)
        rows = e[e["model"] == f"{name}-tiny"]
        assert len(rows) == 4
        assert set(rows["params"]) == {_hand_params(tiny)}
    # llama-3.2-1b-tiny: tied 256 x 64 embedding; 2 layers of QKV 64x128, O 64x64, gate-up 64x192, down 96x64
    assert set(e[e["model"] == "llama-3.2-1b-tiny"]["params"]) == {256 * 64 + 2 * (64 * 128 + 64 * 64 + 3 * 64 * 96)}
    assert e[e["model"] == "llama-3.2-1b-tiny"]["routing"].isna().all()
    assert set(e[e["model"] == "mixtral-8x7b-tiny"]["routing"]) == {"router"}


def test_dry_run_writes_env_and_readme(dry):
    readme = (dry / "README.md").read_text()
    assert "python -m validation.collect --out" in readme and "--dry-run" in readme
    assert "Dry run" in readme and "PyTorch" in readme
    env = load_dataset(dry).env
    assert env["torch"] and env["runs"][0]["mode"] == "dry-run" and "python" in env


def test_refuses_to_overwrite_and_appends_a_second_run(dry, tmp_path):
    from validation.collect.__main__ import main
    out = tmp_path / "two"
    assert main(["--out", str(out), "--dry-run", "--only", "gemm,attention"]) == 0
    assert main(["--out", str(out), "--dry-run", "--only", "gemm,attention"]) == 2  # exists, no --append
    assert main(["--out", str(out), "--dry-run", "--only", "gemm,attention", "--run", "run2", "--append"]) == 0
    ds = load_dataset(out)
    assert ds.runs == ["run1", "run2"] and ds.membw is None
    nf = noise_floor(ds.attention, NOISE_KEYS["attention"])
    assert nf.pairs == len(dry_run_plan().attention) and nf.median >= 0
    assert [r["run"] for r in ds.env["runs"]] == ["run1", "run2"]
    assert main(["--out", str(tmp_path / "x"), "--dry-run", "--models", "no-such-model"]) == 2
    assert main(["--out", str(tmp_path / "y"), "--dry-run", "--only", "power"]) == 2


# ---------------------------------------------------------------------------------------- the decoder itself
@pytest.mark.parametrize("name", ["llama-3-8b", "mixtral-8x7b", "opt-6.7b", "qwen2.5-7b"])
def test_decoder_cache_and_rotary_are_consistent(name):
    """Decoding token S after a prefill of S tokens gives the logits of a prefill of S + 1 tokens: the KV
    cache, rotary positions and the GQA query-row layout of decode agree with causal prefill."""
    torch = pytest.importorskip("torch")
    from validation.collect.decoder import Decoder, weight_params
    model = tiny_model(name)
    dec = Decoder(torch, model, torch.device("cpu"), dtype=torch.float32)
    assert dec.allocated_params() == weight_params(model)
    tokens = torch.randint(0, model.vocab, (2, 9), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        full = dec.forward(tokens, 0, dec.new_cache(2, 9))
        cache = dec.new_cache(2, 9)
        dec.forward(tokens[:, :8], 0, cache)
        step = dec.forward(tokens[:, 8:], 8, cache)
    assert full.shape == step.shape == (2, model.vocab)
    assert torch.allclose(full, step, atol=1e-5, rtol=1e-4)


def test_decoder_refuses_mla():
    torch = pytest.importorskip("torch")
    from validation.collect.decoder import Decoder
    with pytest.raises(ValueError, match="multi-head latent attention"):
        Decoder(torch, tiny_model("deepseek-v3"), torch.device("cpu"))
