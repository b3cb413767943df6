"""The object every report builder returns, before it becomes an HTML page or a dashboard panel."""

from __future__ import annotations

from dataclasses import dataclass, field

import plotly.graph_objects as go


@dataclass
class Section:
    """One figure with a heading and a sentence saying how to read it."""

    heading: str
    figure: go.Figure
    caption: str = ""


@dataclass
class Report:
    """A titled set of key numbers, figures, tables and notes (all already formatted for people).

    ``numbers``: (label, value) pairs shown as cards; ``tables``: (heading, pandas.DataFrame);
    ``notes``: sentences about assumptions or parts that could not be drawn.
    """

    kind: str
    title: str
    subtitle: str = ""
    numbers: list[tuple[str, str]] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    tables: list[tuple[str, object]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, heading: str, figure: go.Figure, caption: str = "") -> None:
        self.sections.append(Section(heading, figure, caption))

    @property
    def figures(self) -> list[go.Figure]:
        return [s.figure for s in self.sections]
