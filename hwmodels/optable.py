"""The operator table: what one model step asks of a device, as arrays.

``genz`` fills it (operators -> FLOPs and bytes); devices in ``hwmodels`` map it to times and
energies. Rows are operator kinds per layer class; columns hold one value per configuration, so a
sweep of N configurations is one (R, N) array per quantity, not N Python objects.

Per-row quantities are **per instance**; ``count`` says how many instances one step runs (for
example the number of layers), so a step's total FLOPs are ``(flops * count[:, None]).sum(0)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Operator classes a row may have (the breakdown keys of a prediction).
OP_CLASSES = ("gemm", "attention", "norm", "elementwise", "embedding", "lm_head", "router",
              "moe_dispatch", "collective")
#: The per-configuration (R, N) fields of an operator table, in the order of a ``stacked`` block
#: (W, R, N) a table may carry as an attribute (not a field) when its fields are views of one array.
WIDE_FIELDS = ("kernels", "flops", "bytes_read", "bytes_written", "weight_bytes", "m", "n", "k", "coll_bytes")
#: Collective kinds (``coll_kind`` of a ``collective`` row).
COLLECTIVES = ("all_reduce", "all_gather", "all_to_all", "send_recv")


@dataclass
class OperatorTable:
    """Operators of one step for N configurations.

    Arrays of shape (R,) describe rows; arrays of shape (R, N) hold per-configuration values.
    ``m, n, k`` are GEMM dimensions (tokens, outputs, inputs) per instance, zero on other rows;
    for attention rows ``m`` holds query tokens and ``k`` the key/value tokens read.
    ``bytes_read``/``bytes_written`` are main-memory (HBM/DRAM) traffic; ``weight_bytes`` is the
    part of ``bytes_read`` that is weights (what weight-streaming devices such as FlightLLM care
about). ``kernels`` is kernel launches per instance (eager-mode overhead, CUDA-graph gaps); it
is per configuration because MoE layers launch one set of kernels per expert that got tokens.
    ``weight_bits`` is the stored width of the row's weights (0 when it has none), so devices with
    bit-serial or lookup-table units can cost low-bit weights. ``variant`` names the kernel the
    runtime chose for a row where devices model several (``paged`` decode attention, ``fused_moe``
    expert GEMMs, ``host_sync`` for a host wait); empty means the default kernel.
    """

    name: np.ndarray  # (R,) str
    op_class: np.ndarray  # (R,) str, one of OP_CLASSES
    dtype: np.ndarray  # (R,) str compute dtype ("bf16", "fp8", "int8", ...)
    count: np.ndarray  # (R,) float, instances per step
    kernels: np.ndarray  # (R, N) float, kernel launches per instance
    weight_bits: np.ndarray  # (R,) float
    flops: np.ndarray  # (R, N)
    bytes_read: np.ndarray  # (R, N)
    bytes_written: np.ndarray  # (R, N)
    weight_bytes: np.ndarray  # (R, N)
    m: np.ndarray  # (R, N)
    n: np.ndarray  # (R, N)
    k: np.ndarray  # (R, N)
    coll_kind: np.ndarray  # (R,) str, "" unless op_class == "collective"
    coll_bytes: np.ndarray  # (R, N) message bytes per device
    coll_group: np.ndarray  # (R,) int, devices taking part
    coll_scope: np.ndarray  # (R,) str, "scale_up" (NVLink domain) or "scale_out" (across nodes)
    variant: np.ndarray | None = None  # (R,) str, the kernel a runtime picked ("paged", "fused_moe"...; "" default)

    def __post_init__(self) -> None:
        if self.variant is None:
            self.variant = np.full(len(self.name), "", dtype=object)

    @property
    def rows(self) -> int:
        return len(self.name)

    @property
    def configs(self) -> int:
        return self.flops.shape[1]

    def total_flops(self) -> np.ndarray:
        """FLOPs of the whole step, per configuration (N,)."""
        return (self.flops * self.count[:, None]).sum(axis=0)

    def total_bytes(self) -> np.ndarray:
        """Main-memory bytes read plus written in the whole step, per configuration (N,)."""
        return ((self.bytes_read + self.bytes_written) * self.count[:, None]).sum(axis=0)

    def select(self, mask: np.ndarray) -> OperatorTable:
        """The rows where ``mask`` (R,) is true."""
        return OperatorTable(**{f: getattr(self, f)[mask] for f in self.__dataclass_fields__})

    def column(self, i: int) -> OperatorTable:
        """Configuration ``i`` alone, as a table with N = 1."""
        out = {}
        for f in self.__dataclass_fields__:
            v = getattr(self, f)
            out[f] = v[:, i:i + 1] if v.ndim == 2 else v
        return OperatorTable(**out)

@dataclass
class OpCosts:
    """What a device says a table costs: per row and configuration, per instance.

    ``time_s`` includes everything the device charges for the row (compute or memory, launch
    overhead, collectives); ``bound`` names which term set it: 0 compute, 1 memory, 2 network,
    3 overhead. Step totals multiply by ``count``.
    """

    time_s: np.ndarray  # (R, N)
    energy_j: np.ndarray  # (R, N) dynamic energy (idle power is added by the caller over the step)
    bound: np.ndarray  # (R, N) int8
    overhead_s: np.ndarray  # (R, N) part of time_s that is launch/per-kernel overhead

    BOUNDS = ("compute", "memory", "network", "overhead")
