"""Reproduce the hyperparameter study of Martinez (2024) for HuggingFace pipelines on the model.

The study measured throughput over batch size (1 ... 1024, powers of two) x GPU count (tensor
parallel 1, 2, 4, 8) x maximum output tokens (5, 10, 20) for 20 models on A100 and V100 (HumanEval
prompts), found irregular landscapes with distinct peaks, and that the best settings for one GPU
type lose throughput on the other: re-tuning after a GPU change gained +9.16 % (V100 -> A100) and
+13.7 % (A100 -> V100) for HF pipelines (docs/reference-results.md) **[paper]**.

Here each landscape point is the analytical engine's time to run the whole prompt set through a
static-batching pipeline: prompts in dataset order, cut into consecutive batches of ``batch``; each
batch is padded to its longest prompt, prefilled, and decoded for ``max_new_tokens - 1`` steps
(:func:`genz.predict.evaluate`, one vectorized call per model x GPU x tp x output length).
Throughput = generated tokens / total time. A batch size is out of memory when any of its batches
does not fit (weights + padded KV cache + activations > GPU memory).

Assumptions (not from the paper):

* 164 prompts (HumanEval's size) with log-normal lengths, mean 130 tokens, log-space sigma 0.5,
  clipped to 16 ... 1024 (HumanEval prompts are a few hundred characters; about 130 Llama tokens on
  average is our estimate, not a measured figure).
* Every request generates exactly ``max_new_tokens`` (code completions rarely stop within 20 tokens).
* fp16 (the V100 has no bf16), the hf-transformers runtime (eager, as HF ``generate`` runs).
* The models are the 7B-70B presets shipped here (11, against the paper's 20).
* After a GPU change the transferred setting is kept if it fits; if it runs out of memory, the
  batch is halved until it fits at the same tp, then at the next larger tp (what a user would do);
  settings with nothing fitting count as "lost" and are reported apart.

Run ``python -m validation.reproductions.hyperparameter_study`` for the figures (``--json`` for all numbers).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from genz.parallel import check_parallelism
from genz.predict import evaluate
from genz.runtime import load_runtime
from hwmodels.registry import load_device
from workloads import Precision, load_model

__all__ = ["PAPER_GAINS", "StudySetup", "landscape", "prompt_lengths", "retune_gains", "run_study"]

#: re-tuning gains the paper reports for HF pipelines, by direction (tuned on -> moved to)
PAPER_GAINS = {("v100-sxm2", "a100-80gb-sxm"): 0.0916, ("a100-80gb-sxm", "v100-sxm2"): 0.137}

MODELS = ("llama-2-7b", "mistral-7b", "qwen2.5-7b", "opt-6.7b", "llama-3-8b", "llama-2-13b", "mixtral-8x7b",
          "opt-66b", "llama-2-70b", "llama-3-70b", "qwen2.5-72b")


@dataclass(frozen=True)
class StudySetup:
    """The grid and the workload (defaults: the paper's grid, our assumed HumanEval lengths)."""

    models: tuple[str, ...] = MODELS
    hardware: tuple[str, str] = ("a100-80gb-sxm", "v100-sxm2")
    batch_sizes: tuple[int, ...] = tuple(2 ** k for k in range(11))
    tp: tuple[int, ...] = (1, 2, 4, 8)
    max_new_tokens: tuple[int, ...] = (5, 10, 20)
    num_prompts: int = 164
    prompt_mean: float = 130.0
    prompt_sigma: float = 0.5
    precision: str = "fp16"
    runtime: str = "hf-transformers"
    cuda_graphs: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if len(self.hardware) != 2:
            raise ValueError(f"hardware: the study compares two GPU types, got {list(self.hardware)}")
        for name in ("models", "batch_sizes", "tp", "max_new_tokens"):
            if not getattr(self, name):
                raise ValueError(f"{name}: the study grid is empty")
        for name in ("batch_sizes", "tp", "max_new_tokens"):
            if any(not isinstance(v, int) or v < 1 for v in getattr(self, name)):
                raise ValueError(f"{name}: values must be integers >= 1, got {list(getattr(self, name))}")


def prompt_lengths(setup: StudySetup) -> np.ndarray:
    """The prompt set's lengths in dataset order (seeded log-normal; see the module docstring)."""
    rng = np.random.default_rng(setup.seed)
    mu = math.log(setup.prompt_mean) - setup.prompt_sigma ** 2 / 2
    return np.clip(np.rint(rng.lognormal(mu, setup.prompt_sigma, setup.num_prompts)), 16, 1024).astype(int)


def landscape(setup: StudySetup, model: str, hardware: str, max_new_tokens: int) -> np.ndarray:
    """Throughput (generated tokens/s) over ``tp`` (rows) x ``batch_sizes`` (columns); NaN where the
    split is impossible for the model or a batch runs out of memory."""
    m = load_model(model)
    dev = load_device(hardware)
    prec = Precision.parse(setup.precision)
    rt = load_runtime(setup.runtime)
    lengths = prompt_lengths(setup)
    n_all = len(lengths)
    chunk_b, chunk_n, chunk_p = [], [], []
    for k, b in enumerate(setup.batch_sizes):
        for s in range(0, n_all, b):
            part = lengths[s:s + b]
            chunk_b.append(k)
            chunk_n.append(len(part))
            chunk_p.append(int(part.max()))
    chunk_b = np.asarray(chunk_b)
    out = np.full((len(setup.tp), len(setup.batch_sizes)), np.nan)
    for r, tp in enumerate(setup.tp):
        try:
            check_parallelism(m, tp, 1, 1)
        except ValueError:
            continue
        res = evaluate(m, dev, prec, np.asarray(chunk_n, float), np.asarray(chunk_p, float),
                       np.full(len(chunk_n), float(max_new_tokens)), tp=tp, cuda_graphs=setup.cuda_graphs, runtime=rt)
        for k in range(len(setup.batch_sizes)):
            rows = chunk_b == k
            if not res["fits"][rows].all():
                continue
            out[r, k] = n_all * max_new_tokens / res["e2e_s"][rows].sum()
    return out


def _fallback(grid: np.ndarray, rc: tuple[int, int]) -> tuple[int, int] | None:
    """Where a transferred setting lands: itself if it fits; else the largest smaller batch at the
    same tp; else the same search at the next larger tp (more GPUs for the memory)."""
    r0, k0 = rc
    for r in range(r0, grid.shape[0]):
        for k in range(k0, -1, -1):
            if not np.isnan(grid[r, k]):
                return r, k
    return None


def _best(grid: np.ndarray) -> tuple[int, int] | None:
    if np.all(np.isnan(grid)):
        return None
    return tuple(int(x) for x in np.unravel_index(np.nanargmax(grid), grid.shape))


@dataclass
class Transfer:
    """One (model, output length): the best setting on ``source``, what it gives on ``target``, and
    the best on ``target``. ``gain`` = best / transferred - 1 (None when lost)."""

    model: str
    max_new_tokens: int
    source: str
    target: str
    source_best: dict | None
    transferred: dict | None
    target_best: dict | None
    fallback: bool = False
    gain: float | None = None
    note: str = ""


def retune_gains(setup: StudySetup, grids: dict, source: str, target: str, per_gpu: bool = False) -> list[Transfer]:
    """Tune on ``source``, move to ``target`` (see :func:`_fallback` when it does not fit there),
    re-tune: one :class:`Transfer` per model and output length. ``grids[(model, hardware, out)]`` are :func:`landscape` arrays; ``per_gpu`` ranks by
    throughput per GPU (tokens/s / tp) instead of throughput."""
    scale = np.asarray(setup.tp, float)[:, None] if per_gpu else 1.0
    out = []
    for model in setup.models:
        for o in setup.max_new_tokens:
            gs = grids[(model, source, o)] / scale
            gt = grids[(model, target, o)] / scale
            bs, bt = _best(gs), _best(gt)

            def point(grid, rc):
                return None if rc is None else {"tp": setup.tp[rc[0]], "batch": setup.batch_sizes[rc[1]],
                                                "throughput": float(grid[rc])}

            t = Transfer(model, o, source, target, point(gs, bs), None, point(gt, bt))
            if bs is None or bt is None:
                t.note = f"no setting fits on {source if bs is None else target}"
                out.append(t)
                continue
            rc = _fallback(gt, bs)
            if rc is None:
                t.note = f"tp {setup.tp[bs[0]]} or more cannot run on {target} at any batch"
                out.append(t)
                continue
            t.fallback = rc != bs
            t.transferred = point(gt, rc)
            t.gain = float(gt[bt] / gt[rc] - 1.0)
            out.append(t)
    return out


def _stats(ts: Sequence[Transfer]) -> dict:
    g = [t.gain for t in ts if t.gain is not None]
    return {"settings": len(ts), "compared": len(g), "lost": len(ts) - len(g),
            "fallbacks": sum(t.fallback for t in ts if t.gain is not None),
            "mean_gain": statistics.fmean(g) if g else None, "median_gain": statistics.median(g) if g else None,
            "max_gain": max(g) if g else None, "improved": sum(x > 1e-9 for x in g),
            "mean_gain_without_fallbacks": (statistics.fmean([t.gain for t in ts if t.gain is not None and not t.fallback])
                                            if any(t.gain is not None and not t.fallback for t in ts) else None)}


def _peaks(grid: np.ndarray) -> int:
    """Local maxima of the landscape (4-neighbourhood, NaN excluded): the 'distinct peaks'."""
    n = 0
    rows, cols = grid.shape
    for r in range(rows):
        for c in range(cols):
            v = grid[r, c]
            if np.isnan(v):
                continue
            nb = [grid[rr, cc] for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1))
                  if 0 <= rr < rows and 0 <= cc < cols and not np.isnan(grid[rr, cc])]
            if nb and all(v > x for x in nb):
                n += 1
    return n


@dataclass
class StudyResult:
    setup: StudySetup
    grids: dict
    transfers: dict = field(default_factory=dict)   # (metric, source, target) -> list[Transfer]
    summary: dict = field(default_factory=dict)     # (metric, source, target) -> stats

    def to_payload(self) -> dict:
        a, b = self.setup.hardware
        return {
            "setup": asdict(self.setup), "paper_gains": {f"{s}->{t}": g for (s, t), g in PAPER_GAINS.items()},
            "landscapes": [{"model": m, "hardware": h, "max_new_tokens": o, "tp": list(self.setup.tp),
                            "batch_sizes": list(self.setup.batch_sizes),
                            "throughput_tok_s": [[None if np.isnan(x) else float(x) for x in row] for row in g],
                            "peaks": _peaks(g)} for (m, h, o), g in self.grids.items()],
            "summary": {f"{metric}:{s}->{t}": v for (metric, s, t), v in self.summary.items()},
            "transfers": {f"{metric}:{s}->{t}": [asdict(x) for x in v] for (metric, s, t), v in self.transfers.items()},
            "hardware": [a, b],
        }


def run_study(setup: StudySetup | None = None) -> StudyResult:
    """Every landscape, then the re-tuning gains in both directions, by throughput and per GPU."""
    setup = setup or StudySetup()
    grids = {}
    for model in setup.models:
        for hw in setup.hardware:
            for o in setup.max_new_tokens:
                grids[(model, hw, o)] = landscape(setup, model, hw, o)
    res = StudyResult(setup, grids)
    a, b = setup.hardware
    for metric in ("throughput", "throughput_per_gpu"):
        for s, t in ((b, a), (a, b)):
            ts = retune_gains(setup, grids, s, t, per_gpu=metric == "throughput_per_gpu")
            res.transfers[(metric, s, t)] = ts
            res.summary[(metric, s, t)] = _stats(ts)
    return res


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:+.2f} %"


def report_lines(res: StudyResult) -> list[str]:
    setup = res.setup
    a, b = setup.hardware
    lines = [f"HF-pipelines hyperparameter study on the model: {len(setup.models)} models x {a}, {b} x tp "
             f"{list(setup.tp)} x batch {setup.batch_sizes[0]}..{setup.batch_sizes[-1]} x max_new_tokens "
             f"{list(setup.max_new_tokens)} ({setup.num_prompts} prompts, {setup.precision}, {setup.runtime})"]
    peaks = [_peaks(g) for g in res.grids.values() if not np.all(np.isnan(g))]
    interior = sum(1 for g in res.grids.values() if (bb := _best(g)) is not None and 0 < bb[1] < g.shape[1] - 1
                   and not np.isnan(g[bb[0], bb[1] + 1]))
    lines.append(f"landscapes: {len(peaks)} with a fitting setting; local maxima per landscape: mean "
                 f"{statistics.fmean(peaks):.2f}, max {max(peaks)}; best batch strictly inside the fitting range in "
                 f"{interior} of {len(peaks)} (throughput falls past it: padding and the last partial batch)")
    for metric in ("throughput", "throughput_per_gpu"):
        lines.append(f"re-tuning after a GPU change, ranked by {metric.replace('_', ' ')}:")
        for s, t in ((b, a), (a, b)):
            st = res.summary[(metric, s, t)]
            paper = PAPER_GAINS.get((s, t))
            ref = f"   paper (HF pipelines, throughput): {_pct(paper)}" if metric == "throughput" and paper else ""
            lines.append(f"  tuned on {s} -> run on {t}: mean gain {_pct(st['mean_gain'])}, median "
                         f"{_pct(st['median_gain'])}, max {_pct(st['max_gain'])}; improved {st['improved']} of "
                         f"{st['compared']} settings ({st['fallbacks']} needed a smaller batch or more GPUs to fit, "
                         f"{st['lost']} lost){ref}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Reproduce Martinez (2024)'s HF-pipelines re-tuning finding on the model.")
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated model presets")
    ap.add_argument("--json", action="store_true", help="print every landscape and transfer as JSON")
    ap.add_argument("--landscape", default=None, metavar="MODEL", help="also print this model's landscapes")
    a = ap.parse_args(argv)
    setup = StudySetup(models=tuple(m.strip() for m in a.models.split(",") if m.strip()))
    res = run_study(setup)
    if a.json:
        print(json.dumps(res.to_payload(), indent=1))
        return 0
    print("\n".join(report_lines(res)))
    if a.landscape:
        for (m, h, o), g in res.grids.items():
            if m != a.landscape:
                continue
            print(f"\n{m} on {h}, max_new_tokens {o}: throughput (tok/s), rows tp {list(setup.tp)}, "
                  f"columns batch {list(setup.batch_sizes)}")
            for tp, row in zip(setup.tp, g, strict=True):
                print(f"  tp {tp}: " + " ".join("   oom" if np.isnan(x) else f"{x:6.0f}" for x in row))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
