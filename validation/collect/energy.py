"""Board energy and state through NVML (``pynvml``, optional): the total-energy counter (millijoules),
power, clocks and temperature.

Energy per operation = counter difference over a window of back-to-back repetitions / operations run;
mean power = counter difference / window length. Without ``pynvml`` or a GPU, or in a dry run, every
reading is ``None`` and the energy columns stay empty.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class EnergyMeter:
    """NVML handle of the GPU that PyTorch uses, or a stand-in that reads nothing."""

    def __init__(self, torch: Any = None, device_index: int = 0, enabled: bool = True):
        self.nvml: Any = None
        self.handle: Any = None
        self.note = "NVML not used (dry run or disabled)"
        if not enabled:
            return
        try:
            import pynvml
        except ImportError:
            self.note = "pynvml is not installed: no energy readings (pip install nvidia-ml-py)"
            return
        try:
            pynvml.nvmlInit()
            self.nvml = pynvml
            self.handle = self._match_handle(torch, device_index)
            self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
            self.note = "NVML total-energy counter"
        except Exception as exc:  # NVML refuses on some boards and in some containers
            self.note = f"NVML unavailable: {exc!r}"
            self.nvml = self.handle = None

    def _match_handle(self, torch: Any, index: int) -> Any:
        """The NVML device with the same UUID as PyTorch's device (CUDA_VISIBLE_DEVICES may reorder)."""
        nvml = self.nvml
        uuid = None
        if torch is not None:
            uuid = str(getattr(torch.cuda.get_device_properties(index), "uuid", "") or "")
        if uuid:
            for i in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(i)
                nv_uuid = nvml.nvmlDeviceGetUUID(handle)
                nv_uuid = nv_uuid.decode() if isinstance(nv_uuid, bytes) else str(nv_uuid)
                if nv_uuid.removeprefix("GPU-") == uuid.removeprefix("GPU-"):
                    return handle
        return nvml.nvmlDeviceGetHandleByIndex(index)

    @property
    def available(self) -> bool:
        return self.handle is not None

    def energy_mj(self) -> int | None:
        if not self.available:
            return None
        return int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))

    def _read(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception:  # a reading the board does not support
            return None

    def state(self) -> dict:
        """Power (W), clocks (MHz), temperature (deg C) and power limit (W) now; ``{}`` without NVML."""
        if not self.available:
            return {}
        nv, h = self.nvml, self.handle
        milli = self._read(lambda: nv.nvmlDeviceGetPowerUsage(h))
        limit = self._read(lambda: nv.nvmlDeviceGetEnforcedPowerLimit(h))
        return {
            "power_w": None if milli is None else milli / 1e3,
            "sm_clock_mhz": self._read(lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM)),
            "mem_clock_mhz": self._read(lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_MEM)),
            "temp_c": self._read(lambda: nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)),
            "power_limit_w": None if limit is None else limit / 1e3,
            "max_sm_clock_mhz": self._read(lambda: nv.nvmlDeviceGetMaxClockInfo(h, nv.NVML_CLOCK_SM)),
            "max_mem_clock_mhz": self._read(lambda: nv.nvmlDeviceGetMaxClockInfo(h, nv.NVML_CLOCK_MEM)),
        }

    def idle_power_w(self, seconds: float = 1.0) -> float | None:
        """Mean board power over ``seconds`` of doing nothing (W)."""
        e0 = self.energy_mj()
        if e0 is None:
            return None
        t0 = time.perf_counter()
        time.sleep(seconds)
        e1 = self.energy_mj()
        return (e1 - e0) / 1e3 / (time.perf_counter() - t0)

    def measure(self, bench: Any, batch: Callable[[], Any], ops_per_batch: int, per_batch_ms: float,
                seconds: float) -> dict:
        """``energy_j`` (J per operation) and ``power_w`` (mean W) over >= ``seconds`` of ``batch``;
        empty cells when NVML is not available or ``seconds`` is 0."""
        if not self.available or seconds <= 0:
            return {"energy_j": None, "power_w": None}
        bench.sync()
        e0 = self.energy_mj()
        n, elapsed = bench.repeat_for(batch, per_batch_ms, seconds)
        e1 = self.energy_mj()
        joules = (e1 - e0) / 1e3
        return {"energy_j": joules / (n * ops_per_batch), "power_w": joules / elapsed}

    def close(self) -> None:
        if self.nvml is not None:
            try:
                self.nvml.nvmlShutdown()
            except Exception:
                pass
