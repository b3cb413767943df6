"""What a serving run reports: a per-request frame, a summary, utilization and queue timelines.

Definitions (seconds unless stated):

* ``ttft`` = first token - arrival; ``e2e`` = completion - arrival; ``tpot`` = (e2e - ttft) /
  (output - 1), undefined (NaN) for one-token outputs; ``queueing`` = start of the first iteration
  that works on the request - arrival.
* A request meets the SLO when ``ttft <= slo.ttft_s`` and (``tpot <= slo.tpot_s`` or it has one
  output token). Goodput = requests meeting the SLO / duration.
* ``duration`` runs from the first arrival to the last completion (or to the stop of a saturated
  run). ``throughput_rps`` counts completed requests and ``tokens_per_s`` their prompt and output
  tokens; ``output_tokens_per_s``, energy per token and cost per million tokens count every output
  token produced (unfinished requests' too).
* Cost = price per hour of each replica x replicas x duration, idle time included; NaN (printed
  "price unknown") when a replica's hardware has no price, never 0.
* ``mean_in_system`` is the time average of requests present (arrived, not completed), sampled at
  window boundaries: an independent check of Little's law against ``throughput x mean e2e``;
  ``peak_in_system`` the most present at once (at most the concurrency of a closed loop).
* ``itl`` (inter-token latency, as ``benchmark_serving`` and genai-perf report it) pools the gaps
  between consecutive output tokens of all requests: each decode iteration contributes its duration
  once per token it produced. Left out (unlike those tools): the gap spanning a preemption, and a
  disaggregated request's gap between its first token and its first decode step (the KV transfer).
* ``prefix_hit_tokens``: prompt tokens a prefix cache supplied to the completed requests (over all
  their admissions); ``prefix_hit_rate`` = those / the completed requests' prompt tokens (0 without
  a cache). Without preemption, ``prefill_tokens + prefix_hit_tokens`` = the prompt tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["Percentiles", "ServingResult", "Summary"]


@dataclass(frozen=True)
class Percentiles:
    """Mean, median, 90th and 99th percentile of a quantity (its unit: seconds for latencies)."""
    mean: float
    p50: float
    p90: float
    p99: float

    @classmethod
    def of(cls, values) -> Percentiles:
        a = np.asarray(values, dtype=float)
        a = a[~np.isnan(a)]
        if a.size == 0:
            return cls(math.nan, math.nan, math.nan, math.nan)
        p50, p90, p99 = np.percentile(a, [50, 90, 99])
        return cls(float(a.mean()), float(p50), float(p90), float(p99))

    @classmethod
    def weighted(cls, counts: dict[float, int]) -> Percentiles:
        """Percentiles of a sample given as value -> how many times it occurs (the smallest value
        whose cumulative share reaches the percentile, numpy's ``inverted_cdf``).

        >>> p = Percentiles.weighted({0.01: 98, 0.5: 2})
        >>> round(p.mean, 4), p.p50, p.p90, p.p99
        (0.0198, 0.01, 0.01, 0.5)
        """
        if not counts:
            return cls(math.nan, math.nan, math.nan, math.nan)
        v = np.array(sorted(counts), dtype=float)
        w = np.array([counts[x] for x in sorted(counts)], dtype=float)
        cum = np.cumsum(w) / w.sum()
        at = [float(v[min(int(np.searchsorted(cum, q - 1e-12)), len(v) - 1)]) for q in (0.5, 0.9, 0.99)]
        return cls(float(np.dot(v, w) / w.sum()), *at)


@dataclass(frozen=True)
class Summary:
    """Headline figures of a serving run (SI units: s, requests/s, tokens/s, J, USD)."""
    requests: int = 0
    completed: int = 0
    dropped: int = 0
    unfinished: int = 0
    duration_s: float = 0.0
    throughput_rps: float = 0.0
    output_tokens_per_s: float = 0.0
    tokens_per_s: float = 0.0
    goodput_rps: float = math.nan
    slo_attainment: float = math.nan
    ttft_s: Percentiles = field(default_factory=lambda: Percentiles.of([]))
    tpot_s: Percentiles = field(default_factory=lambda: Percentiles.of([]))
    itl_s: Percentiles = field(default_factory=lambda: Percentiles.of([]))
    e2e_s: Percentiles = field(default_factory=lambda: Percentiles.of([]))
    queueing_s: Percentiles = field(default_factory=lambda: Percentiles.of([]))
    output_tokens: int = 0
    prefill_tokens: int = 0
    prefix_hit_tokens: int = 0
    prefix_hit_rate: float = 0.0
    preemptions: int = 0
    recomputed_tokens: int = 0
    mean_in_system: float = math.nan
    peak_in_system: int = 0
    mean_utilization: float = math.nan
    energy_j: float = 0.0
    energy_per_output_token_j: float = math.nan
    cost_usd: float = 0.0
    cost_per_million_output_tokens_usd: float = math.nan
    saturated: bool = False
    saturation_reason: str = ""
    feasible: bool = True
    infeasible_reason: str = ""


@dataclass
class ServingResult:
    """``requests``: one row per request; ``utilization``: busy fraction and output tokens per replica
    and window; ``queue``: counts sampled at window ends; ``memo``: step-cost cache statistics."""

    summary: Summary
    requests: pd.DataFrame
    utilization: pd.DataFrame
    queue: pd.DataFrame
    memo: dict = field(default_factory=dict)
    name: str = ""

    @property
    def saturated(self) -> bool:
        """True when the run could not keep up with its arrivals."""
        return self.summary.saturated

    @property
    def feasible(self) -> bool:
        """False when the scenario was impossible and not simulated."""
        return self.summary.feasible


REQUEST_COLUMNS = ["id", "arrival_s", "prompt_tokens", "output_tokens", "status", "reason", "replica",
                   "prefill_replica", "first_scheduled_s", "first_token_s", "finish_s", "ttft_s", "tpot_s",
                   "e2e_s", "queueing_s", "kv_transfer_s", "preemptions", "recomputed_tokens", "meets_slo",
                   "prefix_hit_tokens"]


def request_frame(seqs, slo) -> pd.DataFrame:
    nan = math.nan
    f = pd.DataFrame({
        "id": [s.id for s in seqs],
        "arrival_s": [s.arrival for s in seqs],
        "prompt_tokens": [s.prompt for s in seqs],
        "output_tokens": [s.output for s in seqs],
        "status": [s.status for s in seqs],
        "reason": [s.reason for s in seqs],
        "replica": [s.replica for s in seqs],
        "prefill_replica": [s.prefill_replica for s in seqs],
        "first_scheduled_s": [nan if s.first_scheduled is None else s.first_scheduled for s in seqs],
        "first_token_s": [nan if s.first_token is None else s.first_token for s in seqs],
        "finish_s": [nan if s.finish is None else s.finish for s in seqs],
        "kv_transfer_s": [s.transfer_s for s in seqs],
        "preemptions": [s.preemptions for s in seqs],
        "recomputed_tokens": [max(0, s.prefill_tokens - s.prompt) if s.prefill_tokens else 0 for s in seqs],
        "prefix_hit_tokens": [s.cached for s in seqs],
    }, columns=[c for c in REQUEST_COLUMNS if c not in ("ttft_s", "tpot_s", "e2e_s", "queueing_s", "meets_slo")])
    f["ttft_s"] = f["first_token_s"] - f["arrival_s"]
    f["e2e_s"] = f["finish_s"] - f["arrival_s"]
    denom = (f["output_tokens"] - 1).where(f["output_tokens"] > 1)
    f["tpot_s"] = (f["e2e_s"] - f["ttft_s"]) / denom
    f["queueing_s"] = f["first_scheduled_s"] - f["arrival_s"]
    if slo is None:
        f["meets_slo"] = pd.Series([pd.NA] * len(f), dtype="boolean")
    else:
        ok = (f["status"] == "completed") & (f["ttft_s"] <= slo.ttft_s) & (
            (f["tpot_s"] <= slo.tpot_s) | (f["output_tokens"] <= 1))
        f["meets_slo"] = ok.astype("boolean")
    return f[REQUEST_COLUMNS]


def summarize(frame: pd.DataFrame, *, duration_s: float, output_tokens: int, prefill_tokens: int,
              preemptions: int, energy_j: float, cost_usd: float, mean_in_system: float,
              mean_utilization: float, saturated: bool, saturation_reason: str, has_slo: bool,
              itl: dict[float, int] | None = None, peak_in_system: int = 0) -> Summary:
    done = frame[frame["status"] == "completed"]
    n_done = len(done)
    dur = duration_s if duration_s > 0 else math.nan
    good = int(done["meets_slo"].fillna(False).sum()) if has_slo else 0
    return Summary(
        requests=len(frame),
        completed=n_done,
        dropped=int((frame["status"] == "dropped").sum()),
        unfinished=int((frame["status"] == "unfinished").sum()),
        duration_s=duration_s,
        throughput_rps=n_done / dur if n_done else 0.0,
        output_tokens_per_s=output_tokens / dur if output_tokens else 0.0,
        tokens_per_s=int(done["prompt_tokens"].sum() + done["output_tokens"].sum()) / dur if n_done else 0.0,
        goodput_rps=good / dur if has_slo and n_done else (0.0 if has_slo else math.nan),
        slo_attainment=good / n_done if has_slo and n_done else math.nan,
        ttft_s=Percentiles.of(done["ttft_s"]),
        tpot_s=Percentiles.of(done["tpot_s"]),
        itl_s=Percentiles.weighted(itl or {}),
        e2e_s=Percentiles.of(done["e2e_s"]),
        queueing_s=Percentiles.of(done["queueing_s"]),
        output_tokens=output_tokens,
        prefill_tokens=prefill_tokens,
        prefix_hit_tokens=int(done["prefix_hit_tokens"].sum()),
        prefix_hit_rate=float(done["prefix_hit_tokens"].sum() / done["prompt_tokens"].sum()) if n_done else 0.0,
        preemptions=preemptions,
        recomputed_tokens=int(frame["recomputed_tokens"].sum()),
        mean_in_system=mean_in_system,
        peak_in_system=peak_in_system,
        mean_utilization=mean_utilization,
        energy_j=energy_j,
        energy_per_output_token_j=energy_j / output_tokens if output_tokens else math.nan,
        cost_usd=cost_usd,
        cost_per_million_output_tokens_usd=cost_usd / output_tokens * 1e6 if output_tokens else math.nan,
        saturated=saturated,
        saturation_reason=saturation_reason,
    )
