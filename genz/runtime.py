"""The software stack running the model: kernels launched and memory passes per operator.

Two stacks differ more in how many kernels they launch and how often elementwise work touches
memory than in their GEMMs. A runtime file (``genz/data/runtimes/<name>.json``) holds, per
operator, ``kernels`` (launches per instance) and ``passes`` (bytes moved per element, in units
of the activation width: read + write of a bf16 tensor is 2 passes).

Optional ``kernels.host_ops``: host-side work per layer that launches no kernel (Python module
calls, cache bookkeeping), in units of one eager launch. It costs host time in eager mode and
nothing under CUDA graphs (the ``host_python`` row of the operator table).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_DIR = Path(__file__).parent / "data" / "runtimes"
_KERNEL_KEYS = ("gemm", "norm", "rope", "kv_write", "attention", "act", "residual", "embedding",
                "final_norm", "router", "moe_per_expert", "moe_fixed", "step")
_PASS_KEYS = ("norm", "rope", "kv_write", "act", "residual", "moe")


@dataclass(frozen=True)
class Runtime:
    name: str
    kernels: dict
    passes: dict
    description: str = ""
    source: str = ""

    def k(self, key: str) -> float:
        return float(self.kernels[key])

    def p(self, key: str) -> float:
        return float(self.passes[key])


def list_runtimes() -> list[str]:
    return sorted(p.stem for p in _DIR.glob("*.json"))


def parse_runtime(data: dict, where: str = "runtime") -> Runtime:
    for group, keys in (("kernels", _KERNEL_KEYS), ("passes", _PASS_KEYS)):
        missing = [k for k in keys if k not in data.get(group, {})]
        if missing:
            raise ValueError(f"{where}: '{group}' lacks {missing}; needs {list(keys)}")
    return Runtime(name=data["name"], kernels=dict(data["kernels"]), passes=dict(data["passes"]),
                   description=data.get("description", ""), source=data.get("source", ""))


@cache
def load_runtime(name: str = "vllm") -> Runtime:
    """A shipped runtime by name (``vllm``, ``plain-pytorch``, ``hf-transformers``) or a JSON path."""
    path = _DIR / f"{name}.json"
    if not path.exists():
        p = Path(name)
        if p.suffix == ".json" and p.exists():
            path = p
        else:
            raise ValueError(f"runtime: unknown runtime {name!r}; known: {', '.join(list_runtimes())}")
    return parse_runtime(json.loads(path.read_text()), where=path.name)
