"""The analytical engine as the serving simulation's cost of one iteration on one replica.

``EngineStepCost.step(prefill_chunks, decode_contexts)`` builds the operator table of a mixed
continuous-batching iteration and returns its seconds and joules on the replica's devices, the
runtime's CPU time per iteration included (as much of it as the GPU's work does not hide). It
implements the ``StepCostModel`` protocol of :mod:`genz.serving`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from genz.ep_traffic import EPTraffic
from genz.memory import activation_bytes, kv_bytes_per_token, weight_bytes_per_device
from genz.operators import build_table
from genz.parallel import check_parallelism, devices_per_replica, devices_per_stage
from genz.predict import check_device_precision, device_basis, step_costs, step_energy
from genz.runtime import load_runtime
from genz.shapes import mixed
from hwmodels.device import Device, price_of, runs_own_program
from hwmodels.registry import load_device
from workloads import Model, Precision, load_model


@dataclass
class EngineStepCost:
    """Step costs of ``model`` on one replica (``tp * pp`` devices, or ``max(tp, ep) * pp``).

    ``max_batched_tokens`` sizes the activation reserve subtracted from the KV-cache capacity.
    Assumption: pipeline stages run one micro-batch per iteration (no interleaving), so an
    iteration takes the whole path through all stages. ``ep_traffic`` (:mod:`genz.ep_traffic`, e.g.
    an expert placement from ``genz place``) costs the EP all-to-all per link class; its node size
    replaces ``gpus_per_node``.
    """

    model: str | Model
    hardware: str | Device
    precision: str | Precision = "bf16"
    tp: int = 1
    pp: int = 1
    ep: int = 1
    cuda_graphs: bool = True
    runtime: str = "vllm"
    profile: str | None = "auto"
    gpus_per_node: int = 8
    max_batched_tokens: int = 8192
    ep_remote_fraction: float | None = None
    ep_traffic: EPTraffic | None = None
    _m: Model = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._m = load_model(self.model)
        self._prec = Precision.parse(self.precision)
        check_parallelism(self._m, self.tp, self.pp, self.ep)
        if self.ep_traffic is not None:
            if self.ep_traffic.gpus != self.ep:
                raise ValueError(f"placement: is for {self.ep_traffic.gpus} GPUs, the replica runs ep={self.ep}")
            self.gpus_per_node = self.ep_traffic.gpus_per_node
        self._dev = load_device(self.hardware, self.profile)
        check_device_precision(self._dev, self._prec)
        self.basis = device_basis(self._dev)
        self._rt = load_runtime(self.runtime)
        if runs_own_program(self._dev):
            self._rt = replace(self._rt, cpu={})
        self.devices = devices_per_replica(self.tp, self.pp, self.ep)
        per_dev_kv = kv_bytes_per_token(self._m, self._prec, self.tp, self.pp)
        # each of a stage's tp devices holds its heads' share of a token (data-parallel attention
        # groups, ep > tp, hold their own sequences), over pp stages
        self.kv_bytes_per_token = per_dev_kv * self.pp * self.tp
        free = (self._dev.memory_bytes - weight_bytes_per_device(self._m, self._prec, self.tp, self.pp, self.ep)
                - float(activation_bytes(self._m, self.max_batched_tokens, self.max_batched_tokens, self.tp)))
        self.kv_capacity_bytes = max(free, 0.0) * self.devices
        price = price_of(self._dev)
        # unknown price: NaN, so every cost figure built on it says "unknown" rather than $0
        self.price_per_hour_usd = math.nan if price is None else price * self.devices

    @property
    def idle_power_w(self) -> float:
        """Idle power of the whole replica (W), charged between iterations."""
        return self._dev.idle_power_w * self.devices

    @property
    def device_memory_bytes(self) -> float:
        return self._dev.memory_bytes * self.devices

    def step(self, prefill_chunks: tuple[tuple[int, int], ...], decode_contexts: tuple[int, ...]) -> tuple[float, float]:
        """Seconds and joules of one iteration (prefill chunks (new, cached) plus decode sequences)."""
        if not prefill_chunks and not decode_contexts:
            return 0.0, 0.0
        shape = mixed(list(prefill_chunks), list(decode_contexts))
        table = build_table(self._m, shape, self._prec, tp=self.tp, pp=self.pp, ep=self.ep,
                            gpus_per_node=self.gpus_per_node, runtime=self._rt,
                            ep_remote_fraction=self.ep_remote_fraction, ep_traffic=self.ep_traffic)
        sc = step_costs(self._dev, table, self.cuda_graphs)
        t = float(sc["time"][0])
        seqs = len(prefill_chunks) + len(decode_contexts)
        tokens = sum(c for c, _ in prefill_chunks) + len(decode_contexts)
        t += float(self._rt.exposed_cpu(self._rt.cpu_seconds(seqs, tokens), t))  # the engine's CPU per iteration
        dyn = float(sc["energy"][0]) * devices_per_stage(self.tp, self.ep)
        e = float(step_energy(dyn, t, self._dev.idle_power_w * self.devices, self._dev.power_limit_w * self.devices))
        return t, e
