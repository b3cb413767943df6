"""How a model is split over devices: tensor, pipeline, expert and data parallelism.

Assumptions (named here once):

- ``tp`` shards attention heads, dense MLPs and the vocabulary; K/V heads are replicated when
  ``tp`` exceeds their number. An all-reduce follows attention and each MLP.
- ``pp`` splits layers into equal stages; a batch runs as ``min(batch, pp)`` micro-batches
  (GPipe schedule), so a step takes ``(m + pp - 1) / m`` stage-passes per micro-batch sweep.
- ``ep`` spreads each MoE layer's experts over ``ep`` devices. With ``ep > 1`` attention runs
  tensor-parallel in ``ep / tp`` data-parallel groups (``ep`` must be a multiple of ``tp``), and
  tokens reach their experts by a dispatch all-to-all and return by a combine all-to-all
  (DeepSeek-style). With ``ep == 1`` experts are sharded ``tp`` ways like a dense MLP.
- ``dp`` replicas serve independent requests; they multiply throughput, not speed.
- Devices per replica = ``max(tp, ep) * pp``; the scale-up domain (NVLink) holds ``gpus_per_node``
  devices; collectives spanning more use the scale-out link.
"""

from __future__ import annotations

import numpy as np

from workloads import Model

#: The largest tensor/pipeline/expert/data-parallel size accepted (beyond any machine built).
MAX_PARALLEL = 1_000_000


def devices_per_stage(tp: int, ep: int = 1) -> int:
    """Devices of one pipeline stage: the tensor-parallel group, or the expert-parallel one when larger."""
    return max(int(tp), int(ep))


def devices_per_replica(tp: int, pp: int = 1, ep: int = 1) -> int:
    """Devices of one replica (model instance): ``max(tp, ep) * pp``."""
    return devices_per_stage(tp, ep) * int(pp)


def check_parallelism(model: Model, tp, pp, ep, dp=1) -> None:
    """Raise ``ValueError`` naming the flag when a split is impossible for ``model``.

    Accepts scalars or arrays (every element is checked). A split of plain ints that passed once for
    a model (models are frozen) is not checked again.
    """
    key = (id(model), tp, pp, ep, dp) if all(type(x) is int for x in (tp, pp, ep, dp)) else None
    if key is not None and _PASSED.get(key) is model:
        return
    _check_parallelism(model, tp, pp, ep, dp)
    if key is not None:
        if len(_PASSED) >= 4096:
            _PASSED.clear()
        _PASSED[key] = model  # kept alive, so its id is not reused while the entry stands


_PASSED: dict = {}


def _check_parallelism(model: Model, tp, pp, ep, dp) -> None:
    for name, x in (("tp", tp), ("pp", pp), ("ep", ep), ("dp", dp)):
        if isinstance(x, int) and not isinstance(x, bool) and x > MAX_PARALLEL:
            raise ValueError(f"{name}: at most {MAX_PARALLEL:,} devices, got {x:,}")
    tp_a, pp_a, ep_a, dp_a = (np.atleast_1d(np.asarray(x)) for x in (tp, pp, ep, dp))
    for name, a in (("tp", tp_a), ("pp", pp_a), ("ep", ep_a), ("dp", dp_a)):
        if a.dtype == object or (a > MAX_PARALLEL).any():
            raise ValueError(f"{name}: must be a positive integer <= {MAX_PARALLEL:,}")
        if (a < 1).any() or (a != np.round(a)).any():
            raise ValueError(f"{name}: must be a positive integer, got {a[(a < 1) | (a != np.round(a))][0]}")
    bad = tp_a[model.heads % tp_a != 0]
    if bad.size:
        divs = [d for d in range(1, model.heads + 1) if model.heads % d == 0]
        raise ValueError(f"tp: {int(bad[0])} does not divide the {model.heads} attention heads of "
                         f"{model.name}; allowed: {divs}")
    kv_bad = tp_a[(tp_a % model.kv_heads != 0) & (model.kv_heads % tp_a != 0)]
    if kv_bad.size:
        raise ValueError(f"tp: {int(kv_bad[0])} neither divides nor is a multiple of the {model.kv_heads} "
                         f"KV heads of {model.name}")
    if (pp_a > model.layers).any():
        raise ValueError(f"pp: {int(pp_a.max())} exceeds the {model.layers} layers of {model.name}")
    if not model.is_moe:
        if (ep_a > 1).any():
            raise ValueError(f"ep: {model.name} has no experts; ep must be 1")
        return
    bad = ep_a[model.experts % ep_a != 0]
    if bad.size:
        raise ValueError(f"ep: {int(bad[0])} does not divide the {model.experts} experts of {model.name}")
    mixed = (ep_a > 1) & (np.broadcast_to(ep_a, np.broadcast(ep_a, tp_a).shape) % tp_a != 0)
    if mixed.any():
        raise ValueError("ep: with expert parallelism ep must be a multiple of tp "
                         f"(got ep={int(np.broadcast_to(ep_a, mixed.shape)[mixed][0])}, "
                         f"tp={int(np.broadcast_to(tp_a, mixed.shape)[mixed][0])})")
