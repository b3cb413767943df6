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
import math
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path

_MODEL_DIR = Path(__file__).parent / "models"


@dataclass(frozen=True)
class Model:
    """A decoder-only transformer architecture (counts, not weights).

    MoE fields are zero for dense models; MLA fields are zero for ordinary multi-head attention.
    ``dense_layers`` is the number of layers with a dense MLP in an MoE model (DeepSeek's
    ``first_k_dense_replace``, plus the layers ``moe_layer_freq`` skips); only the counts matter to
    the costs, not where the layers sit.

    ``moe_layer_experts`` (optional) gives each MoE layer its own number of routed experts, as
    DeepSpeed-MoE's pyramid (PR-MoE) has more experts in its last layers; parameter counts and weight
    memory use it exactly. Assumption: the step costs treat every MoE layer as having ``experts``
    experts; with top-1 or top-k routing a token's FLOPs and all-to-all traffic do not depend on the
    expert count, only which weights a small batch touches does.
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
    moe_layer_experts: tuple[int, ...] = ()
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

    def shared_expert_params(self) -> int:
        """Weights of one MoE layer's shared experts (one MLP of their summed width; 0 if none)."""
        return self.mlp_params(self.shared_experts * self.expert_intermediate) if self.shared_experts else 0

    def experts_per_moe_layer(self) -> tuple[int, ...]:
        """Routed experts of each MoE layer (``moe_layer_experts``, else ``experts`` in every one)."""
        return self.moe_layer_experts or (self.experts,) * self.moe_layers

    def routed_experts_total(self) -> int:
        """Routed experts summed over the MoE layers (what their weights scale with)."""
        return sum(self.experts_per_moe_layer())

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
        if self.is_moe:
            # routed experts with their router rows, and the shared experts of every MoE layer
            p += self.routed_experts_total() * (self.expert_params() + self.hidden) + self.moe_layers * self.shared_expert_params()
        p += self.hidden * (2 if self.norm == "layernorm" else 1)  # final norm
        return p + self.embedding_params()

    def active_params(self) -> int:
        """Parameters used by one token (top-k routed experts plus shared ones)."""
        if not self.is_moe:
            return self.params()
        inactive = (self.routed_experts_total() - self.moe_layers * self.top_k) * self.expert_params()
        return self.params() - inactive

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, cfg: dict, name: str | None = None, where: str = "config") -> Model:
        """Build from a HuggingFace-style ``config.json`` dict (llama, mistral, mixtral, qwen2,
        deepseek_v3, opt, gpt2-style keys). Every field is checked (type, range, cross-field rules);
        a bad one raises ``ValueError`` naming ``where``, the key and what is allowed."""
        if not isinstance(cfg, dict):
            raise ValueError(f"{where}: a model config must be a JSON object, got {type(cfg).__name__}")

        def get(*keys, default=None):
            for k in keys:
                if k in cfg and cfg[k] is not None:
                    return cfg[k]
            return default

        def key_of(*keys):
            return next((k for k in keys if k in cfg and cfg[k] is not None), keys[0])

        def num(*keys, default=None, lo: int = 1, hi: int = _MAX_DIM) -> int:
            """An integer field in [lo, hi] (floats with an integer value accepted)."""
            v = get(*keys, default=default)
            k = key_of(*keys)
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise ValueError(f"{where}: {k} must be an integer, got {v!r}")
            if not math.isfinite(v) or v != int(v):
                raise ValueError(f"{where}: {k} must be a finite integer, got {v!r}")
            if not lo <= v <= hi:
                raise ValueError(f"{where}: {k} must be in {lo}..{hi}, got {int(v)}")
            return int(v)

        def flag(*keys, default: bool) -> bool:
            v = get(*keys, default=default)
            if not isinstance(v, bool):
                raise ValueError(f"{where}: {key_of(*keys)} must be true or false, got {v!r}")
            return v

        mtype = get("model_type", default="llama")
        if not isinstance(mtype, str):
            raise ValueError(f"{where}: model_type must be a string, got {mtype!r}")
        mtype = mtype.lower()
        if get("hidden_size", "n_embd", "d_model") is None or get("num_hidden_layers", "n_layer", "num_layers") is None \
                or get("num_attention_heads", "n_head") is None:
            raise ValueError(
                f"{where}: needs hidden_size (or n_embd), num_hidden_layers (or n_layer) and "
                f"num_attention_heads (or n_head); got keys {sorted(map(str, cfg))[:20]}"
            )
        hidden = num("hidden_size", "n_embd", "d_model")
        layers = num("num_hidden_layers", "n_layer", "num_layers", hi=_MAX_LAYERS)
        heads = num("num_attention_heads", "n_head", hi=_MAX_HEADS)
        if "head_dim" not in cfg and hidden % heads:
            raise ValueError(f"{where}: hidden_size ({hidden}) must be a multiple of num_attention_heads ({heads}) "
                             "when head_dim is not given")
        kv_heads = num("num_key_value_heads", default=heads, hi=_MAX_HEADS)
        head_dim = num("head_dim", default=hidden // heads)
        intermediate = num("intermediate_size", "ffn_dim", "n_inner", default=4 * hidden)
        opt_like = mtype in ("opt", "gpt2", "gpt3")
        act = get("hidden_act", "activation_function", default="relu" if mtype == "opt" else "silu")
        if not isinstance(act, str):
            raise ValueError(f"{where}: hidden_act must be a string, got {act!r}")
        max_pos = num("max_position_embeddings", "n_positions", "n_ctx", default=4096, hi=_MAX_POSITIONS)
        published = get("_published_params", default=0.0)
        if isinstance(published, bool) or not isinstance(published, int | float) or not (
                math.isfinite(published) and published >= 0):
            raise ValueError(f"{where}: _published_params must be a number >= 0, got {published!r}")
        kw: dict = dict(
            name=name or cfg.get("_name") or mtype,
            hidden=hidden, intermediate=intermediate, layers=layers, heads=heads,
            kv_heads=kv_heads, head_dim=head_dim, vocab=num("vocab_size", default=32000),
            tied_embeddings=flag("tie_word_embeddings", default=opt_like),
            gated_mlp=not opt_like, activation=act,
            norm="layernorm" if opt_like else "rmsnorm",
            linear_bias=opt_like, qkv_bias=mtype == "qwen2" or flag("attention_bias", default=False),
            learned_positions=(max_pos + (2 if mtype == "opt" else 0)) if opt_like else 0,
            max_position=max_pos, source=str(cfg.get("_source", "")), published_params=float(published),
        )
        moe_keys = ("num_local_experts", "n_routed_experts", "num_experts")
        if get(*moe_keys) not in (None, 0):
            experts = num(*moe_keys, hi=_MAX_EXPERTS)
            first_dense = num("first_k_dense_replace", default=0, lo=0, hi=layers - 1)
            freq = num("moe_layer_freq", default=1, hi=layers)
            if get("expert_interval") is not None:  # Megatron-DeepSpeed: 1-based layer n has experts when n % interval == 0
                moe_count = layers // num("expert_interval", hi=layers)
            else:  # DeepSeek: layer i has experts when i >= first_k_dense_replace and i % moe_layer_freq == 0
                moe_count = sum(1 for i in range(first_dense, layers) if i % freq == 0)
            if moe_count == 0:
                raise ValueError(f"{where}: first_k_dense_replace ({first_dense}) and moe_layer_freq ({freq}) "
                                 f"leave no MoE layer among the {layers} layers")
            per_layer = get("moe_layer_experts", default=None)
            if per_layer is not None:
                if not isinstance(per_layer, list) or len(per_layer) != moe_count or any(
                        isinstance(e, bool) or not isinstance(e, int) or not 1 <= e <= _MAX_EXPERTS for e in per_layer):
                    raise ValueError(f"{where}: moe_layer_experts must list a positive integer for each of the "
                                     f"{moe_count} MoE layers, got {per_layer!r}")
            kw.update(
                experts=experts,
                top_k=num("num_experts_per_tok", "moe_top_k", default=2, hi=experts),
                expert_intermediate=num("moe_intermediate_size", default=intermediate),
                shared_experts=num("n_shared_experts", default=0, lo=0, hi=experts),
                dense_layers=layers - moe_count,
                moe_layer_experts=tuple(per_layer or ()),
            )
        if get("kv_lora_rank") not in (None, 0):
            kw.update(
                q_lora_rank=num("q_lora_rank", default=0, lo=0), kv_lora_rank=num("kv_lora_rank"),
                qk_rope_head_dim=num("qk_rope_head_dim", default=64),
                qk_nope_head_dim=num("qk_nope_head_dim", default=128),
                v_head_dim=num("v_head_dim", default=128),
            )
            kw["head_dim"] = kw["qk_nope_head_dim"] + kw["qk_rope_head_dim"]
            kw["kv_heads"] = kw["heads"]
        model = cls(**kw)
        model.validate(where)
        return model

    def validate(self, where: str | None = None) -> None:
        """Raise ``ValueError`` naming the field when the architecture is inconsistent."""
        w = where or f"model {self.name}"
        for f in ("hidden", "intermediate", "layers", "heads", "kv_heads", "head_dim", "vocab", "max_position"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"{w}: {f} must be a positive integer, got {v!r}")
        if self.heads % self.kv_heads:
            raise ValueError(f"{w}: heads ({self.heads}) must be a multiple of kv_heads ({self.kv_heads})")
        for f in ("experts", "top_k", "expert_intermediate", "shared_experts", "dense_layers", "q_lora_rank",
                  "kv_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim"):
            if getattr(self, f) < 0:
                raise ValueError(f"{w}: {f} must be >= 0, got {getattr(self, f)}")
        if self.is_moe:
            if not 0 < self.top_k <= self.experts:
                raise ValueError(f"{w}: top_k must be in 1..experts ({self.experts}), got {self.top_k}")
            if self.expert_intermediate <= 0:
                raise ValueError(f"{w}: expert_intermediate must be > 0 in an MoE model, got {self.expert_intermediate}")
            if self.dense_layers >= self.layers:
                raise ValueError(f"{w}: dense_layers ({self.dense_layers}) must be below layers ({self.layers}) "
                                 "in an MoE model")
            if self.moe_layer_experts and (len(self.moe_layer_experts) != self.moe_layers
                                           or min(self.moe_layer_experts) < self.top_k):
                raise ValueError(f"{w}: moe_layer_experts needs one count >= top_k ({self.top_k}) for each of the "
                                 f"{self.moe_layers} MoE layers, got {self.moe_layer_experts}")
        elif self.top_k or self.shared_experts or self.dense_layers or self.expert_intermediate or self.moe_layer_experts:
            raise ValueError(f"{w}: top_k/shared_experts/dense_layers/expert_intermediate given without experts")
        if self.is_mla and min(self.qk_rope_head_dim, self.qk_nope_head_dim, self.v_head_dim) <= 0:
            raise ValueError(f"{w}: MLA (kv_lora_rank > 0) needs qk_rope_head_dim, qk_nope_head_dim and v_head_dim > 0")


#: Upper bounds on config fields: far above any published model, low enough that arithmetic on
#: them stays finite (a config with 10^300 hidden units is a typo, not an architecture).
_MAX_DIM = 1 << 24
_MAX_LAYERS = 10_000
_MAX_HEADS = 1 << 16
_MAX_EXPERTS = 1 << 16
_MAX_POSITIONS = 1 << 30


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


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
    if not key:
        raise ValueError(f"model: empty name; use a preset ({', '.join(list_models())}) or a config.json path")
    if key in _preset_names():
        return _load_preset(key)
    path = Path(text)
    if path.suffix == ".json" or path.exists():
        if not path.exists():
            raise ValueError(f"model: file {path} does not exist")
        if not path.is_file():
            raise ValueError(f"model: {path} is not a file; give a preset name or a config.json path")
        try:
            cfg = json.loads(path.read_text(), parse_constant=_reject_constant)
        except ValueError as exc:  # JSONDecodeError, or NaN/Infinity
            raise ValueError(f"model: {path} is not valid JSON ({exc})") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"model: cannot read {path} ({exc})") from None
        if not isinstance(cfg, dict):
            raise ValueError(f"model: {path} must hold a JSON object (a config.json), got {type(cfg).__name__}")
        nm = cfg.get("_name")
        return Model.from_config(cfg, name=nm if isinstance(nm, str) and nm else path.stem, where=f"model {path}")
    close = difflib.get_close_matches(key, list_models(), n=3, cutoff=0.4)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ValueError(f"model: unknown model {text!r}.{hint} Known: {', '.join(list_models())}")
