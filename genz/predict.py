"""``predict``: one what-if (or N of them at once) -> latency, throughput, memory, energy.

Timeline of a request batch (``batch`` sequences of ``prompt`` tokens, ``output`` tokens each):
prefill produces the first token (TTFT), then ``output - 1`` decode steps over contexts
``prompt .. prompt + output - 2``. Decode cost is evaluated at the first and last context and
averaged (exact when step time is linear in context, which attention is). Each step adds the
runtime's CPU time per iteration that the GPU's work does not hide (``breakdown[phase]["cpu_s"]``,
counted in the ``overhead`` bound).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from genz.memory import activation_bytes, kv_bytes_per_token, weight_bytes_per_device
from genz.operators import build_table
from genz.parallel import check_parallelism, devices_per_replica, devices_per_stage
from genz.predict_one import evaluate_one, plan_for
from genz.runtime import Runtime, load_runtime
from genz.shapes import StepShape, decode, prefill
from hwmodels.device import Device, Profiled, describe_execution, runs_own_program
from hwmodels.optable import OP_CLASSES, OpCosts, OperatorTable
from hwmodels.registry import load_device
from workloads import Model, Precision, load_model

BOUNDS = OpCosts.BOUNDS
#: Distinct steps per operator table: small enough that the (rows x steps) arrays stay in cache.
STEP_CHUNK = 2048


def _check_positive(name: str, values, allow_zero: bool = False) -> np.ndarray | float:
    """``values`` as floats (a plain int or float stays one number), or ``ValueError`` naming ``name``
    when one is not an integer >= 1 (>= 0 with ``allow_zero``)."""
    if type(values) in (int, float):
        v = float(values)
        if math.isfinite(v) and v >= (0 if allow_zero else 1) and v == round(v):
            return v
    a = np.atleast_1d(np.asarray(values, dtype=float))
    bad = a[(a < 0) | (a != np.round(a))] if allow_zero else a[(a < 1) | (a != np.round(a))]
    if bad.size or not np.isfinite(a).all():
        lo = 0 if allow_zero else 1
        raise ValueError(f"{name}: must be an integer >= {lo}, got {bad[0] if bad.size else a[~np.isfinite(a)][0]:g}")
    return a


def step_costs(device: Device, table: OperatorTable, cuda_graphs: bool = True) -> dict:
    """Sum a table's costs over rows: time, dynamic energy, and breakdowns by class and bound."""
    c = device.cost(table, cuda_graphs=cuda_graphs)
    t = c.time_s * table.count[:, None]
    e = c.energy_j * table.count[:, None]
    onehot = (table.op_class[None, :] == np.array(OP_CLASSES)[:, None]).astype(float)
    by_class = onehot @ t
    by_bound = np.stack([(t * (c.bound == b)).sum(axis=0) for b in range(len(BOUNDS))])
    return {"time": t.sum(axis=0), "energy": e.sum(axis=0), "by_class": by_class, "by_bound": by_bound,
            "overhead": (c.overhead_s * table.count[:, None]).sum(axis=0)}


def step_energy(dynamic_j, seconds, idle_power_w: float, power_limit_w: float):
    """Energy of a step (J): the devices' dynamic energy plus their idle power over the step, never
    more than the power limit allows over it (all arguments for the same set of devices)."""
    return np.minimum(dynamic_j + idle_power_w * seconds, power_limit_w * seconds)


@dataclass
class PredictionSteps:
    """The steps a prediction costs: a prefill, and the first and last decode steps (their average is
    every decode step's cost: exact for costs linear in context), each for one micro-batch of
    ``microbatch_size`` sequences; ``factor`` turns a micro-batch's time into the whole batch's under
    the GPipe schedule, ``microbatches`` how many there are."""

    prefill: StepShape
    decode_first: StepShape
    decode_last: StepShape
    microbatches: np.ndarray
    microbatch_size: np.ndarray
    factor: np.ndarray


def prediction_steps(batch, prompt, output, pp: int = 1) -> PredictionSteps:
    """The steps of a prediction (see :class:`PredictionSteps`); arrays of shape (N,)."""
    B, S, Out = np.broadcast_arrays(*(np.atleast_1d(np.asarray(x, dtype=float)) for x in (batch, prompt, output)))
    mb = np.minimum(B, pp)
    b = B / mb
    return PredictionSteps(prefill(b, S), decode(b, S), decode(b, S + np.maximum(Out - 2, 0)), mb, b,
                           (mb + pp - 1) / pp)


def step_tables(model: Model, precision: Precision, batch, prompt, output, *, tp: int = 1, pp: int = 1, ep: int = 1,
                runtime: Runtime | str = "vllm", gpus_per_node: int = 8) -> dict[str, OperatorTable]:
    """The operator tables of a prediction's steps: ``prefill``, ``decode_first``, ``decode_last``
    (what :func:`evaluate` costs; reports draw them)."""
    steps = prediction_steps(batch, prompt, output, pp)
    return {k: build_table(model, getattr(steps, k), precision, tp=tp, pp=pp, ep=ep, gpus_per_node=gpus_per_node,
                           runtime=runtime) for k in ("prefill", "decode_first", "decode_last")}


@dataclass
class DistinctSteps:
    """The distinct steps of N configurations: prefills of (``pre_batch``, ``pre_prompt``) and decodes
    of (``dec_batch``, ``dec_context``) (whole batches; arrays of shape (P,) and (D,)), and where each
    configuration finds its prefill (``pre``) and its first and last decode step (``first``,
    ``last``), as indices of shape (N,) or, where the layout is the plain one (P = N prefills, then
    D = 2N decodes: N first, N last), slices. Prefill and first decode do not depend on the output
    length, so a grid over outputs shares them."""

    pre_batch: np.ndarray
    pre_prompt: np.ndarray
    dec_batch: np.ndarray
    dec_context: np.ndarray
    pre: np.ndarray | slice
    first: np.ndarray | slice
    last: np.ndarray | slice


def _codes(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of ``x`` and the index of each element among them."""
    u, inv = np.unique(x, return_inverse=True)
    return u, inv.reshape(-1)


def distinct_steps(B: np.ndarray, S: np.ndarray, Out: np.ndarray, dedupe: bool = True) -> DistinctSteps:
    """The steps of configurations (B, S, Out) (arrays of shape (N,)); with ``dedupe`` each distinct
    prefill (B, S) and decode (B, context) once, else every configuration its own three steps (the
    reference layout)."""
    n = len(B)
    last_ctx = S + np.maximum(Out - 2, 0)
    if not dedupe or n <= 8:
        return DistinctSteps(B, S, np.concatenate([B, B]), np.concatenate([S, last_ctx]),
                             slice(0, n), slice(0, n), slice(n, 2 * n))
    bu, bi = _codes(B)
    su, si = _codes(S)
    pu, pre = _codes(bi * len(su) + si)
    cu, ci = _codes(np.concatenate([S, last_ctx]))
    du, di = _codes(np.concatenate([bi, bi]) * len(cu) + ci)
    return DistinctSteps(bu[pu // len(su)], su[pu % len(su)], bu[du // len(cu)], cu[du % len(cu)],
                         pre, di[:n], di[n:])


def grid_steps(batch, prompt, output) -> tuple[np.ndarray, np.ndarray, np.ndarray, DistinctSteps]:
    """The full grid batch x prompt x output (``np.meshgrid(..., indexing="ij")`` order, raveled) as
    (B, S, Out, steps), its distinct steps found from the axes (no sort over the N configurations)."""
    b, s, o = (np.asarray(x, dtype=float).ravel() for x in (batch, prompt, output))
    nb, ns, no = len(b), len(s), len(o)
    B, S, Out = (a.ravel() for a in np.meshgrid(b, s, o, indexing="ij"))
    ib = np.arange(nb)[:, None, None]
    cu, ci = _codes(np.concatenate([s, (s[:, None] + np.maximum(o - 2, 0)[None, :]).ravel()]))
    nc = len(cu)
    pre = np.broadcast_to(ib * ns + np.arange(ns)[None, :, None], (nb, ns, no)).ravel()
    first = np.broadcast_to(ib * nc + ci[:ns][None, :, None], (nb, ns, no)).ravel()
    last = (ib * nc + ci[ns:].reshape(ns, no)[None, :, :]).ravel()
    steps = DistinctSteps(np.repeat(b, ns), np.tile(s, nb), np.repeat(b, nc), np.tile(cu, nb), pre, first, last)
    return B, S, Out, steps


def _costs_in_chunks(model: Model, device: Device, precision: Precision, shape: StepShape, cuda_graphs: bool,
                     **split) -> dict:
    """:func:`step_costs` of ``shape``'s operator table, built and costed ``STEP_CHUNK`` columns at a time."""
    n = len(shape)
    if n <= STEP_CHUNK:
        return step_costs(device, build_table(model, shape, precision, **split), cuda_graphs)
    out: dict = {}
    for j in range(0, n, STEP_CHUNK):
        part = StepShape(*(getattr(shape, k)[j:j + STEP_CHUNK] for k in StepShape.__dataclass_fields__))
        sc = step_costs(device, build_table(model, part, precision, **split), cuda_graphs)
        for k, v in sc.items():
            if k not in out:
                out[k] = np.empty(v.shape[:-1] + (n,))
            out[k][..., j:j + v.shape[-1]] = v
    return out


def evaluate(model: Model, device: Device, precision: Precision, batch, prompt, output, *, tp: int = 1,
             pp: int = 1, ep: int = 1, dp: int = 1, cuda_graphs: bool = True,
             runtime: Runtime | str = "vllm", gpus_per_node: int = 8) -> dict:
    """Vectorized core of :func:`predict`: arrays of shape (N,) in, a dict of (N,) arrays out.

    Each distinct step is costed once (:func:`distinct_steps`); :func:`evaluate_reference` gives the
    same answers the plain way."""
    B, S, Out = np.broadcast_arrays(*(np.atleast_1d(np.asarray(x, dtype=float)) for x in (batch, prompt, output)))
    return evaluate_steps(model, device, precision, B, S, Out, distinct_steps(B, S, Out), tp=tp, pp=pp,
                          ep=ep, dp=dp, cuda_graphs=cuda_graphs, runtime=runtime, gpus_per_node=gpus_per_node)


def _pick(x: np.ndarray, idx: np.ndarray | slice) -> np.ndarray:
    """``x[idx]`` as a new array; ``np.take`` for index arrays (several times faster than fancy
    indexing on a million indices, same values)."""
    return x[idx].copy() if isinstance(idx, slice) else np.take(x, idx)


def evaluate_steps(model: Model, device: Device, precision: Precision, B: np.ndarray, S: np.ndarray,
                   Out: np.ndarray, steps: DistinctSteps, *, tp: int = 1, pp: int = 1, ep: int = 1, dp: int = 1,
                   cuda_graphs: bool = True, runtime: Runtime | str = "vllm", gpus_per_node: int = 8) -> dict:
    """:func:`evaluate` of configurations (B, S, Out) (float arrays of shape (N,)) whose distinct
    steps are ``steps``: one operator table over the distinct steps, quantities of a prefill computed
    per distinct prefill and gathered, the rest per configuration."""
    n = len(B)
    rt = load_runtime(runtime) if isinstance(runtime, str) else runtime
    if runs_own_program(device):
        rt = replace(rt, cpu={})
    pre, first, last = steps.pre, steps.first, steps.last
    # micro-batches (GPipe): per distinct prefill, per distinct decode and per configuration
    pb, ps = steps.pre_batch, steps.pre_prompt
    mb_p = np.minimum(pb, pp)
    b_p = pb / mb_p
    f_p = (mb_p + pp - 1) / pp
    mb_d = np.minimum(steps.dec_batch, pp)
    mb = np.minimum(B, pp)
    factor = (mb + pp - 1) / pp
    P = len(pb)
    shape = StepShape.concat([prefill(b_p, ps), decode(steps.dec_batch / mb_d, steps.dec_context)])
    sc = _costs_in_chunks(model, device, precision, shape, cuda_graphs, tp=tp, pp=pp, ep=ep,
                          gpus_per_node=gpus_per_node, runtime=rt)
    t, e = sc["time"], sc["energy"]
    td, ed = t[P:], e[P:]
    dev_stage = devices_per_stage(tp, ep)
    devices = devices_per_replica(tp, pp, ep)
    idle = device.idle_power_w * devices
    cap = device.power_limit_w * devices
    # per distinct prefill: the engine's CPU work per iteration (all B sequences), as much as the
    # GPU's work does not hide; TTFT, energy, activations
    t_pre = t[:P] * f_p
    cpu_pre = rt.exposed_cpu(rt.cpu_seconds(pb, pb * ps), t_pre)
    ttft_p = t_pre + cpu_pre
    e_pre = step_energy(e[:P] * mb_p * dev_stage, ttft_p, idle, cap)
    dpa = ep // tp if (model.is_moe and ep > tp) else 1
    act_p = activation_bytes(model, np.maximum(b_p * ps, b_p) / dpa, b_p / dpa, tp)
    # per configuration: decode (the average of its first and last step)
    unit = pp == 1  # one micro-batch: factor is 1 (x * 1.0 is x)

    def dec(x: np.ndarray, scaled: bool = True) -> np.ndarray:
        """0.5 (x[first] + x[last]) (times ``factor`` when ``scaled``), for the decode part ``x`` of a
        costed quantity."""
        if isinstance(first, np.ndarray) and not x.any():
            return np.zeros(n)
        r = _pick(x, first)
        r += _pick(x, last)
        r *= 0.5
        if scaled and not unit:
            r *= factor
        return r

    def gather(x: np.ndarray) -> np.ndarray:
        """A per-prefill quantity for every configuration."""
        return np.zeros(n) if isinstance(pre, np.ndarray) and not x.any() else _pick(x, pre)

    tpot_gpu = dec(td)
    cpu_decode = rt.exposed_cpu(rt.cpu_seconds(B, B), tpot_gpu)
    ttft = gather(ttft_p)
    tpot = tpot_gpu + cpu_decode
    e2e = ttft + (Out - 1) * tpot
    dyn_decode = dec(ed, scaled=False) if unit else dec(ed, scaled=False) * mb
    if dev_stage != 1:
        dyn_decode = dyn_decode * dev_stage
    energy = gather(e_pre) + (Out - 1) * step_energy(dyn_decode, tpot, idle, cap)
    # memory on the most loaded device
    w = weight_bytes_per_device(model, precision, tp, pp, ep)
    kv = B / dpa * (S + Out) * kv_bytes_per_token(model, precision, tp, pp)
    act = gather(act_p)
    need = w + kv + act
    cap_b = device.memory_bytes
    out = {
        "ttft_s": ttft, "tpot_s": tpot, "e2e_s": e2e,
        "throughput_tok_s": dp * B * Out / e2e, "decode_tok_s": dp * B / tpot,
        "prefill_tok_s": gather(dp * pb * ps / ttft_p),
        "weights_bytes": np.full(n, w), "kv_cache_bytes": kv, "activation_bytes": act, "memory_bytes": need,
        "capacity_bytes": np.full(n, cap_b), "fits": need <= cap_b, "memory_headroom_bytes": cap_b - need,
        "energy_j": energy * dp, "energy_per_token_j": energy / (B * Out),
        "power_w": energy / e2e / devices, "devices": np.full(n, devices * dp),
        "overhead_s_decode": dec(sc["overhead"][P:]) + cpu_decode,
        "prefill_cpu_s": gather(cpu_pre), "decode_cpu_s": cpu_decode,
    }
    for i, cls in enumerate(OP_CLASSES):
        x = sc["by_class"][i]
        out[f"prefill_{cls}_s"] = gather(x[:P] * f_p)
        out[f"decode_{cls}_s"] = dec(x[P:])
    for i, bd in enumerate(BOUNDS):
        x = sc["by_bound"][i]
        if bd == "overhead":
            out[f"prefill_{bd}_bound_s"] = gather(x[:P] * f_p + cpu_pre)
            out[f"decode_{bd}_bound_s"] = dec(x[P:]) + cpu_decode
        else:
            out[f"prefill_{bd}_bound_s"] = gather(x[:P] * f_p)
            out[f"decode_{bd}_bound_s"] = dec(x[P:])
    return out


def evaluate_reference(model: Model, device: Device, precision: Precision, batch, prompt, output, *, tp: int = 1,
             pp: int = 1, ep: int = 1, dp: int = 1, cuda_graphs: bool = True,
             runtime: Runtime | str = "vllm", gpus_per_node: int = 8) -> dict:
    """:func:`evaluate` the plain way: every configuration's three steps in one operator table, no
    sharing. The reference the fast paths are tested against (``tests/test_fast_paths.py``)."""
    B, S, Out = np.broadcast_arrays(*(np.atleast_1d(np.asarray(x, dtype=float)) for x in (batch, prompt, output)))
    n = len(B)
    steps = prediction_steps(B, S, Out, pp)
    mb, b, factor = steps.microbatches, steps.microbatch_size, steps.factor
    rt = load_runtime(runtime) if isinstance(runtime, str) else runtime
    if runs_own_program(device):
        rt = replace(rt, cpu={})
    shape = StepShape.concat([steps.prefill, steps.decode_first, steps.decode_last])  # one table, one pass
    table = build_table(model, shape, precision, tp=tp, pp=pp, ep=ep, gpus_per_node=gpus_per_node, runtime=rt)
    sc = step_costs(device, table, cuda_graphs)
    t, e = sc["time"], sc["energy"]
    # the engine's CPU work per iteration (all B sequences), as much as the GPU's work does not hide
    cpu_prefill = rt.exposed_cpu(rt.cpu_seconds(B, B * S), t[:n] * factor)
    cpu_decode = rt.exposed_cpu(rt.cpu_seconds(B, B), 0.5 * (t[n:2 * n] + t[2 * n:]) * factor)
    ttft = t[:n] * factor + cpu_prefill
    tpot = 0.5 * (t[n:2 * n] + t[2 * n:]) * factor + cpu_decode
    e2e = ttft + (Out - 1) * tpot
    dev_stage = devices_per_stage(tp, ep)
    devices = devices_per_replica(tp, pp, ep)
    dyn_prefill = e[:n] * mb * dev_stage
    dyn_decode = 0.5 * (e[n:2 * n] + e[2 * n:]) * mb * dev_stage
    idle = device.idle_power_w * devices
    cap = device.power_limit_w * devices
    energy = step_energy(dyn_prefill, ttft, idle, cap) + (Out - 1) * step_energy(dyn_decode, tpot, idle, cap)
    # memory on the most loaded device
    dpa = ep // tp if (model.is_moe and ep > tp) else 1
    w = weight_bytes_per_device(model, precision, tp, pp, ep)
    kv = B / dpa * (S + Out) * kv_bytes_per_token(model, precision, tp, pp)
    act = activation_bytes(model, np.maximum(b * S, b) / dpa, b / dpa, tp)
    need = w + kv + act
    cap_b = device.memory_bytes
    out = {
        "ttft_s": ttft, "tpot_s": tpot, "e2e_s": e2e,
        "throughput_tok_s": dp * B * Out / e2e, "decode_tok_s": dp * B / tpot,
        "prefill_tok_s": dp * B * S / ttft,
        "weights_bytes": np.full(n, w), "kv_cache_bytes": kv, "activation_bytes": act, "memory_bytes": need,
        "capacity_bytes": np.full(n, cap_b), "fits": need <= cap_b, "memory_headroom_bytes": cap_b - need,
        "energy_j": energy * dp, "energy_per_token_j": energy / (B * Out),
        "power_w": energy / e2e / devices, "devices": np.full(n, devices * dp),
        "overhead_s_decode": 0.5 * (sc["overhead"][n:2 * n] + sc["overhead"][2 * n:]) * factor + cpu_decode,
        "prefill_cpu_s": cpu_prefill, "decode_cpu_s": cpu_decode,
    }
    for i, cls in enumerate(OP_CLASSES):
        out[f"prefill_{cls}_s"] = sc["by_class"][i, :n] * factor
        out[f"decode_{cls}_s"] = 0.5 * (sc["by_class"][i, n:2 * n] + sc["by_class"][i, 2 * n:]) * factor
    for i, bd in enumerate(BOUNDS):
        out[f"prefill_{bd}_bound_s"] = sc["by_bound"][i, :n] * factor + (cpu_prefill if bd == "overhead" else 0.0)
        out[f"decode_{bd}_bound_s"] = 0.5 * (sc["by_bound"][i, n:2 * n] + sc["by_bound"][i, 2 * n:]) * factor + (
            cpu_decode if bd == "overhead" else 0.0)
    return out


@dataclass
class Prediction:
    """The answer to one what-if, in SI units (seconds, bytes, joules, watts)."""

    model: str
    hardware: str
    precision: str
    batch: int
    prompt: int
    output: int
    tp: int
    pp: int
    ep: int
    dp: int
    cuda_graphs: bool
    runtime: str
    ttft_s: float
    tpot_s: float
    e2e_s: float
    throughput_tok_s: float
    decode_tok_s: float
    memory_bytes: float
    capacity_bytes: float
    fits: bool
    memory: dict
    energy_j: float
    energy_per_token_j: float
    power_w: float
    breakdown: dict = field(default_factory=dict)
    profile: str = ""
    profile_basis: str = ""
    expected_error: dict = field(default_factory=dict)
    basis: str = ""
    execution: str = ""

    def to_dict(self) -> dict:
        """JSON-ready dict with the stable keys of ``genz predict --json``."""
        return asdict(self)

    def fit_message(self) -> str:
        gb = 1e9
        if self.fits:
            return f"fits: needs {self.memory_bytes / gb:.1f} GB of {self.capacity_bytes / gb:.1f} GB per device"
        return f"does not fit: needs {self.memory_bytes / gb:.1f} GB, has {self.capacity_bytes / gb:.1f} GB per device"


def device_basis(device: Device) -> dict:
    """What a device's answers stand on: ``profile`` (name), ``profile_basis`` (measured, transferred,
    prior, datasheet; ``model`` for devices without an efficiency profile, such as FPGAs modelled from
    their paper), ``expected_error`` (quantity -> fraction) and ``basis`` (one line for a terminal)."""
    from hwmodels.profiles import basis_line

    prof = device.profile if isinstance(device, Profiled) else None
    if prof is None:
        return {"profile": "", "profile_basis": "model", "expected_error": {},
                "basis": f"basis: the {getattr(device, 'name', 'device')} model of its paper; no measured error band"}
    return {"profile": prof.name, "profile_basis": prof.basis, "expected_error": dict(prof.expected_error),
            "basis": basis_line(prof)}


def check_device_precision(device: Device, precision: Precision) -> None:
    """Raise ``ValueError`` when ``device`` cannot run ``precision`` (a GPU without that dtype)."""
    check = getattr(device, "check_precision", None)
    if check is not None:
        check(precision)


def check_inputs(model: Model, batch, prompt, output, tp, pp, ep, dp, allow_long_context: bool = False) -> None:
    """Raise ``ValueError`` naming the flag for impossible numbers (and for a sequence longer than the
    model's context, unless ``allow_long_context``)."""
    _check_positive("batch", batch)
    p = _check_positive("prompt", prompt)
    o = _check_positive("output", output)
    check_parallelism(model, tp, pp, ep, dp)
    longest = p + o if type(p) is type(o) is float else float(np.max(p + o))
    if not allow_long_context and longest > model.max_position:
        raise ValueError(f"prompt + output: {longest:.0f} tokens exceed the context of {model.name} "
                         f"({model.max_position} tokens); pass --allow-long-context to predict it anyway")


#: Keys of :func:`evaluate`'s result that make up a prediction's breakdown, per phase.
_BREAKDOWN_KEYS = {phase: ([(c, f"{phase}_{c}_s") for c in OP_CLASSES], [(b, f"{phase}_{b}_bound_s") for b in BOUNDS],
                           f"{phase}_cpu_s") for phase in ("prefill", "decode")}


def predict(model: str | Model = "llama-3-8b", hardware: str | Device = "h200", *, batch: int = 1,
            prompt: int = 1024, output: int = 128, precision: str | Precision = "bf16", tp: int = 1,
            pp: int = 1, ep: int = 1, dp: int = 1, cuda_graphs: bool = True, runtime: str = "vllm",
            profile: str | None = "auto", gpus_per_node: int = 8, allow_long_context: bool = False) -> Prediction:
    """Latency, throughput, memory and energy of serving ``batch`` requests of ``prompt`` input and
    ``output`` generated tokens on ``hardware``.

    >>> p = predict("llama-3-8b", "h200", batch=1, prompt=1024, output=128)
    >>> p.fits and 0.001 < p.tpot_s < 0.02
    True
    """
    m = load_model(model)
    prec = Precision.parse(precision)
    check_inputs(m, batch, prompt, output, tp, pp, ep, dp, allow_long_context)
    dev = load_device(hardware, profile)
    rt = load_runtime(runtime) if isinstance(runtime, str) else runtime
    plan = plan_for(m, dev, prec, rt, tp=tp, pp=pp, ep=ep, gpus_per_node=gpus_per_node, cuda_graphs=cuda_graphs,
                    check=check_device_precision)
    if plan is not None and (type(batch) is type(prompt) is type(output) is int
                             or all(np.ndim(x) == 0 for x in (batch, prompt, output))):
        v = evaluate_one(plan, float(batch), float(prompt), float(output), dp)
        basis = {**plan.basis, "expected_error": dict(plan.basis["expected_error"])}
        execution = plan.execution
    else:
        r = evaluate(m, dev, prec, batch, prompt, output, tp=tp, pp=pp, ep=ep, dp=dp, cuda_graphs=cuda_graphs,
                     runtime=rt, gpus_per_node=gpus_per_node)
        v = {k: (a[0].item() if hasattr(a[0], "item") else a[0]) for k, a in r.items()}
        basis = device_basis(dev)
        execution = describe_execution(dev, cuda_graphs, rt.name)
    breakdown = {
        phase: {"by_class_s": {c: v[k] for c, k in classes if v[k] > 0}, "by_bound_s": {b: v[k] for b, k in bounds},
                "cpu_s": v[cpu]}
        for phase, (classes, bounds, cpu) in _BREAKDOWN_KEYS.items()
    }
    return Prediction(
        model=m.name, hardware=getattr(dev, "name", str(hardware)), precision=prec.name, batch=int(batch),
        prompt=int(prompt), output=int(output), tp=tp, pp=pp, ep=ep, dp=dp, cuda_graphs=cuda_graphs,
        runtime=rt.name, ttft_s=v["ttft_s"], tpot_s=v["tpot_s"], e2e_s=v["e2e_s"],
        throughput_tok_s=v["throughput_tok_s"], decode_tok_s=v["decode_tok_s"], memory_bytes=v["memory_bytes"],
        capacity_bytes=v["capacity_bytes"], fits=bool(v["fits"]),
        memory={"weights_bytes": v["weights_bytes"], "kv_cache_bytes": v["kv_cache_bytes"],
                "activation_bytes": v["activation_bytes"], "headroom_bytes": v["memory_headroom_bytes"]},
        energy_j=v["energy_j"], energy_per_token_j=v["energy_per_token_j"], power_w=v["power_w"],
        breakdown=breakdown, execution=execution, **basis,
    )
