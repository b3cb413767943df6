"""FlightLLM (Zeng et al., FPGA 2024): U280 and VHK158 decode and prefill times, end-to-end
throughput, energy efficiency against GPUs and the bandwidth gain of always-on-chip decode.

All runs: ``llama-2-7b`` at batch 1, precision ``w4a8kv8`` (the artifact's INT4 weight loads, INT8
activations and KV cache), the paper's sparsity (q and k projections at 0.7 density), every
mechanism on unless a figure says otherwise. A decode step "at KV length L" attends L cached
tokens (genz ``decode(1, L - 1)`` reads L keys). End-to-end throughput follows the artifact's
``run.py``: decode tokens / the sum of per-step times, each step run at its 16-token bucket
(``length_adaptive``), prefill excluded.

Energy efficiency (tokens per joule) of FlightLLM on the U280 is the model's decode throughput
over the board power (45 W, Figure 1). The GPU side is the paper's own measurement where the
reference has it: V100S, Figure 1's 45 tokens/s at 220 W; A100, the artifact's vLLM throughput
(89.4 tokens/s for [128, 512]) at the power the A100 model of ``hwmodels`` draws at that rate
(idle power + its dynamic energy per decode step x steps per second).

Kinds: no FlightLLM parameter is chosen from a FlightLLM figure (every board number comes from a
data sheet or the artifact's configuration), so :func:`fits` is empty and every figure is
``predicted``, except the two decode bandwidth utilizations, which restate the artifact's
within-/across-channel efficiencies (0.7, 0.35): ``by construction``.

Mechanism (ablation) figures, each the device with one switch off against it on:

- sparse DSP chain: the compute time of the sparse q and k projections (density 0.7, the
  artifact's) with a fixed 16-DSP chain over the configurable one (prefill, compute-bound);
- length-adaptive compilation: instructions stored for every prompt and context length up to
  LLaMA2's 4,096 tokens, one program per length over one per bucket (instruction-count model);
- VHK158 over A100: the model's mean VHK158 end-to-end throughput over the four [prefill, decode]
  cases against the paper's own A100 vLLM throughputs for the same cases.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from genz import build_table, decode, prefill, step_costs
from hwmodels.flightllm import FlightLLM, load_fpga
from hwmodels.gpu import load_device
from validation.papers.figures import Figure, Fit, LeaveOneOut
from workloads import load_model

PAPER = "FlightLLM"
MODEL = "llama-2-7b"
PRECISION = "w4a8kv8"
V100_TOKENS_S, V100_POWER_W = 45.0, 220.0  # [paper] Figure 1
A100_VLLM_TOKENS_S = 89.4  # [paper] artifact profile/README.md, GPU-opt, [128, 512]
A100_MODEL = "a100-40gb-sxm"
A100_VLLM_CASES = {(128, 512): 89.4, (128, 1536): 87.5, (512, 512): 87.1, (512, 1536): 87.1}  # [paper] table
CONTEXT = 4096  # [paper-independent] LLaMA2's context length (config.json max_position_embeddings)


def _device(board: str | FlightLLM, switches: dict) -> FlightLLM:
    return load_fpga(board, **switches) if isinstance(board, str) else board


def decode_step_s(board: str | FlightLLM, kv_lengths, **switches) -> np.ndarray:
    """Seconds of one batch-1 decode step attending ``kv_lengths`` cached tokens (array)."""
    kv = np.atleast_1d(np.asarray(kv_lengths, dtype=float))
    t = build_table(load_model(MODEL), decode(np.ones_like(kv), kv - 1), PRECISION)
    return step_costs(_device(board, switches), t)["time"]


def prefill_s(board: str | FlightLLM, tokens, **switches) -> np.ndarray:
    """Seconds of prefilling ``tokens`` (array) at batch 1."""
    p = np.atleast_1d(np.asarray(tokens, dtype=float))
    t = build_table(load_model(MODEL), prefill(np.ones_like(p), p), PRECISION)
    return step_costs(_device(board, switches), t)["time"]


@lru_cache(maxsize=32)
def decode_throughput(board: str | FlightLLM, prompt: int, output: int) -> float:
    """Tokens per second over ``output`` decode steps after ``prompt`` tokens (artifact run.py)."""
    steps = decode_step_s(board, np.arange(prompt + 1, prompt + output + 1))
    return output / float(steps.sum())


def decode_bandwidth_utilization(board: str, **switches) -> float:
    """Share of HBM peak a memory-bound decode GEMV reaches (LLaMA2-7B gate/up, INT8, dense)."""
    dev = load_fpga(board, sparsity=None, **switches)
    t = build_table(load_model(MODEL), decode(1, 127), "w8a8kv8")
    i = list(t.name).index("gate_up_proj")
    c = dev.cost(t)
    return float(dev.hbm_bytes(t)[i, 0] / c.time_s[i, 0] / dev.spec.hbm_bandwidth)


def a100_tokens_per_joule() -> float:
    """A100 at the paper's vLLM throughput, drawing idle power plus the model's dynamic energy."""
    gpu = load_device(A100_MODEL)
    t = build_table(load_model(MODEL), decode(1, 128 + 256), "fp16")
    dyn = float(step_costs(gpu, t)["energy"][0])
    power = gpu.idle_power_w + dyn * A100_VLLM_TOKENS_S
    return A100_VLLM_TOKENS_S / power


def sparse_chain_gain(board: str = "vhk158", density: float = 0.7, tokens: int = 512) -> float:
    """Compute-time ratio of a sparse projection without / with the configurable sparse DSP chain."""
    t = build_table(load_model(MODEL), prefill(1, tokens), PRECISION)
    i = list(t.name).index("qkv_proj")
    times = []
    for chain in (False, True):
        dev = load_fpga(board, sparse_dsp_chain=chain, sparsity={"qkv_proj": density})
        times.append(float(dev.cost(t).time_s[i, 0]))
    return times[0] / times[1]


def instruction_storage_ratio(max_len: int = CONTEXT) -> float:
    """Instruction storage without / with length-adaptive compilation for lengths up to ``max_len``."""
    from hwmodels.flightllm import instruction_storage_bytes

    return instruction_storage_bytes(max_len, False) / instruction_storage_bytes(max_len, True)


def vhk158_over_a100(board: str | FlightLLM = "vhk158") -> float:
    """Mean model VHK158 throughput / mean paper A100 (vLLM) throughput over the table's cases."""
    ours = np.mean([decode_throughput(board, p, o) for p, o in A100_VLLM_CASES])
    return float(ours / np.mean(list(A100_VLLM_CASES.values())))


def fits() -> list[Fit]:
    """No FlightLLM parameter is chosen from a FlightLLM figure (see the module docstring)."""
    return []


def leave_one_out() -> list[LeaveOneOut]:
    return []


def figures(u280: str | FlightLLM = "u280", vhk158: str | FlightLLM = "vhk158") -> list[Figure]:
    """Every FlightLLM figure of the reference file (times within 10 %, ratios within 20 %).

    ``u280`` and ``vhk158`` may be device objects (e.g. with a changed parameter, for sensitivity).
    """
    out: list[Figure] = []
    u = decode_step_s(u280, [128, 512]) * 1e3
    out += [
        Figure(PAPER, "U280 LLaMA2-7B decode step, KV 128", 17.5, u[0], "ms", "[secondary]", 10.0,
               "third party running the artifact on a U280", "predicted"),
        Figure(PAPER, "U280 LLaMA2-7B decode step, KV 512", 18.99, u[1], "ms", "[secondary]", 10.0,
               "third party running the artifact on a U280"),
        Figure(PAPER, "U280 LLaMA2-7B decode throughput (Figure 1)", 55.0, 2e3 / u.sum(), "tokens/s", "[paper]",
               10.0, "mean step of the artifact's two on-board cases (KV 128 and 512)"),
    ]
    v = decode_step_s(vhk158, [144, 512, 1024, 2048]) * 1e3
    for kv, paper, model in zip((144, 512, 1024, 2048), (9.28, 9.81, 10.62, 12.23), v, strict=True):
        out.append(Figure(PAPER, f"VHK158 LLaMA2-7B decode step, KV {kv}", paper, model, "ms", "[paper]", 10.0,
                          "authors' cycle-accurate simulation"))
    pf = prefill_s(vhk158, [128, 512]) * 1e3
    out += [
        Figure(PAPER, "VHK158 LLaMA2-7B prefill, 128 tokens", 289.9, pf[0], "ms", "[paper]", 10.0),
        Figure(PAPER, "VHK158 LLaMA2-7B prefill, 512 tokens", 1181.4, pf[1], "ms", "[paper]", 10.0),
    ]
    for (p, o), paper in zip(((128, 512), (128, 1536), (512, 512), (512, 1536)), (103.5, 95.4, 97.2, 90.1),
                             strict=True):
        out.append(Figure(PAPER, f"VHK158 end-to-end throughput [{p}, {o}]", paper,
                          decode_throughput(vhk158, p, o), "tokens/s", "[paper]", 10.0,
                          "decode tokens / sum of bucketed decode steps (artifact run.py)"))
    u280_tok_j = decode_throughput(u280, 128, 512) / _device(u280, {}).spec.board_power_w
    out += [
        Figure(PAPER, "Energy efficiency vs V100S (U280, tokens/J ratio)", 6.0,
               u280_tok_j / (V100_TOKENS_S / V100_POWER_W), "x", "[paper]", 20.0,
               "GPU side: Figure 1's V100 (45 tokens/s at 220 W)"),
        Figure(PAPER, "Energy efficiency vs A100 (U280, tokens/J ratio)", 4.2, u280_tok_j / a100_tokens_per_joule(),
               "x", "[paper]", 20.0, f"GPU side: 89.4 tokens/s (artifact) at the {A100_MODEL} model's power"),
        Figure(PAPER, "Decode HBM bandwidth utilization, always-on-chip decode", 65.9,
               100 * decode_bandwidth_utilization("u280"), "%", "[paper]", 10.0,
               "memory-bound decode GEMV on the U280 (same-channel efficiency of the artifact)", "by construction"),
        Figure(PAPER, "Decode HBM bandwidth utilization, without it", 35.6,
               100 * decode_bandwidth_utilization("u280", always_on_chip_decode=False), "%", "[paper]", 10.0,
               "same GEMV, streams cross channels (cross-channel efficiency of the artifact)", "by construction"),
        Figure(PAPER, "Sparse DSP chain: compute efficiency gain", 1.6, sparse_chain_gain(), "x", "[paper]", 25.0,
               "q/k projections at the artifact's 0.7 density, prefill 512 on VHK158: fixed 16-DSP chain / "
               "configurable chain"),
        Figure(PAPER, "Length-adaptive compilation: instruction storage cut", 500.0, instruction_storage_ratio(),
               "x", "[paper]", 25.0, f"instruction-count model, every length up to {CONTEXT}: per length / per bucket"),
        Figure(PAPER, "VHK158 throughput over A100 (vLLM)", 1.2, vhk158_over_a100(vhk158), "x", "[paper]", 20.0,
               "model VHK158 mean over the four cases / the paper's A100 vLLM mean"),
    ]
    return out
