"""Reports: plotly figures of every kind of genz result, and self-contained HTML pages of them.

>>> import genz
>>> from interfaces.reports import build_report, write_html
>>> rep = build_report("predict", {"prediction": genz.predict("llama-3-8b", "h200").to_dict()})
>>> [s.heading for s in rep.sections]
['Roofline', 'Latency breakdown', 'Energy breakdown', 'Memory']

Results-file formats (what other commands write, what ``genz report`` reads) are defined in
:mod:`interfaces.reports.formats`. Builders hold no modelling logic: they draw what the engine,
the simulation, the optimizers and the validation return.
"""

from __future__ import annotations

from pathlib import Path

from interfaces.reports import (
    placement_report,
    plan_report,
    predict_report,
    search_report,
    serving_report,
    sweep_report,
    validation_report,
)
from interfaces.reports.formats import (
    KINDS,
    load_results,
    placement_payload,
    serving_payload,
    validation_payload,
    write_result,
)
from interfaces.reports.html import render_html, write_html
from interfaces.reports.report import Report, Section

#: kind -> builder(payload, **options) -> Report
BUILDERS = {
    "predict": predict_report.build,
    "sweep": sweep_report.build,
    "simulate": serving_report.build,
    "placement": placement_report.build,
    "search": search_report.build,
    "plan": plan_report.build,
    "validate": validation_report.build,
}
assert set(BUILDERS) == set(KINDS)

__all__ = ["BUILDERS", "KINDS", "Report", "Section", "build_report", "load_results", "placement_payload",
           "render_html", "report_file", "serving_payload", "validation_payload", "write_html", "write_result"]


def build_report(kind: str, payload: dict, **options) -> Report:
    """The :class:`Report` of one result; ``options`` go to the kind's builder (for sweeps:
    ``metric``, ``latency``; for predictions: ``profile``)."""
    if kind not in BUILDERS:
        raise ValueError(f"kind: unknown report kind {kind!r}; allowed: {', '.join(KINDS)}")
    return BUILDERS[kind](payload, **options)


def report_file(path: str | Path, out: str | Path, kind: str | None = None, **options) -> Report:
    """Read a results file, build its report and write it as one self-contained HTML page."""
    found, payload = load_results(path, kind)
    rep = build_report(found, payload, **options)
    write_html(rep, out, source=str(path))
    return rep
