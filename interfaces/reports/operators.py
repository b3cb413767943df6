"""Every operator of a prediction's prefill and decode steps, costed on its device, for plotting.

The engine answers with totals; the roofline and energy figures need the rows behind them. This
rebuilds the two step tables with the public engine API (``genz.build_table`` on ``genz.prefill``
and ``genz.decode`` shapes, one micro-batch per pipeline stage as ``genz.predict`` does) and asks the
device what each row costs. Decode is drawn at the mean context ``prompt + (output - 2) / 2``;
``genz.predict`` averages the first and last decode step, which is the same for the linear parts.
Values are per device, per instance, SI units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Inputs of a prediction needed to rebuild its tables (keys of ``genz predict --json``).
INPUT_KEYS = ("model", "hardware", "precision", "batch", "prompt", "output", "tp", "pp", "ep", "cuda_graphs",
              "runtime")


@dataclass
class StepOperators:
    """Rows of both steps and the device's roofs.

    ``frame`` columns: phase, name, op_class, dtype, count, flops, bytes, intensity (FLOP/byte),
    time_s (one instance), achieved_flops_s, bound, energy_j (dynamic, one instance), step_time_s
    (time x count), share (of its phase's step time).
    ``peaks``: roof label (a dtype) -> peak FLOP/s; ``bandwidth``: bytes/s (None when the device
    does not expose them); ``idle_power_w``: for the static part of energy.

    Roofs come from the device's optional ``roofline(dtypes) -> {"compute": {label: FLOP/s},
    "bandwidth": bytes/s}`` when it has one (devices whose roofs are not per dtype, such as LUT or
    FPGA units, can describe them there), else from ``peak(dtype)`` and ``memory_bandwidth``.
    """

    frame: pd.DataFrame
    peaks: dict
    bandwidth: float | None
    idle_power_w: float
    device_name: str


def _peak(device, dtype: str) -> float | None:
    fn = getattr(device, "peak", None)
    if fn is None:
        return None
    try:
        return float(fn(dtype))
    except (ValueError, KeyError):
        return None


def _bandwidth(device) -> float | None:
    for obj in (device, getattr(device, "spec", None)):
        bw = getattr(obj, "memory_bandwidth", None)
        if isinstance(bw, int | float):
            return float(bw)
    return None


def step_operators(pred: dict, profile: str | None = "auto") -> StepOperators:
    """Rows of the prefill and decode steps of a prediction dict (``Prediction.to_dict()``)."""
    from genz.predict import step_tables
    from hwmodels.optable import OpCosts
    from hwmodels.registry import load_device
    from workloads import Precision, load_model

    missing = [k for k in INPUT_KEYS if k not in pred]
    if missing:
        raise ValueError(f"prediction: missing inputs {missing} needed to draw its operators")
    device = load_device(pred["hardware"], profile)
    model, precision = load_model(pred["model"]), Precision.parse(pred["precision"])
    tables = step_tables(model, precision, pred["batch"], pred["prompt"], pred["output"], tp=int(pred["tp"]),
                         pp=int(pred["pp"]), ep=int(pred["ep"]), runtime=pred["runtime"])
    frames = []
    graphs = bool(pred["cuda_graphs"])
    for phase, parts in (("prefill", ("prefill",)), ("decode", ("decode_first", "decode_last"))):
        # a decode step is the mean of the first and the last (as genz.predict.evaluate costs it)
        table = tables[parts[0]]
        costs = [device.cost(tables[p], cuda_graphs=graphs) for p in parts]
        mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
        nbytes = mean([(tables[p].bytes_read + tables[p].bytes_written)[:, 0] for p in parts])
        flops = mean([tables[p].flops[:, 0] for p in parts])
        t = mean([c.time_s[:, 0] for c in costs])
        cost = costs[-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            intensity = np.where(nbytes > 0, flops / nbytes, np.nan)
            achieved = np.where(t > 0, flops / t, np.nan)
        cpu = float(pred.get("breakdown", {}).get(phase, {}).get("cpu_s", 0.0) or 0.0)
        step_t = t * table.count
        total = (step_t.sum() + cpu) or 1.0
        rows = pd.DataFrame({
            "phase": phase, "name": table.name, "op_class": table.op_class, "dtype": table.dtype,
            "count": table.count, "flops": flops, "bytes": nbytes, "intensity": intensity, "time_s": t,
            "achieved_flops_s": achieved, "bound": [OpCosts.BOUNDS[i] for i in cost.bound[:, 0]],
            "energy_j": mean([c.energy_j[:, 0] for c in costs]), "step_time_s": step_t, "share": step_t / total,
        })
        if cpu > 0:  # the engine's CPU time per iteration that the GPU's work does not hide
            rows.loc[len(rows)] = {"phase": phase, "name": "engine_cpu", "op_class": "cpu", "dtype": "", "count": 1.0,
                                   "flops": 0.0, "bytes": 0.0, "intensity": np.nan, "time_s": cpu,
                                   "achieved_flops_s": np.nan, "bound": "overhead", "energy_j": 0.0,
                                   "step_time_s": cpu, "share": cpu / total}
        frames.append(rows)
    frame = pd.concat(frames, ignore_index=True)
    frame = frame[(frame["flops"] > 0) | (frame["bytes"] > 0) | (frame["time_s"] > 0)].reset_index(drop=True)
    dtypes = list(dict.fromkeys(frame.loc[frame["flops"] > 0, "dtype"]))
    hook = getattr(device, "roofline", None)
    if callable(hook):
        roofs = hook(dtypes)
        peaks, bandwidth = dict(roofs.get("compute", {})), roofs.get("bandwidth")
    else:
        peaks = {d: p for d in dtypes if (p := _peak(device, d)) is not None}
        bandwidth = _bandwidth(device)
    return StepOperators(frame=frame, peaks=peaks, bandwidth=bandwidth,
                         idle_power_w=float(getattr(device, "idle_power_w", 0.0)),
                         device_name=getattr(device, "name", str(pred["hardware"])))


def energy_by_class(ops: StepOperators) -> pd.DataFrame:
    """Energy of one step per device by operator class, plus idle power over the step time:
    columns phase, part, energy_j."""
    f = ops.frame.assign(step_energy_j=ops.frame["energy_j"] * ops.frame["count"])
    dyn = f.groupby(["phase", "op_class"], sort=False)["step_energy_j"].sum().reset_index()
    dyn.columns = ["phase", "part", "energy_j"]
    idle = f.groupby("phase", sort=False)["step_time_s"].sum().reset_index()
    idle["part"] = "idle"
    idle["energy_j"] = idle["step_time_s"] * ops.idle_power_w
    return pd.concat([dyn, idle[["phase", "part", "energy_j"]]], ignore_index=True)
