"""Dash pieces made from reports: number cards, graphs and tables (no callbacks here)."""

from __future__ import annotations

import pandas as pd
from dash import dcc, html

from interfaces.reports.report import Report
from interfaces.reports.style import FIGURE_CONFIG

CARD = {"background": "#fff", "border": "1px solid #ddd", "borderRadius": "6px", "padding": "8px 12px",
        "minWidth": "140px"}


def cards(numbers: list[tuple[str, str]], id_prefix: str = "card") -> html.Div:
    return html.Div([html.Div([html.Div(label, style={"fontSize": "12px", "color": "#666"}),
                               html.Div(value, id=f"{id_prefix}-{i}", style={"fontSize": "17px", "fontWeight": 600})],
                              style=CARD) for i, (label, value) in enumerate(numbers)],
                    style={"display": "flex", "flexWrap": "wrap", "gap": "8px", "margin": "8px 0"})


def table(df: pd.DataFrame, max_rows: int = 30) -> html.Table:
    head = html.Tr([html.Th(str(c)) for c in df.columns])
    rows = [html.Tr([html.Td(f"{v:.4g}" if isinstance(v, float) else str(v)) for v in r])
            for r in df.head(max_rows).itertuples(index=False, name=None)]
    return html.Table([html.Thead(head), html.Tbody(rows)], className="data")


def report_view(rep: Report, id_prefix: str = "results") -> html.Div:
    """A whole report as Dash components (what the HTML page shows, live)."""
    children: list = [html.H3(rep.title), html.P(rep.subtitle, style={"color": "#555"}),
                      cards(rep.numbers, f"{id_prefix}-card")]
    if rep.notes:
        children.append(html.Ul([html.Li(n) for n in rep.notes], style={"color": "#8a5a00"}))
    for i, sec in enumerate(rep.sections):
        children += [html.H4(sec.heading), html.P(sec.caption, style={"color": "#555", "fontSize": "13px"}),
                     dcc.Graph(id=f"{id_prefix}-fig-{i}", figure=sec.figure, config=FIGURE_CONFIG)]
    for heading, df in rep.tables:
        children += [html.H4(heading), table(df)]
    return html.Div(children)
