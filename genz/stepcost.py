"""The analytical engine as the serving simulation's cost of one iteration on one replica.

``EngineStepCost.step(prefill_chunks, decode_contexts)`` builds the operator table of a mixed
continuous-batching iteration and returns its seconds and joules on the replica's devices, the
runtime's CPU time per iteration included (as much of it as the GPU's work does not hide). It
implements the ``StepCostModel`` protocol of :mod:`genz.serving`.

**Step parts** (exact, not an approximation): on a GPU with CUDA graphs the device's step time and
dynamic energy are sums over the table's rows, and each row depends on one part of the iteration
only: prefill attention on the prefill chunks, decode attention on the number of decoding sequences
and their context sum, the LM head and sampling on how many rows reach it, and every other row
(GEMMs, norms, MoE, collectives, embedding) on the step's token count alone. Each part's sum is kept
under its own key, so an iteration whose parts were all seen in other iterations costs a few dict
lookups instead of a table; the first time a part is seen, the whole table is costed once and
every part's sum kept. The step is always the sum of its parts (the same float additions for the
same inputs, whichever iteration came first); it agrees with :func:`genz.predict.step_costs` of the
whole table to rounding (about 1e-15; tests/test_step_parts.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from genz.ep_traffic import EPTraffic
from genz.memory import activation_bytes, kv_bytes_per_token, weight_bytes_per_device
from genz.operators import build_table
from genz.parallel import check_parallelism, devices_per_replica, devices_per_stage
from genz.predict import check_device_precision, device_basis, step_costs, step_energy
from genz.runtime import load_runtime
from genz.shapes import decode, mixed
from hwmodels.device import Device, price_of, runs_own_program
from hwmodels.gpu import GPU
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
        additive = isinstance(self._dev, GPU) and self.cuda_graphs  # eager steps overlap host and device
        self._parts = _StepParts(self._dev, self._build) if additive else None

    @property
    def idle_power_w(self) -> float:
        """Idle power of the whole replica (W), charged between iterations."""
        return self._dev.idle_power_w * self.devices

    @property
    def device_memory_bytes(self) -> float:
        return self._dev.memory_bytes * self.devices

    def _build(self, shape):
        """The operator table of ``shape`` on this replica."""
        return build_table(self._m, shape, self._prec, tp=self.tp, pp=self.pp, ep=self.ep,
                           gpus_per_node=self.gpus_per_node, runtime=self._rt,
                           ep_remote_fraction=self.ep_remote_fraction, ep_traffic=self.ep_traffic)

    def _table(self, prefill_chunks, decode_contexts):
        return self._build(mixed(list(prefill_chunks), list(decode_contexts)))

    def _device_step(self, prefill_chunks, decode_contexts) -> tuple[float, float]:
        """Device seconds and dynamic joules of one iteration: from its parts when they add up
        (module docstring), else from the whole table."""
        if self._parts is not None:
            return self._parts.step(prefill_chunks, decode_contexts)
        sc = step_costs(self._dev, self._table(prefill_chunks, decode_contexts), self.cuda_graphs)
        return float(sc["time"][0]), float(sc["energy"][0])

    def step(self, prefill_chunks: tuple[tuple[int, int], ...], decode_contexts: tuple[int, ...]) -> tuple[float, float]:
        """Seconds and joules of one iteration (prefill chunks (new, cached) plus decode sequences)."""
        if not prefill_chunks and not decode_contexts:
            return 0.0, 0.0
        t, dyn = self._device_step(prefill_chunks, decode_contexts)
        seqs = len(prefill_chunks) + len(decode_contexts)
        tokens = sum(c for c, _ in prefill_chunks) + len(decode_contexts)
        t += float(self._rt.exposed_cpu(self._rt.cpu_seconds(seqs, tokens), t))  # the engine's CPU per iteration
        dyn *= devices_per_stage(self.tp, self.ep)
        e = float(step_energy(dyn, t, self._dev.idle_power_w * self.devices, self._dev.power_limit_w * self.devices))
        return t, e


#: table rows that depend on something other than the step's token count, by part
_PART_OF_ROW = {"attention_prefill": "prefill", "attention_decode": "decode", "lm_head": "lm", "sampling": "lm",
                "lm_head_gather": "lm"}
_PARTS = ("tokens", "prefill", "decode", "lm")


#: token counts whose ``tokens`` part is costed together, in one vectorized table, when one is missing
TOKEN_BLOCK = 256


class _StepParts:
    """Device seconds and dynamic joules of a step as the sum of its parts, each cached under the
    inputs it depends on (see the module docstring). ``build(shape)`` makes a step's operator table;
    ``device.cost`` costs it. A missing ``tokens`` part is costed for its whole block of
    ``TOKEN_BLOCK`` token counts at once (decode-only steps of those sizes: the rows of that part
    are the same for any step with the same token count)."""

    def __init__(self, device: GPU, build) -> None:
        self.device, self.build = device, build
        self.cache: dict[str, dict] = {p: {} for p in _PARTS}
        self._names: tuple | None = None
        self._masks: dict = {}

    @staticmethod
    def keys(prefill_chunks, decode_contexts) -> tuple:
        """The key of each part, in ``_PARTS`` order."""
        n_dec = len(decode_contexts)
        return (sum(c for c, _ in prefill_chunks) + n_dec,
                tuple(sorted(prefill_chunks)),
                (n_dec, sum(decode_contexts)),
                len(prefill_chunks) + n_dec)

    def step(self, prefill_chunks, decode_contexts) -> tuple[float, float]:
        keys = self.keys(prefill_chunks, decode_contexts)
        if keys[0] not in self.cache["tokens"]:
            self._token_block(keys[0])
        got = [self.cache[p].get(k) for p, k in zip(_PARTS, keys, strict=True)]
        if None in got:
            got = self._cost(prefill_chunks, decode_contexts, keys)
        t = e = 0.0
        for pt, pe in got:
            t += pt
            e += pe
        return t, e

    def _costed(self, table):
        """Per-row seconds and joules of every column (rows x columns, as lists), and the row
        indices of each part."""
        names = tuple(table.name.tolist())
        if names != self._names:
            self._names = names
            part = [_PART_OF_ROW.get(n, "tokens") for n in names]
            self._masks = {p: [i for i, q in enumerate(part) if q == p] for p in _PARTS}
        c = self.device.cost(table, cuda_graphs=True)
        return (c.time_s * table.count[:, None]).tolist(), (c.energy_j * table.count[:, None]).tolist()

    def _sum(self, part: str, t, e, col: int) -> tuple[float, float]:
        rows = self._masks[part]
        return sum(t[i][col] for i in rows), sum(e[i][col] for i in rows)

    def _token_block(self, tokens: int) -> None:
        lo = tokens // TOKEN_BLOCK * TOKEN_BLOCK
        sizes = np.arange(max(lo, 1), lo + TOKEN_BLOCK, dtype=float)
        t, e = self._costed(self.build(decode(sizes, 1.0)))
        cache = self.cache["tokens"]
        for col, n in enumerate(sizes.astype(int).tolist()):
            cache[n] = self._sum("tokens", t, e, col)

    def _cost(self, prefill_chunks, decode_contexts, keys) -> list:
        t, e = self._costed(self.build(mixed(list(prefill_chunks), list(decode_contexts))))
        out = []
        for p, k in zip(_PARTS, keys, strict=True):
            v = self._sum(p, t, e, 0)
            self.cache[p].setdefault(k, v)  # a token count costed with its block keeps that value
            out.append(self.cache[p][k])
        return out
