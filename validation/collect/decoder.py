"""A plain PyTorch decoder built from a ``workloads.Model``, for the rows of ``e2e.csv``.

As the dataset README describes: bf16, random weights N(0, 0.02); per layer RMSNorm, one fused QKV
GEMM, rotary embedding recomputed per layer, attention through scaled_dot_product_attention (prefill
causal writing K/V of all prompt tokens to the cache, decode writing one slot, its query heads passed
as query rows of their KV head), output projection, residual, RMSNorm, one fused gate-and-up GEMM,
SiLU(gate) x up, down GEMM, residual. A final norm and the LM head (last token of each sequence in
prefill, all B tokens in decode). MoE layers: router GEMM, softmax, top-k, then per expert that got a
token: gather, gate-and-up, SiLU x up, down, weighted scatter-add. Non-Llama presets keep their own
structure: LayerNorm, biases, ungated MLPs, learned positions (indices taken modulo their table)
instead of rotary. Multi-head latent attention (DeepSeek-V3) is not built.
"""

from __future__ import annotations

from typing import Any

from workloads import Model

ROPE_THETA = 500000.0  # assumption: Llama-3's base; the base does not change the work done


def weight_params(model: Model) -> int:
    """Weights this decoder allocates, norm gains excluded (the ``params`` column, as in
    h200-2026-11-28, where it is ``Model.params()`` less (2·layers + 1)·hidden norm gains)."""
    norms = (2 * model.layers + 1) * model.hidden * (2 if model.norm == "layernorm" else 1)
    return model.params() - norms


class Decoder:
    """Weights of one model on one device, with prefill and decode forward passes."""

    def __init__(self, torch: Any, model: Model, device: Any, seed: int = 0, dtype: Any = None):
        if model.is_mla:
            raise ValueError(f"model {model.name}: multi-head latent attention is not built by the collector")
        self.torch, self.m, self.dev = torch, model, device
        self.dt = dtype or torch.bfloat16  # float32 only for tests of the arithmetic
        self.gen = torch.Generator(device=device).manual_seed(seed)
        m = model
        self.q_dim, self.kv_dim = m.heads * m.head_dim, m.kv_heads * m.head_dim
        self.embed = self._w(m.vocab, m.hidden)
        self.lm_head = self.embed if m.tied_embeddings else self._w(m.vocab, m.hidden)
        self.positions = self._w(m.learned_positions, m.hidden) if m.learned_positions else None
        half = m.head_dim // 2
        self.inv_freq = 1.0 / ROPE_THETA ** (torch.arange(half, device=device, dtype=torch.float32) / half)
        self.layers = [self._layer(i) for i in range(m.layers)]
        self.final_norm = self._norm()

    # ------------------------------------------------------------------ weights
    def _w(self, *shape: int) -> Any:
        return self.torch.empty(*shape, device=self.dev, dtype=self.dt).normal_(0.0, 0.02, generator=self.gen)

    def _b(self, n: int, on: bool) -> Any:
        return self._w(n) if on else None

    def _norm(self) -> tuple:
        ones = self.torch.ones(self.m.hidden, device=self.dev, dtype=self.dt)
        return (ones, self.torch.zeros_like(ones) if self.m.norm == "layernorm" else None)

    def _mlp(self, inter: int) -> dict:
        m, up = self.m, (2 if self.m.gated_mlp else 1) * inter
        return {"up": self._w(up, m.hidden), "up_b": self._b(up, m.linear_bias),
                "down": self._w(m.hidden, inter), "down_b": self._b(m.hidden, m.linear_bias)}

    def _layer(self, i: int) -> dict:
        m = self.m
        qkv = self.q_dim + 2 * self.kv_dim
        layer = {"norm1": self._norm(), "norm2": self._norm(), "qkv": self._w(qkv, m.hidden),
                 "qkv_b": self._b(qkv, m.linear_bias or m.qkv_bias), "o": self._w(m.hidden, self.q_dim),
                 "o_b": self._b(m.hidden, m.linear_bias)}
        if m.is_moe and i >= m.dense_layers:
            layer["router"] = self._w(m.experts, m.hidden)
            layer["experts"] = [self._mlp(m.expert_intermediate) for _ in range(m.experts)]
            if m.shared_experts:
                layer["shared"] = self._mlp(m.shared_experts * m.expert_intermediate)
        else:
            layer["mlp"] = self._mlp(m.intermediate)
        return layer

    def allocated_params(self) -> int:
        """Elements of all weights allocated here, norm gains excluded (equals :func:`weight_params`)."""
        seen: set[int] = set()
        total = 0

        def add(t):
            nonlocal total
            if t is not None and id(t) not in seen:
                seen.add(id(t))
                total += t.numel()
        for t in (self.embed, self.lm_head, self.positions):
            add(t)
        for layer in self.layers:
            for key, val in layer.items():
                if key.startswith("norm"):
                    continue
                for t in (val if isinstance(val, list) else [val]):
                    for x in (t.values() if isinstance(t, dict) else [t]):
                        add(x)
        return total

    # ------------------------------------------------------------------ pieces
    def _normed(self, x: Any, norm: tuple) -> Any:
        f = self.torch.nn.functional
        if self.m.norm == "layernorm":
            return f.layer_norm(x, (self.m.hidden,), norm[0], norm[1])
        if hasattr(f, "rms_norm"):
            return f.rms_norm(x, (self.m.hidden,), norm[0], eps=1e-5)
        xf = x.float()
        return (xf * self.torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-5)).to(self.dt) * norm[0]

    def _act(self, x: Any) -> Any:
        f = self.torch.nn.functional
        return {"relu": f.relu, "gelu": f.gelu, "gelu_new": f.gelu}.get(self.m.activation, f.silu)(x)

    def _mlp_forward(self, x: Any, w: dict) -> Any:
        f = self.torch.nn.functional
        h = f.linear(x, w["up"], w["up_b"])
        if self.m.gated_mlp:
            gate, up = h.chunk(2, dim=-1)
            h = self._act(gate) * up
        else:
            h = self._act(h)
        return f.linear(h, w["down"], w["down_b"])

    def _rotary(self, x: Any, pos: Any) -> Any:
        """x (B, heads, T, d) rotated by positions pos (B, T); cos/sin recomputed on every call."""
        torch = self.torch
        ang = pos.to(torch.float32)[:, None, :, None] * self.inv_freq
        cos, sin = ang.cos().to(self.dt), ang.sin().to(self.dt)
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)

    def _moe(self, x: Any, layer: dict, groups: list | None) -> Any:
        """x (T, hidden). ``groups``: fixed (expert, token index, slot index) from a decode capture;
        ``None`` finds each expert's tokens from the router output (one host wait per expert)."""
        torch = self.torch
        probs = torch.softmax(self.torch.nn.functional.linear(x, layer["router"]).float(), dim=-1)
        top_w, top_i = probs.topk(self.m.top_k, dim=-1)
        top_w = (top_w / top_w.sum(-1, keepdim=True)).to(self.dt)
        out = torch.zeros_like(x)
        if groups is None:
            groups = []
            for e in range(self.m.experts):
                tok, slot = (top_i == e).nonzero(as_tuple=True)
                if tok.numel():
                    groups.append((e, tok, slot))
        for e, tok, slot in groups:
            y = self._mlp_forward(x.index_select(0, tok), layer["experts"][e])
            out.index_add_(0, tok, y * top_w[tok, slot].unsqueeze(-1))
        if "shared" in layer:
            out = out + self._mlp_forward(x, layer["shared"])
        return out

    # ------------------------------------------------------------------ forward
    def new_cache(self, batch: int, length: int) -> list:
        """Per layer (K, V), each (B, kv_heads, length, head_dim), zero-filled."""
        torch, m = self.torch, self.m
        shape = (batch, m.kv_heads, length, m.head_dim)
        return [(torch.zeros(shape, device=self.dev, dtype=self.dt), torch.zeros(shape, device=self.dev, dtype=self.dt))
                for _ in range(m.layers)]

    def fixed_groups(self, tokens: int, seed: int = 0) -> list:
        """One uniform random top-k assignment of ``tokens`` tokens (drawn once per batch size), as
        (expert, token index, slot index) per expert with at least one token."""
        torch, m = self.torch, self.m
        if not m.is_moe:
            return []
        gen = torch.Generator().manual_seed(seed + tokens)
        top_i = torch.rand(tokens, m.experts, generator=gen).argsort(dim=-1)[:, : m.top_k]
        groups = []
        for e in range(m.experts):
            tok, slot = (top_i == e).nonzero(as_tuple=True)
            if tok.numel():
                groups.append((e, tok.to(self.dev), slot.to(self.dev)))
        return groups

    def forward(self, tokens: Any, start: int, cache: list, groups: list | None = None) -> Any:
        """tokens (B, T) at positions start .. start+T-1; writes their K/V to ``cache``; returns logits
        of the last token (prefill, start == 0) or of every token (decode, T == 1)."""
        torch, m = self.torch, self.m
        f = torch.nn.functional
        b, t = tokens.shape
        pos = torch.arange(start, start + t, device=self.dev).expand(b, t)
        x = f.embedding(tokens, self.embed)
        if self.positions is not None:
            x = x + f.embedding(pos % m.learned_positions, self.positions)
        g = m.heads // m.kv_heads
        for i, layer in enumerate(self.layers):
            h = self._normed(x, layer["norm1"])
            qkv = f.linear(h, layer["qkv"], layer["qkv_b"])
            q, k, v = qkv.split((self.q_dim, self.kv_dim, self.kv_dim), dim=-1)
            q = q.view(b, t, m.heads, m.head_dim).transpose(1, 2)
            k = k.view(b, t, m.kv_heads, m.head_dim).transpose(1, 2)
            v = v.view(b, t, m.kv_heads, m.head_dim).transpose(1, 2)
            if self.positions is None:
                q, k = self._rotary(q, pos), self._rotary(k, pos)
            ck, cv = cache[i]
            ck[:, :, start:start + t] = k
            cv[:, :, start:start + t] = v
            if t > 1:  # prefill from an empty cache: causal attention over the prompt
                kk, vv = ck[:, :, : start + t], cv[:, :, : start + t]
                if g > 1:
                    try:
                        a = f.scaled_dot_product_attention(q, kk, vv, is_causal=True, enable_gqa=True)
                    except TypeError:
                        a = f.scaled_dot_product_attention(q, kk.repeat_interleave(g, 1), vv.repeat_interleave(g, 1),
                                                           is_causal=True)
                else:
                    a = f.scaled_dot_product_attention(q, kk, vv, is_causal=True)
                a = a.transpose(1, 2).reshape(b, t, self.q_dim)
            else:  # decode: the g query heads of each KV head are query rows of that head
                qd = q.reshape(b, m.kv_heads, g, m.head_dim)
                a = f.scaled_dot_product_attention(qd, ck[:, :, : start + 1], cv[:, :, : start + 1])
                a = a.reshape(b, 1, self.q_dim)
            x = x + f.linear(a, layer["o"], layer["o_b"])
            h = self._normed(x, layer["norm2"])
            if "experts" in layer:
                y = self._moe(h.reshape(b * t, m.hidden), layer, groups).view(b, t, m.hidden)
            else:
                y = self._mlp_forward(h, layer["mlp"])
            x = x + y
        last = x[:, -1] if t > 1 else x[:, 0]
        return f.linear(self._normed(last, self.final_norm), self.lm_head)

    # ------------------------------------------------------------------ sizes
    def cache_bytes(self, batch: int, length: int) -> int:
        return 2 * self.m.layers * batch * length * self.m.kv_heads * self.m.head_dim * 2

    def activation_bytes(self, batch: int, tokens: int) -> int:
        """assumption: at most a few live activations per token at once (gate-up output, QKV, residual),
        plus the logits; enough to refuse points that cannot fit before trying them."""
        m = self.m
        widest = 2 * max(m.intermediate, m.expert_intermediate * max(m.top_k, 1)) + self.q_dim + 2 * self.kv_dim
        return 4 * batch * tokens * (widest + 2 * m.hidden) * 2 + batch * m.vocab * 4


def weight_bytes(model: Model) -> int:
    """bf16 bytes of the weights the decoder allocates (norm gains included)."""
    return 2 * model.params()
