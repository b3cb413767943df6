"""Model architectures as frozen dataclasses, built from public ``config.json`` snapshots.

Presets live in ``workloads/models/<name>.json``: the public config fields as published, plus
``_source`` (where the snapshot came from) and ``_published_params`` (the total the authors quote).

>>> from workloads import load_model
>>> m = load_model("llama-3-8b")
>>> (m.layers, m.kv_heads, round(m.params() / 1e9, 2))
(32, 8, 8.03)
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path

_MODEL_DIR = Path(__file__).parent / "models"


@dataclass(frozen=True)
class Model:
    """A decoder-only transformer architecture (counts, not weights).

    MoE fields are zero for dense models; MLA fields are zero for ordinary multi-head attention.
    ``dense_layers`` is the number of leading layers with a dense MLP in an MoE model
    (DeepSeek's ``first_k_dense_replace``).
    """

    name: str
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied_embeddings: bool = False
    gated_mlp: bool = True
    activation: str = "silu"
    norm: str = "rmsnorm"
    linear_bias: bool = False
    qkv_bias: bool = False
    learned_positions: int = 0
    max_position: int = 4096
    # mixture of experts
    experts: int = 0
    top_k: int = 0
    expert_intermediate: int = 0
    shared_experts: int = 0
    dense_layers: int = 0
    # multi-head latent attention (DeepSeek-V2/V3)
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    qk_nope_head_dim: int = 0
    v_head_dim: int = 0
    source: str = ""
    published_params: float = 0.0
    extra: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    # ------------------------------------------------------------------ structure
    @property
    def is_moe(self) -> bool:
        return self.experts > 0

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def moe_layers(self) -> int:
        """Layers whose MLP is a mixture of experts."""
        return self.layers - self.dense_layers if self.is_moe else 0

    @property
    def dense_mlp_layers(self) -> int:
        """Layers whose MLP is dense."""
        return self.layers - self.moe_layers

    @property
    def q_dim(self) -> int:
        """Width of the query projection output (all heads)."""
        if self.is_mla:
            return self.heads * (self.qk_nope_head_dim + self.qk_rope_head_dim)
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        """Width of K (or V) projection output for ordinary attention."""
        return self.kv_heads * self.head_dim

    def kv_elements_per_token(self) -> int:
        """KV-cache elements stored per token, all layers (MLA stores the latent and rope key)."""
        if self.is_mla:
            return self.layers * (self.kv_lora_rank + self.qk_rope_head_dim)
        return self.layers * 2 * self.kv_heads * self.head_dim

    # ------------------------------------------------------------------ parameter counts
    def attention_params(self) -> int:
        """Weights of one attention block (projections, biases), without norms."""
        h = self.hidden
        if self.is_mla:
            qk = self.qk_nope_head_dim + self.qk_rope_head_dim
            q = (h * self.q_lora_rank + self.q_lora_rank + self.q_lora_rank * self.heads * qk
                 if self.q_lora_rank else h * self.heads * qk)
            kv = (h * (self.kv_lora_rank + self.qk_rope_head_dim) + self.kv_lora_rank
                  + self.kv_lora_rank * self.heads * (self.qk_nope_head_dim + self.v_head_dim))
            o = self.heads * self.v_head_dim * h
            return q + kv + o
        qkv_out = self.q_dim + 2 * self.kv_dim
        p = h * qkv_out + self.q_dim * h
        if self.linear_bias:
            p += qkv_out + h
        elif self.qkv_bias:
            p += qkv_out
        return p

    def mlp_params(self, intermediate: int | None = None) -> int:
        """Weights of one dense MLP of the given intermediate width."""
        i = self.intermediate if intermediate is None else intermediate
        p = (3 if self.gated_mlp else 2) * self.hidden * i
        if self.linear_bias:
            p += i + self.hidden
        return p

    def expert_params(self) -> int:
        """Weights of one routed expert."""
        return self.mlp_params(self.expert_intermediate)

    def moe_block_params(self) -> int:
        """Weights of one MoE MLP: router, routed experts and shared experts."""
        router = self.hidden * self.experts
        shared = self.mlp_params(self.shared_experts * self.expert_intermediate) if self.shared_experts else 0
        return router + self.experts * self.expert_params() + shared

    def norm_params_per_layer(self) -> int:
        """Two norms per layer (MLA's latent norms are counted in :meth:`attention_params`)."""
        return 2 * self.hidden * (2 if self.norm == "layernorm" else 1)

    def embedding_params(self) -> int:
        """Token embedding, learned positions and (if untied) the LM head."""
        p = self.vocab * self.hidden + self.learned_positions * self.hidden
        if not self.tied_embeddings:
            p += self.vocab * self.hidden
        return p

    def params(self) -> int:
        """Total parameters (all experts), as published totals count them."""
        per_layer_common = self.attention_params() + self.norm_params_per_layer()
        p = self.layers * per_layer_common
        p += self.dense_mlp_layers * self.mlp_params()
        p += self.moe_layers * self.moe_block_params()
        p += self.hidden * (2 if self.norm == "layernorm" else 1)  # final norm
        return p + self.embedding_params()

    def active_params(self) -> int:
        """Parameters used by one token (top-k routed experts plus shared ones)."""
        if not self.is_moe:
            return self.params()
        inactive = self.moe_layers * (self.experts - self.top_k) * self.expert_params()
        return self.params() - inactive

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, cfg: dict, name: str | None = None) -> Model:
        """Build from a HuggingFace-style ``config.json`` dict (llama, mistral, mixtral, qwen2,
        deepseek_v3, opt, gpt2-style keys)."""
        def get(*keys, default=None):
            for k in keys:
                if k in cfg and cfg[k] is not None:
                    return cfg[k]
            return default

        mtype = str(get("model_type", default="llama")).lower()
        hidden = get("hidden_size", "n_embd", "d_model")
        layers = get("num_hidden_layers", "n_layer", "num_layers")
        heads = get("num_attention_heads", "n_head")
        if hidden is None or layers is None or heads is None:
            raise ValueError(
                "config: needs hidden_size (or n_embd), num_hidden_layers (or n_layer) and "
                f"num_attention_heads (or n_head); got keys {sorted(cfg)[:20]}"
            )
        kv_heads = get("num_key_value_heads", default=heads)
        head_dim = get("head_dim", default=hidden // heads)
        intermediate = get("intermediate_size", "ffn_dim", "n_inner", default=4 * hidden)
        opt_like = mtype in ("opt", "gpt2", "gpt3")
        act = str(get("hidden_act", "activation_function", default="relu" if mtype == "opt" else "silu"))
        kw: dict = dict(
            name=name or cfg.get("_name") or mtype,
            hidden=int(hidden), intermediate=int(intermediate), layers=int(layers), heads=int(heads),
            kv_heads=int(kv_heads), head_dim=int(head_dim), vocab=int(get("vocab_size", default=32000)),
            tied_embeddings=bool(get("tie_word_embeddings", default=opt_like)),
            gated_mlp=not opt_like, activation=act,
            norm="layernorm" if opt_like else "rmsnorm",
            linear_bias=opt_like, qkv_bias=mtype == "qwen2" or bool(get("attention_bias", default=False)),
            learned_positions=(int(get("max_position_embeddings", "n_positions", default=2048)) + (2 if mtype == "opt" else 0))
            if opt_like else 0,
            max_position=int(get("max_position_embeddings", "n_positions", "n_ctx", default=4096)),
            source=str(cfg.get("_source", "")), published_params=float(cfg.get("_published_params", 0.0)),
        )
        n_experts = get("num_local_experts", "n_routed_experts", "num_experts", default=0)
        if n_experts:
            kw.update(
                experts=int(n_experts),
                top_k=int(get("num_experts_per_tok", "moe_top_k", default=2)),
                expert_intermediate=int(get("moe_intermediate_size", default=intermediate)),
                shared_experts=int(get("n_shared_experts", default=0) or 0),
                dense_layers=int(get("first_k_dense_replace", default=0) or 0),
            )
        if get("kv_lora_rank"):
            kw.update(
                q_lora_rank=int(get("q_lora_rank", default=0) or 0), kv_lora_rank=int(cfg["kv_lora_rank"]),
                qk_rope_head_dim=int(get("qk_rope_head_dim", default=64)),
                qk_nope_head_dim=int(get("qk_nope_head_dim", default=128)),
                v_head_dim=int(get("v_head_dim", default=128)),
            )
            kw["head_dim"] = kw["qk_nope_head_dim"] + kw["qk_rope_head_dim"]
            kw["kv_heads"] = kw["heads"]
        model = cls(**kw)
        model.validate()
        return model

    def validate(self) -> None:
        """Raise ``ValueError`` naming the field when the architecture is inconsistent."""
        for f in ("hidden", "intermediate", "layers", "heads", "kv_heads", "head_dim", "vocab"):
            if getattr(self, f) <= 0:
                raise ValueError(f"model {self.name}: {f} must be a positive integer, got {getattr(self, f)}")
        if self.heads % self.kv_heads:
            raise ValueError(f"model {self.name}: heads ({self.heads}) must be a multiple of kv_heads ({self.kv_heads})")
        if self.is_moe and not (0 < self.top_k <= self.experts):
            raise ValueError(f"model {self.name}: top_k must be in 1..experts ({self.experts}), got {self.top_k}")
        if self.dense_layers > self.layers:
            raise ValueError(f"model {self.name}: dense_layers ({self.dense_layers}) exceeds layers ({self.layers})")


def list_models() -> list[str]:
    """Names of the shipped presets."""
    return list(_preset_names())


@lru_cache(maxsize=1)
def _preset_names() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in _MODEL_DIR.glob("*.json")))


@cache
def _load_preset(name: str) -> Model:
    cfg = json.loads((_MODEL_DIR / f"{name}.json").read_text())
    return Model.from_config(cfg, name=name)


def load_model(name_or_path: str | Path | Model) -> Model:
    """A preset by name (``llama-3-8b``) or any ``config.json`` by path.

    Unknown names raise ``ValueError`` listing the closest preset names.
    """
    if isinstance(name_or_path, Model):
        return name_or_path
    text = str(name_or_path)
    key = text.strip().lower()
    if key in _preset_names():
        return _load_preset(key)
    path = Path(text)
    if path.suffix == ".json" or path.exists():
        if not path.exists():
            raise ValueError(f"model: file {path} does not exist")
        try:
            cfg = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"model: {path} is not valid JSON ({exc})") from None
        return Model.from_config(cfg, name=cfg.get("_name") or path.stem)
    close = difflib.get_close_matches(key, list_models(), n=3, cutoff=0.4)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ValueError(f"model: unknown model {text!r}.{hint} Known: {', '.join(list_models())}")
