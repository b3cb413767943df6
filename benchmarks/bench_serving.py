"""Speed of the serving simulation: 100,000 requests through 8 replicas with continuous batching.

    python benchmarks/bench_serving.py               # the full run on the linear test double
    python benchmarks/bench_serving.py --requests 20000 --profile   # cProfile's top functions
    python benchmarks/bench_serving.py --engine      # costed by the analytical engine (goal: <= 10 s)
    python benchmarks/bench_serving.py --engine --check-error 5000  # memo buckets vs exact costs

Workload: question-answering shape (log-normal prompts, mean 1000 tokens, and outputs, mean 200,
sigma 0.5), Poisson arrivals at about 70 % of the cluster's capacity. Cost: :class:`LinearStepCost`
with its defaults (assumption: roughly an 8B model on one H100-class GPU: 5 ms per iteration, 30 us
per new token, 40 ns per cached token read), memoized with the default buckets. With ``--engine``:
:class:`~genz.stepcost.EngineStepCost` of llama-3-8b (bf16) on one H100 SXM per replica, memoized
with ``--memo`` buckets; ``--check-error N`` replays N requests with those buckets and exactly
(buckets 1, 1) and prints the relative differences of the summary's latencies and throughput.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import time

from genz.serving import (
    SLO,
    ContinuousBatching,
    LinearStepCost,
    MemoConfig,
    MemoizedStepCost,
    Scenario,
    simulate,
)
from workloads.requests import LogNormal, PoissonArrivals, WorkloadSpec


def scenario(requests: int, replicas: int, rate_per_replica: float, seed: int = 0, cost=None,
             memo: MemoConfig | None = None) -> Scenario:
    return Scenario(
        cost=cost if cost is not None else LinearStepCost(),
        scheduler=ContinuousBatching(max_num_seqs=256, max_num_batched_tokens=8192, chunked_prefill=True),
        replicas=replicas,
        router="least_outstanding_tokens",
        workload=WorkloadSpec(requests, PoissonArrivals(rate_per_replica * replicas),
                              LogNormal(1000, 0.5), LogNormal(200, 0.5)),
        slo=SLO(ttft_s=1.0, tpot_s=0.05),
        seed=seed,
        memo=memo or MemoConfig(),
    )


class _Recorder:
    """Passes steps through to ``model`` and records each distinct iteration asked for."""

    def __init__(self, model):
        self.model, self.seen = model, set()

    def __getattr__(self, name):
        if name in ("model", "seen"):
            raise AttributeError(name)
        return getattr(self.model, name)

    def step(self, prefill_chunks, decode_contexts):
        self.seen.add((tuple(prefill_chunks), len(decode_contexts), sum(decode_contexts)))
        return self.model.step(prefill_chunks, decode_contexts)


def check_error(requests: int, replicas: int, rate: float, cost, memo: MemoConfig, sample: int = 3000) -> None:
    """Error of the memo buckets: per iteration (the bucketed cost of iterations the exact run
    met, against their exact cost) and on the summary of the same trace run both ways."""
    runs = {}
    rec = _Recorder(cost)
    for label, m, c in (("bucketed", memo, cost), ("exact", MemoConfig(1, 1), rec)):
        t0 = time.perf_counter()
        runs[label] = simulate(scenario(requests, replicas, rate, cost=c, memo=m)).summary
        print(f"{label:8s} {m}: {time.perf_counter() - t0:.1f} s")
    keys = sorted(rec.seen)
    rng = random.Random(0)
    keys = rng.sample(keys, min(sample, len(keys)))
    bucketed = MemoizedStepCost(cost, memo.prefill_bucket, memo.context_bucket)
    errs = []
    for pk, n, ctx in keys:
        q, r = divmod(ctx, n) if n else (0, 0)
        exact = cost.step(pk, (q + 1,) * r + (q,) * (n - r))[0]
        errs.append(abs(bucketed.cost(pk, n, ctx)[0] / exact - 1))
    print(f"per-iteration time error over {len(keys)} of the {len(rec.seen)} distinct iterations of the exact run: "
          f"max {100 * max(errs):.4f} %, mean {100 * sum(errs) / len(errs):.4f} %")
    b, e = runs["bucketed"], runs["exact"]
    print("summary, bucketed vs exact (tail percentiles of a queue move with any perturbation of the order):")
    for name in ("ttft_s", "tpot_s", "e2e_s"):
        for q in ("mean", "p50", "p90", "p99"):
            x, y = getattr(getattr(b, name), q), getattr(getattr(e, name), q)
            print(f"  {name} {q}: {x:.6g} vs {y:.6g} ({100 * (x / y - 1):+.3f} %)")
    for name in ("throughput_rps", "output_tokens_per_s", "energy_j"):
        x, y = getattr(b, name), getattr(e, name)
        print(f"  {name}: {x:.6g} vs {y:.6g} ({100 * (x / y - 1):+.3f} %)")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--replicas", type=int, default=8)
    ap.add_argument("--rate-per-replica", type=float, default=14.0, help="requests/s per replica")
    ap.add_argument("--profile", action="store_true", help="print cProfile's top 25 functions")
    ap.add_argument("--engine", action="store_true", help="cost iterations with EngineStepCost (llama-3-8b, h100-sxm)")
    ap.add_argument("--memo", default="2,256",
                    help="prefill and context buckets of the step-cost memo (default: MemoConfig's, as genz simulate)")
    ap.add_argument("--check-error", type=int, metavar="N", default=0,
                    help="compare N requests with --memo buckets against exact costs, then stop")
    a = ap.parse_args(argv)
    pb, cb = (int(x) for x in a.memo.split(","))
    memo = MemoConfig(pb, cb)
    cost = None
    if a.engine:
        from genz.stepcost import EngineStepCost

        cost = EngineStepCost("llama-3-8b", "h100-sxm")
    if a.check_error:
        check_error(a.check_error, a.replicas, a.rate_per_replica, cost or LinearStepCost(), memo)
        return
    sc = scenario(a.requests, a.replicas, a.rate_per_replica, cost=cost, memo=memo)
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
    print(f"cost {'EngineStepCost(llama-3-8b, h100-sxm)' if a.engine else 'LinearStepCost()'}, memo {memo}")
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
