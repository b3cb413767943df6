"""MoE routing traces: which experts each token visits in each MoE layer.

A :class:`RoutingTrace` holds an integer array ``expert_ids`` of shape
``(tokens, moe_layers, top_k)``; ``expert_ids[t, l, s]`` is the expert chosen for token ``t`` in MoE
layer ``l`` at router slot ``s`` (slot 0 is the router's highest-scoring expert). ``experts`` is the
number of experts per layer.

File formats
------------
* ``.npy``: the ``expert_ids`` array itself (integer dtype, 3-D; a 2-D array is read as top-1).
  The expert count is passed to the loader or inferred as ``max id + 1``.
* CSV ("wide" format, one row per (token, layer)): a header ``token,layer,e0,e1,...,e{k-1}`` then
  integer rows. Every token must list every layer ``0 .. L-1`` exactly once; rows may come in any
  order. Example for top-2::

      token,layer,e0,e1
      0,0,3,5
      0,1,1,2

Inter-layer affinity (ExFlow, IPDPS'24): tokens routed to expert ``i`` at layer ``l`` tend to go to a
few particular experts at layer ``l + 1``. :func:`affinity_matrices` counts those transitions and
:func:`synthetic_routing` generates traces with a tunable amount of it.

>>> tr = synthetic_routing(tokens=100, layers=3, experts=8, top_k=2, affinity=1.0, seed=0)
>>> tr.expert_ids.shape, tr.experts
((100, 3, 2), 8)
>>> int(affinity_matrices(tr).sum())  # 100 tokens x 2 transitions x 2 dispatched copies
400

Depends only on numpy and the standard library.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workloads.files import atomic_path

__all__ = [
    "RoutingTrace",
    "affinity_concentration",
    "affinity_matrices",
    "load_routing_csv",
    "load_routing_npy",
    "save_routing_csv",
    "save_routing_npy",
    "synthetic_routing",
]


@dataclass(frozen=True)
class RoutingTrace:
    """Expert choices of ``tokens`` tokens through ``moe_layers`` MoE layers.

    Attributes:
        expert_ids: int array ``(tokens, moe_layers, top_k)``; ids in ``[0, experts)``, distinct
            within one token's top-k at one layer.
        experts: experts per MoE layer (>= 1).
    """

    expert_ids: np.ndarray
    experts: int

    def __post_init__(self) -> None:
        ids = np.asarray(self.expert_ids)
        if ids.ndim == 2:
            ids = ids[:, :, None]
        if ids.ndim != 3:
            raise ValueError(
                f"expert_ids: expected a (tokens, moe_layers, top_k) array, got shape {ids.shape}"
            )
        if ids.size and not np.issubdtype(ids.dtype, np.integer):
            if not np.all(np.equal(np.mod(ids, 1), 0)):
                raise ValueError("expert_ids: expected integer expert ids, got non-integer values")
        ids = ids.astype(np.int64, copy=True)
        if isinstance(self.experts, bool) or not isinstance(self.experts, int | np.integer):
            raise ValueError(f"experts: expected a positive int, got {self.experts!r}")
        if self.experts < 1:
            raise ValueError(f"experts: expected a positive int, got {self.experts}")
        if min(ids.shape) < 1:
            raise ValueError(
                f"expert_ids: need at least one token, layer and slot, got shape {ids.shape}"
            )
        k = ids.shape[2]
        if k > self.experts:
            raise ValueError(f"top_k: {k} slots but only experts={self.experts}")
        bad = np.argwhere((ids < 0) | (ids >= self.experts))
        if bad.size:
            t, layer, s = (int(v) for v in bad[0])
            raise ValueError(
                f"expert_ids: expert {ids[t, layer, s]} out of range [0, {self.experts}) "
                f"at token {t}, layer {layer}, slot {s}"
            )
        if k > 1:
            srt = np.sort(ids, axis=2)
            dup = np.argwhere(np.any(srt[:, :, 1:] == srt[:, :, :-1], axis=2))
            if dup.size:
                t, layer = (int(v) for v in dup[0])
                raise ValueError(
                    f"expert_ids: token {t} at layer {layer} picks expert "
                    f"{ids[t, layer].tolist()} more than once; top-k experts must be distinct"
                )
        ids.setflags(write=False)
        object.__setattr__(self, "expert_ids", ids)
        object.__setattr__(self, "experts", int(self.experts))

    @property
    def tokens(self) -> int:
        """Tokens in the trace."""
        return int(self.expert_ids.shape[0])

    @property
    def layers(self) -> int:
        """Number of MoE layers in the trace."""
        return int(self.expert_ids.shape[1])

    @property
    def top_k(self) -> int:
        """Experts each token is routed to."""
        return int(self.expert_ids.shape[2])

    def expert_load(self) -> np.ndarray:
        """Copies dispatched to each expert, shape ``(layers, experts)`` (all slots counted)."""
        out = np.zeros((self.layers, self.experts), dtype=np.int64)
        for layer in range(self.layers):
            out[layer] = np.bincount(self.expert_ids[:, layer, :].ravel(), minlength=self.experts)
        return out


# ---------------------------------------------------------------------------------- affinity
def affinity_matrices(trace: RoutingTrace, pairs: str = "home") -> np.ndarray:
    """Counts of token transitions between consecutive MoE layers, shape ``(layers-1, E, E)``.

    ``out[l, i, j]`` counts tokens going from expert ``i`` at layer ``l`` to expert ``j`` at layer
    ``l + 1``. With top-k > 1 the pairs counted are:

    * ``"home"`` (default, the rule the placement optimizer uses): the token's activation lives
      with its slot-0 expert of layer ``l`` (its "home") and is dispatched to all ``k`` experts of
      layer ``l + 1``: pairs ``(e_l[0], e_{l+1}[s])`` for every slot ``s``; ``k`` per token.
    * ``"all"``: every slot pair ``(e_l[r], e_{l+1}[s])``; ``k * k`` per token.
    * ``"first"``: only ``(e_l[0], e_{l+1}[0])``; one per token.
    """
    if pairs not in ("home", "all", "first"):
        raise ValueError(f"pairs: expected 'home', 'all' or 'first', got {pairs!r}")
    ids = trace.expert_ids
    n_exp, n_layers, k = trace.experts, trace.layers, trace.top_k
    out = np.zeros((max(n_layers - 1, 0), n_exp, n_exp), dtype=np.int64)
    src_slots = range(k) if pairs == "all" else (0,)
    dst_slots = (0,) if pairs == "first" else range(k)
    for layer in range(n_layers - 1):
        for r in src_slots:
            for s in dst_slots:
                flat = ids[:, layer, r] * n_exp + ids[:, layer + 1, s]
                out[layer] += np.bincount(flat, minlength=n_exp * n_exp).reshape(n_exp, n_exp)
    return out


def affinity_concentration(trace: RoutingTrace) -> float:
    """Fraction of slot-0 transitions that go to the most frequent next expert, in [1/E, 1].

    1.0 means each layer-``l`` expert always hands its tokens to one layer-``l+1`` expert (strong
    affinity); about ``1/E`` plus sampling noise means none.
    """
    mats = affinity_matrices(trace, pairs="first")
    total = mats.sum()
    return float(mats.max(axis=2).sum() / total) if total else 0.0


# --------------------------------------------------------------------------------- synthesis
def synthetic_routing(
    tokens: int,
    layers: int,
    experts: int,
    top_k: int = 2,
    affinity: float = 0.0,
    seed: int = 0,
    skew: float = 0.0,
) -> RoutingTrace:
    """A seeded synthetic routing trace with tunable inter-layer affinity.

    Layer 0: each token picks ``top_k`` distinct experts uniformly at random. At each later layer a
    token, independently with probability ``affinity``, *follows*: its top-k at layer ``l + 1`` is a
    deterministic function of its slot-0 expert ``e`` at layer ``l``, namely
    ``(p_l(e), p_l(e + 1), ..., p_l(e + k - 1))`` (indices mod ``experts``) for a seeded random
    permutation ``p_l`` per layer (each slot is a bijection, so expert loads stay balanced).
    Otherwise it picks ``top_k`` distinct experts uniformly. ``affinity=0``: layers independent and
    uniform; ``affinity=1``: fully deterministic chains (the strong affinity ExFlow observes).

    Args:
        tokens, layers, experts, top_k: trace shape (all >= 1, ``top_k <= experts``).
        affinity: probability in [0, 1] that a token follows the affinity map at a layer.
        seed: numpy random seed; same arguments give the same trace.
        skew: hot experts. 0 (default): the non-following picks are uniform. ``s > 0``: expert ``e``
            is picked with weight ``(e + 1) ** -s`` (Zipf-like; assumption: expert 0 is the hottest
            in every layer), ``top_k`` distinct ones drawn without replacement in proportion to
            their weights (Gumbel top-k).
    """
    for name, v in (("tokens", tokens), ("layers", layers), ("experts", experts), ("top_k", top_k)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ValueError(f"{name}: expected a positive int, got {v!r}")
    if top_k > experts:
        raise ValueError(f"top_k: must be <= experts ({experts}), got {top_k}")
    if not 0.0 <= float(affinity) <= 1.0:
        raise ValueError(f"affinity: expected a value in [0, 1], got {affinity!r}")
    if not (isinstance(skew, int | float) and not isinstance(skew, bool) and np.isfinite(skew) and skew >= 0):
        raise ValueError(f"skew: expected a finite number >= 0, got {skew!r}")
    rng = np.random.default_rng(seed)
    log_w = -float(skew) * np.log(np.arange(1, experts + 1, dtype=float))

    def uniform_topk(n: int) -> np.ndarray:
        if skew == 0:  # argsort of uniform keys = a uniformly random permutation per row; keep the first k
            return np.argsort(rng.random((n, experts)), axis=1)[:, :top_k]
        gumbel = -np.log(-np.log(rng.random((n, experts)) + 1e-300) + 1e-300)
        return np.argsort(-(log_w[None, :] + gumbel), axis=1)[:, :top_k]

    ids = np.empty((tokens, layers, top_k), dtype=np.int64)
    ids[:, 0, :] = uniform_topk(tokens)
    offsets = np.arange(top_k)
    for layer in range(1, layers):
        perm = rng.permutation(experts)
        follow = rng.random(tokens) < affinity
        prev = ids[:, layer - 1, 0]
        followed = perm[(prev[:, None] + offsets[None, :]) % experts]
        ids[:, layer, :] = np.where(follow[:, None], followed, uniform_topk(tokens))
    return RoutingTrace(ids, experts)


# ------------------------------------------------------------------------------------- files
def save_routing_npy(trace: RoutingTrace, path: str | Path) -> None:
    """Write ``trace.expert_ids`` as a ``.npy`` array (the expert count is not stored)."""
    np.save(Path(path), trace.expert_ids)


def load_routing_npy(path: str | Path, experts: int | None = None) -> RoutingTrace:
    """Read a ``(tokens, layers, top_k)`` (or ``(tokens, layers)`` for top-1) ``.npy`` array.

    ``experts`` defaults to ``max id + 1`` (pass it when the trace may not use the last expert).
    """
    ids = np.load(Path(path), allow_pickle=False)
    if ids.size and not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"expert_ids: {path} holds {ids.dtype} values, expected integer expert ids")
    if experts is None:
        experts = int(ids.max()) + 1 if ids.size else 1
    return RoutingTrace(ids, experts)


def save_routing_csv(trace: RoutingTrace, path: str | Path) -> None:
    """Write the wide CSV format described in the module docstring."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["token", "layer", *(f"e{s}" for s in range(trace.top_k))])
        for t in range(trace.tokens):
            for layer in range(trace.layers):
                w.writerow([t, layer, *trace.expert_ids[t, layer].tolist()])


def load_routing_csv(path: str | Path, experts: int | None = None) -> RoutingTrace:
    """Read the wide CSV format (``token,layer,e0,...``); errors name the offending row.

    Tokens are numbered in order of first appearance; every token must cover layers ``0 .. L-1``
    exactly once. ``experts`` defaults to ``max id + 1``; when given, ids outside
    ``[0, experts)`` are rejected with the row number (1-based, header is row 1).
    """
    rows: dict[int, dict[int, list[int]]] = {}
    first_row: dict[int, int] = {}
    k: int | None = None
    with open(Path(path), newline="") as fh:
        reader = csv.reader(fh)
        header = [h.strip().lower() for h in next(reader, [])]
        if len(header) < 3 or header[:2] != ["token", "layer"]:
            raise ValueError(
                f"header: expected 'token,layer,e0[,e1,...]' in {path}, got {','.join(header)!r}"
            )
        expected = [f"e{s}" for s in range(len(header) - 2)]
        if header[2:] != expected:
            raise ValueError(f"header: expert columns must be {','.join(expected)}, got {header[2:]}")
        k = len(expected)
        for rownum, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != k + 2:
                raise ValueError(f"row {rownum}: expected {k + 2} columns (token,layer,e0..e{k - 1}), "
                                 f"got {len(row)}")
            try:
                tok, layer, *eids = (int(c) for c in row)
            except ValueError:
                raise ValueError(f"row {rownum}: non-integer value in {row}") from None
            if layer < 0:
                raise ValueError(f"row {rownum}: layer must be >= 0, got {layer}")
            for s, e in enumerate(eids):
                if e < 0 or (experts is not None and e >= experts):
                    hi = f"{experts}" if experts is not None else "experts"
                    raise ValueError(f"row {rownum}: expert e{s}={e} out of range [0, {hi})")
            per_tok = rows.setdefault(tok, {})
            first_row.setdefault(tok, rownum)
            if layer in per_tok:
                raise ValueError(f"row {rownum}: token {tok} layer {layer} appears twice")
            per_tok[layer] = eids
    if not rows:
        raise ValueError(f"rows: {path} has a header but no data rows")
    n_layers = max(len(v) for v in rows.values())
    for tok, per_tok in rows.items():
        if sorted(per_tok) != list(range(n_layers)):
            missing = sorted(set(range(n_layers)) - set(per_tok))
            raise ValueError(
                f"row {first_row[tok]}: ragged layers: token {tok} has layers {sorted(per_tok)}, "
                f"expected 0..{n_layers - 1}" + (f" (missing {missing})" if missing else "")
            )
    ids = np.array(
        [[rows[tok][layer] for layer in range(n_layers)] for tok in rows], dtype=np.int64
    )
    if experts is None:
        experts = int(ids.max()) + 1
    return RoutingTrace(ids, experts)
