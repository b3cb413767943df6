"""One what-if, fast: a plan per (model, GPU, precision, split, runtime), then a few array operations.

:func:`genz.predict.evaluate` is built for sweeps: it pays numpy's per-call overhead (about a
microsecond per operation, ~500 operations) whatever N is, which for N = 1 is nearly all of a
``predict`` call. For one configuration this module keeps, per distinct setting, what does not
depend on batch, prompt and output:

- the operator table compiled to affine coefficients (:mod:`genz.affine`), so the three steps'
  tables (prefill, first and last decode) are one matrix product;
- the GPU's row-wise preparation (:meth:`hwmodels.gpu.GPU.prepare`), so costing is the
  per-configuration arithmetic alone (attention one float at a time);
- the memory terms, the engine's CPU-time coefficients and the device basis.

What remains is :func:`evaluate_one`: the same formulas as :func:`genz.predict.evaluate_reference`
on Python floats. It covers dense models on GPUs (CUDA graphs or eager); MoE tables are not affine
in the shape (expert coverage), and devices other than the GPU model have their own costing, so
those keep the vectorized path (:func:`plan_for` returns None). ``tests/test_predict_one.py``
checks every output against the reference path to 1e-9 relative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genz.affine import CompiledTable, compile_table
from genz.memory import activation_bytes, kv_bytes_per_token, weight_bytes_per_device
from genz.parallel import devices_per_replica, devices_per_stage
from genz.runtime import Runtime
from hwmodels.device import describe_execution, runs_own_program
from hwmodels.gpu import GPU, RowPrep
from hwmodels.optable import OP_CLASSES, OpCosts
from workloads import Model, Precision

BOUNDS = OpCosts.BOUNDS
#: Plans kept (least recently made first out); each is a few kB.
PLAN_CACHE_SIZE = 256
_BOUND_IDS = np.arange(len(BOUNDS))[:, None, None]
#: Features (indices into genz.affine.features' rows) positive in a prefill of b >= 1 sequences of
#: S >= 1 new tokens on none cached, and in a decode of b >= 1 sequences; the rest are 0.
_PREFILL_NONZERO = {0, 1, 2, 3, 4, 7}
_DECODE_NONZERO = {0, 5, 6, 7}
_CLASS_KEYS = [(f"prefill_{c}_s", f"decode_{c}_s") for c in OP_CLASSES]
_BOUND_KEYS = [(f"prefill_{b}_bound_s", f"decode_{b}_bound_s") for b in BOUNDS]


@dataclass
class OnePlan:
    """What one (model, GPU, precision, split, runtime, launch mode) costs whatever the batch,
    prompt and output (see the module docstring); memory in bytes, power in watts."""

    compiled: CompiledTable
    step_coef: np.ndarray | None  # CompiledTable.fixed_gates of (prefill, decode, decode), if it has one
    prep: RowPrep
    device: GPU
    cuda_graphs: bool
    count: np.ndarray  # (R, 1) instances per step
    sums: np.ndarray  # (1 + classes, R): instances per step, then the same per op class
    pp: int
    dev_stage: int
    devices: int
    dpa: int
    idle_w: float
    cap_w: float
    weights: float
    kv_per_token: float
    act_per_token: float
    act_per_lm_row: float
    capacity: float
    cpu: tuple[float, float, float, float]  # per step, per sequence, per token (s), overlap
    basis: dict
    execution: str


_PLANS: dict = {}
_SEEN: dict = {}


def plan_for(model: Model, device, precision: Precision, runtime: Runtime, *, tp: int = 1, pp: int = 1,
             ep: int = 1, gpus_per_node: int = 8, cuda_graphs: bool = True, check=None) -> OnePlan | None:
    """The plan of one setting (cached), or None where the vectorized path must answer. ``check``
    (device, precision), if given, runs before a plan is made (a cached plan has passed it)."""
    key = (id(model), id(device), precision, id(runtime), tp, pp, ep, gpus_per_node, cuda_graphs)
    hit = _PLANS.get(key)
    if hit is not None and hit[0] is model and hit[1] is device and hit[3] is runtime:
        if check is not None and hit[5] is not check:
            check(device, precision)
        return hit[4]
    if check is not None:
        check(device, precision)
    if _SEEN.pop(key, None) is None:
        # a plan costs about a millisecond (a compile and its check); make it when a setting comes
        # back, so one-off settings (fresh objects each call) do not pay for it
        if len(_SEEN) >= 4 * PLAN_CACHE_SIZE:
            _SEEN.clear()
        _SEEN[key] = True
        return None
    plan = _make_plan(model, device, precision, runtime, tp, pp, ep, gpus_per_node, cuda_graphs)
    if len(_PLANS) >= PLAN_CACHE_SIZE:
        del _PLANS[next(iter(_PLANS))]
    # the objects are kept alive, so their ids stay theirs; the check that passed is remembered
    _PLANS[key] = (model, device, precision, runtime, plan, check)
    return plan


def _make_plan(model, device, precision, runtime, tp, pp, ep, gpus_per_node, cuda_graphs) -> OnePlan | None:
    from genz.predict import device_basis

    if type(device) is not GPU or model.is_moe:
        return None
    ct = compile_table(model, precision, runtime, tp=tp, pp=pp, ep=ep, gpus_per_node=gpus_per_node)
    if ct is None:
        return None
    rows = ct.table(np.ones((8, 1)))
    cpu = {} if runs_own_program(device) else runtime.cpu
    devices = devices_per_replica(tp, pp, ep)
    return OnePlan(
        compiled=ct, step_coef=ct.fixed_gates([_PREFILL_NONZERO, _DECODE_NONZERO, _DECODE_NONZERO]),
        prep=device.prepare(rows), device=device, cuda_graphs=cuda_graphs,
        count=rows.count[:, None],
        sums=np.vstack([rows.count, (rows.op_class[None, :] == np.array(OP_CLASSES)[:, None]) * rows.count]),
        pp=pp, dev_stage=devices_per_stage(tp, ep), devices=devices, dpa=1,
        idle_w=device.idle_power_w * devices, cap_w=device.power_limit_w * devices,
        weights=weight_bytes_per_device(model, precision, tp, pp, ep),
        kv_per_token=kv_bytes_per_token(model, precision, tp, pp),
        act_per_token=float(activation_bytes(model, 1.0, 0.0, tp)),
        act_per_lm_row=float(activation_bytes(model, 0.0, 1.0, tp)), capacity=float(device.memory_bytes),
        cpu=(float(cpu.get("per_step_s", 0.0)), float(cpu.get("per_seq_s", 0.0)), float(cpu.get("per_token_s", 0.0)),
             float(cpu.get("overlap", 0.0))),
        basis=device_basis(device), execution=describe_execution(device, cuda_graphs, runtime.name),
    )


def _exposed_cpu(plan: OnePlan, seqs: float, tokens: float, gpu_s: float) -> float:
    """:meth:`genz.runtime.Runtime.exposed_cpu` of :meth:`~genz.runtime.Runtime.cpu_seconds`, on floats."""
    step, per_seq, per_token, ov = plan.cpu
    cpu_s = step + per_seq * seqs + per_token * tokens
    return (1.0 - ov) * cpu_s + max(ov * cpu_s - gpu_s, 0.0)


def evaluate_one(plan: OnePlan, B: float, S: float, Out: float, dp: int = 1) -> dict:
    """:func:`genz.predict.evaluate` of one configuration (``batch`` B, ``prompt`` S, ``output``
    Out), as a dict of Python numbers with the same keys."""
    pp = plan.pp
    mb = min(B, pp)
    b = B / mb
    factor = (mb + pp - 1) / pp
    # features (1, then the StepShape fields) of prefill(b, S) and of two decodes over S and S + Out - 2
    bs = b * S
    x = (1.0, bs, b, b * (S * S / 2.0), bs, 0.0, 0.0, b,
         1.0, 0.0, 0.0, 0.0, 0.0, b, b * (S + 1.0), b,
         1.0, 0.0, 0.0, 0.0, 0.0, b, b * (S + max(Out - 2.0, 0.0) + 1.0), b)
    ct = plan.compiled
    if plan.step_coef is not None:
        table = ct.table_from((plan.step_coef @ np.array(x)).reshape(-1, ct.rows, 3))
    else:
        table = ct.table(np.array(x).reshape(3, 8).T)
    c = plan.device.cost(table, cuda_graphs=plan.cuda_graphs, prep=plan.prep)
    # step sums: row 0 of plan.sums counts instances, the others per op class (time, energy, overhead)
    sums = (plan.sums @ np.concatenate((c.time_s, c.energy_j, c.overhead_s), axis=1)).tolist()
    (t0, t1, t2, e0, e1, e2, _, o1, o2), by_class = sums[0], sums[1:]
    by_bound = ((c.time_s * plan.count) * (c.bound == _BOUND_IDS)).sum(axis=1).tolist()

    cpu_prefill = _exposed_cpu(plan, B, B * S, t0 * factor)
    dec_gpu = 0.5 * (t1 + t2) * factor
    cpu_decode = _exposed_cpu(plan, B, B, dec_gpu)
    ttft = t0 * factor + cpu_prefill
    tpot = dec_gpu + cpu_decode
    e2e = ttft + (Out - 1) * tpot
    idle, cap = plan.idle_w, plan.cap_w
    dyn_prefill = e0 * mb * plan.dev_stage
    dyn_decode = 0.5 * (e1 + e2) * mb * plan.dev_stage
    energy = (min(dyn_prefill + idle * ttft, cap * ttft)
              + (Out - 1) * min(dyn_decode + idle * tpot, cap * tpot))
    kv = B / plan.dpa * (S + Out) * plan.kv_per_token
    act = max(b * S, b) / plan.dpa * plan.act_per_token + b / plan.dpa * plan.act_per_lm_row
    need = plan.weights + kv + act
    out = {
        "ttft_s": ttft, "tpot_s": tpot, "e2e_s": e2e,
        "throughput_tok_s": dp * B * Out / e2e, "decode_tok_s": dp * B / tpot, "prefill_tok_s": dp * B * S / ttft,
        "weights_bytes": plan.weights, "kv_cache_bytes": kv, "activation_bytes": act, "memory_bytes": need,
        "capacity_bytes": plan.capacity, "fits": need <= plan.capacity, "memory_headroom_bytes": plan.capacity - need,
        "energy_j": energy * dp, "energy_per_token_j": energy / (B * Out), "power_w": energy / e2e / plan.devices,
        "devices": plan.devices * dp, "overhead_s_decode": 0.5 * (o1 + o2) * factor + cpu_decode,
        "prefill_cpu_s": cpu_prefill, "decode_cpu_s": cpu_decode,
    }
    for (kp, kd), (p0, p1, p2, *_) in zip(_CLASS_KEYS, by_class, strict=True):
        out[kp] = p0 * factor
        out[kd] = 0.5 * (p1 + p2) * factor
    for (kp, kd), (p0, p1, p2) in zip(_BOUND_KEYS, by_bound, strict=True):
        extra_p, extra_d = (cpu_prefill, cpu_decode) if kp == "prefill_overhead_bound_s" else (0.0, 0.0)
        out[kp] = p0 * factor + extra_p
        out[kd] = 0.5 * (p1 + p2) * factor + extra_d
    return out
