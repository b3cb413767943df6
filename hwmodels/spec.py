"""Hardware specifications loaded from data files, every number with its source.

A GPU file (``hwmodels/data/gpus/<name>.json``) holds each number as ``{"value": x, "source": "..."}``:

- ``peak_flops``: dense (not sparse) tensor rates per compute dtype, FLOP/s (ops/s for ints)
- ``memory_bytes``, ``memory_bandwidth`` (bytes/s), ``l2_bytes``, ``sm_count``, ``clock_hz``
- ``power_limit_w``, ``idle_power_w``, optional ``price_usd`` and ``price_per_hour_usd``
- ``energy``: ``pj_per_flop`` per dtype and ``pj_per_byte`` per memory level (``hbm``, ``l2``)
- ``scale_up_link`` and ``scale_out_link``: names of link files in ``hwmodels/data/links``
- ``architecture``: the GPU generation (``hopper``, ``ampere``, ``ada``, ``blackwell``, ``cdna3``,
  ``volta``); profiles transfer only within one (:mod:`hwmodels.profiles`)

>>> from hwmodels import load_gpu
>>> g = load_gpu("h200")
>>> g.name, g.memory_bytes > 140e9
('h200-sxm', True)
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"


def _num(entry, where: str) -> tuple[float, str]:
    if isinstance(entry, dict):
        if "value" not in entry or "source" not in entry:
            raise ValueError(f"{where}: needs both 'value' and 'source', got keys {sorted(entry)}")
        return float(entry["value"]), str(entry["source"])
    raise ValueError(f"{where}: expected {{'value': number, 'source': text}}, got {entry!r}")


@dataclass(frozen=True)
class LinkSpec:
    """A point-to-point or switched link: bandwidth per direction per device (bytes/s), latency (s)."""

    name: str
    bandwidth: float
    latency_s: float
    sources: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class GPUSpec:
    """Datasheet figures of one accelerator (SI units)."""

    name: str
    vendor: str
    peak_flops: dict  # dtype -> FLOP/s, dense
    memory_bytes: float
    memory_bandwidth: float
    l2_bytes: float
    sm_count: int
    clock_hz: float
    power_limit_w: float
    idle_power_w: float
    pj_per_flop: dict  # dtype -> pJ per FLOP
    pj_per_byte: dict  # memory level -> pJ per byte
    scale_up_link: str = ""
    scale_out_link: str = ""
    price_usd: float | None = None
    price_per_hour_usd: float | None = None
    aliases: tuple = ()
    kind: str = "gpu"
    architecture: str = ""
    sources: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def dtypes(self) -> tuple[str, ...]:
        """Compute dtypes with a tensor (or vector, for fp32) rate on this device."""
        return tuple(self.peak_flops)

    def peak(self, dtype: str) -> float:
        """Dense peak rate for ``dtype`` in FLOP/s; raises naming the dtypes this device has."""
        try:
            return self.peak_flops[dtype]
        except KeyError:
            raise ValueError(
                f"hardware {self.name}: no {dtype} rate; it has {', '.join(sorted(self.peak_flops))}"
            ) from None


def parse_gpu(data: dict, where: str = "gpu") -> GPUSpec:
    """Build a :class:`GPUSpec` from the JSON layout above, checking that each number has a source."""
    sources: dict[str, str] = {}

    def scalar(key: str, optional: bool = False) -> float | None:
        if key not in data:
            if optional:
                return None
            raise ValueError(f"{where}: missing field '{key}'")
        v, s = _num(data[key], f"{where}.{key}")
        sources[key] = s
        return v

    def table(obj: dict, prefix: str) -> dict:
        out = {}
        for k, entry in obj.items():
            v, s = _num(entry, f"{where}.{prefix}.{k}")
            out[k] = v
            sources[f"{prefix}.{k}"] = s
        return out

    if "name" not in data:
        raise ValueError(f"{where}: missing field 'name'")
    energy = data.get("energy", {})
    return GPUSpec(
        name=data["name"],
        vendor=data.get("vendor", ""),
        peak_flops=table(data.get("peak_flops", {}), "peak_flops"),
        memory_bytes=scalar("memory_bytes"),
        memory_bandwidth=scalar("memory_bandwidth"),
        l2_bytes=scalar("l2_bytes"),
        sm_count=int(scalar("sm_count")),
        clock_hz=scalar("clock_hz"),
        power_limit_w=scalar("power_limit_w"),
        idle_power_w=scalar("idle_power_w"),
        pj_per_flop=table(energy.get("pj_per_flop", {}), "energy.pj_per_flop"),
        pj_per_byte=table(energy.get("pj_per_byte", {}), "energy.pj_per_byte"),
        scale_up_link=data.get("scale_up_link", ""),
        scale_out_link=data.get("scale_out_link", ""),
        price_usd=scalar("price_usd", optional=True),
        price_per_hour_usd=scalar("price_per_hour_usd", optional=True),
        aliases=tuple(data.get("aliases", ())),
        kind=data.get("kind", "gpu"),
        architecture=str(data.get("architecture", "")),
        sources=sources,
    )


def index_data_files(folder: Path, kind: str | None = None) -> dict[str, Path]:
    """Name and alias (lower case) -> JSON file for the data files in ``folder``.

    With ``kind``, only files whose ``kind`` field equals it; a name used twice is an error.
    """
    names: dict[str, Path] = {}
    for p in sorted(folder.glob("*.json")):
        data = json.loads(p.read_text())
        if kind is not None and data.get("kind") != kind:
            continue
        for key in (data["name"], *data.get("aliases", ())):
            key = key.lower()
            if key in names:
                raise ValueError(f"hardware data: name {key!r} used by both {names[key].name} and {p.name}")
            names[key] = p
    return names


def lookup_data_file(name: str, files: dict[str, Path], parse, label: str, known: list[str]):
    """Parse the shipped file for ``name`` (case-insensitive) or a JSON file by path; unknown names
    raise ``ValueError`` suggesting the closest ones."""
    key = str(name).strip().lower()
    if key in files:
        return parse(json.loads(files[key].read_text()), where=files[key].name)
    path = Path(name)
    if path.suffix == ".json" and path.exists():
        return parse(json.loads(path.read_text()), where=str(path))
    close = difflib.get_close_matches(key, list(files), n=3, cutoff=0.4)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ValueError(f"hardware: unknown {label} {name!r}.{hint} Known: {', '.join(known)}")


@cache
def _gpu_files() -> dict[str, Path]:
    return index_data_files(DATA_DIR / "gpus")


def list_gpus() -> list[str]:
    """Canonical names of the shipped GPUs."""
    return sorted({json.loads(p.read_text())["name"] for p in _gpu_files().values()})


def hardware_names() -> list[str]:
    """Every accepted GPU name, aliases included."""
    return sorted(_gpu_files())


@cache
def load_gpu(name: str) -> GPUSpec:
    """A shipped GPU by name or alias (case-insensitive), or a JSON file by path."""
    return lookup_data_file(name, _gpu_files(), parse_gpu, "hardware", list_gpus())


@cache
def load_link(name: str) -> LinkSpec:
    """A shipped link (``nvlink4``, ``pcie5``, ``ib-ndr400``...) by name."""
    key = str(name).strip().lower()
    path = DATA_DIR / "links" / f"{key}.json"
    if not key or not path.exists():
        known = sorted(p.stem for p in (DATA_DIR / "links").glob("*.json"))
        raise ValueError(f"link: unknown link {name!r}; known: {', '.join(known)}")
    data = json.loads(path.read_text())
    bw, s1 = _num(data["bandwidth"], f"{path.name}.bandwidth")
    lat, s2 = _num(data["latency_s"], f"{path.name}.latency_s")
    return LinkSpec(name=data.get("name", name), bandwidth=bw, latency_s=lat,
                    sources={"bandwidth": s1, "latency_s": s2})
