"""Request traces: arrival processes, prompt/output length distributions, CSV trace files.

Only numpy and the standard library. A trace is a list of :class:`Request` sorted by arrival time.

>>> from workloads.requests import PoissonArrivals, LogNormal, Fixed, generate_trace
>>> trace = generate_trace(100, PoissonArrivals(rate_per_s=5.0), LogNormal(mean=1000, sigma=0.5),
...                        Fixed(200), seed=1)
>>> len(trace), trace[0].output_tokens
(100, 200)
>>> trace == generate_trace(100, PoissonArrivals(5.0), LogNormal(1000, 0.5), Fixed(200), seed=1)
True
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np

from workloads.files import atomic_path

__all__ = [
    "AllAtOnce", "ArrivalProcess", "Empirical", "FixedRateArrivals", "Fixed", "GammaArrivals", "LengthDistribution",
    "LogNormal", "PoissonArrivals", "Request", "SharedPrefix", "Uniform", "WorkloadSpec", "generate_trace",
    "output_segment", "own_segment", "read_trace", "segments", "trace_summary", "with_shared_prefix", "write_trace",
]


@dataclass(frozen=True, slots=True)
class Request:
    """One inference request: arrives at ``arrival_s`` (s), brings ``prompt_tokens``, wants ``output_tokens``.

    Shared text is described, not spelled out. Its prompt may start with ``prefix_tokens`` tokens
    shared with other requests of the same ``prefix_id`` (a system prompt; -1: none), or, more
    generally, with the segments ``prefix`` lists as ``(segment id, tokens)`` (a system prompt and a
    conversation's earlier turns); the rest of the prompt is the request's own (see
    :func:`segments`), and a prefix cache can reuse what is shared. ``follows`` names the request this
    one is the next turn of: it is sent when that one has finished (plus the client's think time),
    and its ``arrival_s`` is then only a placeholder."""

    id: int
    arrival_s: float
    prompt_tokens: int
    output_tokens: int
    prefix_id: int = -1
    prefix_tokens: int = 0
    prefix: tuple[tuple[int, int], ...] = ()
    follows: int | None = None


def own_segment(request_id: int) -> int:
    """Segment id of a request's own prompt text (what follows its prefix): ``-(2 id + 1)``.
    Ids >= 0 name shared texts such as system prompts (a ``prefix_id``)."""
    return -(2 * request_id + 1)


def output_segment(request_id: int) -> int:
    """Segment id of a request's generated text: ``-(2 id + 2)`` (a later turn resends it)."""
    return -(2 * request_id + 2)


def segments(req: Request) -> list[tuple[int, int]]:
    """The request's whole token sequence as segments ``(id, tokens)``: its prefix (``prefix``, or
    ``(prefix_id, prefix_tokens)``), its own prompt text, its output. Two requests hold the same
    first ``n`` tokens exactly when their segment lists agree up to ``n`` tokens (assumption: a
    segment id names one text of one length).

    >>> segments(Request(3, 0.0, 2100, 50, prefix=((0, 2000),)))
    [(0, 2000), (-7, 100), (-8, 50)]
    >>> segments(Request(3, 0.0, 2100, 50, prefix_id=0, prefix_tokens=2000))
    [(0, 2000), (-7, 100), (-8, 50)]
    """
    prefix = req.prefix or (((req.prefix_id, req.prefix_tokens),) if req.prefix_id >= 0 and req.prefix_tokens else ())
    own = req.prompt_tokens - sum(n for _, n in prefix)
    if own < 0:
        raise ValueError(f"request {req.id}: prefix holds {req.prompt_tokens - own} tokens, more than its "
                         f"{req.prompt_tokens} prompt tokens")
    out = list(prefix)
    if own:
        out.append((own_segment(req.id), own))
    out.append((output_segment(req.id), req.output_tokens))
    return out


# --------------------------------------------------------------------------- arrival processes
class ArrivalProcess(Protocol):
    """Inter-arrival gaps (s) of a request stream (a protocol)."""
    rate_per_s: float

    def interarrivals(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` gaps between consecutive arrivals, seconds."""
        ...


def _check_rate(rate: float) -> None:
    if not (isinstance(rate, int | float) and math.isfinite(rate) and rate > 0):
        raise ValueError(f"arrival.rate_per_s must be a finite number > 0, got {rate!r}")


@dataclass(frozen=True)
class PoissonArrivals:
    """Memoryless arrivals: exponential gaps with mean ``1 / rate_per_s`` (coefficient of variation 1)."""

    rate_per_s: float

    def __post_init__(self) -> None:
        _check_rate(self.rate_per_s)

    def interarrivals(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` exponential gaps with mean 1 / rate (s)."""
        return rng.exponential(1.0 / self.rate_per_s, size=n)


@dataclass(frozen=True)
class GammaArrivals:
    """Bursty (``cv > 1``) or smooth (``cv < 1``) arrivals: Gamma gaps with mean ``1/rate_per_s`` and
    coefficient of variation ``cv`` (shape ``1/cv**2``). ``cv = 1`` is Poisson."""

    rate_per_s: float
    cv: float = 1.0

    def __post_init__(self) -> None:
        _check_rate(self.rate_per_s)
        if not (math.isfinite(self.cv) and self.cv > 0):
            raise ValueError(f"arrival.cv must be a finite number > 0, got {self.cv!r}")

    def interarrivals(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` gamma-distributed gaps with mean 1 / rate and the given CV (s)."""
        shape = 1.0 / self.cv**2
        return rng.gamma(shape, 1.0 / (self.rate_per_s * shape), size=n)


@dataclass(frozen=True)
class AllAtOnce:
    """Every request is ready at t = 0 (``benchmark_serving --request-rate inf``): an offline batch,
    or the request pool a closed-loop client draws from (the simulation then decides when each is sent)."""

    rate_per_s: float = math.inf

    def interarrivals(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` zero gaps."""
        return np.zeros(n)


@dataclass(frozen=True)
class FixedRateArrivals:
    """One arrival every ``1 / rate_per_s`` seconds exactly."""

    rate_per_s: float

    def __post_init__(self) -> None:
        _check_rate(self.rate_per_s)

    def interarrivals(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` equal gaps of 1 / rate (s)."""
        return np.full(n, 1.0 / self.rate_per_s)


# --------------------------------------------------------------------------- length distributions
class LengthDistribution(Protocol):
    """Token lengths of prompts or outputs (a protocol: ``sample(n, rng)``, ``mean()``)."""
    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` token counts (int64, each >= 1)."""
        ...


def _check_tokens(name: str, value, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


@dataclass(frozen=True)
class Fixed:
    """Every request has exactly ``tokens`` tokens."""

    tokens: int

    def __post_init__(self) -> None:
        _check_tokens("Fixed.tokens", self.tokens)

    @property
    def mean(self) -> float:
        """The fixed length (tokens)."""
        return float(self.tokens)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` copies of the fixed length (tokens)."""
        return np.full(n, self.tokens, dtype=np.int64)


@dataclass(frozen=True)
class Uniform:
    """Integers drawn uniformly from ``low .. high`` inclusive."""

    low: int
    high: int

    def __post_init__(self) -> None:
        _check_tokens("Uniform.low", self.low)
        _check_tokens("Uniform.high", self.high, self.low)

    @property
    def mean(self) -> float:
        """Mean length (tokens)."""
        return (self.low + self.high) / 2

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` lengths uniform in [low, high] (tokens)."""
        return rng.integers(self.low, self.high, size=n, endpoint=True, dtype=np.int64)


@dataclass(frozen=True)
class LogNormal:
    """Log-normal lengths with arithmetic mean ``mean`` (tokens) and log-space standard deviation
    ``sigma``, rounded to integers and clipped to ``min_tokens .. max_tokens`` (clipping moves the
    mean slightly; with the defaults and sigma <= 1 the shift is well under 1 %)."""

    mean: float
    sigma: float = 0.5
    min_tokens: int = 1
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mean) and self.mean >= 1):
            raise ValueError(f"LogNormal.mean must be a finite number >= 1, got {self.mean!r}")
        if not (math.isfinite(self.sigma) and self.sigma >= 0):
            raise ValueError(f"LogNormal.sigma must be a finite number >= 0, got {self.sigma!r}")
        _check_tokens("LogNormal.min_tokens", self.min_tokens)
        if self.max_tokens is not None:
            _check_tokens("LogNormal.max_tokens", self.max_tokens, self.min_tokens)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` log-normal lengths (tokens, at least 1, capped at ``max_tokens``)."""
        mu = math.log(self.mean) - self.sigma**2 / 2
        x = np.rint(rng.lognormal(mu, self.sigma, size=n))
        hi = self.max_tokens if self.max_tokens is not None else np.inf
        return np.clip(x, self.min_tokens, hi).astype(np.int64)


@dataclass(frozen=True)
class Empirical:
    """Resample observed lengths ``values`` (with optional ``weights``), e.g. from a measured trace."""

    values: tuple[int, ...]
    weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(int(v) for v in self.values))
        if not self.values or min(self.values) < 1:
            raise ValueError("Empirical.values must be a non-empty list of integers >= 1")
        if self.weights is not None:
            w = tuple(float(x) for x in self.weights)
            if len(w) != len(self.values) or min(w) < 0 or sum(w) <= 0:
                raise ValueError("Empirical.weights must be non-negative, one per value, with a positive sum")
            object.__setattr__(self, "weights", w)

    @property
    def mean(self) -> float:
        """Mean length of the sample (tokens)."""
        v = np.asarray(self.values, dtype=float)
        return float(np.average(v, weights=self.weights))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` lengths drawn with replacement from the sample (tokens)."""
        p = None if self.weights is None else np.asarray(self.weights) / sum(self.weights)
        return rng.choice(np.asarray(self.values, dtype=np.int64), size=n, p=p)

    @classmethod
    def from_file(cls, path: str | os.PathLike, column: str | None = None) -> Empirical:
        """Lengths from a file: one integer per line, or a CSV column (``column`` names it; a trace
        file's ``prompt_tokens``/``output_tokens`` synonyms are accepted)."""
        with open(path, newline="") as f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
        if not rows:
            raise ValueError(f"{path}: no lengths found")
        start, col = 0, 0
        first = [c.strip() for c in rows[0]]
        if not _is_number(first[0]) or column is not None:
            names = [_normalize(c) for c in first]
            want = _normalize(column) if column is not None else None
            if want is None:
                if len(names) != 1:
                    raise ValueError(f"{path}: several columns {first}; pass column= to choose one")
                col = 0
            else:
                aliases = _SYNONYMS.get(_canonical(want), (want,))
                hits = [i for i, n in enumerate(names) if n == want or n in aliases]
                if not hits:
                    raise ValueError(f"{path}: column {column!r} not found; columns are {first}")
                col = hits[0]
            start = 1
        values = []
        for i, row in enumerate(rows[start:], start=start + 1):
            cell = row[col].strip() if col < len(row) else ""
            values.append(_parse_tokens(cell, path, i, first[col] if start else "value"))
        return cls(tuple(values))


def _as_length(x: LengthDistribution | int, name: str) -> LengthDistribution:
    if isinstance(x, int | np.integer) and not isinstance(x, bool):
        return Fixed(int(x))
    if not hasattr(x, "sample"):
        raise ValueError(f"{name} must be a length distribution (Fixed, Uniform, LogNormal, Empirical) or an int")
    return x


# --------------------------------------------------------------------------- shared prefixes
@dataclass(frozen=True)
class SharedPrefix:
    """A system prompt of ``tokens`` tokens opening the prompt of a ``fraction`` of the requests (of
    the conversations, with several turns), each using one of ``count`` distinct system prompts
    (uniformly). Its tokens add to the drawn prompt length (the drawn length is the user's text)."""

    tokens: int
    fraction: float = 1.0
    count: int = 1

    def __post_init__(self) -> None:
        _check_tokens("workload.system_prompt_tokens", self.tokens)
        if not (isinstance(self.fraction, int | float) and 0 <= self.fraction <= 1):
            raise ValueError(f"workload.system_prompt_fraction must be in [0, 1], got {self.fraction!r}")
        _check_tokens("workload.system_prompts", self.count)


# --------------------------------------------------------------------------- traces
def generate_trace(num_requests: int, arrival: ArrivalProcess, prompt_tokens: LengthDistribution | int,
                   output_tokens: LengthDistribution | int, seed: int = 0,
                   start_s: float = 0.0, shared_prefix: SharedPrefix | None = None, turns: int = 1) -> list[Request]:
    """A seeded synthetic trace: the same arguments and seed give the same trace.

    Arrivals, prompt lengths and output lengths draw from independent streams of ``seed``, so
    changing one distribution leaves the others' draws unchanged (common random numbers when
    sweeping the rate). The first request arrives one gap after ``start_s``.

    ``shared_prefix`` opens some prompts with a system prompt (:class:`SharedPrefix`). With
    ``turns > 1`` the requests form conversations of ``turns`` turns (the last one may be shorter):
    the arrival process gives each conversation's start, turn ``k + 1`` follows turn ``k`` and resends
    its whole history (prompt and output) before the new user text, so its prompt is the history plus
    a drawn length. Both draw from streams of their own: without them the trace is unchanged.

    >>> t = generate_trace(4, FixedRateArrivals(1.0), 10, 5, shared_prefix=SharedPrefix(100), turns=2)
    >>> [(q.prompt_tokens, q.prefix_id, q.prefix, q.follows) for q in t][:2]
    [(110, 0, (), None), (125, -1, ((0, 100), (-1, 10), (-2, 5)), 0)]
    """
    _check_tokens("num_requests", num_requests, 0)
    _check_tokens("turns", turns)
    prompt = _as_length(prompt_tokens, "prompt_tokens")
    output = _as_length(output_tokens, "output_tokens")
    s_arr, s_in, s_out, s_share = np.random.SeedSequence(seed).spawn(4)
    sessions = -(-num_requests // turns)
    gaps = np.asarray(arrival.interarrivals(sessions, np.random.default_rng(s_arr)), dtype=float)
    times = start_s + np.cumsum(gaps)
    p = prompt.sample(num_requests, np.random.default_rng(s_in))
    o = output.sample(num_requests, np.random.default_rng(s_out))
    if num_requests and (p.min() < 1 or o.min() < 1):
        raise ValueError("length distributions must produce token counts >= 1")
    if shared_prefix is None and turns == 1:
        return [Request(i, float(t), int(a), int(b)) for i, (t, a, b) in enumerate(zip(times, p, o, strict=True))]
    rng = np.random.default_rng(s_share)
    shared = np.zeros(sessions, dtype=bool) if shared_prefix is None else rng.random(sessions) < shared_prefix.fraction
    which = np.zeros(sessions, dtype=np.int64) if shared_prefix is None else rng.integers(0, shared_prefix.count,
                                                                                         size=sessions)
    out: list[Request] = []
    for i in range(num_requests):
        s, k = divmod(i, turns)
        if k == 0:  # a system prompt or nothing: the prefix_id form
            sp = shared_prefix.tokens if shared[s] else 0
            out.append(Request(i, float(times[s]), sp + int(p[i]), int(o[i]), int(which[s]) if sp else -1, sp))
        else:  # the whole previous turn, then new text
            prefix = tuple(segments(out[-1]))
            out.append(Request(i, float(times[s]), sum(n for _, n in prefix) + int(p[i]), int(o[i]), prefix=prefix,
                               follows=i - 1))
    return out


@dataclass(frozen=True)
class WorkloadSpec:
    """What to generate: ``num_requests`` arriving by ``arrival`` with the given length distributions."""

    num_requests: int
    arrival: ArrivalProcess
    prompt_tokens: LengthDistribution | int
    output_tokens: LengthDistribution | int = 128
    shared_prefix: SharedPrefix | None = None
    turns: int = 1

    def __post_init__(self) -> None:
        _check_tokens("workload.num_requests", self.num_requests)
        _check_tokens("workload.turns", self.turns)

    def generate(self, seed: int = 0) -> list[Request]:
        """The seeded list of requests (same seed, same trace); see :func:`generate_trace`."""
        return generate_trace(self.num_requests, self.arrival, self.prompt_tokens, self.output_tokens, seed,
                              shared_prefix=self.shared_prefix, turns=self.turns)


def with_shared_prefix(requests: Sequence[Request], tokens: int, fraction: float = 1.0, groups: int = 1,
                       seed: int = 0) -> list[Request]:
    """The requests with a shared system prompt: a seeded ``fraction`` of them get ``tokens`` more
    prompt tokens, a prefix shared by the requests of the same group (``groups`` distinct prompts,
    drawn uniformly). Lengths and arrivals of the others are unchanged."""
    _check_tokens("tokens", tokens, 1)
    _check_tokens("groups", groups, 1)
    if not (isinstance(fraction, int | float) and 0 <= fraction <= 1):
        raise ValueError(f"fraction: must be in [0, 1], got {fraction!r}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED]))
    share = rng.random(len(requests)) < fraction
    group = rng.integers(0, groups, len(requests))
    return [Request(q.id, q.arrival_s, q.prompt_tokens + tokens, q.output_tokens, int(g), tokens) if s else q
            for q, s, g in zip(requests, share, group, strict=True)]


# --------------------------------------------------------------------------- trace files
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "arrival_s": ("arrival_s", "arrival", "arrival_time", "arrival_time_s", "arrived_at", "timestamp",
                  "time", "time_s", "t"),
    "prompt_tokens": ("prompt_tokens", "prompt_len", "prompt_length", "input_tokens", "input_len",
                      "input_length", "num_prefill_tokens", "context_tokens", "contexttokens",
                      "request_tokens"),
    "output_tokens": ("output_tokens", "output_len", "output_length", "generated_tokens", "generatedtokens",
                      "completion_tokens", "num_decode_tokens", "response_tokens", "decode_tokens"),
}


def _normalize(name: str) -> str:
    return name.strip().strip("\ufeff").lower().replace(" ", "_").replace("-", "_")


def _canonical(name: str) -> str:
    for canon, aliases in _SYNONYMS.items():
        if name in aliases:
            return canon
    return name


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse_tokens(cell: str, path, row: int, column: str) -> int:
    try:
        x = float(cell)
    except ValueError:
        x = math.nan
    if not (math.isfinite(x) and x == int(x) and x >= 1):
        raise ValueError(f"{path}: row {row}, column {column!r}: expected an integer >= 1, got {cell!r}")
    return int(x)


def _parse_time(cell: str) -> float | datetime:
    try:
        x = float(cell)
    except ValueError:
        pass
    else:
        if math.isfinite(x) and x >= 0:
            return x
        raise ValueError("a finite number of seconds >= 0")
    text = cell.strip().replace("Z", "+00:00")
    if "." in text:  # datetime.fromisoformat takes at most 6 fractional digits
        head, _, frac = text.partition(".")
        digits = len(frac) - len(frac.lstrip("0123456789"))
        text = head + "." + frac[:min(digits, 6)].ljust(6, "0") + frac[digits:]
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("seconds (a number >= 0) or an ISO date-time") from None


def read_trace(path: str | os.PathLike) -> list[Request]:
    """Read a CSV trace: ``arrival_s,prompt_tokens,output_tokens`` (synonyms accepted, e.g. Azure's
    ``TIMESTAMP,ContextTokens,GeneratedTokens`` or Vidur's ``arrived_at,num_prefill_tokens,
    num_decode_tokens``); extra columns are ignored. Arrival times are seconds, or ISO date-times made
    relative to the earliest. Rows are sorted by arrival (stably); ``id`` is the data-row index.
    Bad cells raise ``ValueError`` naming the row (1 = first data row) and the column.
    """
    with open(path, newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise ValueError(f"{path}: empty file; expected a header arrival_s,prompt_tokens,output_tokens") from None
        names = [_normalize(h) for h in header]
        cols: dict[str, int] = {}
        for canon, aliases in _SYNONYMS.items():
            hits = [i for i, n in enumerate(names) if n in aliases]
            if not hits:
                raise ValueError(f"{path}: no column for {canon!r} (accepted names: {', '.join(aliases)}); "
                                 f"header is {header}")
            cols[canon] = hits[0]
        rows: list[tuple[float | datetime, int, int]] = []
        for r, row in enumerate(reader, start=1):
            if not row or not any(c.strip() for c in row):
                continue
            cells = {}
            for canon, i in cols.items():
                if i >= len(row):
                    raise ValueError(f"{path}: row {r}, column {header[i]!r}: missing cell")
                cells[canon] = row[i].strip()
            try:
                t = _parse_time(cells["arrival_s"])
            except ValueError as e:
                raise ValueError(f"{path}: row {r}, column {header[cols['arrival_s']]!r}: expected {e}, "
                                 f"got {cells['arrival_s']!r}") from None
            if rows and isinstance(t, datetime) != isinstance(rows[0][0], datetime):
                raise ValueError(f"{path}: row {r}, column {header[cols['arrival_s']]!r}: mixes seconds "
                                 "and date-times")
            p = _parse_tokens(cells["prompt_tokens"], path, r, header[cols["prompt_tokens"]])
            o = _parse_tokens(cells["output_tokens"], path, r, header[cols["output_tokens"]])
            rows.append((t, p, o))
    if rows and isinstance(rows[0][0], datetime):
        try:
            t0 = min(r[0] for r in rows)
            rows = [((r[0] - t0).total_seconds(), r[1], r[2]) for r in rows]
        except TypeError:
            raise ValueError(f"{path}: column {header[cols['arrival_s']]!r} mixes date-times with and "
                             "without a time zone") from None
    order = sorted(range(len(rows)), key=lambda i: rows[i][0])
    return [Request(i, float(rows[i][0]), rows[i][1], rows[i][2]) for i in order]


def write_trace(path: str | os.PathLike, requests: Iterable[Request]) -> None:
    """Write ``arrival_s,prompt_tokens,output_tokens`` (times with full float precision)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arrival_s", "prompt_tokens", "output_tokens"])
        for q in requests:
            w.writerow([repr(float(q.arrival_s)), q.prompt_tokens, q.output_tokens])


def trace_summary(requests: Sequence[Request]) -> dict[str, float]:
    """Count, span (s), mean rate (1/s) and mean prompt/output tokens of a trace."""
    n = len(requests)
    if n == 0:
        return {"requests": 0, "span_s": 0.0, "rate_per_s": 0.0, "mean_prompt": 0.0, "mean_output": 0.0}
    span = requests[-1].arrival_s - requests[0].arrival_s
    return {"requests": n, "span_s": span, "rate_per_s": (n - 1) / span if span > 0 else math.inf,
            "mean_prompt": sum(q.prompt_tokens for q in requests) / n,
            "mean_output": sum(q.output_tokens for q in requests) / n}
