"""Configuration of a serving simulation, as dataclasses; :meth:`Scenario.validate` names bad fields.

Defaults follow vLLM where it has the knob: ``max_num_seqs = 256``, ``block_size = 16``,
``gpu_memory_utilization = 0.9`` (vLLM's engine arguments); ``max_num_batched_tokens = 8192``
(vLLM V1's default for its OpenAI server on data-centre GPUs; assumption, it varies by version and
GPU); ``watermark = 0.01`` (vLLM V0's block manager keeps 1 % of blocks free when admitting);
``preemption_mode = recompute`` (vLLM's). ``enable_prefix_caching`` is off by default although vLLM V1
turns it on: with no shared prefixes it changes only what a preempted sequence recomputes, and off
keeps results comparable with earlier runs; turn it on for workloads that share prefixes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from genz.serving.cost import StepCostModel
from genz.serving.registry import ROUTERS, SCHEDULERS
from workloads.requests import Request, WorkloadSpec

__all__ = ["MAX_ARRIVAL_S", "MAX_REPLICAS", "MAX_REQUESTS", "MAX_WINDOWS", "MIN_RATE_PER_S", "SLO", "ContinuousBatching", "Disaggregation", "KVLink", "MemoConfig", "SaturationConfig",
           "Scenario", "StaticBatching", "ROUTERS"]


#: Limits checked before a run starts, so a typo cannot hang the machine. Requests per run (raise with
#: ``simulate(..., max_requests=N)`` / ``genz simulate --max-requests N``), replicas per pool, windows
#: a run is cut into, the lowest arrival rate and the latest arrival (the clock is float seconds: at
#: 1e9 s it still resolves 0.1 us; far beyond, a step would vanish in rounding).
MAX_REQUESTS = 2_000_000
MAX_REPLICAS = 10_000
MAX_WINDOWS = 1_000_000
MIN_RATE_PER_S = 1e-6
MAX_ARRIVAL_S = 1e9
MAX_CONCURRENCY = 1_000_000


def _need(cond: bool, msg: str) -> None:
    if not cond:
        raise ValueError(msg)


def _int_at_least(prefix: str, name: str, value, lo: int) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= lo
    _need(ok, f"{prefix}{name}: must be an integer >= {lo}, got {value!r}")


def _flag(prefix: str, name: str, value) -> None:
    _need(isinstance(value, bool), f"{prefix}{name}: must be true or false, got {value!r}")


def _fraction(prefix: str, name: str, value, lo_open: bool = True) -> None:
    ok = isinstance(value, int | float) and math.isfinite(value) and (0 < value if lo_open else 0 <= value) \
        and value <= 1
    _need(ok, f"{prefix}{name}: must be in {'(0' if lo_open else '[0'}, 1], got {value!r}")


@dataclass(frozen=True)
class StaticBatching:
    """HuggingFace-pipelines style: when idle, take up to ``batch_size`` waiting requests, prefill them
    together, decode until every one of them is done; nobody joins mid-way. With ``pad_to_longest``
    prompts are padded to the batch's longest (as a padded tensor batch is); every sequence runs
    until the longest output finishes and all results return together at the end of the batch."""

    batch_size: int = field(default=8, metadata={"help": "requests per static batch"})
    pad_to_longest: bool = field(default=True, metadata={"help": "pad prompts to the batch's longest"})
    block_size: int = field(default=16, metadata={"help": "KV-cache block, tokens"})
    gpu_memory_utilization: float = field(default=0.9, metadata={"help": "fraction of device memory the engine uses"})

    kind = "static"

    def max_step_tokens(self, num_requests: int, longest_prompt: int) -> int:
        """Tokens of the largest iteration (the engine's activation reserve): a full batch of the
        longest prompt, padded."""
        return max(1, min(self.batch_size, num_requests) * longest_prompt)

    def validate(self, prefix: str = "scheduler.") -> None:
        """Raise ``ValueError`` naming the first bad knob (``prefix`` + name)."""
        _int_at_least(prefix, "batch_size", self.batch_size, 1)
        _flag(prefix, "pad_to_longest", self.pad_to_longest)
        _int_at_least(prefix, "block_size", self.block_size, 1)
        _fraction(prefix, "gpu_memory_utilization", self.gpu_memory_utilization)


@dataclass(frozen=True)
class ContinuousBatching:
    """vLLM-style iteration-level scheduling with paged KV cache and preemption by recomputation.

    ``chunked_prefill=False`` (vLLM V0 default): an iteration is either a prefill batch of whole
    prompts (when waiting requests can be admitted) or a decode step of all running sequences.
    ``chunked_prefill=True`` (vLLM V1): every iteration decodes all running sequences and fills the
    rest of ``max_num_batched_tokens`` with prompt chunks, oldest first.

    ``enable_prefix_caching`` (vLLM's automatic prefix caching, :class:`~genz.serving.prefix_cache.
    BlockPrefixCache`): full KV blocks are identified by their tokens and all before them (the
    request's segments: ``Request.prefix`` / ``prefix_id``, its own text, its output); an admitted
    prompt starts after its longest run of cached leading blocks, shared blocks are held once, and
    cached blocks nobody runs on count as free until evicted least recently freed first.
    ``preemption_mode``: what a preempted decoding sequence does (:mod:`genz.serving.preemption`).
    """

    max_num_seqs: int = field(default=256, metadata={"help": "most sequences running at once"})
    max_num_batched_tokens: int = field(default=8192, metadata={"help": "token budget of one iteration"})
    chunked_prefill: bool = field(default=True, metadata={"help": "split prompts over iterations (vLLM V1)"})
    block_size: int = field(default=16, metadata={"help": "KV-cache block, tokens"})
    gpu_memory_utilization: float = field(default=0.9, metadata={"help": "fraction of device memory the engine uses"})
    watermark: float = field(default=0.01, metadata={"help": "fraction of KV blocks kept free when admitting"})
    enable_prefix_caching: bool = field(default=False, metadata={
        "help": "reuse cached KV blocks of shared prompt prefixes (vLLM automatic prefix caching)"})
    preemption_mode: str = field(default="recompute", metadata={
        "help": "what a preempted decoding sequence does: recompute | swap (KV to host memory and back)"})
    swap_link: str = field(default="pcie5", metadata={"help": "host link swapped KV blocks cross (one per device)"})

    kind = "continuous"

    def max_step_tokens(self, num_requests: int, longest_prompt: int) -> int:
        """Tokens of the largest iteration (the engine's activation reserve): the token budget."""
        return self.max_num_batched_tokens

    def validate(self, prefix: str = "scheduler.") -> None:
        """Raise ``ValueError`` naming the first bad knob (``prefix`` + name)."""
        _flag(prefix, "chunked_prefill", self.chunked_prefill)
        _flag(prefix, "enable_prefix_caching", self.enable_prefix_caching)
        _int_at_least(prefix, "max_num_seqs", self.max_num_seqs, 1)
        _int_at_least(prefix, "max_num_batched_tokens", self.max_num_batched_tokens, 1)
        _int_at_least(prefix, "block_size", self.block_size, 1)
        _need(self.max_num_batched_tokens >= self.max_num_seqs,
              f"{prefix}max_num_batched_tokens: must be >= {prefix}max_num_seqs ({self.max_num_seqs}), as vLLM "
              f"requires, got {self.max_num_batched_tokens} (every running sequence decodes each iteration)")
        _fraction(prefix, "gpu_memory_utilization", self.gpu_memory_utilization)
        ok = isinstance(self.watermark, int | float) and 0 <= self.watermark < 1
        _need(ok, f"{prefix}watermark: must be in [0, 1), got {self.watermark!r}")
        check_preemption(prefix, self.preemption_mode, self.swap_link)


def check_preemption(prefix: str, mode, link) -> None:
    """``ValueError`` naming ``prefix + preemption_mode`` / ``swap_link`` when unknown."""
    from genz.serving.preemption import preemption_mode
    from hwmodels.spec import load_link

    preemption_mode(mode, prefix)
    try:
        load_link(link)
    except (ValueError, AttributeError) as exc:
        raise ValueError(f"{prefix}swap_link: {exc}") from None


@dataclass(frozen=True)
class KVLink:
    """The link carrying KV caches from a prefill replica to a decode replica (one per prefill replica;
    transfers from the same prefill replica queue on it).

    A transfer takes ``bytes / bandwidth_bytes_per_s + latency_s``. With ``overlap`` it streams layer
    by layer while the final prefill iteration runs (Splitwise): it starts when that iteration starts
    and arrives at ``max(start + bytes/bandwidth, prefill end) + latency_s``. Without, it starts when
    the prefill ends. The prefill replica holds the blocks until the bytes are on the wire.
    """

    bandwidth_bytes_per_s: float
    latency_s: float = 0.0
    overlap: bool = True

    def validate(self, prefix: str = "disaggregation.link.") -> None:
        """Raise ``ValueError`` naming the first bad field (``prefix`` + name)."""
        b = self.bandwidth_bytes_per_s
        _need(isinstance(b, int | float) and math.isfinite(b) and b > 0,
              f"{prefix}bandwidth_bytes_per_s must be a finite number > 0, got {b!r}")
        lat = self.latency_s
        _need(isinstance(lat, int | float) and math.isfinite(lat) and lat >= 0,
              f"{prefix}latency_s must be a finite number >= 0, got {lat!r}")


@dataclass(frozen=True)
class Disaggregation:
    """Splitwise: a prefill pool (``prefill_replicas`` x ``prefill_cost``) produces the first token and
    ships the KV cache over ``link`` to the scenario's replicas, which then only decode.
    ``prefill_scheduler`` defaults to the scenario's scheduler."""

    prefill_cost: StepCostModel
    prefill_replicas: int
    link: KVLink
    prefill_scheduler: ContinuousBatching | None = None
    prefill_router: str = "round_robin"

    def validate(self, prefix: str = "disaggregation.") -> None:
        """Raise ``ValueError`` naming the first bad field (``prefix`` + name)."""
        _int_at_least(prefix, "prefill_replicas", self.prefill_replicas, 1)
        _need(self.prefill_replicas <= MAX_REPLICAS,
              f"{prefix}prefill_replicas: at most {MAX_REPLICAS} replicas, got {self.prefill_replicas}")
        _need(self.prefill_router in ROUTERS,
              f"{prefix}prefill_router must be one of {', '.join(ROUTERS)}, got {self.prefill_router!r}")
        if self.prefill_scheduler is not None:
            kind = getattr(self.prefill_scheduler, "kind", None)
            _need(kind in SCHEDULERS and SCHEDULERS[kind].prefill_pool,
                  f"{prefix}prefill_scheduler must be a policy that can run a prefill pool "
                  f"({', '.join(k for k, p in SCHEDULERS.items() if p.prefill_pool)}), got {kind!r}")
            self.prefill_scheduler.validate(prefix + "prefill_scheduler.")
        _check_cost(prefix + "prefill_cost", self.prefill_cost)
        self.link.validate(prefix + "link.")


@dataclass(frozen=True)
class SLO:
    """Latency objectives: a request meets them when TTFT <= ``ttft_s`` and TPOT <= ``tpot_s``."""

    ttft_s: float
    tpot_s: float

    @classmethod
    def from_use_case(cls, use_case) -> SLO:
        return cls(use_case.ttft_slo_s, use_case.tpot_slo_s)

    def validate(self, prefix: str = "slo.") -> None:
        """Raise ``ValueError`` naming the first bad field (``prefix`` + name)."""
        for name in ("ttft_s", "tpot_s"):
            v = getattr(self, name)
            _need(isinstance(v, int | float) and v > 0, f"{prefix}{name}: must be a number > 0, got {v!r}")


@dataclass(frozen=True)
class SaturationConfig:
    """When to call a run saturated (and, with ``stop``, end it early).

    Checked every monitoring window while requests still arrive: at time t, if the number waiting
    for admission grew over (t/2, t] by more than ``growth_fraction`` of the arrivals in that
    interval (and at least ``min_arrivals`` arrived in it), arrivals outpace completions. Also
    saturated: simulated time past ``max_sim_time_s`` or more than ``max_queue`` requests waiting.
    """

    growth_fraction: float = 0.1
    min_arrivals: int = 100
    max_sim_time_s: float | None = None
    max_queue: int | None = None
    stop: bool = True

    def validate(self, prefix: str = "saturation.") -> None:
        """Raise ``ValueError`` naming the first bad field (``prefix`` + name)."""
        _fraction(prefix, "growth_fraction", self.growth_fraction)
        _int_at_least(prefix, "min_arrivals", self.min_arrivals, 1)
        if self.max_sim_time_s is not None:
            _need(self.max_sim_time_s > 0, f"{prefix}max_sim_time_s must be > 0 or None")
        if self.max_queue is not None:
            _int_at_least(prefix, "max_queue", self.max_queue, 1)


@dataclass(frozen=True)
class MemoConfig:
    """Buckets of the step-cost memo (tokens); 1 and 1 make it exact (see :mod:`genz.serving.cost`).

    Stated tolerance of the defaults (2, 256): every iteration's time within 0.5 % of the exact
    engine's (tests/test_step_parts.py checks every distinct iteration of a run; `python
    benchmarks/bench_serving.py --engine --check-error 5000` prints the worst of a sample)."""

    prefill_bucket: int = 2
    context_bucket: int = 256

    def validate(self, prefix: str = "memo.") -> None:
        """Raise ``ValueError`` naming the first bad bucket (``prefix`` + name)."""
        _int_at_least(prefix, "prefill_bucket", self.prefill_bucket, 1)
        _int_at_least(prefix, "context_bucket", self.context_bucket, 1)


def _caches(cfg) -> bool:
    """Whether a policy config keeps a prefix cache (``enable_prefix_caching`` or ``radix_cache`` on)."""
    return bool(getattr(cfg, "enable_prefix_caching", False) or getattr(cfg, "radix_cache", False))


def _check_cost(name: str, cost) -> None:
    _need(callable(getattr(cost, "step", None)), f"{name} must have a step(prefill_chunks, decode_contexts) method")
    for attr in ("kv_bytes_per_token", "kv_capacity_bytes"):
        v = getattr(cost, attr, None)
        _need(isinstance(v, int | float) and math.isfinite(v), f"{name}.{attr} must be a finite number, got {v!r}")
    _need(cost.kv_bytes_per_token > 0, f"{name}.kv_bytes_per_token must be > 0, got {cost.kv_bytes_per_token!r}")
    p = getattr(cost, "price_per_hour_usd", None)
    _need(isinstance(p, int | float) and (math.isnan(p) or (math.isfinite(p) and p >= 0)),
          f"{name}.price_per_hour_usd must be a number >= 0 (NaN: price unknown), got {p!r}")


@dataclass
class Scenario:
    """One serving what-if.

    ``cost``, ``scheduler``, ``replicas`` and ``router`` describe the replicas that generate tokens:
    all of them when colocated, the decode pool when ``disaggregation`` is set. Give exactly one of
    ``trace`` (requests) or ``workload`` (generated with ``seed``). ``window_s`` is the width of the
    utilization / queue windows (default: the arrival span / 200).

    Clients: open loop by default (each request is sent at its ``arrival_s``). With ``concurrency``
    N, a closed loop as benchmark tools run it (vLLM's ``benchmark_serving --max-concurrency``,
    genai-perf): N users each send a request, wait for its last token, think ``think_time_s`` seconds
    and send the next (requests are taken in trace order; their ``arrival_s`` is ignored, and a
    request's arrival becomes the moment it is sent). A request that ``follows`` another (the next
    turn of a conversation) is sent ``think_time_s`` after that one finishes, by the same user.
    """

    cost: StepCostModel
    scheduler: object = field(default_factory=lambda: ContinuousBatching())  # a registered policy's config
    replicas: int = 1
    router: str = "round_robin"
    trace: Sequence[Request] | None = None
    workload: WorkloadSpec | None = None
    slo: SLO | None = None
    seed: int = 0
    disaggregation: Disaggregation | None = None
    saturation: SaturationConfig = field(default_factory=SaturationConfig)
    memo: MemoConfig = field(default_factory=MemoConfig)
    window_s: float | None = None
    name: str = ""
    concurrency: int | None = None
    think_time_s: float = 0.0

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field."""
        _check_cost("cost", self.cost)
        kind = getattr(self.scheduler, "kind", None)
        _need(kind in SCHEDULERS, f"scheduler must be the config of a registered policy ({', '.join(SCHEDULERS)}), "
                                  f"got {type(self.scheduler).__name__}")
        self.scheduler.validate("scheduler.")
        _int_at_least("", "replicas", self.replicas, 1)
        _need(self.replicas <= MAX_REPLICAS, f"replicas: at most {MAX_REPLICAS} replicas, got {self.replicas}")
        _need(self.router in ROUTERS, f"router must be one of {', '.join(ROUTERS)}, got {self.router!r}")
        _need((self.trace is None) != (self.workload is None), "give exactly one of trace or workload")
        if self.trace is not None:
            for i, q in enumerate(self.trace):
                _need(isinstance(q, Request), f"trace[{i}] must be a workloads.requests.Request")
                _need(q.prompt_tokens >= 1 and q.output_tokens >= 1 and math.isfinite(q.arrival_s)
                      and q.arrival_s >= 0, f"trace[{i}]: need arrival_s >= 0, prompt_tokens >= 1, "
                      f"output_tokens >= 1, got {q}")
        if self.slo is not None:
            self.slo.validate("slo.")
        _int_at_least("", "seed", self.seed, 0)
        if self.disaggregation is not None:
            _need(SCHEDULERS[kind].prefill_pool, f"scheduler.kind: {kind} cannot serve a disaggregated decode pool "
                  f"(use one of {', '.join(k for k, p in SCHEDULERS.items() if p.prefill_pool)})")
            self.disaggregation.validate("disaggregation.")
        self.saturation.validate("saturation.")
        self.memo.validate("memo.")
        if self.window_s is not None:
            _need(self.window_s > 0, f"window_s must be > 0 or None, got {self.window_s!r}")
        if self.concurrency is not None:
            _int_at_least("", "concurrency", self.concurrency, 1)
            _need(self.concurrency <= MAX_CONCURRENCY,
                  f"concurrency: at most {MAX_CONCURRENCY:,} clients, got {self.concurrency:,}")
        t = self.think_time_s
        _need(isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t) and 0 <= t <= MAX_ARRIVAL_S,
              f"think_time_s: must be a finite number of seconds >= 0, got {t!r}")
        if self.disaggregation is not None:
            _need(not _caches(self.scheduler) and not _caches(self.disaggregation.prefill_scheduler),
                  "scheduler.enable_prefix_caching: prefix caching is not modelled with disaggregation (turn it "
                  "off, or serve colocated)")

    def requests(self) -> list[Request]:
        """The trace, sorted by arrival (generated from ``workload`` and ``seed`` if needed)."""
        reqs = list(self.trace) if self.trace is not None else self.workload.generate(self.seed)
        reqs.sort(key=lambda q: q.arrival_s)
        ids = [q.id for q in reqs]
        _need(len(set(ids)) == len(ids), "trace: request ids must be unique")
        return reqs


ProgressCallback = Callable[[int, int], None]
"""``progress(done, total)``: requests finished or dropped so far, out of all requests."""
