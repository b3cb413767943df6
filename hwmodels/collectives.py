"""Collective communication costs on a link: latency plus bandwidth terms (alpha-beta model).

``nbytes`` is the message each device contributes (for all-reduce, the full buffer; for
all-to-all, everything a device sends to all peers). Assumption: NCCL picks the cheaper of ring
and tree for all-reduce; all-to-all and all-gather are ring-like with (g - 1) latency steps.

>>> from hwmodels.collectives import all_reduce_time
>>> float(round(all_reduce_time(1e6, 2, 100e9, 1e-6) * 1e6, 2))  # 2 GPUs, 1 MB: 2*(1/2)*1e6/1e11 + 2 us
12.0
"""

from __future__ import annotations

import numpy as np


def all_reduce_time(nbytes, group, bandwidth: float, latency_s: float):
    """Seconds for an all-reduce of ``nbytes`` over ``group`` devices (min of ring and tree)."""
    g = np.asarray(group, dtype=float)
    nb = np.asarray(nbytes, dtype=float)
    safe = np.maximum(g, 1.0)
    ring = 2.0 * (safe - 1.0) / safe * nb / bandwidth + 2.0 * (safe - 1.0) * latency_s
    tree = 2.0 * nb / bandwidth + 2.0 * np.ceil(np.log2(safe)) * latency_s
    return np.where(g > 1, np.minimum(ring, tree), 0.0)


def all_gather_time(nbytes, group, bandwidth: float, latency_s: float):
    """Seconds for an all-gather whose result is ``nbytes`` per device."""
    g = np.maximum(np.asarray(group, dtype=float), 1.0)
    nb = np.asarray(nbytes, dtype=float)
    return np.where(g > 1, (g - 1.0) / g * nb / bandwidth + (g - 1.0) * latency_s, 0.0)


def all_to_all_time(nbytes, group, bandwidth: float, latency_s: float):
    """Seconds for an all-to-all where each device holds ``nbytes`` spread evenly over the group."""
    g = np.maximum(np.asarray(group, dtype=float), 1.0)
    nb = np.asarray(nbytes, dtype=float)
    return np.where(g > 1, (g - 1.0) / g * nb / bandwidth + (g - 1.0) * latency_s, 0.0)


def send_recv_time(nbytes, group, bandwidth: float, latency_s: float):
    """Seconds for one point-to-point transfer of ``nbytes`` (pipeline stage boundary)."""
    nb = np.asarray(nbytes, dtype=float)
    g = np.asarray(group, dtype=float)
    return np.where(g > 1, nb / bandwidth + latency_s, 0.0)


COLLECTIVE_TIME = {
    "all_reduce": all_reduce_time,
    "all_gather": all_gather_time,
    "all_to_all": all_to_all_time,
    "send_recv": send_recv_time,
}
