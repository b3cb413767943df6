"""A GPU whose tensor cores are LUT tiles, as a :class:`~hwmodels.device.Device`.

Rows with low-bit integer weights (``op_class == "gemm"``, 0 < ``weight_bits`` < 16) run on the
LUT tiles; every other row is costed by the base GPU model unchanged (it keeps its FP16 datapath
for attention and 16-bit GEMMs). A LUT row is handed to the base GPU model with its work and
traffic changed, so launch floors, CUDA-graph gaps, eager launches and the compute/memory overlap
stay the base model's::

    work      = flops x (base peak[dtype] x base efficiency) / (peak_lut(weight_bits) x efficiency)
    tables    = m x (k / K) x entries x entry bytes  (the GEMM reads them instead of its activations)
    energy    = flops x pJ/op of the tiles (unit model, at the variant's node) + the base model's
                energy of the row's bytes

**Table precompute** is an operator of its own (:meth:`LUTGPU.precompute_table`, one row per LUT
row, costed by the base GPU and added to its GEMM's time, since the GEMM waits for its tables)::

    adds      = m x (k / K) x entries       (one add per entry, on the CUDA cores at the fp32 rate)
    unfused:  a kernel of its own (one launch) that reads the activations and writes the tables
    fused:    the previous operator's epilogue builds the tables: no launch, no activation read;
              it writes max(tables - activations, 0) more bytes than the activations it replaces

Assumptions (named): one add per table entry (entries built incrementally from the previous one);
the adds at the fp32 CUDA-core rate; the previous operator is memory-bound, so the fused epilogue
costs its extra bytes and adds, nothing else.

``efficiency`` (fraction of the LUT peak reached) defaults to the base profile's GEMM efficiency
for the row's dtype, i.e. LUT GEMMs reach the same share of their peak as tensor-core GEMMs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from hwmodels.gpu import GPU, EfficiencyProfile, load_device
from hwmodels.luttc.unit import weight_planes
from hwmodels.luttc.variants import LUTVariant, load_variant
from hwmodels.optable import OpCosts, OperatorTable
from hwmodels.spec import GPUSpec


def rescaled_spec(spec: GPUSpec, clock_hz: float, tensor_clock_hz: float | None = None) -> GPUSpec:
    """The GPU at another clock: every peak rate scales with it (memory bandwidth does not).

    ``tensor_clock_hz`` is the clock the datasheet peaks are quoted at (default: the spec clock).
    """
    f = clock_hz / (tensor_clock_hz or spec.clock_hz)
    return dataclasses.replace(spec, clock_hz=clock_hz, peak_flops={k: v * f for k, v in spec.peak_flops.items()})


class LUTGPU:
    """Device model of a LUT Tensor Core GPU variant (see the module docstring)."""

    def __init__(self, variant: LUTVariant, base: GPU, *, efficiency: float | None = None):
        self.variant = variant
        self.base = base
        self.spec = base.spec
        self.name = variant.name
        self.efficiency = None if efficiency is None else float(efficiency)
        if self.efficiency is not None and not 0 < self.efficiency <= 1.5:
            raise ValueError(f"efficiency: must be in (0, 1.5], got {self.efficiency}")

    # Device protocol ---------------------------------------------------------------------------
    @property
    def memory_bytes(self) -> float:
        return self.base.memory_bytes

    @property
    def idle_power_w(self) -> float:
        return self.base.idle_power_w

    @property
    def power_limit_w(self) -> float:
        return self.base.power_limit_w

    @property
    def price_per_hour_usd(self) -> float | None:
        return self.base.price_per_hour_usd

    # Derived figures ---------------------------------------------------------------------------
    def lut_peak(self, weight_bits: float) -> float:
        """Ops per second of the LUT tiles for ``weight_bits``-wide weights."""
        return self.variant.peak(self.spec, weight_bits)

    def area_per_sm_mm2(self, node_nm: float | None = None) -> float:
        """LUT tile area per SM at the tiles' clock and the variant's node (or ``node_nm``)."""
        return self.variant.area_per_sm_mm2(self.variant.clock(self.spec), node_nm)

    def lut_pj_per_op(self, weight_bits: float) -> float:
        return self.variant.pj_per_op(weight_bits)

    def lut_rows(self, table: OperatorTable) -> np.ndarray:
        """Rows the LUT tiles run; raises naming the supported widths for any other low-bit width."""
        mask = (table.op_class == "gemm") & (table.weight_bits > 0) & (table.weight_bits < 16)
        for w in np.unique(table.weight_bits[mask]):
            weight_planes(w)
        return mask

    def _base_eff(self, dtype: str) -> float:
        ce = self.base.profile.compute_eff
        return float(ce.get(dtype, ce.get("default", 1.0)))

    def _tables_and_acts(self, table: OperatorTable, i: int):
        tile = self.variant.tile
        acts = np.maximum(table.bytes_read[i] - table.weight_bytes[i], 0.0)
        tables = table.m[i] * table.k[i] / tile.k * tile.entries * tile.entry_bits / 8.0
        return tables, acts

    def lut_table(self, table: OperatorTable) -> tuple[OperatorTable, np.ndarray]:
        """The table the base GPU model costs in place of ``table`` (LUT rows rewritten: tile work,
        tables read instead of activations), and the LUT-row mask."""
        mask = self.lut_rows(table)
        t = dataclasses.replace(table, flops=table.flops.copy(), bytes_read=table.bytes_read.copy(),
                                bytes_written=table.bytes_written.copy(), kernels=table.kernels.copy())
        for i in np.flatnonzero(mask):
            w, dtype = float(table.weight_bits[i]), str(table.dtype[i])
            eff = self._base_eff(dtype) if self.efficiency is None else self.efficiency
            t.flops[i] = table.flops[i] * self.base.peak(dtype) * self._base_eff(dtype) / (self.lut_peak(w) * eff)
            tables, acts = self._tables_and_acts(table, i)
            t.bytes_read[i] = table.bytes_read[i] - acts + tables
        return t, mask

    def precompute_table(self, table: OperatorTable) -> OperatorTable:
        """The table-precompute operator of every row (same order; all zero on non-LUT rows):
        a separate kernel, or the previous operator's epilogue when ``fused_precompute``."""
        mask = self.lut_rows(table)
        z = np.zeros_like(table.flops)
        pre = dataclasses.replace(table, op_class=np.full(table.rows, "elementwise", dtype=object),
                                  dtype=np.full(table.rows, "fp32", dtype=object), weight_bits=np.zeros(table.rows),
                                  flops=z.copy(), bytes_read=z.copy(), bytes_written=z.copy(), weight_bytes=z.copy(),
                                  kernels=z.copy(), m=z.copy(), n=z.copy(), k=z.copy())
        tile = self.variant.tile
        for i in np.flatnonzero(mask):
            tables, acts = self._tables_and_acts(table, i)
            pre.flops[i] = table.m[i] * table.k[i] / tile.k * tile.entries
            if tile.fused_precompute:
                pre.bytes_written[i] = np.maximum(tables - acts, 0.0)
            else:
                pre.bytes_read[i] = acts
                pre.bytes_written[i] = tables
                pre.kernels[i] = table.kernels[i]
        return pre

    def precompute_cost(self, table: OperatorTable, *, cuda_graphs: bool = True) -> OpCosts:
        """Seconds and joules of each row's table precompute (zero on non-LUT rows)."""
        pre = self.precompute_table(table)
        c = self.base.cost(pre, cuda_graphs=cuda_graphs)
        idle = (pre.flops == 0) & (pre.bytes_read == 0) & (pre.bytes_written == 0) & (pre.kernels == 0)
        return OpCosts(time_s=np.where(idle, 0.0, c.time_s), energy_j=np.where(idle, 0.0, c.energy_j),
                       bound=c.bound, overhead_s=np.where(idle, 0.0, c.overhead_s))

    def cost(self, table: OperatorTable, *, cuda_graphs: bool = True) -> OpCosts:
        """Per-row, per-configuration seconds and joules of one instance (see module docstring);
        a LUT row's time includes its table precompute."""
        t, mask = self.lut_table(table)
        if not mask.any():
            return self.base.cost(table, cuda_graphs=cuda_graphs)
        c = self.base.cost(t, cuda_graphs=cuda_graphs)
        pre = self.precompute_cost(table, cuda_graphs=cuda_graphs)
        no_work = dataclasses.replace(t, flops=np.where(mask[:, None], 0.0, t.flops))
        e_bytes = self.base.cost(no_work, cuda_graphs=cuda_graphs).energy_j
        energy = c.energy_j.copy()
        for i in np.flatnonzero(mask):
            energy[i] = e_bytes[i] + table.flops[i] * self.lut_pj_per_op(float(table.weight_bits[i])) * 1e-12
        return OpCosts(time_s=c.time_s + pre.time_s, energy_j=energy + pre.energy_j, bound=c.bound,
                       overhead_s=c.overhead_s + pre.overhead_s)

    def describe(self) -> str:
        """What this device runs, for titles of answers."""
        t = self.variant.tile
        return (f"LUT Tensor Core tiles M{t.m}N{t.n}K{t.k} x {self.variant.tiles_per_sm}/SM on {self.base.spec.name}, "
                f"table precompute {'fused' if t.fused_precompute else 'unfused'}")


def load_lut_gpu(name: str, profile: str | Path | EfficiencyProfile | None = "auto", *,
                 clock_hz: float | None = None, efficiency: float | None = None,
                 fused_precompute: bool | None = None, symmetric: bool | None = None) -> LUTGPU:
    """A LUT Tensor Core variant (``a100-lut-4x``, ``a100-lut-8x``, ``h100-lut-8x``) by name.

    ``profile`` is the base GPU's efficiency profile (see :func:`hwmodels.gpu.load_device`);
    ``clock_hz`` runs the whole GPU at another clock (the paper normalizes to 1.41 GHz);
    ``fused_precompute`` and ``symmetric`` switch the paper's table mechanisms off or on.
    """
    variant = load_variant(name)
    changes = {k: v for k, v in (("fused_precompute", fused_precompute), ("symmetric", symmetric)) if v is not None}
    if changes:
        variant = variant.with_tile(**changes)
    base = load_device(variant.base_gpu, profile)
    if clock_hz is not None:
        if clock_hz <= 0:
            raise ValueError(f"clock_hz: must be positive, got {clock_hz}")
        base = GPU(rescaled_spec(base.spec, clock_hz, variant.tensor_clock_hz), base.profile, base.scale_up,
                   base.scale_out)
        variant = dataclasses.replace(variant, tensor_clock_hz=None)
    return LUTGPU(variant, base, efficiency=efficiency)
