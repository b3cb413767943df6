"""Static (HuggingFace pipelines) versus continuous (vLLM) batching for the same model and GPU, next to
Martinez (2024), who measured vLLM 1.1x-27.4x faster than HF pipelines over a grid of batch sizes,
GPU counts and maximum output tokens (5 / 10 / 20), HumanEval prompts, 20 models on A100 and V100.

    python -m validation.reproductions.batching_gap

Two comparisons on llama-3-8b, one GPU (default H200, the GPU whose host overheads are calibrated
from measurements: validation/data/h200-2026-11-28), all requests queued at t = 0 (offline, as the
study ran its grid), then under Poisson load:

* ``sched_x``: scheduling alone. Static batches (take ``batch`` requests, pad prompts to the longest,
  decode until all are done, nobody joins) against vLLM's continuous batching with ``max_num_seqs =
  batch``, both on the vLLM runtime with CUDA graphs.
* ``hf_x``: what the study compared. The static side also runs HF transformers eagerly (runtime
  ``hf-transformers``: its kernel launches and measured host work per layer, no CUDA graphs).

Assumptions: HumanEval-like prompts, log-normal with mean 160 tokens and sigma 0.4 (HumanEval's
164 prompts are function signatures with docstrings, a few hundred tokens at most); every request
generates its maximum number of tokens (code rarely ends within 20 tokens); 512 requests per run.
"""

from __future__ import annotations

import argparse
import time
from functools import cache

import numpy as np
import pandas as pd

from genz.serving import ContinuousBatching, SaturationConfig, Scenario, StaticBatching, simulate
from workloads.requests import LogNormal, PoissonArrivals, Request, generate_trace

__all__ = ["offline", "online", "reproduce"]

MODEL = "llama-3-8b"
PROMPTS = LogNormal(160, 0.4, min_tokens=16, max_tokens=1024)


@cache
def _cost(hardware: str, runtime: str, cuda_graphs: bool):
    from genz.stepcost import EngineStepCost

    return EngineStepCost(MODEL, hardware, runtime=runtime, cuda_graphs=cuda_graphs)


def _sides(hardware: str, batch: int):
    """(name, cost, scheduler) of the three servers compared."""
    return [
        ("static", _cost(hardware, "vllm", True), StaticBatching(batch_size=batch)),
        ("hf", _cost(hardware, "hf-transformers", False), StaticBatching(batch_size=batch)),
        ("vllm", _cost(hardware, "vllm", True),
         ContinuousBatching(max_num_seqs=batch, max_num_batched_tokens=max(8192, batch))),
    ]


def _offline_trace(requests: int, max_new_tokens: int, seed: int) -> list[Request]:
    p = PROMPTS.sample(requests, np.random.default_rng(seed))
    return [Request(i, 0.0, int(x), max_new_tokens) for i, x in enumerate(p)]


def offline(hardware: str = "h200", batches=(1, 8, 64, 256, 1024), max_new_tokens=(5, 10, 20),
            requests: int = 512, seed: int = 0) -> pd.DataFrame:
    """Output tokens per second with every request queued at t = 0, per batch size and output cap."""
    rows = []
    for m in max_new_tokens:
        trace = _offline_trace(requests, m, seed)
        for b in batches:
            row = {"max_new_tokens": m, "batch": b, "load": "offline"}
            for name, cost, sched in _sides(hardware, b):
                s = simulate(Scenario(cost=cost, scheduler=sched, trace=trace)).summary
                assert s.completed == requests, s
                row[f"{name}_tok_s"] = s.output_tokens_per_s
            rows.append(row)
    return _ratios(pd.DataFrame(rows))


def online(hardware: str = "h200", batch: int = 64, max_new_tokens: int = 20, loads=(0.5, 1.0, 2.0, 4.0),
           requests: int = 512, seed: int = 0) -> pd.DataFrame:
    """Output tokens per second under Poisson arrivals at multiples of the HF server's offline request
    rate (below it both keep up and the ratio is 1; above it the static server falls behind)."""
    off = offline(hardware, (batch,), (max_new_tokens,), requests, seed)
    hf_rps = float(off.hf_tok_s.iloc[0]) / max_new_tokens
    rows = []
    for x in loads:
        trace = generate_trace(requests, PoissonArrivals(x * hf_rps), PROMPTS, max_new_tokens, seed=seed)
        row = {"max_new_tokens": max_new_tokens, "batch": batch, "load": f"{x:g}x HF capacity"}
        for name, cost, sched in _sides(hardware, batch):
            s = simulate(Scenario(cost=cost, scheduler=sched, trace=trace,
                                  saturation=SaturationConfig(stop=False))).summary
            row[f"{name}_tok_s"] = s.output_tokens_per_s
        rows.append(row)
    return _ratios(pd.DataFrame(rows))


def _ratios(df: pd.DataFrame) -> pd.DataFrame:
    df["sched_x"] = df.vllm_tok_s / df.static_tok_s
    df["hf_x"] = df.vllm_tok_s / df.hf_tok_s
    return df


def reproduce(hardware: str = "h200", requests: int = 512, seed: int = 0, quick: bool = False) -> pd.DataFrame:
    """The offline grid and the online loads in one frame."""
    if quick:
        return pd.concat([offline(hardware, (1, 16, 128), (5, 20), requests, seed),
                          online(hardware, 16, 20, (0.5, 3.0), requests, seed)], ignore_index=True)
    return pd.concat([offline(hardware, requests=requests, seed=seed),
                      online(hardware, requests=requests, seed=seed)], ignore_index=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="Static (HF pipelines) vs continuous (vLLM) batching")
    ap.add_argument("--hardware", default="h200")
    ap.add_argument("--requests", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    df = reproduce(a.hardware, a.requests, a.seed)
    print(f"Static vs continuous batching: {MODEL} on one {a.hardware}, {a.requests} HumanEval-like requests. "
          "*_tok_s = output tokens/s of static batching on the vLLM runtime (static), HF transformers eager "
          "with static batches (hf), vLLM continuous batching (vllm); sched_x = vllm / static, hf_x = vllm / hf.")
    print(df.to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    print(f"Martinez (2024) measured vLLM 1.1x-27.4x faster than HF pipelines. Here: hf_x "
          f"{df.hf_x.min():.2g}x-{df.hf_x.max():.3g}x, scheduling alone {df.sched_x.min():.2g}x-"
          f"{df.sched_x.max():.3g}x. [{time.perf_counter() - t0:.0f} s]")


if __name__ == "__main__":
    main()
