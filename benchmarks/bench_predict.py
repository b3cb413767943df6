"""Speed of the analytical engine: one predict() call and a vectorized sweep.

Run: python benchmarks/bench_predict.py [--configs 100000]
Goals (issue 2): one predict under 1 ms; a sweep of >= 100,000 configurations at over 50,000
configurations per second on a 2-core machine. Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time

import genz
from genz.sweep import sweep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", type=int, default=100_000, help="at least this many sweep configurations")
    ap.add_argument("--repeats", type=int, default=2000, help="predict() calls to time")
    args = ap.parse_args()

    genz.predict()  # warm caches (presets, hardware files)
    samples = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        genz.predict("llama-3-8b", "h200", batch=8, prompt=1024, output=128)
        samples.append(time.perf_counter() - t0)
    med = statistics.median(samples)
    print(f"predict(): median {med * 1e3:.3f} ms, p90 {sorted(samples)[int(0.9 * len(samples))] * 1e3:.3f} ms "
          f"over {args.repeats} calls (goal < 1 ms)")

    batches = list(range(1, 513))
    prompts = list(range(128, 128 * 65, 128))
    outputs = [64, 128, 256, 512]
    while len(batches) * len(prompts) * len(outputs) < args.configs:
        outputs.append(outputs[-1] * 2)
    sweep(["llama-3-8b"], ["h200"], batch=[1], prompt=[1], output=[1])
    t0 = time.perf_counter()
    res = sweep(["llama-3-8b"], ["h200"], batch=batches, prompt=prompts, output=outputs)
    dt = time.perf_counter() - t0
    print(f"sweep: {res.configurations:,} configurations in {dt:.3f} s = {res.configurations / dt:,.0f} "
          f"configurations/s (goal > 50,000/s)")
    t0 = time.perf_counter()
    res = sweep(["llama-3-8b", "mixtral-8x7b"], ["h100", "h200"], batch=batches[:128], prompt=prompts[:32],
                output=[128], tp=[1, 2, 4, 8], precision=["bf16", "fp8"])
    dt = time.perf_counter() - t0
    print(f"sweep over 2 models x 2 GPUs x 4 TP x 2 precisions: {res.configurations:,} configurations in "
          f"{dt:.3f} s = {res.configurations / dt:,.0f}/s")


if __name__ == "__main__":
    main()
