"""The record of one reproduced figure, the fits that set parameters from figures, and the report.

Every figure is one of three kinds (:data:`KINDS`):

- ``fitted``: a parameter was chosen from it (alone or jointly with other figures); its error says
  only how well the fit went, never how well the model predicts.
- ``by construction``: it follows from the inputs without modelling (a data-sheet peak, a ratio of
  two fitted numbers, an efficiency the artifact's configuration states).
- ``predicted``: nothing was chosen from it; its error is the model's.

A :class:`Fit` names the parameter, its value and the figures it was chosen from; the test suite
checks that every figure a fit uses is marked ``fitted``. Leave-one-out rows
(:class:`LeaveOneOut`) refit a parameter with one of its figures left out and give the error on
the figure left out.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field

KINDS = ("fitted", "by construction", "predicted")


@dataclass
class Figure:
    """A published figure, the model's value for it and the error (%, model vs paper).

    ``confidence`` is ``"[paper]"`` or ``"[secondary]"`` as in docs/reference-results.md;
    ``goal_pct`` the error the project aims for; ``kind`` one of :data:`KINDS`; ``note`` says what
    the model computes.
    """

    paper: str
    name: str
    paper_value: float
    model_value: float
    unit: str
    confidence: str = "[paper]"
    goal_pct: float = 10.0
    note: str = ""
    kind: str = "predicted"
    error_pct: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind: expected one of {', '.join(KINDS)}, got {self.kind!r}")
        self.paper_value, self.model_value = float(self.paper_value), float(self.model_value)
        self.goal_pct = float(self.goal_pct)
        self.error_pct = 100.0 * (self.model_value - self.paper_value) / self.paper_value

    @property
    def within_goal(self) -> bool:
        return bool(abs(self.error_pct) <= self.goal_pct)

    @property
    def calibration_point(self) -> bool:
        return self.kind == "fitted"


@dataclass(frozen=True)
class Fit:
    """A parameter chosen from figures: ``figures`` are their names (all marked ``fitted``)."""

    paper: str
    parameter: str
    value: float
    figures: tuple
    how: str = ""


@dataclass(frozen=True)
class LeaveOneOut:
    """Refit of ``parameters`` without ``figure``: the refit values and the error on that figure
    (``None`` when the figure alone sets a parameter, so nothing is left to fit it from)."""

    paper: str
    figure: str
    parameters: str
    refit: str
    error_pct: float | None
    why: str = ""


@dataclass
class PaperReport:
    figures: list
    fits: list = field(default_factory=list)
    loo: list = field(default_factory=list)


def _stats(errors: list[float]) -> dict:
    a = [abs(e) for e in errors]
    return {"count": len(a), "median_abs_error_pct": statistics.median(a) if a else None,
            "worst_abs_error_pct": max(a) if a else None}


def totals(figures: list[Figure]) -> dict:
    """Counts per kind and the median/worst absolute error of the predicted figures."""
    out = {k: sum(f.kind == k for f in figures) for k in KINDS}
    out["predicted_errors"] = _stats([f.error_pct for f in figures if f.kind == "predicted"])
    out["within_goal"] = sum(f.within_goal for f in figures)
    return out


def report_dict(figures: list[Figure], fits: list[Fit] | None = None, loo: list[LeaveOneOut] | None = None) -> dict:
    """One object: ``figures`` (each with ``kind``), ``totals`` overall and ``papers`` per paper
    (counts per kind, predicted-only errors), ``fits`` and ``leave_one_out``."""
    rows = []
    for f in figures:
        d = asdict(f)
        d["within_goal"] = f.within_goal
        rows.append(d)
    papers = {}
    for p in dict.fromkeys(f.paper for f in figures):
        papers[p] = totals([f for f in figures if f.paper == p])
    return {"figures": rows, "count": len(rows), "within_goal": sum(f.within_goal for f in figures),
            "secondary": sum(f.confidence == "[secondary]" for f in figures),
            "totals": totals(figures), "papers": papers,
            "fits": [asdict(x) for x in (fits or [])], "leave_one_out": [asdict(x) for x in (loo or [])]}


def _fmt(v: float) -> str:
    return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"


def _summary(name: str, t: dict) -> str:
    e = t["predicted_errors"]
    pred = (f"predicted: median {e['median_abs_error_pct']:.1f} %, worst {e['worst_abs_error_pct']:.1f} %"
            if e["count"] else "no predicted figures")
    return (f"{name}: {t['predicted']} predicted, {t['fitted']} fitted, {t['by construction']} by construction; "
            f"{pred}")


def report_text(figures: list[Figure], fits: list[Fit] | None = None, loo: list[LeaveOneOut] | None = None) -> str:
    """Plain text: the figure table with each figure's kind, totals per paper, fits, leave-one-out."""
    head = (f"{'paper':<16} {'figure':<58} {'paper':>10} {'model':>10} {'unit':<10} {'error':>8} {'goal':>6}  "
            f"{'kind':<15} conf.")
    lines = [head, "-" * len(head)]
    for f in figures:
        mark = "" if f.within_goal else "  (outside goal)"
        lines.append(f"{f.paper:<16} {f.name[:58]:<58} {_fmt(f.paper_value):>10} {_fmt(f.model_value):>10} "
                     f"{f.unit:<10} {f.error_pct:>+7.1f}% {f.goal_pct:>5.0f}%  {f.kind:<15} {f.confidence}{mark}")
    lines.append("")
    for p in dict.fromkeys(f.paper for f in figures):
        lines.append(_summary(p, totals([f for f in figures if f.paper == p])))
    lines.append(_summary("all papers", totals(figures)))
    n_sec = sum(f.confidence == "[secondary]" for f in figures)
    lines.append(f"{sum(f.within_goal for f in figures)} of {len(figures)} figures within their goal; {n_sec} "
                 "figures are [secondary] (a third party's reading of the paper, per docs/reference-results.md).")
    if fits:
        lines += ["", "Fitted parameters (one set per device; figures they were chosen from are 'fitted'):"]
        for x in fits:
            lines.append(f"  {x.paper}: {x.parameter} = {x.value:.4g} from {len(x.figures)} figure(s)"
                         f"{' (' + x.how + ')' if x.how else ''}")
    if loo:
        lines += ["", "Leave-one-out (refit without the figure, error on it):"]
        for r in loo:
            err = f"{r.error_pct:+7.1f}%" if r.error_pct is not None else "    n/a "
            lines.append(f"  {r.paper:<16} {r.figure[:58]:<58} {err}  {r.refit}{'  ' + r.why if r.why else ''}")
        known = [r.error_pct for r in loo if r.error_pct is not None]
        if known:
            s = _stats(known)
            lines.append(f"  leave-one-out over {s['count']} refittable figures: median {s['median_abs_error_pct']:.1f} %, "
                         f"worst {s['worst_abs_error_pct']:.1f} %; {len(loo) - len(known)} figures each set a "
                         "parameter alone (n/a)")
    return "\n".join(lines)


def to_json(figures: list[Figure], fits: list[Fit] | None = None, loo: list[LeaveOneOut] | None = None) -> str:
    return json.dumps(report_dict(figures, fits, loo), indent=1)
