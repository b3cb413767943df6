"""Collectives on a cluster's two link classes: hierarchical all-to-all for expert parallelism
(DeepEP normal and low-latency modes, DeepSpeed-MoE's two-phase and coordinated forms) and
all-reduce / all-gather per domain. Every function returns a :class:`Comm` with the bytes one GPU
sends over each link class and the seconds they take.

Routing for the volumes: each token picks ``top_k`` distinct physical slots uniformly among
``slots`` (assumption: EPLB-balanced routing; skew changes how much the busiest GPU receives,
which the caller applies as the imbalance factor). A token reaches ``G (1 - C(S - s, k) / C(S, k))``
distinct GPUs of an EP group of ``G`` GPUs holding ``s`` slots each, and the same formula with a
node's slots gives the distinct nodes.

Mechanisms and their assumptions:

- ``normal`` (DeepEP normal kernels; DeepSpeed's hierarchical idea): a token crosses the scale-out
  network once per distinct remote node, to the GPU of the same local rank, which forwards it over
  NVLink to each target GPU of its node; tokens for GPUs of the own node go over NVLink directly.
  RDMA and NVLink stages run chunk-pipelined, so a phase takes the slower of the two plus one
  latency of each (assumption, as DeepEP's sender/forwarder/receiver warps run concurrently).
- ``low_latency`` (DeepEP low-latency kernels as of 2025-02 to 2025-05, IBGDA): every (token,
  expert) pair is its own RDMA message, no de-duplication, GPUs of the same node included (NVLink
  for those came with DeepEP's 2025-06-05 update: ``nvlink_peers=True``).
- ``two_phase`` (DeepSpeed-MoE 5.3): an intra-node all-to-all then an inter-node all-to-all, each
  NCCL point-to-point with one latency per peer: ``(G - 1)`` NVLink plus ``(p / G - 1)`` network
  latencies instead of ``(p - 1)``, at twice the volume.
- ``coordinated`` (DeepSpeed-MoE 5.3): after an L-way tensor-sliced operator every slice rank holds
  the same tokens, so the all-to-all runs among the ``p / L`` GPUs of one slice rank on ``1 / L`` of
  the tokens; on the way back an all-gather over the L ranks restores them (the caller adds it).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb

from hwmodels.clusters import ClusterSpec

A2A_MODES = ("normal", "low_latency", "two_phase", "coordinated", "flat")


@dataclass(frozen=True)
class Comm:
    """One collective as seen by one GPU: bytes sent over NVLink and over the NICs, the seconds each
    link class is busy (``intra_s``, ``inter_s``), the elapsed seconds (``time_s``) and the part of
    them that is latency (``latency_s``)."""

    intra_bytes: float = 0.0
    inter_bytes: float = 0.0
    intra_s: float = 0.0
    inter_s: float = 0.0
    time_s: float = 0.0
    latency_s: float = 0.0

    def __add__(self, other: Comm) -> Comm:
        return Comm(*(a + b for a, b in zip(self.astuple(), other.astuple(), strict=True)))

    def scaled(self, f: float) -> Comm:
        """The same collective ``f`` times (or with ``f`` times the bytes on a bandwidth-bound path)."""
        return Comm(*(a * f for a in self.astuple()))

    def busiest(self, f: float) -> Comm:
        """As seen by a GPU that receives ``f`` times the mean: bytes and transfer time scale, latency not."""
        return Comm(self.intra_bytes * f, self.inter_bytes * f, self.intra_s * f, self.inter_s * f,
                    self.latency_s + f * (self.time_s - self.latency_s), self.latency_s)

    def astuple(self) -> tuple:
        return (self.intra_bytes, self.inter_bytes, self.intra_s, self.inter_s, self.time_s, self.latency_s)


def p_hit(slots: int, held: int, top_k: int) -> float:
    """Chance that a token's ``top_k`` distinct picks among ``slots`` touch a set of ``held`` slots."""
    if held >= slots:
        return 1.0
    return 1.0 - comb(slots - held, top_k) / comb(slots, top_k)


def ep_fanout(slots: int, ep: int, gpus_per_node: int, top_k: int) -> tuple[float, float]:
    """Expected distinct GPUs and distinct remote nodes one token is sent to in an EP group."""
    per_gpu = slots // ep
    node = min(gpus_per_node, ep)
    nodes = max(ep // node, 1)
    gpus = ep * p_hit(slots, per_gpu, top_k)
    remote_nodes = (nodes - 1) * p_hit(slots, per_gpu * node, top_k)
    return gpus, remote_nodes


def ep_all_to_all(tokens: float, msg_bytes: float, *, top_k: int, slots: int, ep: int, cluster: ClusterSpec,
                  mode: str = "normal", tp: int = 1, nvlink_peers: bool = False) -> Comm:
    """One dispatch (or combine: the same traffic reversed) of ``tokens`` tokens per GPU, each
    ``msg_bytes`` on the wire, over an EP group of ``ep`` GPUs holding ``slots`` physical experts."""
    if mode not in A2A_MODES:
        raise ValueError(f"a2a: must be one of {', '.join(A2A_MODES)}, got {mode!r}")
    if ep <= 1 or tokens <= 0:
        return Comm()
    gpn = min(cluster.gpus_per_node, ep)
    nodes = max(ep // gpn, 1)
    up_bw, out_bw = cluster.scale_up_bw, cluster.scale_out_bw
    up_lat, out_lat = cluster.scale_up_latency_s, cluster.scale_out_latency_s
    if mode == "normal":
        gpus, remote = ep_fanout(slots, ep, gpn, top_k)
        intra = tokens * gpus * (gpn - 1) / gpn * msg_bytes
        inter = tokens * remote * msg_bytes
        ti, to = intra / up_bw, inter / out_bw
        lat = up_lat + (out_lat if nodes > 1 else 0.0)
        return Comm(intra, inter, ti, to, max(ti, to) + lat, lat)
    if mode == "low_latency":
        pairs = tokens * top_k * msg_bytes
        local = (gpn - 1) / ep if nvlink_peers else 0.0
        intra, inter = pairs * local, pairs * ((ep - 1) / ep - local)
        ti, to = intra / up_bw, inter / out_bw
        lat = out_lat if inter else up_lat
        return Comm(intra, inter, ti, to, max(ti, to) + lat, lat)
    if mode == "flat":  # one NCCL all-to-all, one latency per peer, the network for all of it
        b = tokens * top_k * msg_bytes * (ep - 1) / ep
        t = b / (out_bw if nodes > 1 else up_bw)
        lat = (ep - 1) * (out_lat if nodes > 1 else up_lat)
        return Comm(0.0 if nodes > 1 else b, b if nodes > 1 else 0.0, 0.0 if nodes > 1 else t,
                    t if nodes > 1 else 0.0, t + lat, lat)
    if mode == "two_phase":
        b = tokens * top_k * msg_bytes
        intra, inter = b * (gpn - 1) / gpn, (b * (nodes - 1) / nodes if nodes > 1 else 0.0)
        ti, to = intra / up_bw, inter / out_bw
        lat = (gpn - 1) * up_lat + (nodes - 1) * out_lat
        return Comm(intra, inter, ti, to, ti + to + lat, lat)
    # coordinated: among the ep / tp GPUs of one slice rank, then an all-gather over tp
    group = max(ep // tp, 1)
    b = tokens / tp * top_k * msg_bytes * (group - 1) / group
    over_net = nodes > 1
    t = b / (out_bw if over_net else up_bw)
    lat = (group - 1) * (out_lat if over_net else up_lat)
    return Comm(0.0, b, 0.0, t, t + lat, lat) if over_net else Comm(b, 0.0, t, 0.0, t + lat, lat)


def all_reduce(nbytes: float, group: int, cluster: ClusterSpec) -> Comm:
    """Hierarchical all-reduce of ``nbytes``: a ring inside one node; beyond a node, reduce-scatter
    over NVLink, a ring all-reduce of each GPU's ``1 / G`` share over its NICs across the nodes (all
    GPUs of a node in parallel), then all-gather over NVLink."""
    if group <= 1 or nbytes <= 0:
        return Comm()
    gpn = min(cluster.gpus_per_node, group)
    nodes = max(group // gpn, 1)
    intra = 2.0 * (gpn - 1) / gpn * nbytes
    inter = 2.0 * (nodes - 1) / nodes * nbytes / gpn if nodes > 1 else 0.0
    ti, to = intra / cluster.scale_up_bw, inter / cluster.scale_out_bw
    lat = 2 * (gpn - 1) * cluster.scale_up_latency_s + 2 * (nodes - 1) * cluster.scale_out_latency_s
    return Comm(intra, inter, ti, to, ti + to + lat, lat)


def all_gather(nbytes: float, group: int, cluster: ClusterSpec) -> Comm:
    """Hierarchical all-gather whose result is ``nbytes`` per GPU (half of an all-reduce); a
    reduce-scatter of ``nbytes`` costs the same."""
    c = all_reduce(nbytes, group, cluster)
    if c.time_s == 0.0:
        return c
    return c.scaled(0.5)
