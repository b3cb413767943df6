"""Reproductions of published figures (FlightLLM, LUT Tensor Core): the paper's value, the model's
value and the error, for ``genz validate --papers``.

>>> from validation.papers import paper_figures
>>> figs = paper_figures()
>>> {f.paper for f in figs} == {"FlightLLM", "LUT Tensor Core"}
True
"""

from __future__ import annotations

from validation.papers.figures import Figure, report_dict, report_text, to_json


def paper_figures() -> list[Figure]:
    """Every reproduced figure of every paper, in report order."""
    from validation.papers import flightllm, luttc

    return flightllm.figures() + luttc.figures()


def figures_report(json: bool = False) -> str:
    """The report as text, or (``json=True``) one JSON object with a list under ``figures``."""
    figs = paper_figures()
    return to_json(figs) if json else report_text(figs)


def sensitivity_report() -> str:
    """How far each assumed parameter moves the figures (see :mod:`validation.papers.sensitivity`)."""
    from validation.papers.sensitivity import sensitivity_report as report

    return report()


__all__ = ["Figure", "figures_report", "paper_figures", "report_dict", "report_text", "sensitivity_report", "to_json"]
