"""LUT Tensor Core (Mo et al., ISCA 2025): Table 1, its energy column and the DP4 unit figures.

Table 1 compares tensor cores normalized to 28 nm and 1.41 GHz. Each row is computed, not typed:

- **peak**: MAC rows from the GPU data sheet (H100 rescaled from its 1.83 GHz tensor clock to
  1.41 GHz); LUT rows from tiles per SM x tile ops per cycle at BitNet's 2 weight bit planes.
- **area per SM**: DP4 MAC units per SM (data-sheet rate / 8 ops) or LUT tiles per SM, times the
  unit area of :mod:`hwmodels.luttc.unit`, scaled to 1.41 GHz (area proportional to clock).
- **density** = peak / (SMs x area per SM); **energy efficiency** = ops per joule of the unit.
- **latency**: one step of the BitNet-3B-shaped model (``bitnet-b1.58-3b``) from
  :func:`genz.build_table`, batch 1 x 2048 tokens (prefill) and batch 1024 x 1 token, summed over
  the GEMM kernels named in ``luttc_setup.json`` (attention unfused, see there), on the base GPU
  (MAC rows) or the LUT variant (LUT rows) at 1.41 GHz with the setup's GEMM efficiency.
  Precisions: LLaMA-3B FP16 ``fp16``; BitNet on the INT8 tensor core ``w2a8``; LUT rows
  ``ternary`` (1.58-bit weights as 2 planes, INT8 activations); H100 FP8 row ``fp8``.
  The A100 rows run on the 80 GB A100 SXM, the base of the A100 LUT variants (assumption: the
  paper does not name its A100's memory).

Kinds (see :mod:`validation.papers.figures`): the 12 latencies are **fitted** (two GEMM
efficiencies and the attention pass count, :func:`fit_latency`, jointly); peaks are **by
construction** (data sheets, or the tile counts the "4X/8X" names imply); each area or energy figure
a unit part was back-solved from is **fitted** (:data:`UNIT_FITS`), and a density whose area is
fitted is **by construction**. Predicted: the A100 FP16 area and density (from the DP4 MAC density
and the clock rule), LUT-8X area, density (its own M2N128K4 tile) and energy, LUT-4X energy, and the
table-precompute overhead with and without operator fusion.

Table precompute overhead (:func:`precompute_share`): the share of the LUT mpGEMM operators' time
(GEMM plus its precompute) spent building tables, on A100-LUT-4X at 1.41 GHz, prefill = batch 1 x
2048 tokens, decode = batch 1024 x 1 token (assumption: the paper's overhead figure is measured on
the mpGEMM kernels of the Table 1 setup; it does not say on which model or shape).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from genz import build_table, prefill, step_costs
from hwmodels.gpu import GPU, EfficiencyProfile, load_device
from hwmodels.luttc import (
    LUTTile,
    MACUnit,
    Parts,
    load_lut_gpu,
    load_parts,
    load_variant,
    mac_area_per_sm_mm2,
    rescaled_spec,
)
from validation.papers.figures import Figure, Fit, LeaveOneOut
from workloads import load_model

PAPER = "LUT Tensor Core"
SETUP = Path(__file__).with_name("luttc_setup.json")
MODEL = "bitnet-b1.58-3b"

#: (row, hardware, kind, dtype of the MAC tensor core or None, precision, paper values:
#:  latency BS1 SEQ2048 ms, BS1024 SEQ1 ms, peak T(FL)OPs, area mm2/SM, density T/mm2, energy T/W or None)
TABLE1 = (
    ("A100 FP16 TC", "a100-80gb-sxm", "fp16", "fp16", (106.71, 41.15, 312, 0.975, 2.96, 2.98)),
    ("A100 INT8 TC", "a100-80gb-sxm", "int8", "w2a8", (67.06, 21.70, 624, 0.312, 17.73, 19.94)),
    ("A100-LUT-4X", "a100-lut-4x", None, "ternary", (42.49, 11.41, 1248, 0.187, 61.84, 33.32)),
    ("A100-LUT-8X", "a100-lut-8x", None, "ternary", (38.02, 7.47, 2496, 0.373, 61.95, 33.65)),
    ("H100 FP8 TC", "h100-sxm", "fp8", "fp8", (38.20, 12.30, 1525, 0.918, 12.59, 17.32)),
    ("H100-LUT-8X", "h100-lut-8x", None, "ternary", (23.48, 5.97, 3049, 0.909, 25.40, None)),
)
#: Tensor clocks of the data-sheet peaks (H100: 1.83 GHz, see hwmodels/data/luttc/variants.json)
_TENSOR_CLOCK = {"h100-sxm": 1.83e9}


@lru_cache(maxsize=1)
def setup() -> dict:
    data = json.loads(SETUP.read_text())
    return {k: v["value"] for k, v in data.items() if isinstance(v, dict) and "value" in v}


def _profile(hw: str, s: dict | None = None) -> EfficiencyProfile:
    s = s or setup()
    eta = s["gemm_efficiency_h100"] if hw.startswith("h100") else s["gemm_efficiency_a100"]
    return EfficiencyProfile(name="paper-kernels", compute_eff={"default": eta}, attention_eff=eta,
                             source="validation/papers/luttc_setup.json")


def table1_device(hw: str, s: dict | None = None):
    """The device of one Table 1 row at the normalized clock, with the paper-kernel efficiency."""
    s = s or setup()
    clock = s["clock_hz"]
    prof = _profile(hw, s)
    if "lut" in hw:
        return load_lut_gpu(hw, prof, clock_hz=clock)
    gpu = load_device(hw, prof)
    return GPU(rescaled_spec(gpu.spec, clock, _TENSOR_CLOCK.get(hw)), prof)


def kernel_table(shape, precision: str, s: dict | None = None):
    """Operator table of the summed kernels: GEMMs and unfused attention (see module docstring)."""
    s = s or setup()
    model = load_model(MODEL)
    t = build_table(model, shape, precision)
    i = list(t.name).index("attention_prefill")
    full = 2.0 * shape.prefill_pairs  # genz counts half the causal score matrix; unfused kernels do all
    score_bytes = s["attention_score_passes"] * model.heads * full * 2.0
    t.flops[i] = 2.0 * t.flops[i]
    t.bytes_read[i] = t.bytes_read[i] + score_bytes / 2
    t.bytes_written[i] = t.bytes_written[i] + score_bytes / 2
    return t.select(np.isin(t.name, list(s["kernel_rows"])))


def kernel_latencies(hw: str, precision: str, s: dict | None = None) -> tuple[float, float]:
    """Seconds of the summed kernels at batch 1 x 2048 tokens and batch 1024 x 1 token."""
    dev = table1_device(hw, s)
    shape = prefill(np.array([1.0, 1024.0]), np.array([2048.0, 1.0]))
    t = step_costs(dev, kernel_table(shape, precision, s))["time"]
    return float(t[0]), float(t[1])


def row_values(hw: str, kind: str | None, s: dict | None = None,
               parts: Parts | None = None) -> tuple[float, float, float, float | None]:
    """Peak (ops/s), area per SM (mm2), density (ops/s/mm2), energy efficiency (ops/J) of a row."""
    s = s or setup()
    dev = table1_device(hw, s)
    if kind is None:
        var = load_variant(hw)
        peak = dev.lut_peak(2)
        area = var.area_per_sm_mm2(s["clock_hz"], s["node_nm"], parts)
        eff = var.tile.ops_per_joule(2, parts, node_nm=s["node_nm"])
    else:
        peak = dev.spec.peak(kind)
        area = mac_area_per_sm_mm2(dev.spec, kind, s["clock_hz"], s["node_nm"], parts)
        eff = MACUnit(kind).ops_per_joule(parts, node_nm=s["node_nm"])
    return peak, area, peak / (dev.spec.sm_count * area), eff


#: Unit parts back-solved from one figure each: (part, figure name). The figure is ``fitted``.
UNIT_FITS = (
    ("area acc.int32", "Table 1 A100-LUT-4X: tensor-core area per SM"),
    ("area acc.fp16", "DP4 compute density, LUT W_INT1 A_FP16 (28 nm, 1 GHz)"),
    ("area acc.fp32", "Table 1 H100-LUT-8X: tensor-core area per SM"),
    ("area mul.fp16", "DP4 compute density, MAC FP16 x FP16 (28 nm, 1 GHz)"),
    ("area mul.int8", "Table 1 A100 INT8 TC: tensor-core area per SM"),
    ("area mul.fp8", "Table 1 H100 FP8 TC: tensor-core area per SM"),
    ("energy acc.int32", "DP4 energy efficiency, LUT W_INT1 A_INT8 at 0.9 V"),
    ("energy mul.fp16", "Table 1 A100 FP16 TC: energy efficiency"),
    ("energy mul.int8", "Table 1 A100 INT8 TC: energy efficiency"),
    ("energy mul.fp8", "Table 1 H100 FP8 TC: energy efficiency"),
)
_FITTED_UNIT_FIGURES = {name for _, name in UNIT_FITS}
_PASSES = range(3, 10)


def _latency_rows():
    """(figure name, hardware, precision, index 0/1 of the shape, paper ms) of the 12 latencies."""
    out = []
    for row, hw, _kind, prec, paper in TABLE1:
        out.append((f"Table 1 {row}: latency BS1 SEQ2048", hw, prec, 0, paper[0]))
        out.append((f"Table 1 {row}: latency BS1024 SEQ1", hw, prec, 1, paper[1]))
    return out


def fit_latency(leave_out: str | None = None, s: dict | None = None) -> dict:
    """Fit ``gemm_efficiency_a100``, ``gemm_efficiency_h100`` and ``attention_score_passes`` to the
    Table 1 latencies (least squares on log errors), optionally without the figure ``leave_out``.

    The pass count is searched over 3..9; for each, each family's efficiency is a bounded 1-D fit.
    """
    from scipy.optimize import minimize_scalar

    base = {**setup(), **(s or {})}
    rows = [r for r in _latency_rows() if r[0] != leave_out]
    best = None
    for passes in _PASSES:
        fitted = {"attention_score_passes": passes}
        loss = 0.0
        for fam, key in (("a100", "gemm_efficiency_a100"), ("h100", "gemm_efficiency_h100")):
            mine = [r for r in rows if r[1].startswith(fam)]

            def sse(eta, mine=mine, key=key, passes=passes):
                ss = {**base, key: eta, "attention_score_passes": passes}
                return sum((np.log(kernel_latencies(hw, prec, ss)[i] * 1e3 / paper)) ** 2
                           for _, hw, prec, i, paper in mine)

            r = minimize_scalar(sse, bounds=(0.15, 1.0), method="bounded", options={"xatol": 1e-4})
            fitted[key] = float(r.x)
            loss += float(r.fun)
        if best is None or loss < best[0]:
            best = (loss, fitted)
    return best[1]


def fits() -> list[Fit]:
    """The parameters chosen from LUT Tensor Core figures (stored values, with the figures used)."""
    s = setup()
    lat = tuple(r[0] for r in _latency_rows())
    out = [Fit(PAPER, k, float(s[k]), lat, "joint least squares on log latency, luttc_setup.json")
           for k in ("gemm_efficiency_a100", "gemm_efficiency_h100", "attention_score_passes")]
    p = load_parts()
    for part, fig in UNIT_FITS:
        table, key = part.split(" ")
        kind, fmt = key.split(".")
        value = (p.area if table == "area" else p.energy)[kind][fmt]
        out.append(Fit(PAPER, f"unit {part}", value, (fig,), "back-solved, hwmodels/data/luttc/units-28nm.json"))
    return out


def leave_one_out() -> list[LeaveOneOut]:
    """Refit the latency parameters without each latency in turn; unit parts set by one figure
    alone cannot be refit without it (error ``None``)."""
    out = []
    for name, hw, prec, i, paper in _latency_rows():
        f = fit_latency(leave_out=name)
        model = kernel_latencies(hw, prec, {**setup(), **f})[i] * 1e3
        refit = (f"eta_a100 {f['gemm_efficiency_a100']:.3f}, eta_h100 {f['gemm_efficiency_h100']:.3f}, "
                 f"passes {f['attention_score_passes']}")
        out.append(LeaveOneOut(PAPER, name, "gemm efficiencies, attention passes", refit,
                               100.0 * (model / paper - 1.0)))
    for part, fig in UNIT_FITS:
        out.append(LeaveOneOut(PAPER, fig, f"unit {part}", "-", None, "the only figure that sets this part"))
    return out


def precompute_share(fused: bool, s: dict | None = None, hw: str = "a100-lut-4x") -> tuple[float, float]:
    """Share of the LUT mpGEMM time spent on table precompute, (prefill, decode) shapes (see module)."""
    s = s or setup()
    dev = load_lut_gpu(hw, _profile(hw, s), clock_hz=s["clock_hz"], fused_precompute=fused)
    shape = prefill(np.array([1.0, 1024.0]), np.array([2048.0, 1.0]))
    t = kernel_table(shape, "ternary", s)
    mask = dev.lut_rows(t)
    total = (dev.cost(t).time_s * t.count[:, None])[mask].sum(axis=0)
    pre = (dev.precompute_cost(t).time_s * t.count[:, None]).sum(axis=0)
    share = pre / total
    return float(share[0]), float(share[1])


def figures(setup_overrides: dict | None = None, parts: Parts | None = None) -> list[Figure]:
    """Every LUT Tensor Core figure: Table 1 (6 rows x 5 columns), its energy column, the DP4 units
    and the table-precompute overheads.

    ``setup_overrides`` changes numbers of ``luttc_setup.json`` and ``parts`` the unit parts (for
    sensitivity studies).
    """
    s = {**setup(), **(setup_overrides or {})}
    out: list[Figure] = []
    goal = 15.0
    for row, hw, kind, prec, paper in TABLE1:
        lat_a, lat_b = kernel_latencies(hw, prec, s)
        peak, area, dens, eff = row_values(hw, kind, s, parts)
        unit = "TFLOPs" if (kind or "").startswith("fp") or hw.startswith("h100") else "TOPs"
        lat_note = f"sum of GEMM kernels of {MODEL} ({prec}); unfused attention; jointly fitted efficiencies"
        area_name = f"Table 1 {row}: tensor-core area per SM"
        area_fitted = area_name in _FITTED_UNIT_FIGURES
        area_note = ("a unit part was back-solved from it" if area_fitted else
                     "DP4 unit area and the 1.41 GHz rule" if kind else "tiles per SM x tile area (unit model)")
        out += [
            Figure(PAPER, f"Table 1 {row}: latency BS1 SEQ2048", paper[0], lat_a * 1e3, "ms", goal_pct=goal,
                   note=lat_note, kind="fitted"),
            Figure(PAPER, f"Table 1 {row}: latency BS1024 SEQ1", paper[1], lat_b * 1e3, "ms", goal_pct=goal,
                   note=lat_note, kind="fitted"),
            Figure(PAPER, f"Table 1 {row}: peak", paper[2], peak / 1e12, unit, goal_pct=goal,
                   note="data sheet" if kind else "tiles per SM x tile ops at 2 weight planes",
                   kind="by construction"),
            Figure(PAPER, area_name, paper[3], area, "mm2", goal_pct=goal, note=area_note,
                   kind="fitted" if area_fitted else "predicted"),
            Figure(PAPER, f"Table 1 {row}: compute density", paper[4], dens / 1e12, f"{unit}/mm2", goal_pct=goal,
                   note="peak / (SMs x area per SM)", kind="by construction" if area_fitted else "predicted"),
        ]
        if paper[5] is not None:
            e_name = f"Table 1 {row}: energy efficiency"
            e_fitted = e_name in _FITTED_UNIT_FIGURES
            e_note = ("a unit part was back-solved from it" if e_fitted
                      else "INT8-table lane anchored on the paper's 63.78 TOPs/W DP4 (W1A8, 0.9 V), 2 planes")
            out.append(Figure(PAPER, e_name, paper[5], eff / 1e12, f"{unit}/W", confidence="[secondary]",
                              goal_pct=goal, note=e_note, kind="fitted" if e_fitted else "predicted"))
    lut16 = LUTTile(table_format="fp16", acc="fp16")
    out += [
        Figure(PAPER, "DP4 compute density, LUT W_INT1 A_FP16 (28 nm, 1 GHz)", 61.55, lut16.density(1, parts) / 1e12,
               "TFLOPs/mm2", goal_pct=goal, note="M2 N64 K4 tile lane; fp16 accumulator area set to it",
               kind="fitted"),
        Figure(PAPER, "DP4 compute density, MAC FP16 x FP16 (28 nm, 1 GHz)", 3.39,
               MACUnit("fp16").density(parts) / 1e12, "TFLOPs/mm2", goal_pct=goal,
               note="fp16 multiplier area set to it", kind="fitted"),
        Figure(PAPER, "DP4 energy efficiency, LUT W_INT1 A_INT8 at 0.9 V", 63.78,
               LUTTile().ops_per_joule(1, parts) / 1e12, "TOPs/W", goal_pct=goal,
               note="int32 accumulator energy set to it", kind="fitted"),
    ]
    fused, unfused = precompute_share(True, s), precompute_share(False, s)
    pnote = ("table precompute as its own operator on A100-LUT-4X, share of the mpGEMM time; {}; "
             "prefill = BS1 SEQ2048, decode = BS1024 SEQ1")
    out += [
        Figure(PAPER, "Table precompute overhead, prefill, unfused", 16.47, 100 * unfused[0], "%", goal_pct=25.0,
               note=pnote.format("a separate kernel reads activations, writes tables")),
        Figure(PAPER, "Table precompute overhead, prefill, fused", 2.62, 100 * fused[0], "%", goal_pct=25.0,
               note=pnote.format("built in the previous operator's epilogue")),
        Figure(PAPER, "Table precompute overhead, decode, unfused", 24.41, 100 * unfused[1], "%", goal_pct=25.0,
               note=pnote.format("a separate kernel reads activations, writes tables")),
        Figure(PAPER, "Table precompute overhead, decode, fused", 2.52, 100 * fused[1], "%", goal_pct=25.0,
               note=pnote.format("built in the previous operator's epilogue")),
    ]
    return out
