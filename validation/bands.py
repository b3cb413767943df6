"""Expected-error bands of a profile, from the residuals of a validation run.

A band is the 90th percentile of |predicted / measured - 1| over the rows of one quantity, rounded
up to the next half percent, so that the band covers at least 90 % of the rows it was taken from:

- ``tpot``: whole-model decode steps under CUDA graphs (``e2e`` rows, phase ``decode``, ``cudagraph``);
- ``ttft``: whole-model prefill steps (``e2e`` rows, phase ``prefill``);
- ``energy``: every row with a measured energy;
- ``kernels``: the GEMM and attention kernel rows.

The shipped H200 profile states the bands of its own dataset (``python -m validation.bands`` prints
them; a test checks they still match). Transferred and prior profiles widen these by their own
uncertainty (see ``hwmodels/data/profiles`` and docs/hardware-profiles.md).
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import pandas as pd

QUANTITY_ROWS = {
    "tpot": lambda r: (r["file"] == "e2e") & (r["phase"] == "decode") & (r["timing"] == "cudagraph"),
    "ttft": lambda r: (r["file"] == "e2e") & (r["phase"] == "prefill"),
    "kernels": lambda r: r["file"].isin(["gemm", "attention"]),
}


def _p90_band(err_pct: pd.Series) -> float | None:
    e = err_pct.abs().dropna().to_numpy(float)
    if not len(e):
        return None
    return math.ceil(float(np.percentile(e, 90)) * 2.0) / 2.0 / 100.0


def error_bands(rows: pd.DataFrame) -> dict[str, dict]:
    """Band per quantity: ``{"value": fraction, "n": rows, "source": text}`` (quantities without rows
    are left out). ``rows`` is :attr:`validation.report.ValidationReport.rows`."""
    out: dict[str, dict] = {}
    for q, pick in QUANTITY_ROWS.items():
        sel = rows[pick(rows)]
        band = _p90_band(sel["err_time_pct"])
        if band is not None:
            out[q] = {"value": band, "n": int(len(sel)),
                      "source": f"p90 of |error| over {len(sel)} {q} rows of the validation run, rounded up to 0.5 %"}
    en = rows["err_energy_pct"].dropna()
    band = _p90_band(en)
    if band is not None:
        out["energy"] = {"value": band, "n": int(len(en)),
                         "source": f"p90 of |error| over {len(en)} rows with measured energy, rounded up to 0.5 %"}
    return out


def main(argv: list[str] | None = None) -> int:
    from validation.report import validate

    ap = argparse.ArgumentParser(prog="python -m validation.bands", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="validation/data/h200-2026-11-28", help="Measured dataset folder.")
    ap.add_argument("--profile", default=None, help="Profile (default: the dataset GPU's own).")
    args = ap.parse_args(argv)
    rep = validate(args.data, args.profile)
    print(f"expected-error bands of {rep.profile} on {rep.dataset}:")
    for q, b in error_bands(rep.rows).items():
        print(f"  {q:8s} {100 * b['value']:5.1f} %  ({b['source']})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
