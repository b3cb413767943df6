"""ExFlow's question end to end: does an expert placement from routing affinity speed up MoE serving?

    python -m validation.reproductions.exflow_serving            # the table (about a minute)
    python -m validation.reproductions.exflow_serving --json

ExFlow (IPDPS'24; ../shared/reference-results.md) places experts by integer programming so that a
token's next-layer experts sit on its GPU or node, and keeps tokens on their expert's GPU so a layer
runs one all-to-all instead of two. It reports up to 67 % less cross-GPU routing latency and up to
2.2x inference throughput (16 experts on 8 GPUs), 1.6x (32 experts on 8-16 GPUs), on nodes of 4
A100-SXM4-80GB with NVLink and dual-rail HDR200 InfiniBand.

Here: Mixtral-8x7B (bf16, 8 experts, top-2) with expert parallelism over 1 x 4, 2 x 2 and 2 x 4
GPUs. For each cluster, ``optimizers.placement`` fits round robin, greedy and ILP placements on a
synthetic routing trace and scores them on held-out tokens; each placement's per-link volumes and
load imbalance (:mod:`genz.ep_traffic`) then cost the EP all-to-all of every serving iteration, and a
closed loop of 64 users (1,024-token prompts, 256-token outputs) measures throughput and TPOT. Rows:

* ``standard``: today's EP (vLLM, DeepSpeed): uniform routing, a dispatch and a combine per layer;
* ``round_robin`` / ``greedy`` / ``ilp``: ExFlow's single all-to-all with that placement.

``a2a share`` is the all-to-all part of one request's GPU time (its prefill plus its share of the
decode iterations of 64 sequences); ``explained`` is the speedup over round robin that share predicts if only the all-to-all
time changed: ``1 / (1 - share_rr (1 - a2a_x / a2a_rr))``, next to the simulated one.

Assumptions (named): the trace is synthetic (affinity 0.8: a token follows its layer-to-layer expert
chain with chance 0.8, ExFlow observes strong affinity in trained models; 8 layers stand in for
Mixtral's 32, the metrics are per layer transition); the network is dual-rail HDR200 per 4-GPU node,
12.5 GB/s per GPU per direction (ExFlow's cluster; a GPU file's one HDR200 NIC per GPU would be 25);
a second run with hot experts (Zipf exponent 1) shows the busiest GPU's effect. What differs from
ExFlow: its models have 16-64 experts per layer on up to 16 nodes, where most of a token's hops cross
nodes; with Mixtral's 8 experts a GPU holds one or two, so the share of all-to-all in step time, and
with it the gain, is smaller; its baseline is DeepSpeed-MoE's two all-to-alls with its own kernels.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from genz.ep_traffic import EPTraffic, traffic_from_placement, uniform_traffic
from genz.serving import ContinuousBatching, Scenario, simulate
from genz.stepcost import EngineStepCost
from hwmodels.gpu import GPU
from hwmodels.registry import load_device
from hwmodels.spec import LinkSpec
from workloads import load_model
from workloads.requests import Fixed, PoissonArrivals, WorkloadSpec

__all__ = ["CLUSTERS", "exflow_device", "reproduce"]

MODEL = "mixtral-8x7b"
CLUSTERS = ((1, 4), (2, 2), (2, 4))
"""(nodes, GPUs per node) of the EP groups compared."""
AFFINITY, LAYERS, TOKENS, SEED = 0.8, 8, 2000, 0
USERS, PROMPT, OUTPUT, REQUESTS = 64, 1024, 256, 256
PAPER = "up to 2.2x throughput (16 experts, 8 GPUs), up to 67 % less cross-GPU routing latency [paper]"


def exflow_device():
    """A100-SXM4-80GB with ExFlow's network: dual-rail HDR200 per node of 4 GPUs = 12.5 GB/s per GPU."""
    gpu = load_device("a100-80gb-sxm")
    net = LinkSpec("ib-hdr200-dual-rail-per-4-gpus", 2 * 25e9 / 4, gpu.scale_out.latency_s,
                   {"bandwidth": "ExFlow (IPDPS'24): dual-rail HDR200 InfiniBand per node of 4 A100 "
                                 "[paper]; 2 x 25 GB/s shared by 4 GPUs"})
    return GPU(gpu.spec, gpu.profile, gpu.scale_up, net)


def _placements(nodes: int, gpn: int, skew: float, time_limit_s: float) -> dict:
    from optimizers.capacity.mip import quiet_stdout
    from optimizers.placement import Cluster, optimize_placement
    from workloads.routing import synthetic_routing

    m = load_model(MODEL)
    tr = synthetic_routing(TOKENS, LAYERS, m.experts, m.top_k, AFFINITY, SEED, skew=skew)
    with quiet_stdout():  # HiGHS prints a banner
        rep = optimize_placement(tr, Cluster(nodes=nodes, gpus_per_node=gpn), time_limit_s=time_limit_s,
                                 hidden_bytes=m.hidden * 2.0)
    payload = {"cluster": rep.cluster.to_dict(), "experts": m.experts,
               "methods": {k: v.to_dict() for k, v in rep.metrics.items()}}
    return {k: traffic_from_placement(payload, k) for k in ("round_robin", "greedy", "ilp")}


def _request_time(cost: EngineStepCost) -> float:
    """GPU seconds of one request's life: its prefill, and its share of OUTPUT decode iterations of
    USERS sequences (assumption: prefill and decode costs add, as with a saturated closed loop)."""
    return cost.step(((PROMPT, 0),), ())[0] + OUTPUT / USERS * cost.step((), (PROMPT + OUTPUT // 2,) * USERS)[0]


def _a2a_share(cost: EngineStepCost) -> tuple[float, float]:
    """(all-to-all seconds, their share) of one request's life (:func:`_request_time`)."""
    t = _request_time(cost)
    none = replace(cost.ep_traffic, intra_node_copies=0.0, inter_node_copies=0.0)
    t0 = _request_time(EngineStepCost(MODEL, cost.hardware, ep=cost.ep, ep_traffic=none))
    return t - t0, (t - t0) / t


def _serve(cost: EngineStepCost, requests: int) -> dict:
    sc = Scenario(cost=cost, scheduler=ContinuousBatching(max_num_seqs=256, max_num_batched_tokens=8192),
                  workload=WorkloadSpec(requests, PoissonArrivals(1.0), Fixed(PROMPT), Fixed(OUTPUT)),
                  concurrency=USERS, seed=SEED)
    s = simulate(sc).summary
    return {"output_tokens_per_s": s.output_tokens_per_s, "tpot_p50_s": s.tpot_s.p50, "ttft_p50_s": s.ttft_s.p50}


def reproduce(skews=(0.0, 1.0), time_limit_s: float = 10.0, clusters=CLUSTERS, requests: int = REQUESTS) -> list[dict]:
    """One row per (hot-expert skew, cluster, method)."""
    dev = exflow_device()
    m = load_model(MODEL)
    rows = []
    for skew in skews:
        for nodes, gpn in clusters:
            ep = nodes * gpn
            placed = _placements(nodes, gpn, skew, time_limit_s)
            # today's EP spreads experts like round robin: the same busiest GPU, two all-to-alls
            std = replace(uniform_traffic(ep, gpn, m.top_k), load_imbalance=placed["round_robin"].load_imbalance)
            traffics: dict[str, EPTraffic] = {"standard": std, **placed}
            base = None
            for method, tr in traffics.items():
                cost = EngineStepCost(MODEL, dev, ep=ep, ep_traffic=tr)
                a2a_s, share = _a2a_share(cost)
                row = {"skew": skew, "cluster": f"{nodes}x{gpn}", "method": method,
                       "cross_gpu_copies": tr.intra_node_copies + tr.inter_node_copies,
                       "inter_node_copies": tr.inter_node_copies, "load_imbalance": tr.load_imbalance,
                       "a2a_s": a2a_s, "a2a_share": share, **_serve(cost, requests)}
                if method == "standard":
                    base = row
                rows.append(row)
            rr = next(r for r in rows if r["skew"] == skew and r["cluster"] == f"{nodes}x{gpn}"
                      and r["method"] == "round_robin")
            for r in rows[-len(traffics):]:
                r["speedup_vs_standard"] = r["output_tokens_per_s"] / base["output_tokens_per_s"]
                r["speedup_vs_round_robin"] = r["output_tokens_per_s"] / rr["output_tokens_per_s"]
                r["explained_vs_round_robin"] = 1.0 / (1.0 - rr["a2a_share"] * (1.0 - r["a2a_s"] / rr["a2a_s"])) \
                    if rr["a2a_s"] > 0 else 1.0
    return rows


def _table(rows: list[dict]) -> str:
    out = [f"ExFlow-style placement in serving: {MODEL} bf16, A100-80GB nodes of 4 (12.5 GB/s network per GPU), "
           f"{USERS} closed-loop users, {PROMPT}/{OUTPUT} tokens. Paper: {PAPER}",
           f"{'skew':>4} {'cluster':>7} {'method':<12} {'GPU hops':>8} {'node hops':>9} {'imbal':>5} {'a2a share':>9} "
           f"{'tok/s':>7} {'TPOT p50':>8} {'vs std':>6} {'vs RR':>6} {'explained':>9}"]
    for r in rows:
        out.append(f"{r['skew']:>4g} {r['cluster']:>7} {r['method']:<12} {r['cross_gpu_copies']:>8.3f} "
                   f"{r['inter_node_copies']:>9.3f} {r['load_imbalance']:>5.2f} {r['a2a_share']:>9.1%} "
                   f"{r['output_tokens_per_s']:>7.0f} {r['tpot_p50_s'] * 1e3:>6.1f}ms {r['speedup_vs_standard']:>5.2f}x "
                   f"{r['speedup_vs_round_robin']:>5.2f}x {r['explained_vs_round_robin']:>8.2f}x")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    ap.add_argument("--time-limit", type=float, default=10.0, help="ILP solver limit per cluster, s")
    a = ap.parse_args(argv)
    rows = reproduce(time_limit_s=a.time_limit)
    print(json.dumps(rows, indent=1) if a.json else _table(rows))


if __name__ == "__main__":
    main()
