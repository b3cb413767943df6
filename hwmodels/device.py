"""The interface every device model offers to ``genz``.

A device maps an :class:`~hwmodels.optable.OperatorTable` to :class:`~hwmodels.optable.OpCosts`
and tells its memory capacity and idle power, so ``genz.predict`` works the same on a GPU, an
FPGA or a LUT Tensor Core variant.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from hwmodels.optable import OpCosts, OperatorTable


@runtime_checkable
class Device(Protocol):
    """A device model. Units: bytes, watts, seconds, joules."""

    name: str

    @property
    def memory_bytes(self) -> float:
        """Capacity available to weights, KV cache and activations (bytes)."""

    @property
    def idle_power_w(self) -> float:
        """Power drawn while idle (W); genz charges it over each step's time."""

    @property
    def power_limit_w(self) -> float:
        """Average power is never reported above this (W)."""

    def cost(self, table: OperatorTable, *, cuda_graphs: bool = True) -> OpCosts:
        """Per-row, per-configuration time and dynamic energy of one instance of each operator."""


@runtime_checkable
class Priced(Protocol):
    """A device with a rental price (USD per device-hour; ``None`` when its data gives none)."""

    @property
    def price_per_hour_usd(self) -> float | None: ...


@runtime_checkable
class Networked(Protocol):
    """A device with links: ``scale_up`` (the node's NVLink-class domain) and ``scale_out`` (its NIC);
    each a :class:`~hwmodels.spec.LinkSpec` or ``None``."""

    scale_up: object
    scale_out: object


@runtime_checkable
class Roofline(Protocol):
    """A device with a roofline: peak FLOP/s of a dtype and memory bandwidth (bytes/s)."""

    def peak(self, dtype: str) -> float: ...


@runtime_checkable
class Profiled(Protocol):
    """A device whose efficiencies come from an :class:`~hwmodels.gpu.EfficiencyProfile` (measured,
    transferred or prior; see :mod:`hwmodels.profiles`)."""

    profile: object


@runtime_checkable
class Described(Protocol):
    """A device that says in words how it runs a step (an FPGA's compiled program, LUT tiles)."""

    def describe(self) -> str: ...


def price_of(device) -> float | None:
    """USD per device-hour, or ``None`` when the device has no price."""
    return device.price_per_hour_usd if isinstance(device, Priced) else None


def scale_out_link(device):
    """The link a device reaches other nodes over (its scale-up link when it names no NIC), or None."""
    if not isinstance(device, Networked):
        return None
    return device.scale_out or device.scale_up


def runs_own_program(device) -> bool:
    """True for devices that execute their own compiled program (an FPGA's instruction stream), to
    which a GPU serving engine's per-iteration CPU time does not apply (optional attribute
    ``runs_own_program``; GPUs and GPU-based devices leave it out)."""
    return bool(getattr(device, "runs_own_program", False))


def describe_execution(device, cuda_graphs: bool, runtime: str) -> str:
    """How a device runs a step, in words: its own ``describe()`` where it has one (an FPGA's
    compiled instructions, a LUT Tensor Core GPU's tiles), else the GPU's launch mode and runtime."""
    if isinstance(device, Described):
        return str(device.describe())
    return f"{'CUDA graphs' if cuda_graphs else 'eager'}, {runtime}"
