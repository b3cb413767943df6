"""What one model step processes, as arrays over N configurations.

A step may prefill some sequences (a chunk of new tokens on top of tokens already cached) and
decode others (one new token each), as continuous batching does. Only aggregates enter the cost:

- ``prefill_tokens``: new tokens of prefilling sequences (GEMM rows)
- ``prefill_pairs``: query-key pairs of causal attention, sum of c * p + c^2 / 2 over chunks of c
  new tokens on p cached ones (the dataset's convention: causal counts half the score matrix)
- ``prefill_kv``: keys read by prefill attention, sum of p + c
- ``decode_seqs`` and ``decode_kv``: decoding sequences and the keys they attend, sum of ctx + 1
- ``lm_rows``: tokens that go through the LM head (the last token of each completed prefill
  and every decode token)

>>> s = prefill(batch=2, prompt=4)
>>> int(s.prefill_tokens[0]), float(s.prefill_pairs[0]), int(s.lm_rows[0])
(8, 16.0, 2)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _arr(x) -> np.ndarray:
    return np.atleast_1d(np.asarray(x, dtype=float))


@dataclass
class StepShape:
    """Aggregated description of one step for N configurations (arrays of shape (N,))."""

    prefill_tokens: np.ndarray
    prefill_seqs: np.ndarray
    prefill_pairs: np.ndarray
    prefill_kv: np.ndarray
    decode_seqs: np.ndarray
    decode_kv: np.ndarray
    lm_rows: np.ndarray

    def __post_init__(self) -> None:
        arrays = [_arr(getattr(self, f)) for f in self.__dataclass_fields__]
        arrays = np.broadcast_arrays(*arrays)
        for f, a in zip(self.__dataclass_fields__, arrays, strict=True):
            setattr(self, f, np.array(a, dtype=float))

    @property
    def tokens(self) -> np.ndarray:
        """New tokens of the step (prefill plus decode)."""
        return self.prefill_tokens + self.decode_seqs

    @property
    def seqs(self) -> np.ndarray:
        return self.prefill_seqs + self.decode_seqs

    def __len__(self) -> int:
        return len(self.prefill_tokens)

    def scaled(self, factor) -> StepShape:
        """Every extensive quantity divided by ``factor`` (a micro-batch or a data-parallel share)."""
        f = _arr(factor)
        return StepShape(*(getattr(self, k) / f for k in self.__dataclass_fields__))

    @staticmethod
    def concat(shapes: list[StepShape]) -> StepShape:
        return StepShape(*(np.concatenate([getattr(s, k) for s in shapes]) for k in StepShape.__dataclass_fields__))


def prefill(batch, prompt, cached=0) -> StepShape:
    """``batch`` sequences each prefilling ``prompt`` new tokens over ``cached`` ones."""
    b, s, p = _arr(batch), _arr(prompt), _arr(cached)
    return StepShape(
        prefill_tokens=b * s, prefill_seqs=b, prefill_pairs=b * (s * p + s * s / 2.0),
        prefill_kv=b * (p + s), decode_seqs=0.0, decode_kv=0.0, lm_rows=b,
    )


def decode(batch, context) -> StepShape:
    """``batch`` sequences decoding one token each over ``context`` cached tokens.

    ``context`` is a number (every sequence the same) or, for one configuration, a list of
    per-sequence lengths (then ``batch`` must equal its length).
    """
    ctx = np.asarray(context, dtype=float)
    if ctx.ndim == 1 and np.ndim(batch) == 0 and len(ctx) == int(batch) and len(ctx) > 1:
        return StepShape(0.0, 0.0, 0.0, 0.0, float(len(ctx)), float((ctx + 1).sum()), float(len(ctx)))
    b = _arr(batch)
    return StepShape(0.0, 0.0, 0.0, 0.0, b, b * (_arr(ctx) + 1.0), b)


def mixed(chunks: list[tuple[int, int]], decode_contexts: list[int], completes: int | None = None) -> StepShape:
    """One continuous-batching iteration: prefill ``chunks`` (new, cached) plus decoding sequences.

    ``completes`` is how many of the chunks finish their prompt in this step (they produce a token
    through the LM head); by default all of them.
    """
    c = np.array([x[0] for x in chunks], dtype=float)
    p = np.array([x[1] for x in chunks], dtype=float)
    d = np.asarray(decode_contexts, dtype=float)
    done = len(chunks) if completes is None else completes
    return StepShape(
        prefill_tokens=c.sum(), prefill_seqs=float(len(c)), prefill_pairs=(c * p + c * c / 2.0).sum(),
        prefill_kv=(p + c).sum(), decode_seqs=float(len(d)), decode_kv=(d + 1.0).sum(),
        lm_rows=float(done + len(d)),
    )
