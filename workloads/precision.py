"""Numeric precisions of weights, activations and the KV cache, kept separately.

A ``Precision`` is parsed from short strings that users already type:

>>> from workloads import Precision
>>> p = Precision.parse("w4a16")
>>> (p.weight_bits, p.act_bits, p.kv_bits, p.compute_dtype)
(4.0, 16.0, 16.0, 'bf16')
>>> Precision.parse("w8a8kv8").kv_bits
8.0
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Compute dtypes a device may list peak rates for (the names used in hardware data files).
COMPUTE_DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "int4", "fp4")

_NAMED: dict[str, tuple[float, float, float, str, str]] = {
    # name: (weight bits, activation bits, kv bits, compute dtype, weight format)
    "fp32": (32, 32, 32, "fp32", "float"),
    "tf32": (32, 32, 32, "tf32", "float"),
    "bf16": (16, 16, 16, "bf16", "float"),
    "fp16": (16, 16, 16, "fp16", "float"),
    # fp8 as vLLM's "fp8" quantization: W8A8 in e4m3, KV cache left in 16 bits unless asked for.
    "fp8": (8, 8, 16, "fp8", "float"),
    "int8": (8, 8, 16, "int8", "int"),
    "int4": (4, 16, 16, "bf16", "int"),
    "int2": (2, 16, 16, "bf16", "int"),
    "ternary": (1.58, 8, 16, "int8", "int"),
    "1.58-bit": (1.58, 8, 16, "int8", "int"),
}

_W_A_KV = re.compile(r"^w(?P<w>\d+(?:\.\d+)?)a(?P<a>\d+)(?:kv(?P<kv>\d+))?$")
_ALLOWED_WEIGHT_BITS = (1, 1.58, 2, 3, 3.5, 4, 5, 6, 8, 16, 32)


@dataclass(frozen=True)
class Precision:
    """Bits per weight, per activation and per KV-cache element, and the dtype GEMMs run in.

    Assumption: a GEMM runs in the activation precision (low-bit weights are dequantized on the
    fly, as Marlin/AWQ kernels do), so ``w4a16`` computes in bf16 but reads 4-bit weights.
    """

    name: str
    weight_bits: float
    act_bits: float
    kv_bits: float
    compute_dtype: str
    weight_format: str = "float"

    @property
    def weight_bytes(self) -> float:
        """Bytes per weight element."""
        return self.weight_bits / 8.0

    @property
    def act_bytes(self) -> float:
        """Bytes per activation element."""
        return self.act_bits / 8.0

    @property
    def kv_bytes(self) -> float:
        """Bytes per KV-cache element."""
        return self.kv_bits / 8.0

    @classmethod
    def parse(cls, text: str | Precision) -> Precision:
        """Parse ``bf16``, ``fp16``, ``fp8``, ``int8``, ``int4``, ``int2``, ``ternary``, ``w4a16``, ``w8a8kv8``..."""
        if isinstance(text, Precision):
            return text
        key = str(text).strip().lower()
        if key in _NAMED:
            w, a, kv, dt, fmt = _NAMED[key]
            return cls(key, float(w), float(a), float(kv), dt, fmt)
        m = _W_A_KV.match(key)
        if not m:
            raise ValueError(
                f"precision: cannot parse {text!r}; use one of {', '.join(_NAMED)} "
                "or the form w<bits>a<bits>[kv<bits>], e.g. w4a16, w8a8kv8, w1.58a8"
            )
        w = float(m.group("w"))
        a = float(m.group("a"))
        kv = float(m.group("kv")) if m.group("kv") else (16.0 if a <= 16 else a)
        if w not in _ALLOWED_WEIGHT_BITS:
            raise ValueError(f"precision: weight bits {w:g} not supported; allowed: {_ALLOWED_WEIGHT_BITS}")
        if a not in (4, 8, 16, 32):
            raise ValueError(f"precision: activation bits {a:g} not supported; allowed: 4, 8, 16, 32")
        if kv not in (4, 8, 16, 32):
            raise ValueError(f"precision: KV-cache bits {kv:g} not supported; allowed: 4, 8, 16, 32")
        compute = {32: "fp32", 16: "bf16", 8: "int8" if w < 8 or w == 8 else "fp8", 4: "int4"}[int(a)]
        fmt = "float" if w >= 16 else "int"
        return cls(key, w, a, kv, compute, fmt)


def precision_names() -> tuple[str, ...]:
    """Named precisions accepted by :meth:`Precision.parse` (besides the ``w?a?kv?`` form)."""
    return tuple(_NAMED)
