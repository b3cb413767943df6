"""Expert load from a routing distribution: where experts sit, how hot each GPU is, and what
redundant experts (EPLB-style) buy.

A routing distribution is each logical expert's chance ``p_e`` that a token picks it (top-k: the
chances sum to k). A placement puts ``E + R`` physical slots on ``ep`` GPUs (``(E + R) / ep`` each);
an expert with ``r`` replicas has its tokens split evenly among them. The step waits for the
busiest GPU, so the MoE time scales with the **imbalance** = max / mean tokens per GPU (the inverse
of SGLang's "balancedness").

Assumptions: a skewed distribution is Zipf-like, ``p_e`` proportional to ``(rank + 1)^-s``, with the
hot experts scattered over the expert ids by a seeded permutation (a trained router has no reason
to put them next to each other); loads are expectations (a large batch; per-batch sampling noise is
not modelled). EPLB-style placement (deepseek-ai/EPLB): replicas go one by one to the expert with the
highest load per replica, then replicas are packed onto GPUs heaviest first, each to the least
loaded GPU with a free slot. Without EPLB, logical experts sit in contiguous blocks and the
redundant slots (if any) hold copies of experts ``0 .. R-1``, chosen without statistics.

>>> p = routing_probs("uniform", 256, 8)
>>> round(imbalance(place_experts(p, 32, 0, eplb=False)), 6)
1.0
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def routing_probs(kind: str | np.ndarray, experts: int, top_k: int, skew: float = 0.0, seed: int = 0) -> np.ndarray:
    """Each expert's chance of being picked by a token (sums to ``top_k``).

    ``kind``: ``"uniform"``, ``"zipf"`` (exponent ``skew`` >= 0) or an array of per-expert token
    counts or shares (a measured trace's histogram), rescaled to sum to ``top_k``.
    """
    if experts < 1 or not 1 <= top_k <= experts:
        raise ValueError(f"routing: needs experts >= 1 and 1 <= top_k <= experts, got {experts}, {top_k}")
    if isinstance(kind, str):
        if kind == "uniform":
            return np.full(experts, top_k / experts)
        if kind != "zipf":
            raise ValueError(f"routing: kind must be 'uniform', 'zipf' or per-expert counts, got {kind!r}")
        if not np.isfinite(skew) or skew < 0:
            raise ValueError(f"routing.skew: must be a number >= 0, got {skew}")
        w = (np.arange(experts) + 1.0) ** -float(skew)
        w = w[np.random.default_rng(seed).permutation(experts)]
    else:
        w = np.asarray(kind, dtype=float).ravel()
        if w.shape != (experts,) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"routing: counts need {experts} finite values >= 0 with a positive sum")
    return _cap(w / w.sum() * top_k)


def _cap(p: np.ndarray) -> np.ndarray:
    """Clip chances at 1 (a token picks an expert at most once) and spread the excess over the rest."""
    p = p.copy()
    for _ in range(len(p)):
        over = p > 1.0
        if not over.any():
            break
        excess = (p[over] - 1.0).sum()
        p[over] = 1.0
        free = p < 1.0
        p[free] += excess * p[free] / p[free].sum()
    return p


def trace_probs(expert_ids: np.ndarray, experts: int) -> np.ndarray:
    """Chances from a routing trace ``(tokens, layers, top_k)`` (all layers pooled)."""
    ids = np.asarray(expert_ids)
    counts = np.bincount(ids.ravel(), minlength=experts)[:experts]
    return routing_probs(counts.astype(float), experts, ids.shape[-1])


@dataclass(frozen=True)
class Placement:
    """Physical slots per GPU: ``expert[g, s]`` the logical expert of slot ``s`` on GPU ``g`` and
    ``load[g, s]`` its expected tokens per routed token of the batch (all slots sum to top_k)."""

    expert: np.ndarray
    load: np.ndarray

    @property
    def gpu_load(self) -> np.ndarray:
        return self.load.sum(axis=1)


def place_experts(probs, ep: int, redundant: int = 0, eplb: bool = True) -> Placement:
    """Place ``len(probs) + redundant`` physical experts on ``ep`` GPUs (see the module docstring)."""
    p = np.asarray(probs, dtype=float)
    E = len(p)
    if ep < 1 or redundant < 0:
        raise ValueError(f"ep: must be >= 1 and redundant_experts >= 0, got {ep}, {redundant}")
    if (E + redundant) % ep:
        raise ValueError(f"ep: {ep} must divide the {E} experts + {redundant} redundant = {E + redundant} slots")
    slots = (E + redundant) // ep
    reps = np.ones(E, dtype=int)
    if eplb:
        for _ in range(redundant):
            reps[np.argmax(p / reps)] += 1
        items = np.repeat(np.arange(E), reps)
        loads = (p / reps)[items]
        order = np.argsort(-loads, kind="stable")
        gpu_sum = np.zeros(ep)
        fill = np.zeros(ep, dtype=int)
        expert = np.zeros((ep, slots), dtype=int)
        load = np.zeros((ep, slots))
        for i in order:
            free = np.flatnonzero(fill < slots)
            g = free[np.argmin(gpu_sum[free])]
            expert[g, fill[g]], load[g, fill[g]] = items[i], loads[i]
            gpu_sum[g] += loads[i]
            fill[g] += 1
        return Placement(expert, load)
    ids = np.concatenate([np.arange(E), np.arange(redundant) % E])
    reps = np.bincount(ids, minlength=E)
    expert = ids.reshape(ep, slots)
    return Placement(expert, (p / reps)[expert])


def imbalance(placement: Placement) -> float:
    """Tokens on the busiest GPU over the mean (1 for a perfectly balanced placement)."""
    g = placement.gpu_load
    return float(g.max() / g.mean()) if g.mean() > 0 else 1.0
