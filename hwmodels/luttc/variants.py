"""GPU variants whose tensor cores are LUT tiles: peak rate, area and energy from the unit model.

A variant (``hwmodels/data/luttc/variants.json``) names a base GPU, a :class:`~hwmodels.luttc.unit.LUTTile`
and the tiles per SM. Everything else is derived::

    peak(w)        = tiles_per_sm x tile ops/cycle at w weight bits x SMs x clock
    area per SM    = tiles_per_sm x tile area, scaled to the node and clock (unit.scale_area)
    energy per op  = tile energy per cycle / tile ops per cycle, scaled to node and voltage

The MAC tensor core of a GPU is costed the same way from :class:`~hwmodels.luttc.unit.MACUnit`:
its DP4 units per SM are the datasheet rate of the dtype divided by 8 ops per DP4 per cycle.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from hwmodels.luttc.unit import LUTTile, MACUnit, Parts, load_parts, scale_area, scale_energy
from hwmodels.spec import GPUSpec

DATA = Path(__file__).resolve().parent.parent / "data" / "luttc" / "variants.json"


@dataclass(frozen=True)
class LUTVariant:
    """A LUT Tensor Core GPU design (see the module docstring)."""

    name: str
    base_gpu: str
    tile: LUTTile
    tiles_per_sm: int
    node_nm: float
    voltage_v: float
    tensor_clock_hz: float | None = None  # clock of the datasheet tensor peaks (default: the spec clock)
    sources: dict = field(default_factory=dict, compare=False, hash=False)

    def with_tile(self, **changes) -> LUTVariant:
        """The same variant with tile fields changed (``fused_precompute``, ``symmetric``, ``n``...)."""
        return dataclasses.replace(self, tile=dataclasses.replace(self.tile, **changes))

    @property
    def lanes_per_sm(self) -> int:
        return self.tiles_per_sm * self.tile.lanes

    def ops_per_cycle_per_sm(self, weight_bits: float) -> float:
        return self.tiles_per_sm * self.tile.ops_per_cycle(weight_bits)

    def clock(self, spec: GPUSpec) -> float:
        """Clock the tiles run at: the tensor clock of the datasheet peaks, else the spec clock."""
        return self.tensor_clock_hz or spec.clock_hz

    def peak(self, spec: GPUSpec, weight_bits: float, clock_hz: float | None = None) -> float:
        """Ops per second of the whole GPU's LUT tiles at ``weight_bits`` (1 MAC = 2 ops)."""
        clock = self.clock(spec) if clock_hz is None else clock_hz
        return self.ops_per_cycle_per_sm(weight_bits) * spec.sm_count * clock

    def area_per_sm_mm2(self, clock_hz: float, node_nm: float | None = None, parts: Parts | None = None) -> float:
        """Area of one SM's LUT tiles (mm^2) at ``node_nm`` (default: the variant's node) and clock."""
        p = parts or load_parts()
        node = self.node_nm if node_nm is None else node_nm
        return scale_area(self.tiles_per_sm * self.tile.area_um2(p), p, node, clock_hz) * 1e-6

    def pj_per_op(self, weight_bits: float, node_nm: float | None = None, voltage_v: float | None = None,
                  parts: Parts | None = None) -> float:
        """Energy of one op (half a MAC) on the tiles, pJ, at the variant's node and voltage by default."""
        p = parts or load_parts()
        node = self.node_nm if node_nm is None else node_nm
        volt = self.voltage_v if voltage_v is None else voltage_v
        e = scale_energy(self.tile.energy_per_cycle_pj(weight_bits, p), p, node, volt)
        return e / self.tile.ops_per_cycle(weight_bits)


def mac_dp4_per_sm(spec: GPUSpec, dtype: str, tensor_clock_hz: float | None = None) -> float:
    """DP4 MAC units per SM that give the datasheet ``dtype`` rate (8 ops per unit per cycle) at
    ``tensor_clock_hz``, the clock the datasheet peaks are quoted at (default: the spec clock)."""
    clock = tensor_clock_hz or spec.clock_hz
    return spec.peak(dtype) / (spec.sm_count * clock) / MACUnit.ops_per_cycle


def mac_area_per_sm_mm2(spec: GPUSpec, dtype: str, clock_hz: float, node_nm: float,
                        parts: Parts | None = None, tensor_clock_hz: float | None = None) -> float:
    """Area of one SM's MAC tensor core for ``dtype`` (mm^2) at ``node_nm`` and ``clock_hz``."""
    p = parts or load_parts()
    unit = MACUnit(dtype)
    units = mac_dp4_per_sm(spec, dtype, tensor_clock_hz)
    return scale_area(units * unit.area_um2(p), p, node_nm, clock_hz) * 1e-6


def mac_pj_per_op(dtype: str, node_nm: float, voltage_v: float, parts: Parts | None = None) -> float:
    """Energy of one op on the MAC tensor core of ``dtype`` (pJ)."""
    p = parts or load_parts()
    unit = MACUnit(dtype)
    return scale_energy(unit.energy_per_cycle_pj(p), p, node_nm, voltage_v) / unit.ops_per_cycle


def _num(entry, where: str) -> tuple[float, str]:
    if not isinstance(entry, dict) or "value" not in entry or "source" not in entry:
        raise ValueError(f"{where}: expected {{'value': number, 'source': text}}, got {entry!r}")
    return float(entry["value"]), str(entry["source"])


@lru_cache(maxsize=1)
def _variants() -> dict:
    return json.loads(DATA.read_text())["variants"]


def lut_gpu_names() -> list[str]:
    """Names of the shipped LUT Tensor Core variants."""
    return sorted(_variants())


def load_variant(name: str) -> LUTVariant:
    """A shipped variant by name; unknown names raise ``ValueError`` listing the known ones."""
    key = str(name).strip().lower()
    data = _variants()
    if key not in data:
        close = difflib.get_close_matches(key, list(data), n=3, cutoff=0.4)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(f"hardware: unknown LUT Tensor Core variant {name!r}.{hint} Known: {', '.join(sorted(data))}")
    d = data[key]
    src: dict = {}
    vals = {}
    for f in ("tiles_per_sm", "node_nm", "voltage_v", "table_quantization"):
        vals[f], src[f] = _num(d[f], f"{key}.{f}")
    tclock = None
    if "tensor_clock_hz" in d:
        tclock, src["tensor_clock_hz"] = _num(d["tensor_clock_hz"], f"{key}.tensor_clock_hz")
    tile = LUTTile(**d["tile"])
    return LUTVariant(name=key, base_gpu=d["base_gpu"], tile=tile, tiles_per_sm=int(vals["tiles_per_sm"]),
                      node_nm=vals["node_nm"], voltage_v=vals["voltage_v"], tensor_clock_hz=tclock, sources=src)
