"""Sweeps: many what-ifs in one vectorized pass per (model, hardware, precision, split).

Numeric axes (batch, prompt, output) form a full grid evaluated by one call of
:func:`genz.predict.evaluate`; categorical axes (model, hardware, precision, tp/pp/ep) loop.
Configurations that do not fit stay in the result with ``fits = False``; splits that are
impossible for a model (tp not dividing its heads...) and precisions a device cannot run are listed
in ``skipped``. Every row carries the device's ``profile``, ``profile_basis`` and expected relative
errors (``expected_error_ttft``, ``_tpot``, ``_energy``; NaN where the basis states none).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from genz.parallel import check_parallelism
from genz.predict import check_device_precision, device_basis, evaluate_steps, grid_steps
from genz.runtime import load_runtime
from hwmodels.registry import load_device
from workloads import Precision, load_model

#: Configurations one sweep may evaluate unless the caller raises ``max_configs``.
MAX_CONFIGS = 10_000_000


@dataclass
class SweepResult:
    frame: object  # pandas.DataFrame
    skipped: list = field(default_factory=list)  # (model, hardware, precision, tp, pp, ep, reason)
    configurations: int = 0


@dataclass(frozen=True)
class SweepGroup:
    """One (model, hardware, precision, tp, pp, ep) group of a sweep: its rows, or why it was skipped."""

    key: tuple
    frame: object | None  # pandas.DataFrame of the group's rows, None when skipped
    reason: str = ""


def _axes(models, hardware, batch, prompt, output, precision, tp, pp, ep, max_configs: int) -> dict:
    axes = {k: list(v) for k, v in (("model", models), ("hardware", hardware), ("batch", batch), ("prompt", prompt),
                                    ("output", output), ("precision", precision), ("tp", tp), ("pp", pp), ("ep", ep))}
    for k, v in axes.items():
        if not v:
            raise ValueError(f"{k}: no values given")
    for k in ("batch", "prompt", "output", "tp", "pp", "ep"):
        bad = [x for x in axes[k] if isinstance(x, bool) or not isinstance(x, int | np.integer | float)
               or not math.isfinite(x) or x < 1 or x != int(x)]
        if bad:
            raise ValueError(f"{k}: values must be integers >= 1, got {bad[0]!r}")
    total = math.prod(len(v) for v in axes.values())
    if total > max_configs:
        raise ValueError(f"sweep: {total:,} configurations exceed the limit of {max_configs:,} "
                         f"({' x '.join(f'{len(v)} {k}' for k, v in axes.items() if len(v) > 1)}); "
                         "narrow an axis or raise --max-configs")
    return axes


def sweep_groups(models: Iterable[str], hardware: Iterable[str], *, precision: Iterable[str] = ("bf16",),
                 tp: Iterable[int] = (1,), pp: Iterable[int] = (1,), ep: Iterable[int] = (1,)) -> list[tuple]:
    """The group keys of a sweep, in the order :func:`iter_sweep` evaluates them."""
    return list(itertools.product(list(models), list(hardware), list(precision), list(tp), list(pp), list(ep)))


def iter_sweep(models: Iterable[str], hardware: Iterable[str], *, batch: Iterable[int] = (1,),
               prompt: Iterable[int] = (1024,), output: Iterable[int] = (128,), precision: Iterable[str] = ("bf16",),
               tp: Iterable[int] = (1,), pp: Iterable[int] = (1,), ep: Iterable[int] = (1,), cuda_graphs: bool = True,
               runtime: str = "vllm", profile: str = "auto", max_configs: int = MAX_CONFIGS,
               skip: Iterable[tuple] = ()) -> Iterator[SweepGroup]:
    """Evaluate the grid one group at a time (so callers can write and resume per group); groups in
    ``skip`` (keys from :func:`sweep_groups`) are passed over. The grid is checked when this is
    called, before any work: grids larger than ``max_configs``, bad values and unknown hardware raise
    ``ValueError`` at once."""
    axes = _axes(models, hardware, batch, prompt, output, precision, tp, pp, ep, max_configs)
    devices = {hw: load_device(hw, profile) for hw in axes["hardware"]}
    return _groups(axes, devices, cuda_graphs, load_runtime(runtime), set(skip))


def _groups(axes: dict, devices: dict, cuda_graphs: bool, rt, done: set) -> Iterator[SweepGroup]:
    B, S, Out, steps = grid_steps(axes["batch"], axes["prompt"], axes["output"])
    n = len(B)
    ints = {k: v.astype(np.int64) for k, v in (("batch", B), ("prompt", S), ("output", Out))}
    for key in sweep_groups(axes["model"], axes["hardware"], precision=axes["precision"], tp=axes["tp"],
                            pp=axes["pp"], ep=axes["ep"]):
        if key in done:
            continue
        mname, hw, prec, t, p, e = key
        model = load_model(mname)
        pr = Precision.parse(prec)
        try:
            check_parallelism(model, t, p, e)
            check_device_precision(devices[hw], pr)
        except ValueError as exc:
            yield SweepGroup(key, None, str(exc))
            continue
        res = evaluate_steps(model, devices[hw], pr, B, S, Out, steps, tp=int(t), pp=int(p), ep=int(e),
                             cuda_graphs=cuda_graphs, runtime=rt)
        basis = device_basis(devices[hw])
        cols = {k: _constant(v, n) for k, v in (("model", model.name), ("hardware", devices[hw].name),
                                                ("precision", pr.name), ("tp", t), ("pp", p), ("ep", e))}
        cols |= ints
        cols |= res
        cols["profile"], cols["profile_basis"] = _constant(basis["profile"], n), _constant(basis["profile_basis"], n)
        for q in ("ttft", "tpot", "energy"):
            cols[f"expected_error_{q}"] = np.full(n, basis["expected_error"].get(q, np.nan))
        yield SweepGroup(key, _frame(cols))


def _constant(value, n: int):
    """A column holding ``value`` n times: a categorical for text (one code byte per row)."""
    import pandas as pd

    if isinstance(value, str):
        return pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), categories=[value])
    return np.full(n, value)


def _frame(cols: dict):
    """A DataFrame over the columns as they are (no copy into a consolidated block)."""
    import pandas as pd

    return pd.DataFrame(cols, copy=False)


def sweep(models: Iterable[str], hardware: Iterable[str], *, progress: Callable[[int, int], None] | None = None,
          **kwargs) -> SweepResult:
    """Evaluate the full grid; returns one row per configuration (SI units). Keyword arguments as
    :func:`iter_sweep` (``batch``, ``prompt``, ``output``, ``precision``, ``tp``, ``pp``, ``ep``,
    ``cuda_graphs``, ``runtime``, ``profile``, ``max_configs``)."""
    import pandas as pd

    models, hardware = list(models), list(hardware)
    total = len(sweep_groups(models, hardware, **{k: kwargs[k] for k in ("precision", "tp", "pp", "ep") if k in kwargs}))
    table, skipped = _Columns(total), []
    for i, g in enumerate(iter_sweep(models, hardware, **kwargs)):
        if g.frame is None:
            mname, hw, prec, t, p, e = g.key
            skipped.append((load_model(mname).name, hw, Precision.parse(prec).name, t, p, e, g.reason))
        else:
            table.add(g.frame)
        if progress:
            progress(i + 1, total)
    frame = table.frame() if table.rows else pd.DataFrame()
    return SweepResult(frame=frame, skipped=skipped, configurations=len(frame))


class _Columns:
    """The sweep's table filled group by group into columns allocated once (for ``groups`` groups of
    the same size), so the peak is the table plus one group's frame rather than all frames plus
    their concatenation. Text columns stay categorical (codes into the categories seen)."""

    def __init__(self, groups: int) -> None:
        self.groups, self.rows, self.n = groups, 0, 0
        self.first = None
        self.cols: dict = {}
        self.cats: dict[str, list] = {}

    def add(self, frame) -> None:
        import pandas as pd

        if self.first is None:  # one group: its frame is the table, no copy
            self.first, self.n, self.rows = frame, len(frame), len(frame)
            return
        if not self.cols:
            self._allocate()
        lo, hi = self.rows, self.rows + len(frame)
        for name, col in frame.items():
            if isinstance(col.dtype, pd.CategoricalDtype):
                cats = self.cats[name]
                remap = np.array([_index(cats, c) for c in col.cat.categories], dtype=np.int16)
                self.cols[name][lo:hi] = remap[col.cat.codes.to_numpy()]
            else:
                self.cols[name][lo:hi] = col.to_numpy()
        self.rows = hi

    def _allocate(self) -> None:
        import pandas as pd

        size = self.n * self.groups
        for name, col in self.first.items():
            if isinstance(col.dtype, pd.CategoricalDtype):
                self.cats[name] = list(col.cat.categories)
                self.cols[name] = np.empty(size, dtype=np.int16)
                self.cols[name][:self.n] = col.cat.codes.to_numpy()
            else:
                self.cols[name] = np.empty(size, dtype=col.dtype)
                self.cols[name][:self.n] = col.to_numpy()
        self.first = self.first.iloc[:0]  # keep the column order and dtypes, drop the rows

    def frame(self):
        import pandas as pd

        if not self.cols:
            return self.first
        out = {}
        for name in self.first.columns:
            v = self.cols[name][:self.rows]
            out[name] = pd.Categorical.from_codes(v, categories=self.cats[name]) if name in self.cats else v
        return pd.DataFrame(out, copy=False)


def _index(items: list, value) -> int:
    """Position of ``value`` in ``items``, appended when new."""
    try:
        return items.index(value)
    except ValueError:
        items.append(value)
        return len(items) - 1
