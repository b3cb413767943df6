"""Inputs of a capacity plan: the demand, the hardware catalog, the limits, the candidate deployments.

Units: requests/s, USD per hour, watts. Every number that is not from a hardware data file is a
parameter with a stated default.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from genz.serving import SLO
from hwmodels.registry import load_device
from optimizers.search.objective import check_prices
from optimizers.search.space import VLLM_DEFAULTS
from workloads.usecases import UseCase, get_use_case

__all__ = ["MODES", "Candidate", "Demand", "HardwareOption", "Limits", "hardware_catalog", "layout_candidate",
           "make_candidates", "parse_demand"]

MODES = ("colocated", "disaggregated", "layout")


def _positive(name: str, v, integer: bool = False, allow_none: bool = True) -> None:
    if v is None and allow_none:
        return
    ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0
    if integer:
        ok = ok and isinstance(v, int)
    if not ok:
        kind = "an integer" if integer else "a number"
        raise ValueError(f"{name} must be {kind} > 0{' or None' if allow_none else ''}, got {v!r}")


@dataclass(frozen=True)
class Demand:
    """One use case of the workload mix: its lengths and SLO (``slo`` overrides the preset's) and
    the request rate to serve (requests/s)."""

    use_case: UseCase
    rate_per_s: float
    slo: SLO | None = None

    def __post_init__(self) -> None:
        if isinstance(self.use_case, str):
            object.__setattr__(self, "use_case", get_use_case(self.use_case))
        if not isinstance(self.use_case, UseCase):
            raise ValueError(f"demand.use_case must be a preset name or a UseCase, got {self.use_case!r}")
        _positive(f"demand {self.use_case.name}: rate_per_s", self.rate_per_s, allow_none=False)
        if self.slo is not None:
            self.slo.validate(f"demand {self.use_case.name}: slo.")

    @property
    def name(self) -> str:
        return self.use_case.name

    @property
    def effective_slo(self) -> SLO:
        return self.slo or SLO.from_use_case(self.use_case)


def parse_demand(text: str | Mapping[str, float]) -> list[Demand]:
    """``"chatbot=20,code_generation=5"`` (use case = requests/s) or a mapping -> demands."""
    if isinstance(text, Mapping):
        items = list(text.items())
    else:
        items = []
        for part in (p.strip() for p in str(text).split(",") if p.strip()):
            name, sep, rate = part.partition("=")
            if not sep:
                raise ValueError(f"--workload: expected USE_CASE=RATE (requests/s), got {part!r}")
            try:
                r = float(rate)
            except ValueError:
                raise ValueError(f"--workload: rate of {name.strip()!r} must be a number of requests/s, "
                                 f"got {rate!r}") from None
            items.append((name.strip(), r))
    if not items:
        raise ValueError("--workload: no use case given; e.g. chatbot=20,code_generation=5")
    out = [Demand(get_use_case(n) if isinstance(n, str) else n, r) for n, r in items]
    names = [d.name for d in out]
    if len(set(names)) != len(names):
        raise ValueError(f"--workload: use case listed twice in {names}")
    return out


@dataclass(frozen=True)
class HardwareOption:
    """A GPU type on offer: price (USD per GPU-hour) and provisioned power (W per GPU; default its
    power limit: a plan must survive every GPU at full load)."""

    name: str
    price_per_gpu_hour: float
    power_per_gpu_w: float

    def __post_init__(self) -> None:
        if not (self.price_per_gpu_hour >= 0 and math.isfinite(self.price_per_gpu_hour)):
            raise ValueError(f"{self.name}: price_per_gpu_hour must be >= 0, got {self.price_per_gpu_hour!r}")
        _positive(f"{self.name}: power_per_gpu_w", self.power_per_gpu_w, allow_none=False)


def hardware_catalog(names: Iterable[str], prices: Mapping[str, float] | None = None,
                     power_w: Mapping[str, float] | None = None) -> dict[str, HardwareOption]:
    """Options for the named GPUs: prices and power from the data files, overridden by ``prices``
    / ``power_w``. A GPU with no price anywhere is refused, naming it (a plan cannot cost it)."""
    names = list(dict.fromkeys(names))
    if not names:
        raise ValueError("hardware: give at least one GPU type for the catalog")
    price = check_prices(names, prices)
    power_w = dict(power_w or {})
    out = {}
    for n in names:
        dev = load_device(n)
        out[n] = HardwareOption(n, price[n], float(power_w.get(n, dev.power_limit_w)))
    return out


@dataclass(frozen=True)
class Limits:
    """What a plan may use. ``None`` means unlimited.

    ``budget_usd_per_hour`` caps the price of the GPUs; ``power_w`` the provisioned power (GPUs at
    their power option plus ``server_overhead_w`` per server: CPUs, NICs, fans); ``racks`` the racks,
    each holding ``servers_per_rack`` servers of ``gpus_per_server`` GPUs of one type. With
    ``charge_whole_servers`` a partly used server is paid (and powered) in full.

    Defaults (assumption): 8 GPUs per server (HGX/DGX boards); 4 servers per rack (a DGX-class server
    draws 6.5-10.2 kW, Splitwise; about 40 kW per rack is a common air- or liquid-cooled budget);
    no server overhead unless given.
    """

    budget_usd_per_hour: float | None = None
    power_w: float | None = None
    racks: int | None = None
    gpus_per_server: int = 8
    servers_per_rack: int = 4
    server_overhead_w: float = 0.0
    charge_whole_servers: bool = False

    def __post_init__(self) -> None:
        _positive("limits.budget_usd_per_hour", self.budget_usd_per_hour)
        _positive("limits.power_w", self.power_w)
        _positive("limits.racks", self.racks, integer=True)
        _positive("limits.gpus_per_server", self.gpus_per_server, integer=True, allow_none=False)
        _positive("limits.servers_per_rack", self.servers_per_rack, integer=True, allow_none=False)
        if not (self.server_overhead_w >= 0):
            raise ValueError(f"limits.server_overhead_w must be >= 0, got {self.server_overhead_w!r}")

    def active(self) -> dict[str, float]:
        """The limits that are set: ``{"budget": ..., "power": ..., "racks": ...}``."""
        out = {"budget": self.budget_usd_per_hour, "power": self.power_w, "racks": self.racks}
        return {k: v for k, v in out.items() if v is not None}


@dataclass(frozen=True)
class Candidate:
    """One way to deploy a replica (the unit the plan counts).

    Colocated: one vLLM engine on ``tp x pp`` GPUs of ``hardware``. Disaggregated (Splitwise): a unit
    of ``prefill_replicas`` prefill engines (on ``prefill_hardware`` with ``prefill_tp``; default the
    decode side's) and ``decode_replicas`` decode engines on ``hardware`` with ``tp``. Layout: the pools
    of an MoE cluster ``layout`` file (:func:`layout_candidate`), one of each it has.
    """

    hardware: str
    tp: int = 1
    pp: int = 1
    mode: str = "colocated"
    prefill_replicas: int = 0
    decode_replicas: int = 1
    prefill_hardware: str | None = None
    prefill_tp: int | None = None
    scheduler: Mapping = field(default_factory=dict, compare=False, hash=False)
    layout: str | None = None
    layout_gpus: tuple[int, int] = (0, 0)  # (prefill pool, decode pool) GPUs of a layout candidate

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"candidate.mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if (self.mode == "layout") != (self.layout is not None):
            raise ValueError("candidate.layout: give a layout file exactly when mode is layout")
        if self.mode == "layout":
            return
        for n in ("tp", "pp", "decode_replicas"):
            _positive(f"candidate.{n}", getattr(self, n), integer=True, allow_none=False)
        if self.mode == "disaggregated":
            _positive("candidate.prefill_replicas", self.prefill_replicas, integer=True, allow_none=False)
        elif self.prefill_replicas:
            raise ValueError("candidate.prefill_replicas must be 0 when mode is colocated")

    @property
    def label(self) -> str:
        if self.mode == "layout":
            return f"layout {Path(self.layout).stem} ({sum(self.layout_gpus)} x {self.hardware})"
        base = f"{self.hardware} tp{self.tp}" + (f" pp{self.pp}" if self.pp > 1 else "")
        if self.mode == "colocated":
            return base
        pre = f"{self.prefill_hardware or self.hardware} tp{self.prefill_tp or self.tp}"
        return f"{self.prefill_replicas}x[{pre}] prefill + {self.decode_replicas}x[{base}] decode"

    def gpus_by_hardware(self) -> dict[str, int]:
        """GPUs of one unit per GPU type."""
        if self.mode == "layout":
            return {self.hardware: sum(self.layout_gpus)}
        out = {self.hardware: self.tp * self.pp * self.decode_replicas}
        if self.mode == "disaggregated":
            h = self.prefill_hardware or self.hardware
            out[h] = out.get(h, 0) + (self.prefill_tp or self.tp) * self.pp * self.prefill_replicas
        return out

    @property
    def gpus(self) -> int:
        return sum(self.gpus_by_hardware().values())

    @property
    def request_scale(self) -> int:
        """How many times the settings' request counts a capacity run of this unit uses: 1, or a layout's
        :attr:`~genz.moe_cluster.serving.LayoutUnit.request_scale` (its GPUs over 8)."""
        from genz.moe_cluster.serving import unit_request_scale

        return unit_request_scale(self.gpus) if self.mode == "layout" else 1

    def config(self) -> dict:
        """The serving configuration of one unit (vLLM defaults unless ``scheduler`` overrides; a
        layout's own scheduler defaults for a layout candidate)."""
        if self.mode == "layout":
            c = {"layout": self.layout, "layout_sha256": _sha256(self.layout), "replicas": self.decode_replicas,
                 "scheduler": "continuous", **dict(self.scheduler)}
            if self.prefill_replicas:
                c["prefill_replicas"] = self.prefill_replicas
            return c
        c = {**{k: v for k, v in VLLM_DEFAULTS.items()}, "tp": self.tp, "pp": self.pp, "replicas": self.decode_replicas,
             "hardware": self.hardware, "batch_size": 1, **dict(self.scheduler)}
        if self.mode == "disaggregated":
            c.update(prefill_replicas=self.prefill_replicas, prefill_hardware=self.prefill_hardware or self.hardware,
                     prefill_tp=self.prefill_tp or self.tp)
        return c

    def to_dict(self) -> dict:
        return {"label": self.label, "hardware": self.hardware, "tp": self.tp, "pp": self.pp, "mode": self.mode,
                "layout": self.layout,
                "prefill_replicas": self.prefill_replicas, "decode_replicas": self.decode_replicas,
                "prefill_hardware": self.prefill_hardware, "prefill_tp": self.prefill_tp, "gpus": self.gpus,
                "gpus_by_hardware": self.gpus_by_hardware()}


def _sha256(path: str) -> str:
    """The file's content hash (a cached capacity is for this content, not for the name)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def layout_candidate(path: str | Path, scheduler: Mapping | None = None) -> Candidate:
    """A candidate serving an MoE cluster layout file: one decode pool, and one prefill pool when the
    layout has one (disaggregated); ``ValueError`` naming ``--layout`` for a bad file."""
    from genz.moe_cluster.serving import layout_unit

    try:
        u = layout_unit(path)
    except ValueError as exc:
        raise ValueError(f"--layout: {exc}") from None
    return Candidate(u.gpu, mode="layout", prefill_replicas=1 if u.prefill_gpus else 0, layout=u.path,
                     layout_gpus=(u.prefill_gpus, u.decode_gpus), scheduler=dict(scheduler or {}))


def make_candidates(hardware: Iterable[str], tp: Iterable[int] = (1, 2, 4, 8), *, pp: Iterable[int] = (1,),
                    disaggregated: bool = True, pd_ratios: Iterable[tuple[int, int]] = ((1, 1), (1, 2), (2, 1)),
                    gpus_per_server: int = 8, scheduler: Mapping | None = None) -> list[Candidate]:
    """Every (hardware, tp, pp) colocated, plus Splitwise units of each ``(prefill, decode)`` ratio
    on the same hardware and tp when ``disaggregated``. Splits over ``gpus_per_server`` (a replica
    must sit inside one server) are left out."""
    sched = dict(scheduler or {})
    out = []
    for h in dict.fromkeys(hardware):
        for t in dict.fromkeys(tp):
            for p in dict.fromkeys(pp):
                if t * p > gpus_per_server:
                    continue
                out.append(Candidate(h, t, p, scheduler=sched))
                if disaggregated:
                    for pr, dr in pd_ratios:
                        out.append(Candidate(h, t, p, "disaggregated", pr, dr, scheduler=sched))
    if not out:
        raise ValueError(f"candidates: no (hardware, tp, pp) fits in a server of {gpus_per_server} GPUs")
    return out
