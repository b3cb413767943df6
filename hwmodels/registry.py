"""One place to turn a hardware name into a device model; device families register here by name.

GPUs (data files in ``hwmodels/data/gpus``) are built in. Every other family (FlightLLM FPGAs, LUT
Tensor Core GPUs, and any a user adds) is a subpackage of ``hwmodels`` with a ``family`` module
that calls :func:`register_family`; the registry imports those modules the first time it is asked
for a name, so adding a family touches no existing file. A family outside this package registers
from its own module, loaded by ``GENZ_PLUGINS`` (see :mod:`genz.plugins`). docs/architecture.md has
the recipe.

>>> sorted(f for f in families())
['flightllm', 'gpu', 'luttc']
"""

from __future__ import annotations

import difflib
import importlib
import os
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from hwmodels.device import Device
from hwmodels.gpu import EfficiencyProfile
from hwmodels.gpu import load_device as load_gpu_device
from hwmodels.profiles import ENV_VAR as PROFILE_ENV
from hwmodels.spec import hardware_names as gpu_names

__all__ = ["DeviceFamily", "all_hardware_names", "families", "family_of", "load_device", "register_family"]


@dataclass(frozen=True)
class DeviceFamily:
    """A registered family: ``names()`` lists the hardware names it accepts, ``load(name)`` builds one."""

    name: str
    names: Callable[[], Iterable[str]]
    load: Callable[[str], Device]
    description: str


_FAMILIES: dict[str, DeviceFamily] = {}
_discovered = False


def register_family(name: str, names: Callable[[], Iterable[str]], load: Callable[[str], Device],
                    description: str) -> DeviceFamily:
    """Register a device family under ``name`` (replacing one of that name); returns its entry."""
    fam = DeviceFamily(name, names, load, description)
    _FAMILIES[name] = fam
    _load_cached.cache_clear()
    return fam


def _discover() -> None:
    """Import ``hwmodels.<subpackage>.family`` for each subpackage that has one (once)."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    import hwmodels

    for info in pkgutil.iter_modules(hwmodels.__path__):
        if not info.ispkg:
            continue
        try:
            importlib.import_module(f"hwmodels.{info.name}.family")
        except ModuleNotFoundError as exc:
            if exc.name != f"hwmodels.{info.name}.family":
                raise


def families() -> dict[str, DeviceFamily]:
    """Every registered family by name, GPUs first."""
    _discover()
    return {"gpu": _GPU, **_FAMILIES}


def all_hardware_names() -> list[str]:
    """Every accepted hardware name (GPU names and aliases, FPGAs, LUT Tensor Core variants...)."""
    names: set[str] = set()
    for fam in families().values():
        names.update(fam.names())
    return sorted(names)


def family_of(hardware: str) -> str:
    """The family that accepts ``hardware`` (``ValueError`` naming the known names when none does)."""
    key = hardware.strip().lower()
    if key.endswith(".json"):
        return "gpu"
    for fam in families().values():
        if key in fam.names():
            return fam.name
    names = all_hardware_names()
    close = difflib.get_close_matches(key, names, n=3, cutoff=0.4)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ValueError(f"hardware: unknown hardware {hardware!r}.{hint} Known: {', '.join(names)}")


def load_device(hardware: str | Device, profile: str | Path | EfficiencyProfile | None = "auto") -> Device:
    """A device model by name, or the device itself. ``profile`` applies to GPUs (see
    :func:`hwmodels.gpu.load_device`)."""
    if not isinstance(hardware, str):
        return hardware
    if isinstance(profile, str | None):
        return _load_cached(hardware, profile, os.environ.get(PROFILE_ENV, ""))
    return _load(hardware, profile)


@lru_cache(maxsize=256)
def _load_cached(hardware: str, profile: str | None, profile_path: str) -> Device:
    """Cached by the user profile path too, so changing ``GENZ_PROFILE_PATH`` is seen."""
    return _load(hardware, profile)


def _load(hardware: str, profile) -> Device:
    fam = family_of(hardware)
    key = hardware.strip().lower()
    if fam == "gpu":
        return load_gpu_device(key if key in gpu_names() else hardware, profile)
    return families()[fam].load(key)


_GPU = DeviceFamily("gpu", gpu_names, lambda name: load_gpu_device(name), "GPUs from data files (hwmodels/data/gpus)")
