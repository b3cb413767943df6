"""The record of one reproduced figure and the report over all of them."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass
class Figure:
    """A published figure, the model's value for it and the error.

    ``confidence`` is ``"[paper]"`` or ``"[secondary]"`` as in docs/reference-results.md;
    ``goal_pct`` the error the project aims for; ``note`` says what the model computes and
    whether the figure was used to set a parameter (``calibration point``).
    """

    paper: str
    name: str
    paper_value: float
    model_value: float
    unit: str
    confidence: str = "[paper]"
    goal_pct: float = 10.0
    note: str = ""
    error_pct: float = 0.0

    def __post_init__(self) -> None:
        self.paper_value, self.model_value = float(self.paper_value), float(self.model_value)
        self.goal_pct = float(self.goal_pct)
        self.error_pct = 100.0 * (self.model_value - self.paper_value) / self.paper_value

    @property
    def within_goal(self) -> bool:
        return bool(abs(self.error_pct) <= self.goal_pct)

    @property
    def calibration_point(self) -> bool:
        return "calibration point" in self.note


def report_dict(figures: list[Figure]) -> dict:
    """One object with the figures under ``figures`` (paper, name, values, error, confidence...)."""
    rows = []
    for f in figures:
        d = asdict(f)
        d["within_goal"] = f.within_goal
        rows.append(d)
    return {"figures": rows, "count": len(rows), "within_goal": sum(f.within_goal for f in figures),
            "secondary": sum(f.confidence == "[secondary]" for f in figures)}


def _fmt(v: float) -> str:
    return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"


def report_text(figures: list[Figure]) -> str:
    """A plain-text table: paper, figure, paper value, model value, error, goal, confidence."""
    head = f"{'paper':<16} {'figure':<58} {'paper':>10} {'model':>10} {'unit':<10} {'error':>8} {'goal':>6}  conf."
    lines = [head, "-" * len(head)]
    for f in figures:
        mark = "" if f.within_goal else "  (outside goal)"
        calib = "  [calibration point]" if f.calibration_point else ""
        lines.append(f"{f.paper:<16} {f.name[:58]:<58} {_fmt(f.paper_value):>10} {_fmt(f.model_value):>10} "
                     f"{f.unit:<10} {f.error_pct:>+7.1f}% {f.goal_pct:>5.0f}%  {f.confidence}{calib}{mark}")
    n_sec = sum(f.confidence == "[secondary]" for f in figures)
    n_ok = sum(f.within_goal for f in figures)
    lines.append("")
    lines.append(f"{n_ok} of {len(figures)} figures within their goal; {n_sec} figures are [secondary] "
                 "(a third party's reading of the paper, per docs/reference-results.md).")
    return "\n".join(lines)


def to_json(figures: list[Figure]) -> str:
    return json.dumps(report_dict(figures), indent=1)
