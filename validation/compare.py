"""Predict every row of a measured dataset through the engine, next to what was measured.

Kernel files (``gemm.csv``, ``attention.csv``, ``membw.csv``) go through :mod:`validation.kernels`;
whole-model files (``e2e.csv``, ``hf.csv``) through :func:`genz.operators.build_table` and
:func:`genz.predict.step_costs` with a runtime description of the software that ran them:

- ``e2e.csv``: the plain PyTorch decoder of the dataset README (runtime ``plain-pytorch``), decode
  steps in CUDA graphs where ``timing`` is ``cudagraph``, eagerly otherwise; any preset model name.
- ``hf.csv``: HuggingFace ``LlamaForCausalLM`` (runtime ``hf-transformers``), eager; its ``model``
  column holds the library version, so the architecture is ``hf_model`` unless the column names a
  preset. A plain forward computes logits for every position, so prefill runs the LM head on all
  tokens.

Energy per row = min(dynamic + idle power x time, power limit x time), as :func:`genz.predict` does.
Rows that cannot be predicted are returned as :class:`~validation.dataset.RejectedRow` with the
reason, never dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from genz.operators import build_table
from genz.predict import step_costs
from genz.runtime import Runtime, load_runtime
from genz.shapes import StepShape, decode, prefill
from hwmodels.optable import OperatorTable
from validation.dataset import FILES, MeasuredDataset, RejectedRow
from validation.kernels import GEMM_DTYPES, attention_table, gemm_table, memory_table
from workloads import Model, load_model

STEP_FILES = ("e2e", "hf")
META = ("file", "row_number", "run", "model", "phase", "timing", "dtype", "batch", "context", "label",
        "measured_s", "measured_j")
#: Relative difference allowed between a row's ``params`` and the preset's parameter count.
PARAMS_TOLERANCE = 0.01


@dataclass
class RowSet:
    """Rows of one file that share a table: ``frame`` (one row per configuration, columns ``META``)
    and the operator ``table`` whose N configurations are those rows, in order."""

    file: str
    frame: pd.DataFrame
    table: OperatorTable
    cuda_graphs: bool
    step: bool  # a whole model step (sum rows with step_costs) or a single kernel


def _meta(df: pd.DataFrame, file: str, **cols) -> pd.DataFrame:
    out = pd.DataFrame({"file": file, "row_number": df.index.to_numpy(), "run": df["run"].to_numpy()})
    for key in META[3:]:
        val = cols.get(key, "")
        out[key] = val.to_numpy() if isinstance(val, pd.Series) else val
    return out


def _energy(df: pd.DataFrame) -> pd.Series:
    return df["energy_j"] if "energy_j" in df else pd.Series(np.nan, index=df.index)


def kernel_sets(ds: MeasuredDataset) -> tuple[list[RowSet], list[RejectedRow]]:
    """Row sets of the kernel files present in ``ds`` (one per dtype / phase / op and timing)."""
    sets: list[RowSet] = []
    rejected: list[RejectedRow] = []
    if ds.gemm is not None:
        df = ds.gemm
        bad = ~df["dtype"].isin(list(GEMM_DTYPES))
        rejected += [RejectedRow(FILES["gemm"], int(i), "dtype", f"no model for dtype {df.at[i, 'dtype']!r}")
                     for i in df.index[bad]]
        for (dt, timing), g in df[~bad].groupby(["dtype", "timing"], sort=True):
            label = g["dtype"] + " " + g["m"].astype(str) + "x" + g["n"].astype(str) + "x" + g["k"].astype(str)
            meta = _meta(g, "gemm", model="", phase="gemm", timing=timing, dtype=dt, batch=g["m"], context=np.nan,
                         label=label, measured_s=g["time_ms"] * 1e-3, measured_j=_energy(g))
            sets.append(RowSet("gemm", meta, gemm_table(g["m"], g["n"], g["k"], dt), timing == "cudagraph", False))
    if ds.attention is not None:
        df = ds.attention
        bad = (df["heads"] % df["kv_heads"] != 0) | ((df["phase"] == "prefill") & (df["q_len"] > df["kv_len"]))
        rejected += [RejectedRow(FILES["attention"], int(i), "kv_heads",
                                 "heads must be a multiple of kv_heads and q_len <= kv_len") for i in df.index[bad]]
        for (phase, timing), g in df[~bad].groupby(["phase", "timing"], sort=True):
            label = (g["phase"] + " B" + g["batch"].astype(str) + " H" + g["heads"].astype(str) + "/"
                     + g["kv_heads"].astype(str) + " d" + g["head_dim"].astype(str) + " q" + g["q_len"].astype(str)
                     + " kv" + g["kv_len"].astype(str))
            meta = _meta(g, "attention", model="", phase=phase, timing=timing, dtype="bf16", batch=g["batch"],
                         context=g["kv_len"], label=label, measured_s=g["time_ms"] * 1e-3, measured_j=_energy(g))
            table = attention_table(phase, g["batch"], g["heads"], g["kv_heads"], g["head_dim"], g["q_len"],
                                    g["kv_len"], g["causal"].to_numpy())
            sets.append(RowSet("attention", meta, table, timing == "cudagraph", False))
    if ds.membw is not None:
        for (op, timing), g in ds.membw.groupby(["op", "timing"], sort=True):
            meta = _meta(g, "membw", model="", phase=op, timing=timing, dtype="", batch=np.nan,
                         context=g["size_bytes"], label=op + " " + g["size_bytes"].astype(str) + " B",
                         measured_s=g["time_ms"] * 1e-3, measured_j=_energy(g))
            sets.append(RowSet("membw", meta, memory_table(op, g["size_bytes"]), timing == "cudagraph", False))
    return sets, rejected


def _model(name: str) -> Model | str:
    try:
        return load_model(name)
    except ValueError as exc:
        return str(exc)


def step_sets(ds: MeasuredDataset, *, runtime: Runtime | str = "plain-pytorch",
              hf_runtime: Runtime | str = "hf-transformers", hf_model: str = "llama-3-8b",
              ) -> tuple[list[RowSet], list[RejectedRow]]:
    """Row sets of ``e2e.csv`` and ``hf.csv`` (one per file, model and timing)."""
    sets: list[RowSet] = []
    rejected: list[RejectedRow] = []
    for file in STEP_FILES:
        df = getattr(ds, file)
        if df is None or df.empty:
            continue
        spec = runtime if file == "e2e" else hf_runtime
        rt = load_runtime(spec) if isinstance(spec, str) else spec
        names = df["model"].where(df["model"].map(lambda n: isinstance(_model(n), Model)),
                                  hf_model if file == "hf" else df["model"])
        for name in sorted(names.unique()):
            model = _model(name)
            rows = df[names == name]
            if isinstance(model, str):
                rejected += [RejectedRow(FILES[file], int(i), "model", model) for i in rows.index]
                continue
            if "params" in rows:
                off = (rows["params"] - model.params()).abs() > PARAMS_TOLERANCE * model.params()
                rejected += [RejectedRow(FILES[file], int(i), "params",
                                         f"{rows.at[i, 'params']} weights, but preset {name} has {model.params()}")
                             for i in rows.index[off]]
                rows = rows[~off]
            ctx = rows["ctx_len"].fillna(0)
            missing = (rows["phase"] == "decode") & rows["ctx_len"].isna()
            rejected += [RejectedRow(FILES[file], int(i), "ctx_len", "decode row without ctx_len")
                         for i in rows.index[missing]]
            rows, ctx = rows[~missing], ctx[~missing]
            for timing, g in rows.groupby("timing", sort=True):
                c = ctx[g.index]
                is_pf = (g["phase"] == "prefill").to_numpy()
                b, s = g["batch"].to_numpy(float), g["prompt_len"].to_numpy(float)
                pf, dc = prefill(b, np.maximum(s, 1)), decode(b, c.to_numpy(float))
                shape = StepShape(*(np.where(is_pf, getattr(pf, f), getattr(dc, f)) for f in StepShape.__dataclass_fields__))
                if file == "hf":  # a plain forward computes logits for every position
                    shape.lm_rows = np.where(is_pf, b * s, b)
                context = np.where(is_pf, s, c.to_numpy(float))
                label = (g["phase"] + " B" + g["batch"].astype(str) + np.where(is_pf, " prompt ", " ctx ")
                         + pd.Series(context.astype(int), index=g.index).astype(str))
                meta = _meta(g, file, model=name, phase=g["phase"], timing=timing, dtype="bf16", batch=g["batch"],
                             context=context, label=label, measured_s=g["time_ms"] * 1e-3, measured_j=_energy(g))
                table = build_table(model, shape, "bf16", runtime=rt)
                sets.append(RowSet(file, meta, table, timing == "cudagraph", True))
    return sets, rejected


def predict_sets(sets: list[RowSet], device) -> pd.DataFrame:
    """The rows of ``sets`` with ``predicted_s`` and ``predicted_j`` (total energy) added."""
    frames = []
    idle, cap = device.idle_power_w, device.power_limit_w
    for s in sets:
        if s.step:
            sc = step_costs(device, s.table, s.cuda_graphs)
            t, dyn = sc["time"], sc["energy"]
        else:
            c = device.cost(s.table, cuda_graphs=s.cuda_graphs)
            t, dyn = c.time_s[0], c.energy_j[0]
        f = s.frame.copy()
        f["predicted_s"] = t
        f["predicted_j"] = np.minimum(dyn + idle * t, cap * t)
        frames.append(f)
    if not frames:
        return pd.DataFrame(columns=[*META, "predicted_s", "predicted_j"])
    return pd.concat(frames, ignore_index=True)
