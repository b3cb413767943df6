"""Errors on kernel rows the calibration did not see: k-fold cross-validation over shapes.

``genz validate`` scores the kernel files with a profile fitted on those same rows. This module
answers the honest question instead: split the kernel shapes into ``folds`` groups (both runs of a
shape always in the same group, so run2 cannot leak what run1 taught), fit the profile on the
other groups with :func:`validation.calibrate.fit_kernels`, and predict the held-out group.

Run: ``python -m validation.holdout [--data DIR] [--folds 5]`` (about 5 s per fold).
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
import pandas as pd

from hwmodels.gpu import GPU
from hwmodels.spec import load_gpu
from validation.calibrate import fit_kernels
from validation.compare import kernel_sets, predict_sets
from validation.dataset import MeasuredDataset, load_dataset

#: Columns that identify a kernel shape in each file (a shape's runs share a fold).
SHAPE_KEYS = {
    "gemm": ("dtype", "m", "n", "k"),
    "attention": ("phase", "batch", "heads", "kv_heads", "head_dim", "q_len", "kv_len"),
    "membw": ("op", "size_bytes"),
}


def _folds_of(df: pd.DataFrame, keys: tuple[str, ...], folds: int, rng: np.random.Generator) -> np.ndarray:
    shapes = df[list(keys)].astype(str).agg("|".join, axis=1)
    uniq = shapes.unique()
    assign = dict(zip(uniq, rng.permutation(len(uniq)) % folds, strict=True))
    return shapes.map(assign).to_numpy()


def kernel_holdout(data_dir, hardware: str = "h200", folds: int = 5, seed: int = 0) -> pd.DataFrame:
    """Held-out predictions of every kernel row: columns of :func:`predict_sets` plus ``fold``."""
    if folds < 2:
        raise ValueError(f"folds: must be >= 2, got {folds}")
    ds = load_dataset(data_dir)
    rng = np.random.default_rng(seed)
    fold_of = {f: _folds_of(getattr(ds, f), k, folds, rng) for f, k in SHAPE_KEYS.items()
               if getattr(ds, f) is not None}
    if not fold_of:
        raise ValueError(f"dataset: {ds.path} has no kernel file (gemm.csv, attention.csv, membw.csv)")
    spec = load_gpu(hardware)
    out = []
    for i in range(folds):
        def part(keep_fold: bool, i=i) -> MeasuredDataset:
            kw = {f: getattr(ds, f)[(fold_of[f] == i) == keep_fold] for f in fold_of}
            return replace(ds, e2e=None, hf=None, **kw)

        prof = fit_kernels(part(False), hardware)
        sets, _ = kernel_sets(part(True))
        frame = predict_sets(sets, GPU(spec, prof))
        frame["fold"] = i
        out.append(frame)
    return pd.concat(out, ignore_index=True)


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """MAPE, median and p90 of |predicted / measured - 1| (%) per file and dtype/phase, for time and energy."""
    f = frame.copy()
    f["err_t"] = (f["predicted_s"] / f["measured_s"] - 1).abs() * 100
    f["err_e"] = (f["predicted_j"] / f["measured_j"] - 1).abs() * 100
    key = np.where(f["file"] == "gemm", f["dtype"], f["phase"]) if "phase" in f else f["dtype"]
    f["group"] = key
    rows = []
    for (file, group), g in [*f.groupby(["file", "group"]), *[((fl, "all"), g) for fl, g in f.groupby("file")]]:
        e = g["err_e"].dropna()
        rows.append({"file": file, "group": group, "n": len(g), "mape_time_pct": g["err_t"].mean(),
                     "median_pct": g["err_t"].median(), "p90_pct": g["err_t"].quantile(0.9),
                     "n_energy": len(e), "mape_energy_pct": e.mean() if len(e) else np.nan})
    return pd.DataFrame(rows).sort_values(["file", "group"]).reset_index(drop=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Kernel errors on shapes the calibration did not see (k-fold).")
    ap.add_argument("--data", default="validation/data/h200-2026-11-28")
    ap.add_argument("--hardware", default="h200")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    table = summarize(kernel_holdout(args.data, args.hardware, args.folds, args.seed))
    print(f"Kernel rows predicted by profiles fitted without them ({args.folds}-fold over shapes), % error:")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))


if __name__ == "__main__":
    main()
