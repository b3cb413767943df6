"""How far the engine is from a measured dataset: ``validate(data_dir) -> ValidationReport``.

Every row of every recognized file is predicted (see :mod:`validation.compare`); errors are relative,
``predicted / measured - 1``, and grouped by file, model, phase, timing and dtype: n, MAPE (mean
absolute percentage error), median and 90th percentile of the absolute error, and the worst row, for
time and, where the file measured it, energy. Rows that could not be used are listed with the reason.
Rows a calibration has seen (see :mod:`validation.calibrate`) are marked, and the errors of the
rows it did not see are reported apart (``held_out``). The run-to-run noise floor (run1 against
run2) is the yardstick: no model can be judged more accurate than it.

>>> report = validate("h200-2026-11-28")  # doctest: +SKIP
>>> print(report.to_text())  # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hwmodels.gpu import GPU, EfficiencyProfile, load_device
from hwmodels.spec import hardware_names
from validation.compare import kernel_sets, predict_sets, step_sets
from validation.dataset import NOISE_KEYS, RejectedRow, load_dataset, noise_floor

GROUP_KEYS = ("file", "model", "phase", "timing", "dtype")
#: The targets of the project (percent MAPE): CUDA-graph decode steps, prefill, kernel files, energy.
GOALS = {"decode": 5.0, "prefill": 8.0, "kernels": 10.0, "energy": 15.0}


def error_stats(predicted, measured) -> dict:
    """Absolute relative errors in percent: n, MAPE, median, p90, worst and the position of the worst.

    >>> s = error_stats([1.1, 0.8, 1.0], [1.0, 1.0, 1.0])
    >>> s["n"], round(s["mape"], 2), round(s["worst"], 2), s["worst_at"]
    (3, 10.0, 20.0, 1)
    """
    p, m = np.asarray(predicted, float), np.asarray(measured, float)
    ok = np.isfinite(p) & np.isfinite(m) & (m > 0)
    if not ok.any():
        return {"n": 0, "mape": math.nan, "median": math.nan, "p90": math.nan, "worst": math.nan, "worst_at": -1}
    e = np.abs(p[ok] / m[ok] - 1.0) * 100
    at = int(np.flatnonzero(ok)[int(np.argmax(e))])
    return {"n": int(ok.sum()), "mape": float(e.mean()), "median": float(np.median(e)),
            "p90": float(np.percentile(e, 90)), "worst": float(e.max()), "worst_at": at}


@dataclass
class GroupStats:
    """Errors of one group of rows (percent). Energy fields are ``None`` where nothing was measured."""

    file: str
    model: str
    phase: str
    timing: str
    dtype: str
    n: int
    mape_time_pct: float
    median_time_pct: float
    p90_time_pct: float
    worst_time_pct: float
    worst_time_row: str
    n_energy: int = 0
    mape_energy_pct: float | None = None
    median_energy_pct: float | None = None
    p90_energy_pct: float | None = None
    worst_energy_pct: float | None = None
    worst_energy_row: str | None = None
    seen_by_fit: bool = False


def _where(r: pd.Series) -> str:
    return f"{r['file']}.csv row {r['row_number']} ({r['run']}: {r['label']})"


def group_errors(rows: pd.DataFrame, keys=GROUP_KEYS) -> list[GroupStats]:
    """One :class:`GroupStats` per distinct value of ``keys`` in ``rows`` (columns of
    :func:`validation.compare.predict_sets` output, plus a boolean ``seen_by_fit``)."""
    out = []
    for key, g in rows.groupby(list(keys), sort=False, dropna=False):
        g = g.reset_index(drop=True)
        t = error_stats(g["predicted_s"], g["measured_s"])
        e = error_stats(g["predicted_j"], g["measured_j"])
        fields = dict(zip(keys, ("" if isinstance(k, float) and math.isnan(k) else str(k) for k in key), strict=True))
        gs = GroupStats(**{k: fields.get(k, "") for k in GROUP_KEYS}, n=t["n"], mape_time_pct=t["mape"],
                        median_time_pct=t["median"], p90_time_pct=t["p90"], worst_time_pct=t["worst"],
                        worst_time_row=_where(g.iloc[t["worst_at"]]) if t["n"] else "",
                        seen_by_fit=bool(g["seen_by_fit"].any()) if "seen_by_fit" in g else False)
        if e["n"]:
            gs.n_energy, gs.mape_energy_pct, gs.median_energy_pct = e["n"], e["mape"], e["median"]
            gs.p90_energy_pct, gs.worst_energy_pct = e["p90"], e["worst"]
            gs.worst_energy_row = _where(g.iloc[e["worst_at"]])
        out.append(gs)
    return out


@dataclass
class Goal:
    """One target: ``value_pct`` (MAPE) against ``limit_pct``; ``held_out`` when no row was fitted."""

    name: str
    value_pct: float
    limit_pct: float
    passed: bool
    n: int
    held_out: bool
    detail: str = ""


def _goal(name: str, rows: pd.DataFrame, limit: float, energy: bool = False, detail: str = "") -> Goal:
    col = "predicted_j" if energy else "predicted_s"
    s = error_stats(rows[col], rows["measured_j" if energy else "measured_s"])
    held = bool(len(rows)) and not bool(rows["seen_by_fit"].any())
    return Goal(name, s["mape"], limit, bool(s["n"]) and s["mape"] <= limit, s["n"], held, detail)


def evaluate_goals(rows: pd.DataFrame) -> list[Goal]:
    """The project's targets on the rows present (a goal without rows is left out)."""
    goals = []
    e2e = rows[rows["file"] == "e2e"]
    for model in sorted(e2e["model"].unique()):
        m = e2e[e2e["model"] == model]
        dec = m[(m["phase"] == "decode") & (m["timing"] == "cudagraph")]
        pre = m[m["phase"] == "prefill"]
        if len(dec):
            goals.append(_goal(f"e2e {model} decode (CUDA graphs)", dec, GOALS["decode"]))
        if len(pre):
            goals.append(_goal(f"e2e {model} prefill", pre, GOALS["prefill"]))
    for file in ("gemm", "attention"):
        f = rows[rows["file"] == file]
        if len(f):
            groups = group_errors(f)
            worst = max(groups, key=lambda g: g.mape_time_pct)
            goals.append(_goal(f"{file} rows", f, GOALS["kernels"],
                               detail=f"worst group: {worst.phase} {worst.dtype} {worst.mape_time_pct:.1f} %".replace("  ", " ")))
    en = rows[rows["measured_j"].notna()]
    if len(en):
        per_file = {f: error_stats(g["predicted_j"], g["measured_j"])["mape"] for f, g in en.groupby("file")}
        goals.append(_goal("energy, all rows measured", en, GOALS["energy"], energy=True,
                           detail=", ".join(f"{f} {v:.1f} %" for f, v in per_file.items())))
    return goals


@dataclass
class ValidationReport:
    """Predicted against measured for one dataset and one device profile."""

    dataset: str
    device: str
    profile: str
    profile_source: str
    rows: pd.DataFrame
    groups: list[GroupStats]
    held_out: list[GroupStats]
    goals: list[Goal]
    rejected: list[RejectedRow] = field(default_factory=list)
    noise: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """One JSON-ready object: ``groups``, ``held_out``, ``goals``, ``rejected``, ``noise_floor``."""
        def clean(d: dict) -> dict:
            return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}
        return {
            "dataset": self.dataset, "device": self.device, "profile": self.profile,
            "profile_source": self.profile_source,
            "groups": [clean(asdict(g)) for g in self.groups],
            "held_out": [clean(asdict(g)) for g in self.held_out],
            "goals": [clean(asdict(g)) for g in self.goals],
            "rejected": [{"file": r.file, "row": r.row_number, "column": r.column, "reason": r.reason}
                         for r in self.rejected],
            "noise_floor": self.noise,
        }

    def to_text(self, width: int = 160) -> str:
        """An aligned table of the groups, then the goals, the noise floor and the rejected rows."""
        from io import StringIO

        from rich.console import Console
        from rich.table import Table

        def pct(v):
            return "" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.1f}"

        table = Table(title=f"{self.dataset} on {self.device} ({self.profile}): |predicted / measured - 1| in %")
        for col in ("file", "model", "phase", "timing", "dtype", "n", "MAPE", "median", "p90", "worst",
                    "n E", "MAPE E", "p90 E", "fit saw"):
            table.add_column(col, justify="right" if col not in ("file", "model", "phase", "timing", "dtype") else "left")
        for g in self.groups:
            table.add_row(g.file, g.model, g.phase, g.timing, g.dtype, str(g.n), pct(g.mape_time_pct),
                          pct(g.median_time_pct), pct(g.p90_time_pct), pct(g.worst_time_pct),
                          str(g.n_energy or ""), pct(g.mape_energy_pct), pct(g.p90_energy_pct),
                          "yes" if g.seen_by_fit else "no")
        buf = StringIO()
        console = Console(file=buf, width=width, force_terminal=False, color_system=None)
        console.print(table)
        lines = [buf.getvalue().rstrip(), "", "Goals (MAPE):"]
        for g in self.goals:
            tag = "PASS" if g.passed else "FAIL"
            seen = "rows unseen by the fit" if g.held_out else "fit saw some rows"
            lines.append(f"  [{tag}] {g.name}: {pct(g.value_pct)} % <= {g.limit_pct:g} % (n={g.n}, {seen})"
                         + (f"; {g.detail}" if g.detail else ""))
        if self.held_out:
            lines.append("Rows the fit did not see:")
            lines += [f"  {g.file} {g.model} {g.phase} {g.timing}: n={g.n}, MAPE {pct(g.mape_time_pct)} %"
                      + (f", energy {pct(g.mape_energy_pct)} %" if g.n_energy else "") for g in self.held_out]
        if self.noise:
            lines.append("Run-to-run noise floor (|run2 / run1 - 1|, median / p90 %): " + ", ".join(
                f"{k} {pct(v['median_pct'])} / {pct(v['p90_pct'])}" for k, v in self.noise.items()))
        lines.append(f"Rejected rows: {len(self.rejected)}")
        lines += [f"  {r}" for r in self.rejected]
        return "\n".join(lines)

    def to_html(self, path) -> Path:
        """A self-contained page (Plotly embedded, opens offline): predicted against measured per
        file, error by batch and by context, and the run-to-run noise band."""
        from validation.plots import report_html

        p = Path(path)
        from workloads.files import atomic_write_text

        atomic_write_text(p, report_html(self))
        return p


def _hardware_of(device_name: str | None) -> str:
    names = set(hardware_names())
    if device_name:
        words = device_name.lower().replace("nvidia", "").split()
        for n in range(len(words), 0, -1):
            key = "-".join(words[:n])
            if key in names:
                return key
    raise ValueError(f"hardware: cannot tell the hardware from env.json device name {device_name!r}; "
                     f"pass hardware= one of {', '.join(sorted(names))}")


def _seen(rows: pd.DataFrame, prof: EfficiencyProfile, dataset: str, hf_host_ops: bool) -> np.ndarray:
    """Which rows a calibration of ``prof`` fitted on (same dataset only)."""
    if prof.extra.get("dataset") != dataset:
        return np.zeros(len(rows), bool)
    seen = np.array(rows["file"].isin(["gemm", "attention", "membw"]), dtype=bool)
    for term in prof.extra.get("overhead_fit", {}).values():
        seen |= ((rows["file"] == "e2e") & rows["model"].isin(term.get("models", []))
                 & (rows["timing"] == term.get("timing"))).to_numpy()
    if hf_host_ops:
        seen |= ((rows["file"] == "hf") & (rows["phase"] == "decode")).to_numpy()
    return seen


def validate(data_dir, profile: str | Path | EfficiencyProfile | None = None, *, hardware: str | None = None,
             runtime: str = "plain-pytorch", hf_runtime: str = "hf-transformers",
             hf_model: str = "llama-3-8b") -> ValidationReport:
    """Predict every row of the dataset in ``data_dir`` and compare (see the module docstring).

    ``profile``: ``None`` (the shipped calibration of the dataset's GPU, else the datasheet),
    ``"datasheet"``, a profile JSON path or an :class:`EfficiencyProfile`. ``hardware`` defaults to
    the GPU named in ``env.json``.
    """
    ds = load_dataset(data_dir)
    hw = hardware or _hardware_of(ds.device_name)
    dev: GPU = load_device(hw, "auto" if profile is None else profile)
    ksets, krej = kernel_sets(ds)
    ssets, srej = step_sets(ds, runtime=runtime, hf_runtime=hf_runtime, hf_model=hf_model)
    if not ksets and not ssets:
        why = "; ".join(str(r) for r in [*ds.rejected, *krej, *srej][:5])
        raise ValueError(f"dataset: {ds.path} has no usable row to validate" + (f" (rejected: {why})" if why else ""))
    rows = predict_sets(ksets + ssets, dev)
    from genz.runtime import load_runtime

    rows["seen_by_fit"] = _seen(rows, dev.profile, ds.path.name, bool(load_runtime(hf_runtime).kernels.get("host_ops")))
    rows["err_time_pct"] = (rows["predicted_s"] / rows["measured_s"] - 1.0) * 100
    rows["err_energy_pct"] = (rows["predicted_j"] / rows["measured_j"] - 1.0) * 100
    noise = {}
    for name, df in ds.tables.items():
        nf = noise_floor(df, NOISE_KEYS[name])
        if nf.pairs:
            noise[name] = {"median_pct": nf.median * 100, "p90_pct": nf.p90 * 100, "pairs": nf.pairs}
    unseen = rows[~rows["seen_by_fit"]]
    return ValidationReport(
        dataset=ds.path.name, device=dev.name, profile=dev.profile.name, profile_source=dev.profile.source,
        rows=rows, groups=group_errors(rows), held_out=group_errors(unseen) if rows["seen_by_fit"].any() else [],
        goals=evaluate_goals(rows), rejected=[*ds.rejected, *krej, *srej], noise=noise)
