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
import math
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"


def _num(entry, where: str, lo: float = 0.0, strict: bool = True) -> tuple[float, str]:
    """A sourced number ``{"value": x, "source": "..."}``: ``x`` finite and ``> lo`` (``>= lo`` when
    not ``strict``); anything else raises ``ValueError`` naming ``where``."""
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected {{'value': number, 'source': text}}, got {entry!r}")
    if "value" not in entry or "source" not in entry:
        raise ValueError(f"{where}: needs both 'value' and 'source', got keys {sorted(map(str, entry))}")
    v = entry["value"]
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ValueError(f"{where}: value must be a finite number, got {v!r}")
    if v < lo or (strict and v == lo):
        raise ValueError(f"{where}: value must be {'>' if strict else '>='} {lo:g}, got {v!r}")
    if not isinstance(entry["source"], str) or not entry["source"].strip():
        raise ValueError(f"{where}: source must be a non-empty text saying where the number comes from")
    return float(v), entry["source"]


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

    def scalar(key: str, optional: bool = False, strict: bool = True) -> float | None:
        if key not in data:
            if optional:
                return None
            raise ValueError(f"{where}: missing field '{key}'")
        v, s = _num(data[key], f"{where}.{key}", strict=strict)
        sources[key] = s
        return v

    def table(obj, prefix: str, strict: bool = True) -> dict:
        if not isinstance(obj, dict):
            raise ValueError(f"{where}.{prefix}: expected an object of sourced numbers, got {obj!r}")
        out = {}
        for k, entry in obj.items():
            v, s = _num(entry, f"{where}.{prefix}.{k}", strict=strict)
            out[k] = v
            sources[f"{prefix}.{k}"] = s
        return out

    if not isinstance(data, dict):
        raise ValueError(f"{where}: a hardware file must hold a JSON object, got {type(data).__name__}")
    if not isinstance(data.get("name"), str) or not data["name"].strip():
        raise ValueError(f"{where}: missing field 'name' (a non-empty text)")
    for key in ("vendor", "kind", "architecture", "scale_up_link", "scale_out_link"):
        if key in data and not isinstance(data[key], str):
            raise ValueError(f"{where}: {key} must be a text, got {data[key]!r}")
    aliases = data.get("aliases", ())
    if not isinstance(aliases, list | tuple) or not all(isinstance(a, str) for a in aliases):
        raise ValueError(f"{where}: aliases must be a list of names, got {aliases!r}")
    energy = data.get("energy", {})
    if not isinstance(energy, dict):
        raise ValueError(f"{where}.energy: expected an object with pj_per_flop and pj_per_byte, got {energy!r}")
    peaks = table(data.get("peak_flops", {}), "peak_flops")
    if not peaks:
        raise ValueError(f"{where}: peak_flops needs at least one dtype rate (FLOP/s)")
    sm = scalar("sm_count")
    if sm != int(sm):
        raise ValueError(f"{where}.sm_count: value must be a whole number of SMs, got {sm!r}")
    power, idle = scalar("power_limit_w"), scalar("idle_power_w", strict=False)
    if idle >= power:
        raise ValueError(f"{where}.idle_power_w: {idle:g} W must be below power_limit_w ({power:g} W)")
    return GPUSpec(
        name=data["name"],
        vendor=data.get("vendor", ""),
        peak_flops=peaks,
        memory_bytes=scalar("memory_bytes"),
        memory_bandwidth=scalar("memory_bandwidth"),
        l2_bytes=scalar("l2_bytes", strict=False),
        sm_count=int(sm),
        clock_hz=scalar("clock_hz"),
        power_limit_w=power,
        idle_power_w=idle,
        pj_per_flop=table(energy.get("pj_per_flop", {}), "energy.pj_per_flop", strict=False),
        pj_per_byte=table(energy.get("pj_per_byte", {}), "energy.pj_per_byte", strict=False),
        scale_up_link=data.get("scale_up_link", ""),
        scale_out_link=data.get("scale_out_link", ""),
        price_usd=scalar("price_usd", optional=True, strict=False),
        price_per_hour_usd=scalar("price_per_hour_usd", optional=True, strict=False),
        aliases=tuple(data.get("aliases", ())),
        kind=data.get("kind", "gpu"),
        architecture=str(data.get("architecture", "")),
        sources=sources,
    )


def read_json(path: Path, label: str = "file"):
    """JSON from ``path``; unreadable files, invalid JSON and NaN/Infinity raise ``ValueError`` naming it."""
    def reject(const: str):
        raise ValueError(f"{const} is not a number JSON allows")

    try:
        return json.loads(Path(path).read_text(), parse_constant=reject)
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{label}: cannot read {path} ({exc})") from None
    except ValueError as exc:
        raise ValueError(f"{label}: {path} is not valid JSON ({exc})") from None


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
    if path.suffix == ".json" and path.is_file():
        return parse(read_json(path, label), where=str(path))
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
    data = read_json(path, "link")
    if not isinstance(data, dict) or "bandwidth" not in data or "latency_s" not in data:
        raise ValueError(f"link: {path.name} needs 'bandwidth' and 'latency_s' as sourced numbers")
    bw, s1 = _num(data["bandwidth"], f"{path.name}.bandwidth")
    lat, s2 = _num(data["latency_s"], f"{path.name}.latency_s", strict=False)
    return LinkSpec(name=data.get("name", name), bandwidth=bw, latency_s=lat,
                    sources={"bandwidth": s1, "latency_s": s2})
