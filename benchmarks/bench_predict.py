"""Speed of the analytical engine: one predict() call, next to llm-analysis's infer(), and sweeps.

Run: python benchmarks/bench_predict.py [--configs 1048576] [--no-peer]
Goals (issue 14): one predict <= 0.1 ms median and >= 2x faster than llm-analysis in the same run;
a sweep of >= 1,000,000 configurations/s over a realistic grid with a peak of traced memory
<= 1.5x the result table. Figures are printed, not asserted (absolute times are noisy on a shared
machine; the ratio to the peer measured in the same run is the comparable figure).

The peer: llm-analysis (PyPI) is installed with ``pip install --target`` into a temporary folder
for this run only (it is not a dependency of genz-sim) and timed in a subprocess on its nearest
setup (Llama-2-7B, H100 SXM 80 GB, bf16, batch 8, prompt 1024, output 128); its own
dependencies (transformers, huggingface-hub) are only needed to fetch unknown models and are not
installed. Each timed predict asks a different (batch, prompt, output), so no cache can answer it;
what is kept between calls is the setting's plan (``genz/predict_one.py``: the compiled operator
table and the GPU's row-wise preparation for llama-3-8b on the H200), made by the first timed call.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc

import genz
from genz.sweep import sweep

PEER_SCRIPT = """
import json, logging, statistics, sys, time
from llm_analysis.analysis import infer
kw = dict(model_name="NousResearch_Llama-2-7b-hf", gpu_name="h100-sxm-80gb", dtype_name="w16a16e16",
          batch_size_per_gpu=8, seq_len=1024, num_tokens_to_generate=128, log_level="ERROR")
infer(**kw)
logging.disable(logging.CRITICAL)
samples = []
for i in range(int(sys.argv[1])):
    kw["batch_size_per_gpu"], kw["seq_len"] = 1 + i % 32, 512 + i % 1024
    t0 = time.perf_counter()
    infer(**kw)
    samples.append(time.perf_counter() - t0)
print(json.dumps(statistics.median(samples)))
"""


def peer_median(repeats: int) -> tuple[float | None, str]:
    """Median seconds of llm-analysis's infer(), installed for this run only; (None, why) if not."""
    with tempfile.TemporaryDirectory() as target:
        pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", target,
                              "llm-analysis==0.2.2", "fire<0.6", "termcolor", "six"], capture_output=True, text=True)
        if pip.returncode:
            return None, "llm-analysis could not be installed: " + (pip.stderr.strip().splitlines() or ["?"])[-1]
        run = subprocess.run([sys.executable, "-c", PEER_SCRIPT, str(repeats)], capture_output=True, text=True,
                             env={"PYTHONPATH": target, "PATH": "/usr/bin:/bin"}, cwd=target)
        if run.returncode:
            return None, "llm-analysis failed: " + (run.stderr.strip().splitlines() or ["?"])[-1]
        return float(json.loads(run.stdout.strip().splitlines()[-1])), "llm-analysis 0.2.2 infer()"


def time_predict(repeats: int) -> list[float]:
    rng = random.Random(0)
    cases = [(rng.randint(1, 64), rng.randint(128, 4096), rng.randint(16, 512)) for _ in range(repeats)]
    samples = []
    for b, p, o in cases:
        t0 = time.perf_counter()
        genz.predict("llama-3-8b", "h200", batch=b, prompt=p, output=o)
        samples.append(time.perf_counter() - t0)
    return samples


def timed_sweep(label: str, runs: int = 3, **kw) -> None:
    """Speed: the median of ``runs`` untraced sweeps. Memory: the traced peak of one more run
    (tracemalloc hooks every allocation and slows the Python around the arrays, so a traced run
    is not timed)."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        res = sweep(**kw)
        times.append(time.perf_counter() - t0)
        del res
    dt = statistics.median(times)
    tracemalloc.start()
    res = sweep(**kw)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    table = res.frame.memory_usage(deep=True).sum()
    print(f"{label}: {res.configurations:,} configurations in {dt:.3f} s (median of {runs}, range "
          f"{min(times):.3f}-{max(times):.3f} s) = {res.configurations / dt:,.0f} configurations/s; traced peak "
          f"{peak / 1e6:,.0f} MB = {peak / table:.2f}x the result table ({table / 1e6:,.0f} MB) "
          "(goals >= 1,000,000/s, <= 1.5x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", type=int, default=1 << 20, help="at least this many configurations in the big sweep")
    ap.add_argument("--repeats", type=int, default=2000, help="predict() calls to time")
    ap.add_argument("--no-peer", action="store_true", help="skip installing and timing llm-analysis")
    args = ap.parse_args()

    genz.predict()  # warm caches (presets, hardware files)
    samples = time_predict(args.repeats)
    med = statistics.median(samples)
    print(f"predict(): median {med * 1e3:.3f} ms, p90 {sorted(samples)[int(0.9 * len(samples))] * 1e3:.3f} ms "
          f"over {args.repeats} calls of different configurations (goal <= 0.1 ms)")
    if not args.no_peer:
        peer, what = peer_median(args.repeats)
        if peer is None:
            print(f"peer: {what}")
        else:
            print(f"peer {what}: median {peer * 1e3:.3f} ms; genz predict() / peer = {med / peer:.2f} "
                  f"(goal <= 0.5)")

    # realistic grid: every batch to 512, prompts in steps of 128 tokens to 8k, outputs in steps of 32
    batches = list(range(1, 513))
    prompts = list(range(128, 128 * 65, 128))
    outputs = [32 * i for i in range(1, 5)]
    while len(batches) * len(prompts) * len(outputs) < args.configs:
        outputs.append(32 * (len(outputs) + 1))
    sweep(["llama-3-8b"], ["h200"], batch=[1], prompt=[1], output=[1])
    timed_sweep("sweep", models=["llama-3-8b"], hardware=["h200"], batch=batches, prompt=prompts, output=outputs)
    timed_sweep("sweep over 2 models x 2 GPUs x 4 TP x 2 precisions", models=["llama-3-8b", "mixtral-8x7b"],
                hardware=["h100", "h200"], batch=batches[:128], prompt=prompts[:32], output=[128], tp=[1, 2, 4, 8],
                precision=["bf16", "fp8"])


if __name__ == "__main__":
    main()
