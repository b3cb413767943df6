"""One place to turn a hardware name into a device model: GPUs, FPGAs and LUT Tensor Core GPUs."""

from __future__ import annotations

import difflib
import os
from functools import lru_cache
from pathlib import Path

from hwmodels.device import Device
from hwmodels.gpu import EfficiencyProfile
from hwmodels.gpu import load_device as load_gpu_device
from hwmodels.profiles import ENV_VAR as PROFILE_ENV
from hwmodels.spec import hardware_names as gpu_names


@lru_cache(maxsize=1)
def _other_loaders() -> tuple:
    """(names, loader) pairs of the non-GPU device families that are installed."""
    out = []
    try:
        from hwmodels.flightllm import fpga_names, load_fpga
        out.append((fpga_names, load_fpga))
    except ImportError:
        pass
    try:
        from hwmodels.luttc import load_lut_gpu, lut_gpu_names
        out.append((lut_gpu_names, load_lut_gpu))
    except ImportError:
        pass
    return tuple(out)


def all_hardware_names() -> list[str]:
    """Every accepted hardware name (GPU names and aliases, FPGAs, LUT Tensor Core variants)."""
    names = set(gpu_names())
    for lister, _ in _other_loaders():
        names.update(lister())
    return sorted(names)


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
    key = hardware.strip().lower()
    if key in gpu_names() or key.endswith(".json"):
        return load_gpu_device(key if key in gpu_names() else hardware, profile)
    for lister, loader in _other_loaders():
        if key in lister():
            return loader(key)
    names = all_hardware_names()
    close = difflib.get_close_matches(key, names, n=3, cutoff=0.4)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ValueError(f"hardware: unknown hardware {hardware!r}.{hint} Known: {', '.join(names)}")
