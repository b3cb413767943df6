"""What users extend, by name: scheduling policies and routers.

A scheduling policy is a frozen config dataclass (its fields are the policy's knobs, with their
defaults; ``validate(prefix)`` checks them) and a factory that makes the scheduler of one replica.
Registering it is all it takes: scenario files (``scheduler: {kind: NAME, ...knobs}``), ``genz simulate
--scheduler NAME`` (with a flag per knob) and ``genz tune --scheduler NAME`` read this registry.
A router is a factory of replica-assignment objects. docs/architecture.md has the recipe.

>>> import genz.serving  # the built-in policies register on import
>>> sorted(SCHEDULERS), sorted(ROUTERS)
(['continuous', 'guaranteed_no_evict', 'sglang', 'static', 'trtllm'], ['least_outstanding_tokens', 'round_robin'])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ROUTERS", "SCHEDULERS", "Knob", "PolicyInfo", "RouterInfo", "all_knobs", "knob_defaults", "make_router", "make_scheduler",
           "register_router", "register_scheduler", "scheduler_config", "scheduler_knobs"]

#: Knobs every policy has (the KV cache's block size and memory share); the rest are its own.
SHARED_KNOBS = ("block_size", "gpu_memory_utilization")


@dataclass(frozen=True)
class PolicyInfo:
    """A registered scheduling policy: ``config`` (dataclass of knobs), ``factory(config,
    num_blocks, prefill_only) -> scheduler``, whether it can run a disaggregated prefill pool."""

    kind: str
    config: type
    factory: Callable
    description: str
    prefill_pool: bool = False


@dataclass(frozen=True)
class RouterInfo:
    """A registered router: ``factory(replicas) -> object with assign(seq, work) and release(i, work)``."""

    name: str
    factory: Callable
    description: str


SCHEDULERS: dict[str, PolicyInfo] = {}
ROUTERS: dict[str, RouterInfo] = {}


def register_scheduler(kind: str, config: type, factory: Callable, description: str, *,
                       prefill_pool: bool = False) -> PolicyInfo:
    """Register a scheduling policy under ``kind`` (see the module docstring); returns its entry."""
    if not dataclasses.is_dataclass(config):
        raise TypeError(f"scheduler {kind!r}: config must be a dataclass of knobs")
    missing = [k for k in SHARED_KNOBS if k not in {f.name for f in dataclasses.fields(config)}]
    if missing:
        raise TypeError(f"scheduler {kind!r}: config lacks the shared knobs {missing}")
    info = PolicyInfo(kind, config, factory, description, prefill_pool)
    SCHEDULERS[kind] = info
    return info


def register_router(name: str, factory: Callable, description: str) -> RouterInfo:
    """Register a router under ``name``."""
    info = RouterInfo(name, factory, description)
    ROUTERS[name] = info
    return info


def _policy(kind: str) -> PolicyInfo:
    if kind not in SCHEDULERS:
        raise ValueError(f"scheduler.kind: must be one of {', '.join(SCHEDULERS)}, got {kind!r}")
    return SCHEDULERS[kind]


def scheduler_knobs(kind: str) -> tuple[str, ...]:
    """The knobs (config fields) of a policy."""
    return tuple(f.name for f in dataclasses.fields(_policy(kind).config))


def knob_defaults(kind: str) -> dict:
    """Each knob of a policy with its default (the one place defaults live)."""
    return {f.name: f.default for f in dataclasses.fields(_policy(kind).config)
            if f.default is not dataclasses.MISSING}


def scheduler_config(kind: str, prefix: str = "scheduler.", **knobs):
    """A validated config of policy ``kind`` from ``knobs`` (unknown knobs are an error naming the
    allowed ones; missing ones take their defaults)."""
    info = _policy(kind)
    allowed = scheduler_knobs(kind)
    wrong = [k for k in knobs if k not in allowed]
    if wrong:
        raise ValueError(f"{prefix}{wrong[0]}: not a knob of the {kind} scheduler (it takes {', '.join(allowed)})")
    cfg = info.config(**knobs)
    cfg.validate(prefix)
    return cfg


@dataclass(frozen=True)
class Knob:
    """A policy knob as the command line shows it: its type name (``int``, ``float``, ``bool`` or
    ``str``), help text (the config field's ``metadata["help"]``) and default of each policy having it."""

    name: str
    type: str
    help: str
    defaults: dict


def all_knobs() -> dict[str, Knob]:
    """Every knob of every registered policy, by name (first policy's type and help win)."""
    out: dict[str, Knob] = {}
    for kind, info in SCHEDULERS.items():
        for f in dataclasses.fields(info.config):
            t = str(f.type)
            tname = next((n for n in ("bool", "int", "float") if t == n or t.startswith(n + " ")), "str")
            if f.name not in out:
                out[f.name] = Knob(f.name, tname, f.metadata.get("help", ""), {})
            if f.default is not dataclasses.MISSING:
                out[f.name].defaults[kind] = f.default
    return out


def make_scheduler(cfg, num_blocks: int, prefill_only: bool = False):
    """The scheduler of one replica for a policy config (found by its ``kind``)."""
    kind = getattr(cfg, "kind", None)
    info = _policy(kind)
    if prefill_only and not info.prefill_pool:
        raise ValueError(f"scheduler.kind: {kind} cannot run a disaggregated prefill pool")
    return info.factory(cfg, num_blocks, prefill_only)


def make_router(name: str, replicas: int):
    """The router ``name`` over ``replicas`` replicas."""
    if name not in ROUTERS:
        raise ValueError(f"router must be one of {', '.join(ROUTERS)}, got {name!r}")
    return ROUTERS[name].factory(replicas)
