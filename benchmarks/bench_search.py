"""Speed of the optimizers: knob-search evaluations (serial, process pool, Ray), capacity bisection,
the capacity MIP, and the hyperparameter-study reproduction.

    python benchmarks/bench_search.py             # everything but Ray (about a minute on 2 cores)
    python benchmarks/bench_search.py --ray       # also a local Ray instance
    python benchmarks/bench_search.py --trials 64 --workers 4

Workload: llama-3-8b on an H100, the chatbot use case (2048 prompt / 128 output tokens), 200
requests per evaluation, offline; the grid varies max_num_seqs and max_num_batched_tokens.
"""

from __future__ import annotations

import argparse
import os
import random
import time


def _space(trials: int):
    from optimizers.search import SearchSpace

    seqs = (8, 16, 32, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
    budgets = (1024, 2048, 4096, 8192, 16384, 32768)
    n_b = max(1, min(len(budgets), trials // len(seqs)))
    return SearchSpace(max_num_seqs=seqs, max_num_batched_tokens=budgets[-n_b:], hardware=("h100",))


def bench_search(trials: int, workers: int, ray: bool) -> None:
    from optimizers.search import ServingObjective, search

    ob = ServingObjective("llama-3-8b", use_case="chatbot", num_requests=200)
    space = _space(trials)
    runs = [("serial", 1, None), (f"process pool x{workers}", workers, None)]
    if ray:
        runs.append((f"ray local x{workers}", workers, "local"))
    base = None
    for name, w, addr in runs:
        t0 = time.perf_counter()
        r = search(space, ob, sampler="grid", workers=w, ray_address=addr)
        wall = time.perf_counter() - t0
        sim = sum(t["wall_s"] for t in r.trials)
        base = base or wall
        print(f"grid search, {name}: {len(r.trials)} trials ({r.evaluations} simulations) in {wall:.2f} s = "
              f"{wall / r.evaluations * 1e3:.0f} ms per evaluation (mean simulation {sim / len(r.trials) * 1e3:.0f} ms); "
              f"speed-up {base / wall:.2f}x; best {r.best['value']:.0f} tok/s vs baseline {r.baseline['value']:.0f} "
              f"({r.improvement:+.1%})")


def bench_capacity() -> None:
    from optimizers.search import SearchSpace, ServingObjective

    for uc in ("chatbot", "code_generation"):
        ob = ServingObjective("llama-3-8b", use_case=uc, num_requests=200, find_capacity=True)
        t0 = time.perf_counter()
        ev = ob(SearchSpace(hardware=("h100",)).baseline())
        m = ev["metrics"]
        print(f"capacity bisection, {uc} on 1 x h100: {m['capacity_rps']:.2f} req/s after "
              f"{m['capacity_evaluations']} simulations in {time.perf_counter() - t0:.2f} s")


def bench_mip(candidates: int, use_cases: int) -> None:
    from optimizers.capacity import Candidate, HardwareOption, Limits, solve_mip

    rng = random.Random(0)
    hws = [f"gpu{k}" for k in range(6)]
    cat = {h: HardwareOption(h, rng.uniform(1, 6), rng.uniform(300, 1000)) for h in hws}
    cands = [Candidate(hws[i % len(hws)], 2 ** (i % 4)) for i in range(candidates)]
    cap = [[rng.uniform(0.5, 40) * c.tp ** 0.9 for _ in range(use_cases)] for c in cands]
    rates = [rng.uniform(5, 200) for _ in range(use_cases)]
    for lim in (Limits(), Limits(racks=20, power_w=400e3)):
        t0 = time.perf_counter()
        sol = solve_mip(cands, rates, cap, cat, lim)
        print(f"capacity MIP, {candidates} candidates x {use_cases} use cases, limits {lim.active() or 'none'}: "
              f"{sol.status} in {time.perf_counter() - t0:.2f} s (${sol.cost_usd_per_hour:,.0f}/h, "
              f"{sum(sol.gpus.values())} GPUs)")


def bench_study() -> None:
    from validation.reproductions.hyperparameter_study import run_study

    t0 = time.perf_counter()
    res = run_study()
    n = sum(g.size for g in res.grids.values())
    print(f"hyperparameter study: {len(res.grids)} landscapes, {n} (batch, tp) points in "
          f"{time.perf_counter() - t0:.2f} s")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=36, help="grid size of the search benchmark")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--ray", action="store_true", help="also run the grid on a local Ray instance")
    a = ap.parse_args(argv)
    bench_search(a.trials, a.workers, a.ray)
    bench_capacity()
    bench_mip(120, 6)
    bench_study()


if __name__ == "__main__":
    main()
