"""FPGA boards running FlightLLM, as data files with a source for every number.

A board file (``hwmodels/data/fpga/<name>.json``) holds each number as ``{"value": x, "source": "..."}``:
clock, DSPs (on the part, used, INT8 MACs per DSP per cycle), compute cores and their matrix (MM)
and vector (MV) engines, the special-function unit, HBM (capacity, bandwidth, channels and their
efficiency within and across channels), DDR, on-chip memory and power. The mechanisms shared by
all boards are in ``hwmodels/data/fpga/flightllm.json`` (:class:`Mechanisms`).

>>> from hwmodels.flightllm import load_fpga_spec
>>> s = load_fpga_spec("u280")
>>> s.int8_macs_per_s() / 1e12     # 6345 DSPs x 2 MACs x 225 MHz
2.85525
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path

from hwmodels.spec import index_data_files, lookup_data_file

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "fpga"
_NUMBERS = ("clock_hz", "dsp_count", "dsp_used", "macs_per_dsp", "cores", "mm_macs_per_core", "mv_macs_per_core",
            "mv_width", "mm_rows", "core_efficiency", "sfu_lanes_per_core", "hbm_bytes", "hbm_bandwidth",
            "hbm_channels", "hbm_same_channel_eff", "hbm_cross_channel_eff", "ddr_bytes", "ddr_bandwidth",
            "onchip_bytes", "board_power_w", "idle_power_w", "power_limit_w")


def _num(entry, where: str):
    if not isinstance(entry, dict) or "value" not in entry or "source" not in entry:
        raise ValueError(f"{where}: expected {{'value': ..., 'source': text}}, got {entry!r}")
    return entry["value"], str(entry["source"])


@dataclass(frozen=True)
class FPGASpec:
    """One board running FlightLLM (SI units; see the module docstring)."""

    name: str
    clock_hz: float
    dsp_count: int
    dsp_used: int
    macs_per_dsp: float
    cores: int
    mm_macs_per_core: float
    mv_macs_per_core: float
    mv_width: int
    mm_rows: int
    core_efficiency: float
    sfu_lanes_per_core: float
    hbm_bytes: float
    hbm_bandwidth: float
    hbm_channels: int
    hbm_same_channel_eff: float
    hbm_cross_channel_eff: float
    ddr_bytes: float
    ddr_bandwidth: float
    onchip_bytes: float
    board_power_w: float
    idle_power_w: float
    power_limit_w: float
    aliases: tuple = ()
    sources: dict = field(default_factory=dict, compare=False, hash=False)

    def int8_macs_per_s(self) -> float:
        """INT8 MACs per second of the DSPs the design uses: DSPs x MACs per DSP x clock."""
        return self.dsp_used * self.macs_per_dsp * self.clock_hz

    def mm_macs_per_s(self) -> float:
        """Sustained MACs per second of the matrix (prefill) engines of all cores."""
        return self.cores * self.mm_macs_per_core * self.clock_hz * self.core_efficiency

    def mv_macs_per_s(self) -> float:
        """Sustained MACs per second of the vector (decode) engines of all cores."""
        return self.cores * self.mv_macs_per_core * self.clock_hz * self.core_efficiency

    def sfu_lane_cycles_per_s(self) -> float:
        return self.cores * self.sfu_lanes_per_core * self.clock_hz * self.core_efficiency

    def hbm_effective_bandwidth(self, same_channel: bool = True) -> float:
        """Bytes per second the cores stream from HBM: peak x channel efficiency x core efficiency."""
        eff = self.hbm_same_channel_eff if same_channel else self.hbm_cross_channel_eff
        return self.hbm_bandwidth * eff * self.core_efficiency

    def validate(self) -> None:
        """Raise ``ValueError`` naming the field when the design does not fit the part."""
        need = self.cores * self.mm_macs_per_core / self.macs_per_dsp
        if need > self.dsp_used + 1e-9:
            raise ValueError(f"fpga {self.name}: cores x mm_macs_per_core needs {need:.0f} DSPs, "
                             f"more than dsp_used ({self.dsp_used})")
        if self.dsp_used > self.dsp_count:
            raise ValueError(f"fpga {self.name}: dsp_used ({self.dsp_used}) exceeds dsp_count ({self.dsp_count})")
        for f in ("core_efficiency", "hbm_same_channel_eff", "hbm_cross_channel_eff"):
            if not 0 < getattr(self, f) <= 1:
                raise ValueError(f"fpga {self.name}: {f} must be in (0, 1], got {getattr(self, f)}")


def parse_fpga(data: dict, where: str = "fpga") -> FPGASpec:
    """Build an :class:`FPGASpec` from the JSON layout above, checking that each number has a source."""
    if "name" not in data:
        raise ValueError(f"{where}: missing field 'name'")
    vals, src = {}, {}
    for k in _NUMBERS:
        if k not in data:
            raise ValueError(f"{where}: missing field '{k}'")
        v, s = _num(data[k], f"{where}.{k}")
        vals[k] = float(v)
        src[k] = s
    for k in ("dsp_count", "dsp_used", "cores", "mv_width", "mm_rows", "hbm_channels"):
        vals[k] = int(vals[k])
    spec = FPGASpec(name=data["name"], aliases=tuple(data.get("aliases", ())), sources=src, **vals)
    spec.validate()
    return spec


@cache
def _files() -> dict[str, Path]:
    return index_data_files(DATA_DIR, kind="fpga")


def fpga_names() -> list[str]:
    """Every accepted FPGA name (canonical names and aliases)."""
    return sorted(_files())


def list_fpgas() -> list[str]:
    """Canonical names of the shipped boards."""
    return sorted({json.loads(p.read_text())["name"] for p in _files().values()})


@cache
def load_fpga_spec(name: str) -> FPGASpec:
    """A shipped board by name or alias (case-insensitive), or a JSON file by path."""
    return lookup_data_file(name, _files(), parse_fpga, "FPGA", list_fpgas())


@dataclass(frozen=True)
class Mechanisms:
    """FlightLLM's mechanism parameters shared by all boards (``flightllm.json``)."""

    sparse_block: int
    sparse_n: tuple
    index_bits: float
    block_info_bytes: float
    weight_bits: tuple
    kv_cache_reads: float
    norm_passes: float
    sfu_flops_per_lane_cycle: float
    decode_bucket: int
    prefill_bucket: int
    instruction_bytes: float
    default_density: dict
    onchip_activation_share: float
    layers_per_program: float
    sources: dict = field(default_factory=dict, compare=False, hash=False)


@lru_cache(maxsize=1)
def load_mechanisms() -> Mechanisms:
    data = json.loads((DATA_DIR / "flightllm.json").read_text())
    vals, src = {}, {}
    for k in Mechanisms.__dataclass_fields__:
        if k == "sources":
            continue
        v, s = _num(data[k], f"flightllm.json.{k}")
        vals[k] = tuple(v) if isinstance(v, list) else v
        src[k] = s
    for k in ("sparse_block", "decode_bucket", "prefill_bucket"):
        vals[k] = int(vals[k])
    return Mechanisms(sources=src, **vals)
