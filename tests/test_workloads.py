"""Model presets and precisions: parameter counts against published totals, parsing, errors."""

import json

import pytest

from workloads import Model, Precision, list_models, load_model

PRESETS = ["llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3-8b", "llama-3-70b", "llama-3.1-405b",
           "llama-3.2-1b", "llama-3.2-3b", "mistral-7b", "mixtral-8x7b", "mixtral-8x22b", "qwen2.5-7b",
           "qwen2.5-72b", "deepseek-v3", "opt-6.7b", "opt-66b", "gpt3-175b", "bitnet-b1.58-3b", "kimi-k2",
           "ds-moe-350m-128", "ds-moe-1.3b-128", "ds-prmoe-350m-32-64", "ds-prmoe-1.3b-64-128", "ds-mos-350m",
           "ds-mos-1.3b"]


def test_every_named_preset_ships_and_loads():
    assert set(PRESETS) <= set(list_models())
    for name in list_models():
        m = load_model(name)
        assert m.params() > 0 and m.source


@pytest.mark.parametrize("name,published", [("llama-3-8b", 8.03e9), ("mixtral-8x7b", 46.7e9),
                                            ("deepseek-v3", 671e9)])
def test_parameter_counts_within_one_percent(name, published):
    assert abs(load_model(name).params() / published - 1) < 0.01


def test_llama3_8b_exact_count_matches_the_measured_file():
    # e2e.csv of the H200 dataset lists params = 8,029,995,008 for its llama-3-8b decoder: exactly our
    # count less the 2 x 32 + 1 RMSNorm weight vectors (4096 each), which its decoder does not count.
    m = load_model("llama-3-8b")
    assert m.params() == 8_030_261_248
    assert m.params() - 65 * 4096 == 8_029_995_008


def test_llama32_1b_tied_embeddings_counted_once():
    m = load_model("llama-3.2-1b")
    assert m.tied_embeddings
    # hand count: 16 layers x (attention 2048*(2048+2*512) + 2048*2048, MLP 3*2048*8192, 2 norms) + embedding + final norm
    per_layer = 2048 * (2048 + 2 * 512) + 2048 * 2048 + 3 * 2048 * 8192 + 2 * 2048
    assert m.params() == 16 * per_layer + 128256 * 2048 + 2048


def test_moe_active_parameters():
    m = load_model("mixtral-8x7b")
    assert 12.5e9 < m.active_params() < 13.2e9  # Mistral quotes 12.9B active
    d = load_model("deepseek-v3")
    assert 36e9 < d.active_params() < 39e9  # DeepSeek quotes 37B activated


def test_kimi_k2_hand_count():
    # Kimi K2: DeepSeek-V3's architecture with 64 heads, 384 routed experts, one dense layer.
    m = load_model("kimi-k2")
    h, heads = 7168, 64
    attn = (h * 1536 + 1536 + 1536 * heads * 192          # q_a (+ its norm), q_b
            + h * (512 + 64) + 512 + 512 * heads * 256     # kv_a (+ its norm), kv_b
            + heads * 128 * h)                              # o
    expert = 3 * h * 2048
    moe = 385 * expert + h * 384                            # 384 routed + 1 shared, router
    layer_norms = 2 * h
    total = 61 * (attn + layer_norms) + 3 * h * 18432 + 60 * moe + 2 * 163840 * h + h
    assert m.params() == total
    assert abs(m.params() / 1.0e12 - 1) < 0.03  # "1 trillion total parameters"
    assert 32e9 < m.active_params() < 33.5e9  # "32 billion activated"


@pytest.mark.parametrize("name,published", [
    ("ds-moe-350m-128", 13e9), ("ds-moe-1.3b-128", 52e9),            # DeepSpeed-MoE Table 2
    ("ds-prmoe-350m-32-64", 4e9), ("ds-prmoe-1.3b-64-128", 31e9),    # Table 4 (PR-MoE)
    ("ds-mos-350m", 3.5e9), ("ds-mos-1.3b", 27e9)])                 # Table 5 (PR-MoE + MoS)
def test_deepspeed_moe_variants_match_the_paper_sizes(name, published):
    # the paper rounds to two digits (13B, 3.5B): within 3 %
    assert abs(load_model(name).params() / published - 1) < 0.03


def test_deepspeed_moe_hand_count_and_layer_rule():
    # 1.3B+MoE-128: 24 GPT-2 layers of hidden 2048, 128 top-1 experts on layers 2, 4, ..., 24
    m = load_model("ds-moe-1.3b-128")
    h, v = 2048, 50257
    attn = 4 * h * h + 4 * h          # qkv and o with biases
    mlp = 8 * h * h + 4 * h + h       # fc1, fc2 with biases
    norms = 2 * 2 * h                 # two LayerNorms (weight and bias)
    total = 24 * (attn + norms) + 12 * mlp + 12 * 128 * (mlp + h) + 2 * h + v * h + 2048 * h
    assert (m.moe_layers, m.params()) == (12, total)
    # PR-MoE: the pyramid's last two layers have twice the experts; the residual MLP is one per MoE layer
    pr = load_model("ds-prmoe-1.3b-64-128")
    assert pr.experts_per_moe_layer() == (64,) * 10 + (128,) * 2 and pr.routed_experts_total() == 896
    assert pr.params() - m.params() == (896 - 1536) * (mlp + h) + 12 * mlp
    # a token uses one routed expert and the residual MLP in every MoE layer
    assert pr.active_params() == pr.params() - (896 - 12) * mlp
    # Mixture-of-Students: 21 layers, so Megatron-DeepSpeed's rule gives MoE layers 2, 4, ..., 20
    assert load_model("ds-mos-1.3b").moe_layers == 10


def test_moe_layer_experts_must_match_the_moe_layers():
    base = {"model_type": "gpt2", "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 4,
            "num_experts": 8, "num_experts_per_tok": 1, "expert_interval": 2}
    assert Model.from_config({**base, "moe_layer_experts": [8, 16]}).routed_experts_total() == 24
    with pytest.raises(ValueError, match="moe_layer_experts"):
        Model.from_config({**base, "moe_layer_experts": [8, 16, 16]})
    with pytest.raises(ValueError, match="moe_layer_experts"):
        Model.from_config({**base, "moe_layer_experts": [8, "16"]})
    with pytest.raises(ValueError, match="moe_layer_freq"):
        Model.from_config({**{k: v for k, v in base.items() if k != "expert_interval"},
                           "first_k_dense_replace": 3, "moe_layer_freq": 4})


def test_kv_elements_per_token():
    assert load_model("llama-3-8b").kv_elements_per_token() == 32 * 2 * 8 * 128
    assert load_model("deepseek-v3").kv_elements_per_token() == 61 * (512 + 64)


def test_unknown_model_suggests_close_names():
    with pytest.raises(ValueError, match="llama-3-8b"):
        load_model("llama-3-8c")


def test_load_config_from_path(tmp_path):
    cfg = {"model_type": "llama", "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2,
           "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 1000}
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    m = load_model(p)
    assert (m.hidden, m.kv_heads, m.head_dim) == (256, 2, 64)


def test_bad_config_names_the_field(tmp_path):
    with pytest.raises(ValueError, match="hidden_size"):
        Model.from_config({"num_hidden_layers": 2})
    with pytest.raises(ValueError, match="kv_heads"):
        Model.from_config({"hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4,
                           "num_key_value_heads": 3})


@pytest.mark.parametrize("text,w,a,kv,dt", [("bf16", 16, 16, 16, "bf16"), ("fp8", 8, 8, 16, "fp8"),
                                            ("w4a16", 4, 16, 16, "bf16"), ("w8a8kv8", 8, 8, 8, "int8"),
                                            ("int4", 4, 16, 16, "bf16"), ("ternary", 1.58, 8, 16, "int8"),
                                            ("w1.58a8", 1.58, 8, 16, "int8"), ("w2a8", 2, 8, 16, "int8")])
def test_precision_parsing(text, w, a, kv, dt):
    p = Precision.parse(text)
    assert (p.weight_bits, p.act_bits, p.kv_bits, p.compute_dtype) == (w, a, kv, dt)


@pytest.mark.parametrize("bad", ["bf15", "w7a16", "w4a12", "", "w4a16kv3"])
def test_bad_precision_lists_allowed(bad):
    with pytest.raises(ValueError, match="precision"):
        Precision.parse(bad)
