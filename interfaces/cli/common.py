"""Shared pieces of the command line: bad-input errors, JSON output, progress bars, safe writes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click


class BadInput(click.ClickException):
    """Bad input: printed as ``error: ...`` with exit code 2."""

    exit_code = 2

    def format_message(self) -> str:
        return self.message


class Infeasible(click.ClickException):
    """A run that worked but found no answer (an infeasible plan, no feasible configuration): exit code 1."""

    exit_code = 1

    def format_message(self) -> str:
        return self.message


def _clean(obj):
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, str):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def echo_json(obj) -> None:
    """Print one JSON object (NaN and infinity become null)."""
    click.echo(json.dumps(_clean(obj), indent=1))


def check_writable(path: str | Path, force: bool, flag: str = "--out") -> Path:
    """Refuse to overwrite a user's file unless ``--force`` was given."""
    p = Path(path)
    if p.exists() and not force:
        raise BadInput(f"{flag}: {p} exists; pass --force to overwrite it")
    if p.parent and not p.parent.exists():
        raise BadInput(f"{flag}: directory {p.parent} does not exist")
    return p


def progress_bar(total: int, description: str, enabled: bool = True):
    """A rich progress bar on stderr (a no-op context when disabled or not a terminal in --json mode)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=Console(stderr=True), disable=not enabled, transient=False)


def in_range(name: str, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
             integer: bool = False):
    """A click callback: the value (if given) is finite and within [lo, hi] ((lo, hi] with ``lo_open``);
    otherwise bad input naming ``--name`` and the allowed range."""
    def cb(ctx, param, value):
        if value is None:
            return value
        v = float(value)
        bad = not math.isfinite(v) or (lo is not None and (v < lo or (lo_open and v == lo))) \
            or (hi is not None and v > hi)
        if bad:
            left = "(" if lo_open else "["
            rng = f"{left}{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
            kind = "an integer" if integer else "a number"
            raise BadInput(f"--{name}: must be {kind} in {rng}, got {value}")
        return value
    return cb
