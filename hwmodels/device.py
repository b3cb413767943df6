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


def runs_own_program(device) -> bool:
    """True for devices that execute their own compiled program (an FPGA's instruction stream), to
    which a GPU serving engine's per-iteration CPU time does not apply (optional attribute
    ``runs_own_program``; GPUs and GPU-based devices leave it out)."""
    return bool(getattr(device, "runs_own_program", False))


def describe_execution(device, cuda_graphs: bool, runtime: str) -> str:
    """How a device runs a step, in words: its own ``describe()`` where it has one (an FPGA's
    compiled instructions, a LUT Tensor Core GPU's tiles), else the GPU's launch mode and runtime."""
    own = getattr(device, "describe", None)
    if callable(own):
        return str(own())
    return f"{'CUDA graphs' if cuda_graphs else 'eager'}, {runtime}"
