"""Reproductions of published figures (FlightLLM, LUT Tensor Core): the paper's value, the model's
value and the error, for ``genz validate --papers``.

>>> from validation.papers import paper_figures
>>> figs = paper_figures()
>>> {f.paper for f in figs} == {"FlightLLM", "LUT Tensor Core"}
True
"""

from __future__ import annotations

from validation.papers.figures import (
    KINDS,
    Figure,
    Fit,
    LeaveOneOut,
    report_dict,
    report_text,
    to_json,
    totals,
)


def paper_figures() -> list[Figure]:
    """Every reproduced figure of every paper, in report order."""
    from validation.papers import flightllm, luttc

    return flightllm.figures() + luttc.figures()


def paper_fits() -> list[Fit]:
    """Every parameter chosen from paper figures, with the figures it was chosen from."""
    from validation.papers import flightllm, luttc

    return flightllm.fits() + luttc.fits()


def paper_leave_one_out() -> list[LeaveOneOut]:
    """Each fitted figure left out of its fit in turn, with the refit's error on it."""
    from validation.papers import flightllm, luttc

    return flightllm.leave_one_out() + luttc.leave_one_out()


def figures_report(json: bool = False) -> str:
    """The report as text, or (``json=True``) one JSON object: ``figures`` (each with ``kind``),
    per-paper ``papers`` totals, ``fits`` and ``leave_one_out``."""
    figs, fits, loo = paper_figures(), paper_fits(), paper_leave_one_out()
    return to_json(figs, fits, loo) if json else report_text(figs, fits, loo)


def sensitivity_report() -> str:
    """How far each assumed parameter moves the figures (see :mod:`validation.papers.sensitivity`)."""
    from validation.papers.sensitivity import sensitivity_report as report

    return report()


__all__ = ["KINDS", "Figure", "Fit", "LeaveOneOut", "figures_report", "paper_figures", "paper_fits",
           "paper_leave_one_out", "report_dict", "report_text", "sensitivity_report", "to_json", "totals"]
