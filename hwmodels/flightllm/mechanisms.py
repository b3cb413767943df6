"""FlightLLM's mechanisms as small functions, each with the switch that turns it off.

- **Configurable sparse DSP chain**: N:M block sparsity (M = 16, N in {0, 2, 4, 8, 16}); the chain
  skips the zeros, so compute scales with the kept fraction N/M. Without it, a dense chain
  computes (and stores) every weight.
- **Mixed precision**: weights of 2/3/4/8 bits (any average in between for mixed layers) are
  dequantized to INT8 on chip; only the bytes read change. Without it weights are INT8.
- **Always-on-chip decode**: activations stay on chip during decode, so weight and KV streams read
  within their channels (``hbm_same_channel_eff``). Without it every operator's activations go
  through HBM and the streams interleave across channels (``hbm_cross_channel_eff``).
- **Length-adaptive compilation**: one instruction program per bucket of 16 decode / 128 prefill
  tokens; a step runs the program of its bucket (lengths round up). Without it, one program per
  length: exact lengths, far more instruction storage. Storage is an instruction count
  (:func:`layer_instructions`): per decoder layer, one MV instruction per ``mv_width`` outputs of
  each GEMM in decode and one MM instruction per ``mm_rows`` tokens x ``mv_width`` outputs in
  prefill; attention per head: decode MVs over the cache (``ceil(L / mv_width)`` for K^T, one for
  V), prefill the causal 128 x 128 tiles of Q K^T and P V; plus ``misc`` SFU instructions (norms,
  RoPE, activation, residuals, softmax) per token tile.
"""

from __future__ import annotations

import math
import re

import numpy as np

from hwmodels.flightllm.spec import Mechanisms, load_mechanisms

_PATTERN = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*$")


def parse_sparsity(value, mech: Mechanisms | None = None) -> float:
    """Kept fraction of weights for an ``"N:M"`` pattern or a density in (0, 1].

    A density between patterns is a mix of N:16 blocks (e.g. 0.7 for the paper's q and k).
    Raises ``ValueError`` listing the patterns the DSP chain supports.
    """
    m = mech or load_mechanisms()
    supported = ", ".join(f"{n}:{m.sparse_block}" for n in m.sparse_n)
    if isinstance(value, str):
        hit = _PATTERN.match(value)
        if not hit:
            raise ValueError(f"sparsity: expected 'N:M' or a density in (0, 1], got {value!r}; supported: {supported}")
        n, mm = int(hit.group(1)), int(hit.group(2))
        if mm != m.sparse_block or n not in m.sparse_n:
            raise ValueError(f"sparsity: the sparse DSP chain does {supported} (blocks of {m.sparse_block}), "
                             f"got {value!r}")
        if n == 0:
            raise ValueError(f"sparsity: 0:{m.sparse_block} drops a whole matrix; use it per block (a density), "
                             f"not for a layer; supported per layer: {supported.replace(f'0:{m.sparse_block}, ', '')}")
        return n / mm
    d = float(value)
    if not 0 < d <= 1:
        raise ValueError(f"sparsity: a density must be in (0, 1], got {d:g}; patterns supported: {supported}")
    return d


def check_weight_bits(bits: float, mech: Mechanisms | None = None) -> float:
    """The stored weight width FlightLLM runs for a row of ``bits``-wide weights.

    Widths above 8 are quantized to INT8 (the DSP chain computes INT8); widths between 2 and 8 are
    mixed precision; narrower widths raise ``ValueError`` naming the supported ones.
    """
    m = mech or load_mechanisms()
    lo, hi = min(m.weight_bits), max(m.weight_bits)
    if bits > hi:
        return float(hi)
    if bits < lo:
        allowed = ", ".join(f"{b:g}" for b in m.weight_bits)
        raise ValueError(f"weight bits: FlightLLM dequantizes {allowed}-bit weights (mixed layers may average "
                         f"anything from {lo:g} to {hi:g}) to INT8, got {bits:g}")
    return float(bits)


def stored_weight_bytes(elements, density: float, bits: float, mech: Mechanisms | None = None):
    """Bytes of a weight matrix with ``elements`` entries kept at ``density`` and ``bits`` each.

    Sparse matrices add a ``index_bits`` index per kept weight and one info byte per block^2 tile.
    """
    m = mech or load_mechanisms()
    if density >= 1.0:
        return elements * bits / 8.0
    return (elements * density * (bits + m.index_bits) / 8.0
            + elements / m.sparse_block ** 2 * m.block_info_bytes)


def chain_compute_fraction(density: float, sparse_dsp_chain: bool = True) -> float:
    """Fraction of the dense MACs the DSP chain spends: the kept fraction with the sparse chain,
    all of them without it (compute efficiency on a sparse layer rises by 1 / density)."""
    return density if sparse_dsp_chain else 1.0


def bucket(length, size: int):
    """``length`` rounded up to a multiple of ``size`` (arrays welcome)."""
    return np.ceil(np.asarray(length, dtype=float) / size) * size


def instruction_programs(max_len: int, length_adaptive: bool = True, mech: Mechanisms | None = None) -> int:
    """Compiled programs needed to serve every prefill and decode length up to ``max_len``."""
    m = mech or load_mechanisms()
    if max_len < 1:
        raise ValueError(f"max_len: must be >= 1, got {max_len}")
    if not length_adaptive:
        return 2 * max_len
    return math.ceil(max_len / m.prefill_bucket) + math.ceil(max_len / m.decode_bucket)


#: LLaMA2-7B's decoder layer as FlightLLM compiles it: GEMM output widths (q/k/v, o, gate/up, down),
#: heads, head dim [LLaMA2-7B config.json]; SFU instructions per token tile (2 norms, RoPE,
#: SiLU-and-mul, 2 residual adds, softmax: 7).
LLAMA2_7B_LAYER = {"gemm_n": (12288, 4096, 22016, 4096), "heads": 32, "head_dim": 128, "misc": 7}


def layer_instructions(phase: str, length, layer: dict | None = None, mv_width: int = 512,
                       mm_rows: int = 128) -> np.ndarray:
    """Instructions of one decoder layer's program for a ``phase`` (``"prefill"`` or ``"decode"``)
    step of ``length`` tokens (prompt, or cached context); arrays welcome."""
    ly = layer or LLAMA2_7B_LAYER
    L = np.asarray(length, dtype=float)
    outs = sum(math.ceil(n / mv_width) for n in ly["gemm_n"])
    if phase == "decode":
        att = ly["heads"] * (np.ceil(L / mv_width) + math.ceil(ly["head_dim"] / mv_width))
        return outs + att + ly["misc"]
    if phase != "prefill":
        raise ValueError(f"phase: expected 'prefill' or 'decode', got {phase!r}")
    tiles = np.ceil(L / mm_rows)
    return tiles * outs + ly["heads"] * tiles * (tiles + 1) + tiles * ly["misc"]


def instruction_count(max_len: int, length_adaptive: bool = True, mech: Mechanisms | None = None,
                      layer: dict | None = None) -> float:
    """Instructions stored to serve every prefill and decode length 1..``max_len``: one program per
    length without length-adaptive compilation, one per bucket with it."""
    m = mech or load_mechanisms()
    if max_len < 1:
        raise ValueError(f"max_len: must be >= 1, got {max_len}")
    if length_adaptive:
        pre = bucket(np.arange(1, max_len + 1), m.prefill_bucket)
        dec = bucket(np.arange(1, max_len + 1), m.decode_bucket)
        pre, dec = np.unique(pre), np.unique(dec)
    else:
        pre = dec = np.arange(1, max_len + 1)
    total = layer_instructions("prefill", pre, layer).sum() + layer_instructions("decode", dec, layer).sum()
    return float(total * m.layers_per_program)


def instruction_storage_bytes(max_len: int, length_adaptive: bool = True, mech: Mechanisms | None = None) -> float:
    """Instruction storage (bytes) for all lengths up to ``max_len`` (instructions x bytes each)."""
    m = mech or load_mechanisms()
    return instruction_count(max_len, length_adaptive, m) * m.instruction_bytes
