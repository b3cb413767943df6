"""Speed of the serving simulation: 100,000 requests through 8 replicas with continuous batching.

    python benchmarks/bench_serving.py               # the full run (goal: <= 60 s on 2 cores)
    python benchmarks/bench_serving.py --requests 20000 --profile   # cProfile's top functions

Workload: question-answering shape (log-normal prompts, mean 1000 tokens, and outputs, mean 200,
sigma 0.5), Poisson arrivals at about 70 % of the cluster's capacity. Cost: :class:`LinearStepCost`
with its defaults (assumption: roughly an 8B model on one H100-class GPU: 5 ms per iteration, 30 us
per new token, 40 ns per cached token read), memoized with the default buckets.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

from genz.serving import SLO, ContinuousBatching, LinearStepCost, Scenario, simulate
from workloads.requests import LogNormal, PoissonArrivals, WorkloadSpec


def scenario(requests: int, replicas: int, rate_per_replica: float, seed: int = 0) -> Scenario:
    return Scenario(
        cost=LinearStepCost(),
        scheduler=ContinuousBatching(max_num_seqs=256, max_num_batched_tokens=8192, chunked_prefill=True),
        replicas=replicas,
        router="least_outstanding_tokens",
        workload=WorkloadSpec(requests, PoissonArrivals(rate_per_replica * replicas),
                              LogNormal(1000, 0.5), LogNormal(200, 0.5)),
        slo=SLO(ttft_s=1.0, tpot_s=0.05),
        seed=seed,
    )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--replicas", type=int, default=8)
    ap.add_argument("--rate-per-replica", type=float, default=14.0, help="requests/s per replica")
    ap.add_argument("--profile", action="store_true", help="print cProfile's top 25 functions")
    a = ap.parse_args(argv)
    sc = scenario(a.requests, a.replicas, a.rate_per_replica)
    prof = cProfile.Profile() if a.profile else None
    t0 = time.perf_counter()
    if prof:
        prof.enable()
    r = simulate(sc)
    if prof:
        prof.disable()
    wall = time.perf_counter() - t0
    s = r.summary
    iterations = sum(m["hits"] + m["misses"] for m in r.memo.values())
    events = iterations + s.requests  # one simpy timeout per iteration and per arrival time
    print(f"requests {s.requests}, replicas {a.replicas}, completed {s.completed}, saturated {s.saturated}")
    print(f"simulated {s.duration_s:.1f} s: {s.throughput_rps:.1f} req/s, {s.output_tokens_per_s:.0f} output tok/s, "
          f"TTFT p50/p99 {s.ttft_s.p50:.3f}/{s.ttft_s.p99:.3f} s, TPOT p50/p99 {s.tpot_s.p50 * 1e3:.1f}/"
          f"{s.tpot_s.p99 * 1e3:.1f} ms, SLO attainment {s.slo_attainment:.3f}, preemptions {s.preemptions}")
    print(f"memo {r.memo}")
    print(f"wall {wall:.2f} s, {iterations} iterations, {events / wall:,.0f} events/s, "
          f"{s.output_tokens / wall:,.0f} simulated tokens/s")
    if prof:
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
