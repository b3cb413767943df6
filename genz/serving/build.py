"""The one builder from a resolved serving configuration to a :class:`~genz.serving.config.Scenario`.

Scenario files, ``genz simulate`` flags and the search objective (``genz tune``) all produce the same
mapping (see :func:`genz.serving.scenario_file.resolve`) and call :func:`build_scenario`, so one
configuration is costed one way whichever door it came in by.

Rules that live here, once:

- **Activation reserve** (:class:`~genz.stepcost.EngineStepCost` ``max_batched_tokens``): the tokens
  of the largest iteration the scheduler can build, as its config's ``max_step_tokens(num_requests,
  longest_prompt)`` says (continuous: the token budget; static: a full batch of the longest prompt,
  padded). The longest prompt is the trace's, or that of the requests the seeded workload generates.
- **KV-transfer link** of a disaggregated pool: ``link_count`` parallel links of ``link`` per prefill
  replica (the resolved mapping defaults them to the prefill hardware's scale-out NIC x tp x pp).
- **Prices**: a ``prices`` mapping (USD per GPU-hour by hardware name) overrides the data files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from genz.serving.config import SLO, Disaggregation, KVLink, MemoConfig, SaturationConfig, Scenario
from genz.serving.registry import scheduler_config
from workloads.requests import Request

__all__ = ["build_cost", "build_scenario", "fit_problem", "length_distribution", "scheduler_of", "workload_of"]


def length_distribution(d: Mapping):
    """A length distribution object from its resolved mapping (``{"dist": "fixed", "tokens": 128}``...)."""
    from workloads.requests import Empirical, Fixed, LogNormal, Uniform

    kind = d["dist"]
    if kind == "fixed":
        return Fixed(d["tokens"])
    if kind == "uniform":
        return Uniform(d["low"], d["high"])
    if kind == "lognormal":
        return LogNormal(d["mean"], d["sigma"], max_tokens=d.get("max_tokens"))
    return Empirical.from_file(d["file"], d.get("column"))


def workload_of(w: Mapping):
    """``(trace, None)`` for a trace file, ``(None, WorkloadSpec)`` for a generated workload."""
    from workloads.requests import (
        FixedRateArrivals,
        GammaArrivals,
        PoissonArrivals,
        SharedPrefix,
        WorkloadSpec,
        read_trace,
    )

    if w.get("trace"):
        reqs = read_trace(w["trace"])
        if w.get("requests"):
            reqs = reqs[: w["requests"]]
        if not reqs:
            raise ValueError(f"workload.trace: {w['trace']} holds no requests")
        return reqs, None
    rate = w["rate_per_s"]
    proc = {"poisson": lambda: PoissonArrivals(rate), "gamma": lambda: GammaArrivals(rate, w["cv"]),
            "fixed": lambda: FixedRateArrivals(rate)}[w["arrival"]]()
    sp = None
    if w.get("shared_prefix_tokens"):  # per conversation, drawn with the workload
        sp = SharedPrefix(w["shared_prefix_tokens"], w.get("shared_prefix_fraction", 1.0), w.get("prefix_groups", 1))
    return None, WorkloadSpec(w["requests"], proc, length_distribution(w["prompt"]),
                              length_distribution(w["output"]), shared_prefix=sp, turns=w.get("turns", 1))


def scheduler_of(s: Mapping, prefix: str = "scheduler."):
    """The policy config of a resolved ``scheduler`` section (``kind`` plus its knobs)."""
    return scheduler_config(s["kind"], prefix, **{k: v for k, v in s.items() if k != "kind"})


def build_cost(e: Mapping, max_step_tokens: int, prices: Mapping[str, float] | None = None):
    """The step cost of one replica of engine section ``e`` (model, hardware, precision, tp, pp, ep,
    runtime, cuda_graphs, and optionally an expert ``placement``), its price per GPU-hour from
    ``prices`` when named there."""
    from genz.stepcost import EngineStepCost

    if e.get("layout"):  # one pool of an MoE cluster layout as the replica
        from genz.moe_cluster import load_layout
        from genz.moe_cluster.serving import LayoutStepCost

        cost = LayoutStepCost(load_layout(e["layout"]["file"]), e["layout"]["role"])
        if prices and e["hardware"] in prices:
            cost.price_per_hour_usd = float(prices[e["hardware"]]) * cost.devices
        return cost
    traffic = None
    if e.get("placement"):
        from genz.ep_traffic import load_placement_traffic

        traffic = load_placement_traffic(e["placement"]["file"], e["placement"]["method"])[0]
    cost = EngineStepCost(e["model"], e["hardware"], e["precision"], tp=e["tp"], pp=e["pp"], ep=e["ep"],
                          cuda_graphs=e["cuda_graphs"], runtime=e["runtime"], max_batched_tokens=max_step_tokens,
                          ep_traffic=traffic)
    if prices and e["hardware"] in prices:
        cost.price_per_hour_usd = float(prices[e["hardware"]]) * cost.devices
    return cost


def build_scenario(spec: Mapping, *, trace: Sequence[Request] | None = None,
                   prices: Mapping[str, float] | None = None) -> Scenario:
    """A :class:`Scenario` on :class:`~genz.stepcost.EngineStepCost` from a resolved mapping.

    ``trace`` replaces the mapping's workload (the search objective hands its own requests);
    ``prices`` overrides hardware prices (USD per GPU-hour by hardware name)."""
    if trace is not None:
        trace, workload = list(trace), None
    else:
        trace, workload = workload_of(spec["workload"])
    w = spec["workload"]
    if w.get("shared_prefix_tokens") and trace is not None:  # a generated workload draws its own
        from workloads.requests import with_shared_prefix

        trace = with_shared_prefix(trace, w["shared_prefix_tokens"], w["shared_prefix_fraction"],
                                   w["prefix_groups"], spec["seed"])
    reqs = trace if trace is not None else workload.generate(spec["seed"])
    n, longest = len(reqs), max((q.prompt_tokens for q in reqs), default=1)
    sched = scheduler_of(spec["scheduler"])
    slo = None if spec["slo"] is None else SLO(spec["slo"]["ttft_s"], spec["slo"]["tpot_s"])
    dis = None
    d = spec["disaggregation"]
    if d is not None:
        link = d["link"]
        pre = scheduler_of(d["scheduler"], "disaggregation.scheduler.")
        dis = Disaggregation(prefill_cost=build_cost(d, pre.max_step_tokens(n, longest), prices),
                             prefill_replicas=d["prefill_replicas"],
                             link=KVLink(link["bandwidth_bytes_per_s"] * d["link_count"], link["latency_s"],
                                         overlap=d["overlap"]),
                             prefill_scheduler=pre, prefill_router=d["router"])
    return Scenario(cost=build_cost(spec, sched.max_step_tokens(n, longest), prices), scheduler=sched,
                    replicas=spec["replicas"], router=spec["router"], trace=trace, workload=workload, slo=slo,
                    seed=spec["seed"], disaggregation=dis, saturation=SaturationConfig(**spec["saturation"]),
                    memo=MemoConfig(**spec["memo"]), window_s=spec["window_s"], name=spec["name"],
                    concurrency=spec["workload"].get("concurrency"),
                    think_time_s=spec["workload"].get("think_time_s", 0.0))


def fit_problem(spec: Mapping) -> str:
    """Why the model cannot be served as specified ('' when its weights fit): the weights of the most
    loaded device against its memory, for the replicas and for the prefill pool."""
    from genz.memory import weight_bytes_per_device
    from hwmodels.registry import load_device
    from workloads import Precision, load_model

    pools = [("", spec)]
    if spec["disaggregation"] is not None:
        pools.append(("prefill pool: ", spec["disaggregation"]))
    for label, e in pools:
        if e.get("layout"):
            from genz.moe_cluster import load_layout
            from genz.moe_cluster.serving import LayoutStepCost

            c = LayoutStepCost(load_layout(e["layout"]["file"]), e["layout"]["role"])
            if c.kv_capacity_bytes <= 0:
                need = (c.memory_bytes - c.kv_capacity_bytes) / c.devices
                return (f"{label}layout does not fit: its {e['layout']['role']} pool needs {need / 1e9:.1f} GB per GPU "
                        f"before any KV cache, and {c.device.name} has {c.device.memory_bytes / 1e9:.1f} GB")
            continue
        m = load_model(e["model"])
        w = weight_bytes_per_device(m, Precision.parse(e["precision"]), e["tp"], e["pp"], e["ep"])
        mem = load_device(e["hardware"]).memory_bytes
        if w >= mem:
            return (f"{label}model does not fit: {m.name} {e['precision']} weights need {w / 1e9:.1f} GB per device "
                    f"with tp={e['tp']} pp={e['pp']} ep={e['ep']}, and {e['hardware']} has {mem / 1e9:.1f} GB; "
                    "raise tp/pp (or ep for MoE) or use a lower precision")
    return ""
