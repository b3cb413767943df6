"""The software stack running the model: kernels launched and memory passes per operator.

Two stacks differ more in how many kernels they launch and how often elementwise work touches
memory than in their GEMMs. A runtime file (``genz/data/runtimes/<name>.json``) holds, per
operator, ``kernels`` (launches per instance) and ``passes`` (bytes moved per element, in units
of the activation width: read + write of a bf16 tensor is 2 passes).

Kernel choices (``choices``): ``decode_attention`` is ``sdpa`` (FlashAttention-2 through PyTorch's
SDPA, padding each KV head's queries to a 128-row tile, as the H200 dataset measured) or ``paged``
(paged decode kernels of serving engines: FlashInfer/FlashAttention decode, TensorRT-LLM's XQA, which
pack a KV head's queries into a 16-row tile and stream the cache); ``moe`` is ``loop`` (one set of
kernels per expert that received tokens, the dataset's decoder) or ``fused`` (one fused MoE kernel
per GEMM over all experts, tokens padded per expert to a 16-row block). Per-iteration CPU time
(``cpu``) is the engine's scheduling, input preparation, sampling and output processing.

Optional ``kernels.host_ops``: host-side work per layer that launches no kernel (Python module
calls, cache bookkeeping), in units of one eager launch. It costs host time in eager mode and
nothing under CUDA graphs (the ``host_python`` row of the operator table).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

_DIR = Path(__file__).parent / "data" / "runtimes"
_KERNEL_KEYS = ("gemm", "norm", "rope", "kv_write", "attention", "act", "residual", "embedding",
                "final_norm", "router", "moe_per_expert", "moe_fixed", "step")
_PASS_KEYS = ("norm", "rope", "kv_write", "act", "residual", "moe")
#: Kernel behaviour a runtime selects per operator class, with the allowed values.
CHOICES = {
    "decode_attention": ("sdpa", "paged"),  # FlashAttention-2 through SDPA, or paged decode kernels
    "moe": ("loop", "fused"),  # a per-expert Python loop, or a fused MoE kernel over all experts
}
_DEFAULT_CHOICES = {"decode_attention": "sdpa", "moe": "loop"}
_CPU_KEYS = ("per_step_s", "per_seq_s", "per_token_s", "overlap")


@dataclass(frozen=True)
class Runtime:
    """A software stack: kernels launched and memory passes per operator, which kernel each
    operator class gets (``choices``), and the engine's own CPU time per iteration (``cpu``:
    ``per_step_s`` + ``per_seq_s`` x running sequences + ``per_token_s`` x new tokens, of which the
    fraction ``overlap`` runs while the GPU works on the previous iteration)."""

    name: str
    kernels: dict
    passes: dict
    description: str = ""
    source: str = ""
    choices: dict = field(default_factory=lambda: dict(_DEFAULT_CHOICES))
    cpu: dict = field(default_factory=dict)

    def k(self, key: str) -> float:
        return float(self.kernels[key])

    def p(self, key: str) -> float:
        return float(self.passes[key])

    def choice(self, key: str) -> str:
        return self.choices.get(key, _DEFAULT_CHOICES[key])

    def cpu_seconds(self, seqs, tokens) -> np.ndarray:
        """CPU time of one iteration with ``seqs`` running sequences and ``tokens`` new tokens (s)."""
        c = self.cpu
        return (float(c.get("per_step_s", 0.0)) + float(c.get("per_seq_s", 0.0)) * np.asarray(seqs, float)
                + float(c.get("per_token_s", 0.0)) * np.asarray(tokens, float))

    def exposed_cpu(self, cpu_s, gpu_s) -> np.ndarray:
        """The part of an iteration's CPU time the step waits for: the serial part, plus whatever
        of the overlapped part outlasts the GPU's work (s)."""
        ov = float(self.cpu.get("overlap", 0.0))
        cpu_s = np.asarray(cpu_s, float)
        return (1.0 - ov) * cpu_s + np.maximum(ov * cpu_s - np.asarray(gpu_s, float), 0.0)


def list_runtimes() -> list[str]:
    return sorted(p.stem for p in _DIR.glob("*.json"))


def parse_runtime(data: dict, where: str = "runtime") -> Runtime:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: a runtime file must hold a JSON object")
    for group, keys in (("kernels", _KERNEL_KEYS), ("passes", _PASS_KEYS)):
        got = data.get(group, {})
        if not isinstance(got, dict):
            raise ValueError(f"{where}: '{group}' must be an object")
        missing = [k for k in keys if k not in got]
        if missing:
            raise ValueError(f"{where}: '{group}' lacks {missing}; needs {list(keys)}")
        bad = {k: v for k, v in got.items() if isinstance(v, bool) or not isinstance(v, int | float) or not v >= 0}
        if bad:
            raise ValueError(f"{where}: '{group}' values must be numbers >= 0, got {bad}")
    choices = {**_DEFAULT_CHOICES, **(data.get("choices") or {})}
    for k, v in choices.items():
        if k not in CHOICES or v not in CHOICES[k]:
            allowed = "; ".join(f"{c}: {', '.join(o)}" for c, o in CHOICES.items())
            raise ValueError(f"{where}: choices.{k} = {v!r} is not allowed ({allowed})")
    cpu = dict(data.get("cpu") or {})
    for k, v in cpu.items():
        if k == "source":
            continue
        if k not in _CPU_KEYS or isinstance(v, bool) or not isinstance(v, int | float) or v < 0 or (
                k == "overlap" and v > 1):
            raise ValueError(f"{where}: cpu.{k} = {v!r}; allowed: {', '.join(_CPU_KEYS)} (seconds >= 0; "
                             "overlap in [0, 1]) and 'source'")
    if cpu and any(cpu.get(k) for k in _CPU_KEYS[:3]) and not cpu.get("source"):
        raise ValueError(f"{where}: cpu needs a 'source' for its numbers")
    return Runtime(name=data["name"], kernels=dict(data["kernels"]), passes=dict(data["passes"]),
                   description=data.get("description", ""), source=data.get("source", ""),
                   choices=choices, cpu=cpu)


@cache
def load_runtime(name: str = "vllm") -> Runtime:
    """A shipped runtime by name (``vllm``, ``sglang``, ``trt-llm``, ``plain-pytorch``,
    ``hf-transformers``) or a JSON path."""
    path = _DIR / f"{name}.json"
    if not path.exists():
        p = Path(name)
        if p.suffix == ".json" and p.is_file():
            path = p
        else:
            raise ValueError(f"runtime: unknown runtime {name!r}; known: {', '.join(list_runtimes())}")
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise ValueError(f"runtime: {path} is not valid JSON ({exc})") from None
    return parse_runtime(data, where=path.name)
