"""The LUT-based mixed-precision GEMM unit and the MAC unit it replaces, part by part.

A LUT tile (Mo et al., LUT Tensor Core, ISCA 2025) computes an ``M x N x K`` block per cycle and
per weight bit plane: for each of its ``M`` activation rows it holds a table of the signed sums of
``K`` activations (``2^(K-1)`` entries when symmetrized, ``2^K`` otherwise); each of its
``M x N`` lanes reads ``K`` weight bits of one plane, selects an entry, negates it if the table is
symmetrized, and accumulates with a shift per plane (bit-serial). A table serves the ``N`` lanes of
its row (the elongated ``N`` is the table reuse); a weight index serves the ``M`` lanes of its
column. Without fusion, the tile also holds the adders that build the tables.

Area and energy add up parts whose sizes are in ``hwmodels/data/luttc/units-28nm.json``
(28 nm, 1 GHz, 0.9 V). Scaling rules (:func:`scale_area`, :func:`scale_energy`):

- area at another clock: proportional to the clock (constant throughput per area; the paper's
  DP4 LUT density at 1 GHz, 61.55 TFLOPs/mm2, and its Table 1 LUT density normalized to 1.41 GHz,
  61.84 TOPs/mm2, agree under this rule);
- area at another node: proportional to (node / 28 nm)^2;
- energy at another node: proportional to node / 28 nm, and to (voltage / 0.9 V)^2.

>>> t = LUTTile()
>>> t.table_bits()            # M x 2^(K-1) x entry bits = 2 x 8 x 8
128
>>> t.macs_per_cycle(2)       # 2 x 64 x 4 MACs per plane, 2 planes for 2-bit weights
256.0
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "luttc" / "units-28nm.json"

#: Weight widths the bit-serial LUT unit runs, and the bit planes each takes. Ternary weights
#: (1.58 bits, BitNet b1.58) are stored as two planes.
WEIGHT_PLANES = {1.0: 1, 1.58: 2, 2.0: 2, 3.0: 3, 4.0: 4}
TABLE_FORMATS = {"int8": (8, True), "fp16": (16, False)}  # entry bits, integer entries
ACC_FORMATS = ("int32", "fp16", "fp32")
#: MAC DP4 units: multiplier, adder-tree adder, accumulator
MAC_FORMATS = {"fp16": ("fp16", "fp16", "fp16"), "bf16": ("fp16", "fp16", "fp16"),
               "int8": ("int8", "int16", "int32"), "fp8": ("fp8", "fixed", "fp32")}


def weight_planes(bits: float) -> int:
    """Bit planes the LUT unit runs for ``bits``-wide weights; raises naming the supported widths."""
    key = round(float(bits), 2)
    if key not in WEIGHT_PLANES:
        allowed = ", ".join(f"{b:g}" for b in WEIGHT_PLANES)
        raise ValueError(f"weight bits: the LUT unit runs integer weights of {allowed} bits "
                         f"(1.58 = ternary as 2 planes), got {bits:g}")
    return WEIGHT_PLANES[key]


def table_entries(k: int, symmetric: bool = True) -> int:
    """Entries of one table of ``k`` activations: ``2^(k-1)`` symmetrized, ``2^k`` otherwise."""
    if k < 1:
        raise ValueError(f"k: activations per table must be >= 1, got {k}")
    return 2 ** (k - 1) if symmetric else 2 ** k


@dataclass(frozen=True)
class Parts:
    """Part sizes at the reference node, clock and voltage (um^2 and pJ per cycle of use)."""

    node_nm: float
    clock_hz: float
    voltage_v: float
    area: dict
    energy: dict
    sources: dict = field(default_factory=dict, compare=False, hash=False)

    def a(self, kind: str, fmt: str | None = None) -> float:
        return _pick(self.area, kind, fmt, "area_um2")

    def e(self, kind: str, fmt: str | None = None) -> float:
        return _pick(self.energy, kind, fmt, "energy_pj")


def _pick(table: dict, kind: str, fmt: str | None, where: str) -> float:
    v = table[kind]
    if fmt is None:
        return v
    if fmt not in v:
        raise ValueError(f"{where}.{kind}: no part for format {fmt!r}; has {', '.join(sorted(v))}")
    return v[fmt]


def _values(obj: dict, prefix: str, sources: dict) -> dict:
    out = {}
    for k, v in obj.items():
        if isinstance(v, dict) and "value" in v:
            out[k] = float(v["value"])
            sources[f"{prefix}.{k}"] = v["source"]
        elif isinstance(v, dict):
            out[k] = _values(v, f"{prefix}.{k}", sources)
    return out


@lru_cache(maxsize=4)
def load_parts(path: str | None = None) -> Parts:
    """The part sizes from the data file (every number has a ``source``)."""
    data = json.loads(Path(path or DATA).read_text())
    src: dict = {}
    top = _values({k: data[k] for k in ("node_nm", "clock_hz", "voltage_v")}, "", src)
    return Parts(node_nm=top["node_nm"], clock_hz=top["clock_hz"], voltage_v=top["voltage_v"],
                 area=_values(data["area_um2"], "area_um2", src), energy=_values(data["energy_pj"], "energy_pj", src),
                 sources=src)


def scale_area(area_um2: float, parts: Parts, node_nm: float | None = None, clock_hz: float | None = None) -> float:
    """Area at another node and clock (rules in the module docstring)."""
    node = parts.node_nm if node_nm is None else node_nm
    clock = parts.clock_hz if clock_hz is None else clock_hz
    return area_um2 * (node / parts.node_nm) ** 2 * (clock / parts.clock_hz)


def scale_energy(energy_pj: float, parts: Parts, node_nm: float | None = None, voltage_v: float | None = None) -> float:
    """Energy per cycle at another node and voltage (rules in the module docstring)."""
    node = parts.node_nm if node_nm is None else node_nm
    volt = parts.voltage_v if voltage_v is None else voltage_v
    return energy_pj * (node / parts.node_nm) * (volt / parts.voltage_v) ** 2


@dataclass(frozen=True)
class LUTTile:
    """One LUT tile: ``m`` activation rows x ``n`` outputs x ``k`` activations per table.

    ``table_format``: ``int8`` (tables quantized to INT8, integer entries) or ``fp16``;
    ``acc``: accumulator format; ``symmetric``: table symmetrization (half the entries, a
    negation per lane); ``fused_precompute``: tables built by the previous operator (no
    precompute adders in the tile).
    """

    m: int = 2
    n: int = 64
    k: int = 4
    table_format: str = "int8"
    acc: str = "int32"
    symmetric: bool = True
    fused_precompute: bool = True

    def __post_init__(self) -> None:
        for f in ("m", "n", "k"):
            if int(getattr(self, f)) < 1:
                raise ValueError(f"tile {f}: must be a positive integer, got {getattr(self, f)}")
        if self.table_format not in TABLE_FORMATS:
            raise ValueError(f"table_format: supported {', '.join(TABLE_FORMATS)}, got {self.table_format!r}")
        if self.acc not in ACC_FORMATS:
            raise ValueError(f"acc: supported {', '.join(ACC_FORMATS)}, got {self.acc!r}")

    # ---- structure --------------------------------------------------------------------------------
    @property
    def lanes(self) -> int:
        return self.m * self.n

    @property
    def entries(self) -> int:
        return table_entries(self.k, self.symmetric)

    @property
    def entry_bits(self) -> int:
        return TABLE_FORMATS[self.table_format][0]

    def table_bits(self) -> int:
        """Table storage of the tile: ``m x entries x entry bits``."""
        return self.m * self.entries * self.entry_bits

    def table_reuse(self) -> int:
        """Lanes reading each table entry per cycle (the elongated ``n``)."""
        return self.n

    def macs_per_cycle(self, weight_bits: float = 1) -> float:
        """Multiply-accumulates per cycle for weights of ``weight_bits`` (bit-serial planes)."""
        return self.lanes * self.k / weight_planes(weight_bits)

    def ops_per_cycle(self, weight_bits: float = 1) -> float:
        return 2.0 * self.macs_per_cycle(weight_bits)

    # ---- area and energy at the reference node/clock/voltage ------------------------------------
    def _neg_bits(self) -> int:
        if not self.symmetric:
            return 0
        return self.entry_bits if TABLE_FORMATS[self.table_format][1] else 1

    def area_um2(self, parts: Parts | None = None) -> float:
        """Area of the tile (um^2, reference node and clock)."""
        p = parts or load_parts()
        lane = self.entries * self.entry_bits * p.a("mux_bit") + self._neg_bits() * p.a("neg_bit") + p.a("acc", self.acc)
        tables = self.m * self.entries * self.entry_bits * p.a("reg_bit")
        weights = self.n * self.k * p.a("reg_bit")
        pre = 0.0 if self.fused_precompute else self.m * self.entries * p.a("precompute_add", self.table_format)
        return self.lanes * lane + tables + weights + pre

    def energy_per_cycle_pj(self, weight_bits: float = 1, parts: Parts | None = None) -> float:
        """Energy of one tile cycle (one weight plane), pJ; a table is written once per K-group and
        reused over the planes."""
        p = parts or load_parts()
        planes = weight_planes(weight_bits)
        lane = (self.entry_bits * (self.k - 1) * p.e("mux_bit") + self._neg_bits() * p.e("neg_bit")
                + p.e("acc", self.acc))
        tables = self.m * self.entries * self.entry_bits * p.e("reg_bit") / planes
        weights = self.n * self.k * p.e("reg_bit")
        pre = 0.0 if self.fused_precompute else self.m * self.entries * p.e("precompute_add", self.table_format) / planes
        return self.lanes * lane + tables + weights + pre

    def density(self, weight_bits: float = 1, parts: Parts | None = None, node_nm: float | None = None,
                clock_hz: float | None = None) -> float:
        """Compute density, ops per second per mm^2 (1 MAC = 2 ops)."""
        p = parts or load_parts()
        clock = p.clock_hz if clock_hz is None else clock_hz
        area_mm2 = scale_area(self.area_um2(p), p, node_nm, clock) * 1e-6
        return self.ops_per_cycle(weight_bits) * clock / area_mm2

    def ops_per_joule(self, weight_bits: float = 1, parts: Parts | None = None, node_nm: float | None = None,
                      voltage_v: float | None = None) -> float:
        """Energy efficiency, ops per joule."""
        p = parts or load_parts()
        e = scale_energy(self.energy_per_cycle_pj(weight_bits, p), p, node_nm, voltage_v)
        return self.ops_per_cycle(weight_bits) / (e * 1e-12)


@dataclass(frozen=True)
class MACUnit:
    """A DP4 multiply-accumulate unit (4 multipliers, 3 tree adders, 1 accumulator) of ``fmt``."""

    fmt: str = "fp16"

    def __post_init__(self) -> None:
        if self.fmt not in MAC_FORMATS:
            raise ValueError(f"MAC format: supported {', '.join(MAC_FORMATS)}, got {self.fmt!r}")

    ops_per_cycle: float = 8.0

    def area_um2(self, parts: Parts | None = None) -> float:
        p = parts or load_parts()
        mul, tree, acc = MAC_FORMATS[self.fmt]
        return 4 * p.a("mul", mul) + 3 * p.a("tree_add", tree) + p.a("acc", acc)

    def energy_per_cycle_pj(self, parts: Parts | None = None) -> float:
        p = parts or load_parts()
        mul, tree, acc = MAC_FORMATS[self.fmt]
        return 4 * p.e("mul", mul) + 3 * p.e("tree_add", tree) + p.e("acc", acc)

    def density(self, parts: Parts | None = None, node_nm: float | None = None, clock_hz: float | None = None) -> float:
        p = parts or load_parts()
        clock = p.clock_hz if clock_hz is None else clock_hz
        return self.ops_per_cycle * clock / (scale_area(self.area_um2(p), p, node_nm, clock) * 1e-6)

    def ops_per_joule(self, parts: Parts | None = None, node_nm: float | None = None,
                      voltage_v: float | None = None) -> float:
        p = parts or load_parts()
        return self.ops_per_cycle / (scale_energy(self.energy_per_cycle_pj(p), p, node_nm, voltage_v) * 1e-12)
