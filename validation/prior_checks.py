"""Public measurements of GPUs that were not measured here, against the model on their profiles.

Each transferred or prior profile file (``hwmodels/data/profiles/<gpu>.json``) may list ``checks``:
published figures of that GPU that none of its parameters came from (a GEMM's TFLOP/s, a copy's
bandwidth, a model's time per output token...). This module predicts each one with the GPU's
default profile and reports the error next to the profile's stated band, so a reader sees whether
the band is honest. Run: ``python -m validation.prior_checks [--json]``.

Check kinds and their fields (all SI except where named):

- ``gemm``: ``m``, ``n``, ``k``, ``dtype``, ``tflops`` (achieved, dense);
- ``membw``: ``op`` (``copy``, ``read`` or ``write``), ``bytes`` (buffer size), ``gb_per_s``
  (bytes moved per second / 1e9, reads plus writes for a copy);
- ``attention``: ``phase`` (``prefill``/``decode``), ``batch``, ``heads``, ``kv_heads``, ``head_dim``,
  ``q_len``, ``kv_len``, ``causal``, ``tflops``;
- ``decode`` / ``prefill`` / ``energy``: ``model``, ``precision``, ``batch``, ``prompt``, ``output``,
  optional ``runtime`` (vllm), ``cuda_graphs`` (true), ``tp`` (1); then ``tpot_s``, ``ttft_s`` or
  ``joules_per_token``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass

import numpy as np

import genz
from hwmodels.registry import load_device
from hwmodels.spec import list_gpus
from validation.kernels import attention_table, gemm_table, memory_table

#: Which stated band a check kind is held to.
BAND_OF = {"gemm": "kernels", "attention": "kernels", "membw": "kernels", "decode": "tpot", "prefill": "ttft",
           "energy": "energy"}


@dataclass
class CheckResult:
    """One published figure against the model: values in the figure's own unit."""

    hardware: str
    basis: str
    kind: str
    what: str
    published: float
    predicted: float
    error_pct: float
    band_pct: float | None
    within: bool | None
    source: str


def _predict(hw: str, c: dict) -> tuple[str, float]:
    dev = load_device(hw)
    kind = c["kind"]
    if kind == "gemm":
        t = dev.cost(gemm_table(c["m"], c["n"], c["k"], c["dtype"])).time_s[0, 0]
        return f"GEMM {c['m']}x{c['n']}x{c['k']} {c['dtype']} (TFLOP/s)", 2.0 * c["m"] * c["n"] * c["k"] / t / 1e12
    if kind == "membw":
        tab = memory_table(c["op"], c["bytes"])
        t = dev.cost(tab).time_s[0, 0]
        moved = float(tab.bytes_read[0, 0] + tab.bytes_written[0, 0])
        return f"{c['op']} of {c['bytes'] / 1e9:g} GB (GB/s)", moved / t / 1e9
    if kind == "attention":
        tab = attention_table(c["phase"], c["batch"], c["heads"], c["kv_heads"], c["head_dim"], c["q_len"],
                              c["kv_len"], c.get("causal", True))
        t = dev.cost(tab).time_s[0, 0]
        return (f"attention {c['phase']} b{c['batch']} h{c['heads']} d{c['head_dim']} {c['q_len']}x{c['kv_len']} (TFLOP/s)",
                float(tab.flops[0, 0]) / t / 1e12)
    if kind in ("decode", "prefill", "energy"):
        p = genz.predict(c["model"], hw, batch=c["batch"], prompt=c["prompt"], output=c["output"],
                         precision=c["precision"], runtime=c.get("runtime", "vllm"),
                         cuda_graphs=c.get("cuda_graphs", True), tp=c.get("tp", 1))
        label = f"{c['model']} {c['precision']} b{c['batch']} {c['prompt']}/{c['output']} {c.get('runtime', 'vllm')}"
        if kind == "decode":
            return f"{label}: time per output token (s)", p.tpot_s
        if kind == "prefill":
            return f"{label}: time to first token (s)", p.ttft_s
        return f"{label}: joules per output token", p.energy_per_token_j
    raise ValueError(f"check: unknown kind {kind!r}; allowed: {', '.join(BAND_OF)}")


_PUBLISHED_KEY = {"gemm": "tflops", "attention": "tflops", "membw": "gb_per_s", "decode": "tpot_s",
                  "prefill": "ttft_s", "energy": "joules_per_token"}


def run_checks(hardware: list[str] | None = None) -> list[CheckResult]:
    """Every check of every (or the named) GPU's default profile."""
    out = []
    for hw in hardware or list_gpus():
        prof = load_device(hw).profile
        for c in prof.extra.get("checks", []):
            what, pred = _predict(hw, c)
            pub = float(c[_PUBLISHED_KEY[c["kind"]]])
            err = (pred / pub - 1.0) * 100.0
            band = prof.expected_error.get(BAND_OF[c["kind"]])
            out.append(CheckResult(hardware=hw, basis=prof.basis, kind=c["kind"], what=what, published=pub,
                                   predicted=float(pred), error_pct=float(err),
                                   band_pct=None if band is None else 100.0 * band,
                                   within=None if band is None else bool(abs(err) <= 100.0 * band),
                                   source=str(c["source"])))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m validation.prior_checks", description=__doc__.split("\n\n")[0])
    ap.add_argument("--hardware", default=None, help="Comma-separated GPUs (default: every shipped GPU).")
    ap.add_argument("--json", action="store_true", help="Print a JSON list.")
    args = ap.parse_args(argv)
    res = run_checks(args.hardware.split(",") if args.hardware else None)
    if args.json:
        print(json.dumps([asdict(r) for r in res], indent=1))
        return 0
    for r in res:
        tag = "within" if r.within else ("OUTSIDE" if r.within is not None else "no band")
        print(f"{r.hardware:15s} {r.basis:11s} {r.what:62s} published {r.published:10.4g} model {r.predicted:10.4g} "
              f"{r.error_pct:+6.1f} % [{tag} +-{r.band_pct or float('nan'):.0f} %]")
    n_in = sum(bool(r.within) for r in res)
    errs = np.abs([r.error_pct for r in res]) if res else np.array([np.nan])
    print(f"{len(res)} checks, {n_in} within their GPU's stated band; median |error| {np.median(errs):.1f} %")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
