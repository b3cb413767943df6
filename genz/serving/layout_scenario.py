"""The ``layout`` key of a scenario: serve an MoE cluster layout (``genz predict --layout`` files).

``layout: docs/layouts/deepseek-v3-sglang-96xh100.yaml`` in a scenario (or ``genz simulate --layout``)
replaces the engine section: the model, precision, runtime and GPUs come from the layout, and each
replica is a whole pool (:class:`genz.moe_cluster.serving.LayoutStepCost`). A layout with a prefill and
a decode pool is served disaggregated (PD): ``replicas`` counts decode pools, the ``disaggregation``
section may set ``prefill_replicas`` (prefill pools), ``router``, ``overlap`` and the prefill
``scheduler``, and the KV caches travel over the prefill pool's NICs (every GPU's, at the cluster's
achievable rate). A layout with only a decode pool serves co-located (its steps prefill too).

Scheduler defaults follow the layout's own batch (assumption: a pool admits what its layout says one
step holds): ``max_num_seqs`` = the decode pool's requests per GPU x its GPUs, ``max_num_batched_tokens``
= the prefill pool's tokens per GPU x its GPUs (co-located: 8,192 per attention group).
"""

from __future__ import annotations

from pathlib import Path

_ENGINE_KEYS = ("model", "hardware", "precision", "tp", "pp", "ep", "runtime", "cuda_graphs")
#: What a ``disaggregation`` section may set next to a layout (the pools come from the layout).
DISAGG_KEYS = ("prefill_replicas", "overlap", "router", "scheduler")


def _fail(field: str, msg: str):
    raise ValueError(f"{field}: {msg}")


def resolve_layout(raw: dict, base_dir: Path | None) -> dict:
    """Check the ``layout`` key of scenario ``raw`` and what it excludes; returns ``{"file", "engine",
    "scheduler", "prefill_scheduler", "link", "prefill_gpus"}`` (``prefill_scheduler`` and ``link`` are
    None for a layout without a prefill pool)."""
    from genz.moe_cluster import load_layout
    from genz.moe_cluster.serving import LayoutStepCost

    v = raw["layout"]
    if not isinstance(v, str) or not v.strip():
        _fail("layout", f"must be the path of a layout file (YAML or JSON, see docs/moe-clusters.md), got {v!r}")
    path = Path(v).expanduser()
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    given = [k for k in _ENGINE_KEYS if k in raw]
    if given:
        _fail("layout", f"gives the model, precision, runtime and GPUs of the replicas; drop {', '.join(given)}")
    if raw.get("placement") is not None:
        _fail("placement", "a layout places its experts itself (redundant_experts, eplb); drop placement")
    try:
        lay = load_layout(path)
        decode = LayoutStepCost(lay, "decode") if lay.decode is not None else None
        prefill = LayoutStepCost(lay, "prefill") if lay.prefill is not None else None
    except ValueError as exc:
        msg = str(exc).removeprefix("layout: ")
        _fail("layout", msg if str(path) in msg else f"{path}: {msg}")
    if decode is None:
        _fail("layout", f"{path} has no decode pool: the replicas that generate tokens are a decode pool")
    dis = raw.get("disaggregation")
    if dis is not None and prefill is None:
        _fail("disaggregation", f"{path} has no prefill pool to disaggregate; add one to the layout or drop the section")
    if dis is not None:
        bad = [k for k in dis if k not in DISAGG_KEYS]
        if bad:
            _fail(f"disaggregation.{bad[0]}", f"the layout sets the prefill pool; with a layout this section takes "
                                              f"only {', '.join(DISAGG_KEYS)}")
    groups = decode.devices // decode.pool.attention_tp
    budget = prefill.devices * prefill.pool.batch_per_gpu if prefill is not None else 8192 * groups
    sched = {"kind": "continuous", "max_num_seqs": decode.devices * decode.pool.batch_per_gpu,
             "max_num_batched_tokens": budget}
    engine = {"model": decode.model.name, "hardware": decode.device.name, "precision": decode.precision.name,
              "tp": decode.pool.attention_tp, "pp": 1, "ep": decode.pool.ep_size(decode.cluster.gpus_per_node),
              "runtime": decode.runtime.name, "cuda_graphs": True}
    out = {"file": str(path), "engine": engine, "scheduler": sched, "prefill_scheduler": None, "link": None,
           "prefill_gpus": None}
    if prefill is not None:
        bw, lat = prefill.kv_link()
        out["prefill_scheduler"] = {"kind": "continuous", "max_num_seqs": max(1, budget // 16),
                                    "max_num_batched_tokens": budget}
        out["link"] = {"name": f"{prefill.cluster.name} NICs of {prefill.devices} GPUs", "bandwidth_bytes_per_s": bw,
                       "latency_s": lat}
        out["prefill_gpus"] = prefill.devices
    return out
