"""A GPU as a roofline with measured efficiencies, per-kernel overheads and an energy model.

Time of one operator instance on one GPU::

    t_gpu  = kernels * floor[op_class] + max(t_compute, t_memory)      (roofline with fixed cost)
    t_compute = flops / (peak[dtype] * compute_eff[dtype])
    t_memory  = bytes / (bandwidth * memory_eff)
    CUDA graphs: t = t_gpu + kernels * graph_gap_s
    eager:       t = max(t_gpu, kernels * eager_launch_s)   (the host issues kernels slower than
                                                             short ones run; assumption: per row)

Collective rows cost the alpha-beta model of :mod:`hwmodels.collectives` on the scale-up or
scale-out link. Dynamic energy = flops * pJ/FLOP[dtype] + bytes * pJ/byte(hbm); the caller adds
idle power over the step and caps average power at the limit.

The ``datasheet`` profile (all efficiencies 1, no overheads) is the honest roofline of the spec
sheet; a calibration profile (``hwmodels/data/profiles/<gpu>.json``, written by
``genz calibrate``) replaces these numbers with ones fitted to kernel measurements.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from hwmodels.collectives import COLLECTIVE_TIME
from hwmodels.optable import OP_CLASSES, OpCosts, OperatorTable
from hwmodels.spec import GPUSpec, LinkSpec, load_gpu, load_link

PROFILE_DIR = Path(__file__).parent / "data" / "profiles"


@dataclass
class EfficiencyProfile:
    """Achieved fractions of datasheet peaks and fixed per-kernel costs (s) for one GPU.

    ``compute_eff`` maps dtype -> fraction of dense peak reached by large GEMMs;
    ``attention_eff`` the same for attention kernels; ``memory_eff`` the fraction of datasheet
    bandwidth reached by large streaming kernels; ``floor_s`` op class -> fixed seconds per
    kernel (launch latency, tail effects); ``pj_per_flop`` / ``pj_per_byte`` override the spec's
    energy coefficients when present. ``source`` says where the numbers came from.
    """

    name: str = "datasheet"
    compute_eff: dict = field(default_factory=dict)
    attention_eff: float = 1.0
    memory_eff: float = 1.0
    floor_s: dict = field(default_factory=dict)
    graph_gap_s: float = 0.0
    eager_launch_s: float = 0.0
    pj_per_flop: dict = field(default_factory=dict)
    pj_per_byte: dict = field(default_factory=dict)
    source: str = "datasheet roofline: every efficiency 1, no per-kernel overhead"
    extra: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict, where: str = "profile") -> EfficiencyProfile:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{where}: unknown fields {sorted(unknown)}; allowed: {sorted(known)}")
        prof = cls(**data)
        for k, v in prof.compute_eff.items():
            if not 0 < float(v) <= 1.5:
                raise ValueError(f"{where}: compute_eff[{k}] must be in (0, 1.5], got {v}")
        if not 0 < prof.memory_eff <= 1.5:
            raise ValueError(f"{where}: memory_eff must be in (0, 1.5], got {prof.memory_eff}")
        return prof

    @classmethod
    def load(cls, path: str | Path) -> EfficiencyProfile:
        p = Path(path)
        if not p.exists():
            raise ValueError(f"profile: file {p} does not exist")
        try:
            data = json.loads(p.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"profile: {p} is not valid JSON ({exc})") from None
        return cls.from_dict(data, where=str(p))


def shipped_profile(gpu_name: str) -> EfficiencyProfile | None:
    """The calibration profile shipped for ``gpu_name``, if any."""
    path = PROFILE_DIR / f"{gpu_name}.json"
    return EfficiencyProfile.load(path) if path.exists() else None


class GPU:
    """Device model of one GPU (see the module docstring for the equations)."""

    def __init__(self, spec: GPUSpec, profile: EfficiencyProfile | None = None,
                 scale_up: LinkSpec | None = None, scale_out: LinkSpec | None = None):
        self.spec = spec
        self.profile = profile or EfficiencyProfile()
        self.name = spec.name
        self.scale_up = scale_up or (load_link(spec.scale_up_link) if spec.scale_up_link else None)
        self.scale_out = scale_out or (load_link(spec.scale_out_link) if spec.scale_out_link else None)
        self._floor = np.array([self.profile.floor_s.get(c, 0.0) for c in OP_CLASSES])
        self._class_index = {c: i for i, c in enumerate(OP_CLASSES)}

    # Device protocol ---------------------------------------------------------------
    @property
    def memory_bytes(self) -> float:
        return self.spec.memory_bytes

    @property
    def idle_power_w(self) -> float:
        return self.spec.idle_power_w

    @property
    def power_limit_w(self) -> float:
        return self.spec.power_limit_w

    @property
    def price_per_hour_usd(self) -> float | None:
        return self.spec.price_per_hour_usd

    def peak(self, dtype: str) -> float:
        """Dense peak of ``dtype`` (FLOP/s); dtypes the GPU lacks fall back to the next wider one."""
        for d in _FALLBACK.get(dtype, (dtype,)):
            if d in self.spec.peak_flops:
                return self.spec.peak_flops[d]
        return self.spec.peak(dtype)

    def _eff_compute(self, dtype: str) -> float:
        return float(self.profile.compute_eff.get(dtype, self.profile.compute_eff.get("default", 1.0)))

    def _pj_flop(self, dtype: str) -> float:
        table = {**self.spec.pj_per_flop, **self.profile.pj_per_flop}
        for d in _FALLBACK.get(dtype, (dtype,)):
            if d in table:
                return float(table[d])
        return float(table.get("bf16", 1.0))

    def _pj_byte(self) -> float:
        return float(self.profile.pj_per_byte.get("hbm", self.spec.pj_per_byte.get("hbm", 0.0)))

    def cost(self, table: OperatorTable, *, cuda_graphs: bool = True) -> OpCosts:
        """Per-row, per-configuration seconds and joules of one instance (see module docstring)."""
        dtypes = table.dtype
        uniq = {d: (self.peak(d), self._eff_compute(d), self._pj_flop(d)) for d in set(dtypes.tolist())}
        peak = np.array([uniq[d][0] for d in dtypes])
        eff = np.array([uniq[d][1] for d in dtypes])
        pj_flop = np.array([uniq[d][2] for d in dtypes])
        rate = peak * np.where(table.op_class == "attention", self.profile.attention_eff, eff)
        nbytes = table.bytes_read + table.bytes_written
        t_c = table.flops / rate[:, None]
        t_m = nbytes / (self.spec.memory_bandwidth * self.profile.memory_eff)
        work = (table.flops > 0) | (nbytes > 0)
        cls_idx = np.array([self._class_index[c] for c in table.op_class])
        launches = table.kernels * work
        floor = launches * self._floor[cls_idx][:, None]
        t_gpu = floor + np.maximum(t_c, t_m)
        bound = np.where(t_c >= t_m, 0, 1).astype(np.int8)

        # collectives
        is_coll = table.op_class == "collective"
        if is_coll.any():
            for i in np.flatnonzero(is_coll):
                link = self.scale_out if table.coll_scope[i] == "scale_out" else self.scale_up
                if link is None:
                    raise ValueError(f"hardware {self.name}: no {table.coll_scope[i]} link for {table.name[i]}")
                fn = COLLECTIVE_TIME[table.coll_kind[i]]
                t_gpu[i] = fn(table.coll_bytes[i], table.coll_group[i], link.bandwidth, link.latency_s)
                bound[i] = 2
        if cuda_graphs:
            overhead = floor + launches * self.profile.graph_gap_s
            time = t_gpu + launches * self.profile.graph_gap_s
        else:
            host = launches * self.profile.eager_launch_s
            time = np.maximum(t_gpu, host)
            overhead = np.where(host > t_gpu, host, floor)
        bound = np.where((overhead > 0.5 * time) & ~is_coll[:, None], 3, bound).astype(np.int8)
        energy = table.flops * pj_flop[:, None] * 1e-12 + nbytes * self._pj_byte() * 1e-12
        return OpCosts(time_s=time, energy_j=energy, bound=bound, overhead_s=overhead)


_FALLBACK = {
    "fp16": ("fp16", "bf16"),
    "bf16": ("bf16", "fp16"),
    "fp8": ("fp8", "int8", "fp16", "bf16"),
    "int8": ("int8", "fp8", "fp16", "bf16"),
    "int4": ("int4", "int8", "fp8", "fp16", "bf16"),
    "fp4": ("fp4", "fp8", "int8", "bf16"),
    "tf32": ("tf32", "fp32"),
    "fp32": ("fp32",),
}


def load_device(name: str, profile: str | Path | EfficiencyProfile | None = "auto") -> GPU:
    """A GPU device by hardware name.

    ``profile``: ``"auto"`` (the shipped calibration profile if there is one, else the datasheet
    roofline), ``"datasheet"``, a path to a profile JSON, or an :class:`EfficiencyProfile`.
    """
    spec = load_gpu(name)
    if isinstance(profile, EfficiencyProfile):
        prof = profile
    elif profile is None or profile == "auto":
        prof = shipped_profile(spec.name) or EfficiencyProfile()
    elif profile == "datasheet":
        prof = EfficiencyProfile()
    else:
        prof = EfficiencyProfile.load(profile)
    return GPU(spec, prof)
