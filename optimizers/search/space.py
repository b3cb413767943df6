"""The knobs a search may turn, as a validated dataclass of candidate values.

A *configuration* is a plain dict ``{knob: value}`` with one value per knob of :data:`KNOBS`.
Knobs follow vLLM's engine arguments where vLLM has them (``max_num_seqs``,
``max_num_batched_tokens``, ``enable_chunked_prefill`` -> ``chunked_prefill``, ``block_size``,
``gpu_memory_utilization``, ``tensor_parallel_size`` -> ``tp``, ``pipeline_parallel_size`` -> ``pp``);
``replicas`` is data parallelism (independent engines behind a router), ``hardware`` a GPU name,
``ep`` expert parallelism (MoE models), ``scheduler`` a registered policy
(:mod:`genz.serving.registry`: ``"continuous"`` for vLLM, ``"static"`` for HuggingFace pipelines,
whose only batching knob is ``batch_size``, and any policy registered since). A knob applies to the
policies whose config has a field of that name; knobs a policy has and the space does not list
take the policy's defaults.

>>> s = SearchSpace(max_num_seqs=(64, 256), tp=(1, 2), hardware=("h100",))
>>> s.size, s.grid_size
(4, 4)
>>> s.baseline()["max_num_seqs"], s.baseline()["tp"]
(256, 1)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields

from genz.parallel import devices_per_replica
from genz.serving.registry import SCHEDULERS, knob_defaults, scheduler_config, scheduler_knobs

__all__ = ["KNOBS", "VLLM_DEFAULTS", "SearchSpace", "canonical", "config_problem"]

#: vLLM's engine defaults (the continuous policy's config, :mod:`genz.serving.config`) and HuggingFace
#: pipelines' batch_size 1.
VLLM_DEFAULTS: dict = {"scheduler": "continuous", **knob_defaults("continuous"), "batch_size": 1, "pp": 1}


def _ints(name: str, values, lo: int = 1) -> None:
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"space.{name}: every value must be an integer >= {lo}, got {v!r}")


@dataclass(frozen=True)
class SearchSpace:
    """Candidate values of each knob (tuples; a knob with one value is fixed).

    ``max_gpus`` caps ``tp * pp * replicas`` (the GPUs a configuration uses); configurations above it,
    and those breaking vLLM's rule ``max_num_batched_tokens >= max_num_seqs``, are skipped as
    infeasible without a simulation.
    """

    max_num_seqs: tuple[int, ...] = (256,)
    max_num_batched_tokens: tuple[int, ...] = (8192,)
    chunked_prefill: tuple[bool, ...] = (True,)
    block_size: tuple[int, ...] = (16,)
    gpu_memory_utilization: tuple[float, ...] = (0.9,)
    tp: tuple[int, ...] = (1,)
    pp: tuple[int, ...] = (1,)
    ep: tuple[int, ...] = (1,)
    replicas: tuple[int, ...] = (1,)
    hardware: tuple[str, ...] = ("h100",)
    scheduler: tuple[str, ...] = ("continuous",)
    batch_size: tuple[int, ...] = (1,)
    max_gpus: int | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name == "max_gpus":
                continue
            v = getattr(self, f.name)
            if isinstance(v, str | int | float | bool):
                v = (v,)
            try:
                v = tuple(dict.fromkeys(v))  # drop repeats, keep order
            except TypeError:
                raise ValueError(f"space.{f.name}: expected a list of values, got {v!r}") from None
            object.__setattr__(self, f.name, v)
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the knob for an empty or malformed list."""
        for k in KNOBS:
            if not getattr(self, k):
                raise ValueError(f"search space is empty: knob '{k}' has no values; give at least one")
        for k in ("max_num_seqs", "max_num_batched_tokens", "block_size", "tp", "pp", "ep", "replicas", "batch_size"):
            _ints(k, getattr(self, k))
        for v in self.chunked_prefill:
            if not isinstance(v, bool):
                raise ValueError(f"space.chunked_prefill: values must be true or false, got {v!r}")
        for v in self.gpu_memory_utilization:
            if isinstance(v, bool) or not isinstance(v, int | float) or not (0 < v <= 1) or not math.isfinite(v):
                raise ValueError(f"space.gpu_memory_utilization: values must be in (0, 1], got {v!r}")
        for v in self.hardware:
            if not isinstance(v, str) or not v.strip():
                raise ValueError(f"space.hardware: values must be hardware names, got {v!r}")
        for v in self.scheduler:
            if v not in SCHEDULERS:
                raise ValueError(f"space.scheduler: values must be one of {', '.join(SCHEDULERS)} (registered "
                                 f"policies), got {v!r}")
        if self.max_gpus is not None:
            _ints("max_gpus", (self.max_gpus,))
        if not any(config_problem(c, self.max_gpus) == "" for c in self.grid()):
            raise ValueError("search space is empty: every configuration breaks a rule (" +
                             config_problem(next(self.grid()), self.max_gpus) + ")")

    # ------------------------------------------------------------------ views
    @property
    def grid_size(self) -> int:
        """Configurations of the full cross product (duplicates and rule-breakers included)."""
        return math.prod(len(getattr(self, k)) for k in KNOBS)

    @property
    def size(self) -> int:
        """Distinct valid configurations (knobs that do not apply to a scheduler collapse)."""
        return len({canonical_key(c) for c in self.grid() if not config_problem(c, self.max_gpus)})

    def grid(self) -> Iterator[dict]:
        """Every configuration of the cross product, knobs in :data:`KNOBS` order."""
        for values in itertools.product(*(getattr(self, k) for k in KNOBS)):
            yield dict(zip(KNOBS, values, strict=True))

    def choices(self) -> dict[str, list]:
        """``{knob: [values]}`` (the ``space`` field of a search results file)."""
        return {k: list(getattr(self, k)) for k in KNOBS}

    def to_dict(self) -> dict:
        return {**self.choices(), "max_gpus": self.max_gpus}

    @classmethod
    def from_dict(cls, data: Mapping) -> SearchSpace:
        unknown = sorted(set(data) - set(KNOBS) - {"max_gpus"})
        if unknown:
            raise ValueError(f"space: unknown knob(s) {', '.join(unknown)}; knobs are {', '.join(KNOBS)}, max_gpus")
        kw = {k: tuple(v) if isinstance(v, list | tuple) else v for k, v in data.items()}
        return cls(**kw)

    def baseline(self) -> dict:
        """The comparison point: vLLM's defaults for its knobs (``max_num_seqs`` 256,
        ``max_num_batched_tokens`` 8192, chunked prefill on, ``block_size`` 16,
        ``gpu_memory_utilization`` 0.9; HF pipelines' ``batch_size`` 1), even when the space does not
        list them; the continuous scheduler if listed; the first listed value of the other knobs
        (hardware, tp, replicas: list your current setting first)."""
        out = {}
        for k in KNOBS:
            vals = getattr(self, k)
            if k == "scheduler":
                out[k] = "continuous" if "continuous" in vals else vals[0]
            elif k in VLLM_DEFAULTS and k != "pp":
                out[k] = VLLM_DEFAULTS[k]
            else:
                out[k] = vals[0]
        return out


KNOBS: tuple[str, ...] = tuple(f.name for f in fields(SearchSpace) if f.name != "max_gpus")


def _policy_knobs() -> frozenset[str]:
    """Knobs of the space that belong to some scheduling policy (the others apply to every one); read
    at use, so policies registered after import count."""
    return frozenset(k for kind in SCHEDULERS for k in scheduler_knobs(kind) if k in KNOBS)


def config_problem(config: Mapping, max_gpus: int | None = None) -> str:
    """Why a configuration cannot run ('' when it can): its policy's own rules (e.g. vLLM's
    ``max_num_batched_tokens >= max_num_seqs``, checked by the policy config) and the GPU cap."""
    kind = config["scheduler"]
    try:
        scheduler_config(kind, "", **{k: config[k] for k in scheduler_knobs(kind) if k in config})
    except ValueError as exc:
        return str(exc)
    gpus = devices_per_replica(config["tp"], config["pp"], config.get("ep", 1)) * config["replicas"]
    if max_gpus is not None and gpus > max_gpus:
        return f"uses {gpus} GPUs (max(tp, ep) x pp x replicas) > max_gpus = {max_gpus}"
    return ""


def canonical(config: Mapping) -> dict:
    """The configuration with the policy knobs its scheduler does not have set to None (so
    duplicates compare equal)."""
    c = {k: config[k] for k in KNOBS}
    mine = set(scheduler_knobs(c["scheduler"]))
    for k in _policy_knobs():
        if k not in mine:
            c[k] = None
    return c


def canonical_key(config: Mapping) -> tuple:
    c = canonical(config)
    return tuple(c[k] for k in KNOBS)
