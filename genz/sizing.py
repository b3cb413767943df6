"""What would fit: when a configuration's memory does not fit its devices, the smallest changes that do.

>>> fit_hint("llama-3.1-405b", "h200", batch=1, prompt=1024, output=128)
'fits with tp 8 (needs 101.6 GB of 150.1 GB per device); or fp8 at tp 4 (102.8 GB), w4a16 at tp 2 (105.1 GB)'
"""

from __future__ import annotations

from genz.parallel import check_parallelism
from genz.predict import predict
from hwmodels.registry import load_device
from workloads import Precision, load_model

__all__ = ["fit_hint", "fitting_splits"]

_TPS = (1, 2, 4, 8, 16, 32, 64)
_LOWER = ("fp8", "int8", "w4a16")  # lower precisions tried, in order (assumption: the common deployments)


def fitting_splits(model, hardware, *, batch: int = 1, prompt: int = 1024, output: int = 128,
                   precision: str = "bf16", tp: int = 1, pp: int = 1, ep: int = 1) -> list[tuple[str, int, float]]:
    """``(precision, tp, bytes per device)`` of the smallest tensor-parallel size that fits, first at
    ``precision`` then at lower precisions (at most one entry each; empty when nothing up to tp 64 does)."""
    m = load_model(model)
    out = []
    for name in dict.fromkeys([Precision.parse(precision).name, *_LOWER]):
        prec = Precision.parse(name)
        if prec.weight_bits > Precision.parse(precision).weight_bits:
            continue
        for t in _TPS:
            if t < tp:
                continue
            try:
                check_parallelism(m, t, pp, max(ep, 1))
            except ValueError:
                continue
            try:
                p = predict(m, hardware, batch=batch, prompt=prompt, output=output, precision=prec, tp=t, pp=pp,
                            ep=ep, allow_long_context=True)  # memory as predict counts it: one rule
            except ValueError:  # a dtype the device lacks, a split the model does not allow
                continue
            if p.fits:
                out.append((prec.name, t, p.memory_bytes))
                break
    return out


def fit_hint(model, hardware, *, batch: int = 1, prompt: int = 1024, output: int = 128, precision: str = "bf16",
             tp: int = 1, pp: int = 1, ep: int = 1) -> str:
    """One line: the smallest tp that fits, then the lowest-tp lower precision ('' when none does)."""
    cap = load_device(hardware).memory_bytes
    splits = fitting_splits(model, hardware, batch=batch, prompt=prompt, output=output, precision=precision,
                            tp=tp, pp=pp, ep=ep)
    if not splits:
        return "nothing up to tp 64 at this precision, fp8 or w4a16 fits; lower the batch or the context, or add pp"
    first, rest = splits[0], splits[1:]
    same = first[0] == Precision.parse(precision).name
    text = (f"fits with tp {first[1]}" if same else f"fits with {first[0]} at tp {first[1]}") + \
        f" (needs {first[2] / 1e9:.1f} GB of {cap / 1e9:.1f} GB per device)"
    better, lowest = [], first[1]
    for s in rest:  # each alternative must need fewer devices than every one before it
        if s[1] < lowest:
            better.append(s)
            lowest = s[1]
    if better:
        text += "; or " + ", ".join(f"{p} at tp {t} ({b / 1e9:.1f} GB)" for p, t, b in better)
    return text
