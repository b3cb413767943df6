"""Numeric precisions of weights, activations and the KV cache, kept separately.

A ``Precision`` is parsed from short strings that users already type:

>>> from workloads import Precision
>>> p = Precision.parse("w4a16")
>>> (p.weight_bits, p.act_bits, p.kv_bits, p.compute_dtype)
(4.0, 16.0, 16.0, 'bf16')
>>> Precision.parse("w8a8kv8").kv_bits
8.0
>>> Precision.parse("fp8+kvfp8").kv_dtype
'fp8'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

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

_PARSED: dict = {}
_W_A_KV = re.compile(r"^w(?P<w>\d+(?:\.\d+)?)a(?P<a>\d+)(?:kv(?P<kv>\d+))?$")
_ALLOWED_WEIGHT_BITS = (1, 1.58, 2, 3, 3.5, 4, 5, 6, 8, 16, 32)
#: KV-cache dtypes as engines name them (vLLM's ``--kv-cache-dtype``, TensorRT-LLM's ``kv_cache_dtype``):
#: name -> (bits, dtype the cache is stored in). ``auto`` keeps the precision's own.
KV_CACHE_DTYPES: dict[str, tuple[float, str]] = {
    "fp8": (8, "fp8"), "fp8_e4m3": (8, "fp8"), "fp8_e5m2": (8, "fp8"), "int8": (8, "int8"), "int4": (4, "int4"),
    "bf16": (16, "bf16"), "fp16": (16, "fp16"), "fp32": (32, "fp32"),
}


@dataclass(frozen=True)
class Precision:
    """Bits per weight, per activation and per KV-cache element, and the dtype GEMMs run in.

    Assumption: a GEMM runs in the activation precision (low-bit weights are dequantized on the
    fly, as Marlin/AWQ kernels do), so ``w4a16`` computes in bf16 but reads 4-bit weights. The KV
    cache has its own dtype (``kv_dtype``): it sets the bytes attention reads; attention computes in
    FP8 only when the model computes in FP8 too (FlashAttention-3's FP8 path), otherwise an 8-bit
    cache is dequantized inside a 16-bit kernel (assumption: as FlashInfer's FP8-KV decode does).
    """

    name: str
    weight_bits: float
    act_bits: float
    kv_bits: float
    compute_dtype: str
    weight_format: str = "float"
    kv_dtype: str = ""

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
        """Parse ``bf16``, ``fp8``, ``int4``, ``w4a16``, ``w8a8kv8``... optionally followed by
        ``+kv<dtype>`` for the KV cache (``fp8+kvfp8``: FP8 weights and activations with an FP8 KV
        cache, as deployed; ``w4a16+kvfp8``; ``bf16+kvfp8``)."""
        if isinstance(text, Precision):
            return text
        if type(text) is str and text in _PARSED:
            return _PARSED[text]
        key = str(text).strip().lower()
        base, sep, kv = key.partition("+")
        p = cls._parse_base(base, text)
        if sep:
            if not kv.startswith("kv") or kv[2:] not in KV_CACHE_DTYPES:
                raise ValueError(f"precision: cannot parse the KV-cache part {'+' + kv!r} of {text!r}; use "
                                 f"+kv<dtype> with dtype one of {', '.join(KV_CACHE_DTYPES)}, e.g. fp8+kvfp8")
            p = p.with_kv_cache(kv[2:])
        if type(text) is str and len(_PARSED) < 1024:
            _PARSED[text] = p  # precisions are frozen: one parse per spelling
        return p

    @classmethod
    def _parse_base(cls, key: str, text) -> Precision:
        if key in _NAMED:
            w, a, kv, dt, fmt = _NAMED[key]
            return cls(key, float(w), float(a), float(kv), dt, fmt, _default_kv_dtype(kv, dt))
        m = _W_A_KV.match(key)
        if not m:
            raise ValueError(
                f"precision: cannot parse {text!r}; use one of {', '.join(_NAMED)} "
                "or the form w<bits>a<bits>[kv<bits>], e.g. w4a16, w8a8kv8, w1.58a8, optionally +kv<dtype> "
                "(fp8+kvfp8)"
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
        kv_dtype = {32: "fp32", 16: "bf16", 8: "int8", 4: "int4"}[int(kv)]
        return cls(key, w, a, kv, compute, fmt, kv_dtype)

    def with_kv_cache(self, dtype: str) -> Precision:
        """This precision with its KV cache in ``dtype`` (``auto`` keeps it): what engines'
        ``--kv-cache-dtype`` does."""
        d = str(dtype).strip().lower()
        if d == "auto":
            return self
        if d not in KV_CACHE_DTYPES:
            raise ValueError(f"kv-cache-dtype: {dtype!r} is not one of auto, {', '.join(KV_CACHE_DTYPES)}")
        bits, stored = KV_CACHE_DTYPES[d]
        base = self.name.split("+", 1)[0]
        name = base if bits == self.kv_bits and stored == self.kv_dtype else f"{base}+kv{d}"
        return replace(self, name=name, kv_bits=float(bits), kv_dtype=stored)


def _default_kv_dtype(kv_bits: float, compute: str) -> str:
    if kv_bits == 16:
        return "fp16" if compute == "fp16" else "bf16"
    return {32: "fp32", 8: "fp8" if compute == "fp8" else "int8", 4: "int4"}[int(kv_bits)]


def precision_names() -> tuple[str, ...]:
    """Named precisions accepted by :meth:`Precision.parse` (besides the ``w?a?kv?`` form)."""
    return tuple(_NAMED)


#: Deployments as engines run them, in the grammar above (what ``genz list precisions`` shows).
DEPLOYMENT_EXAMPLES = (
    ("bf16", "16-bit weights, activations and KV cache"),
    ("bf16+kvfp8", "16-bit model, FP8 KV cache (vLLM --kv-cache-dtype fp8)"),
    ("fp8", "FP8 (E4M3) weights and activations, 16-bit KV cache (vLLM --quantization fp8)"),
    ("fp8+kvfp8", "FP8 weights, activations and KV cache: the common FP8 deployment"),
    ("w4a16", "4-bit weights (AWQ/GPTQ, Marlin kernels), 16-bit activations and KV"),
    ("w4a16+kvfp8", "4-bit weights with an FP8 KV cache"),
    ("w8a8kv8", "INT8 weights and activations (SmoothQuant) with an INT8 KV cache"),
    ("ternary", "1.58-bit weights (BitNet), INT8 activations"),
)
