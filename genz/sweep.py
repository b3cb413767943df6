"""Sweeps: many what-ifs in one vectorized pass per (model, hardware, precision, split).

Numeric axes (batch, prompt, output) form a full grid evaluated by one call of
:func:`genz.predict.evaluate`; categorical axes (model, hardware, precision, tp/pp/ep) loop.
Configurations that do not fit stay in the result with ``fits = False``; splits that are
impossible for a model (tp not dividing its heads...) and precisions a device cannot run are listed
in ``skipped``. Every row carries the device's ``profile``, ``profile_basis`` and expected relative
errors (``expected_error_ttft``, ``_tpot``, ``_energy``; NaN where the basis states none).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from genz.parallel import check_parallelism
from genz.predict import check_device_precision, device_basis, evaluate
from genz.runtime import load_runtime
from hwmodels.registry import load_device
from workloads import Precision, load_model

#: Configurations per vectorized pass: small enough that the (rows x configs) arrays stay in cache.
CHUNK = 2048
_RANGE = re.compile(r"^(?P<a>\d+):(?P<b>\d+):(?P<x>x)?(?P<s>\d+(?:\.\d+)?)$")


def parse_values(text: str | Iterable, name: str = "value") -> list:
    """``"1,2,4"`` -> [1, 2, 4]; ``"1:256:x2"`` -> 1, 2, ... 256 (geometric);
    ``"128:512:128"`` -> 128, 256, 384, 512. Non-numeric items stay strings (``"h100,h200"``).

    >>> parse_values("1:16:x2")
    [1, 2, 4, 8, 16]
    """
    if not isinstance(text, str):
        return list(text)
    out: list = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        m = _RANGE.match(part)
        if m:
            a, b, s = int(m["a"]), int(m["b"]), float(m["s"])
            if (m["x"] and s <= 1) or (not m["x"] and s <= 0) or b < a:
                raise ValueError(f"{name}: bad range {part!r}; use start:stop:step or start:stop:xFACTOR with stop >= start")
            v = float(a)
            while v <= b + 1e-9:
                out.append(int(round(v)))
                v = v * s if m["x"] else v + s
        elif re.fullmatch(r"-?\d+", part):
            out.append(int(part))
        else:
            out.append(part)
    if not out:
        raise ValueError(f"{name}: no values given")
    return out


@dataclass
class SweepResult:
    frame: object  # pandas.DataFrame
    skipped: list = field(default_factory=list)  # (model, hardware, precision, tp, pp, ep, reason)
    configurations: int = 0


def sweep(models: Iterable[str], hardware: Iterable[str], *, batch: Iterable[int] = (1,), prompt: Iterable[int] = (1024,),
          output: Iterable[int] = (128,), precision: Iterable[str] = ("bf16",), tp: Iterable[int] = (1,),
          pp: Iterable[int] = (1,), ep: Iterable[int] = (1,), cuda_graphs: bool = True, runtime: str = "vllm",
          profile: str = "auto", progress: Callable[[int, int], None] | None = None) -> SweepResult:
    """Evaluate the full grid; returns one row per configuration (SI units)."""
    import pandas as pd

    B, S, Out = np.meshgrid(np.asarray(list(batch), float), np.asarray(list(prompt), float),
                            np.asarray(list(output), float), indexing="ij")
    B, S, Out = B.ravel(), S.ravel(), Out.ravel()
    for name, arr in (("batch", B), ("prompt", S), ("output", Out)):
        if (arr < 1).any() or (arr != np.round(arr)).any():
            raise ValueError(f"{name}: values must be integers >= 1")
    rt = load_runtime(runtime)
    combos = list(itertools.product(list(models), list(hardware), list(precision), list(tp), list(pp), list(ep)))
    frames, skipped = [], []
    devices = {}
    for i, (mname, hw, prec, t, p, e) in enumerate(combos):
        model = load_model(mname)
        pr = Precision.parse(prec)
        if hw not in devices:
            devices[hw] = load_device(hw, profile)
        try:
            check_parallelism(model, t, p, e)
            check_device_precision(devices[hw], pr)
        except ValueError as exc:
            skipped.append((model.name, hw, pr.name, t, p, e, str(exc)))
            if progress:
                progress(i + 1, len(combos))
            continue
        parts = [evaluate(model, devices[hw], pr, B[j:j + CHUNK], S[j:j + CHUNK], Out[j:j + CHUNK], tp=int(t),
                          pp=int(p), ep=int(e), cuda_graphs=cuda_graphs, runtime=rt) for j in range(0, len(B), CHUNK)]
        df = pd.DataFrame({k: np.concatenate([q[k] for q in parts]) for k in parts[0]})
        df.insert(0, "output", Out.astype(int))
        df.insert(0, "prompt", S.astype(int))
        df.insert(0, "batch", B.astype(int))
        for col, val in (("ep", e), ("pp", p), ("tp", t), ("precision", pr.name), ("hardware", devices[hw].name),
                         ("model", model.name)):
            df.insert(0, col, val)
        basis = device_basis(devices[hw])
        df["profile"], df["profile_basis"] = basis["profile"], basis["profile_basis"]
        for q in ("ttft", "tpot", "energy"):
            df[f"expected_error_{q}"] = basis["expected_error"].get(q, np.nan)
        frames.append(df)
        if progress:
            progress(i + 1, len(combos))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return SweepResult(frame=frame, skipped=skipped, configurations=len(frame))
