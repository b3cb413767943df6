"""What a search optimizes: one serving simulation per configuration, reduced to metrics.

:class:`ServingObjective` holds everything but the knobs (model, precision, workload, SLO, prices)
as plain, picklable data, so a process pool or a Ray cluster can evaluate configurations; each call
builds an :class:`~genz.stepcost.EngineStepCost` and a :class:`~genz.serving.Scenario` and runs
:func:`~genz.serving.simulate`.

Load: with ``rate_per_s`` requests arrive (Poisson by default) at that total rate; without it the
run is *offline* (every request arrives at t = 0, as in vLLM's ``benchmark_throughput``) and
measures the most the configuration can push through. SLOs constrain only runs with a rate (in an
offline run queueing alone breaks any TTFT objective).

With ``find_capacity`` (set by the search when an objective is ``capacity``) each evaluation finds
the highest Poisson rate the configuration sustains within the SLO (:mod:`optimizers.search.rates`)
with short runs, then, with ``confirm_requests``, confirms it with one long run (stepping down until
one holds), as ``genz plan`` does; the metrics say whether and with what SLO attainment.

With ``concurrency`` the clients are a closed loop of that many users (``think_time_s`` between a
response and the next request), as benchmark tools run; the SLO then applies as with a rate.

A configuration is *feasible* when the model fits, no request is dropped, and, with a rate, the run
keeps up (not saturated) and at least ``min_slo_attainment`` of the requests meet the SLO.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace

from genz.parallel import devices_per_replica
from genz.runtime import load_runtime
from genz.serving import SLO, MemoConfig, Scenario, simulate
from genz.serving.build import build_scenario
from genz.serving.config import MAX_REQUESTS
from genz.serving.registry import ROUTERS, scheduler_knobs
from genz.serving.scenario_file import resolve
from hwmodels.device import price_of
from hwmodels.registry import load_device
from optimizers.search.rates import max_rate
from workloads import Precision, load_model
from workloads.requests import Request
from workloads.usecases import UseCase, get_use_case

__all__ = ["CAPACITY_METRICS", "METRICS", "Metric", "ServingObjective", "register_metric", "check_prices", "config_gpus", "direction_of", "metric_value", "summary_metrics"]


@dataclass(frozen=True)
class Metric:
    """A search objective: the ``key`` of an evaluation's metrics dict it reads, whether higher or
    lower is better, its unit; ``derive(metrics) -> float`` computes it from the other metrics when
    the simulation summary does not hold it (objectives added with :func:`register_metric`)."""

    name: str
    key: str          # field of the metrics dict
    direction: str    # "maximize" | "minimize"
    unit: str
    description: str
    derive: Callable[[dict], float] | None = None


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("throughput", "output_tokens_per_s", "maximize", "tok/s", "output tokens per second"),
    Metric("request_throughput", "throughput_rps", "maximize", "req/s", "completed requests per second"),
    Metric("goodput", "goodput_rps", "maximize", "req/s", "requests meeting the SLO per second (needs a rate)"),
    Metric("throughput_per_gpu", "output_tokens_per_s_per_gpu", "maximize", "tok/s/GPU",
           "output tokens per second per GPU"),
    Metric("cost", "cost_per_million_output_tokens_usd", "minimize", "USD/Mtok",
           "price of the GPUs (idle time included) per million output tokens"),
    Metric("energy", "energy_per_output_token_j", "minimize", "J/tok", "energy per output token"),
    Metric("p99_ttft", "ttft_p99_s", "minimize", "s", "99th percentile time to first token"),
    Metric("p99_tpot", "tpot_p99_s", "minimize", "s", "99th percentile time per output token"),
    Metric("p99_e2e", "e2e_p99_s", "minimize", "s", "99th percentile end-to-end latency"),
    Metric("capacity", "capacity_rps", "maximize", "req/s",
           "highest Poisson rate meeting the SLO (bisection; several simulations per trial)"),
    Metric("capacity_per_gpu", "capacity_rps_per_gpu", "maximize", "req/s/GPU", "capacity per GPU"),
)}

def register_metric(name: str, direction: str, unit: str, description: str,
                    derive: Callable[[dict], float], key: str | None = None) -> Metric:
    """Register a search objective computed by ``derive`` from an evaluation's metrics (SI units);
    ``genz tune --objective NAME`` and :func:`~optimizers.search.search` then accept it."""
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction: must be maximize or minimize, got {direction!r}")
    m = Metric(name, key or name, direction, unit, description, derive)
    METRICS[name] = m
    return m


#: objectives that need the capacity bisection
CAPACITY_METRICS = ("capacity", "capacity_per_gpu")


def direction_of(name: str) -> str:
    if name not in METRICS:
        raise ValueError(f"objective must be one of {', '.join(METRICS)}, got {name!r}")
    return METRICS[name].direction


def check_prices(hardware, prices: Mapping[str, float] | None) -> dict[str, float]:
    """USD per GPU-hour of each hardware name: the ``prices`` override, else the data file's
    ``price_per_hour_usd``. Raises ``ValueError`` naming the GPUs that have neither."""
    prices = dict(prices or {})
    out, missing = {}, []
    for hw in hardware:
        dev = load_device(hw)
        p = prices.get(hw, prices.get(getattr(dev, "name", hw)))
        if p is None:
            p = price_of(dev)
        if p is None:
            missing.append(hw)
        elif not (isinstance(p, int | float) and math.isfinite(p) and p >= 0):
            raise ValueError(f"price of {hw}: must be a number of USD per GPU-hour >= 0, got {p!r}")
        else:
            out[hw] = float(p)
    if missing:
        raise ValueError(f"price: no price_per_hour_usd for {', '.join(missing)} in the hardware data; give one "
                         f"per GPU-hour (prices={{'{missing[0]}': 1.5}} in Python, --price {missing[0]}=1.5 on the "
                         "command line)")
    return out


@dataclass(frozen=True)
class ServingObjective:
    """Evaluate serving configurations of ``model`` on a use case's workload.

    ``use_case`` is a preset name (``genz``'s ``chatbot``, ``code_generation``...) or a
    :class:`~workloads.usecases.UseCase`; its lengths shape the requests and its SLOs apply unless
    ``slo`` overrides them (``slo=None`` keeps the use case's). ``length_sigma > 0`` draws log-normal
    lengths around the use case's (log-space standard deviation). ``memo`` buckets trade a little
    precision (see :mod:`genz.serving.cost`) for speed.
    """

    model: str = "llama-3-8b"
    precision: str = "bf16"
    use_case: str | UseCase = "chatbot"
    rate_per_s: float | None = None
    num_requests: int = 200
    arrival: str = "poisson"
    length_sigma: float = 0.0
    slo: SLO | None = None
    min_slo_attainment: float = 0.9
    seed: int = 0
    runtime: str = "vllm"
    cuda_graphs: bool = True
    router: str = "least_outstanding_tokens"
    memo: MemoConfig = field(default_factory=lambda: MemoConfig(prefill_bucket=64, context_bucket=1024))
    prices: tuple[tuple[str, float], ...] = ()
    find_capacity: bool = False
    capacity_rel_tol: float = 0.05
    confirm_requests: int = 0
    concurrency: int | None = None
    think_time_s: float = 0.0

    def __post_init__(self) -> None:
        uc = get_use_case(self.use_case) if isinstance(self.use_case, str) else self.use_case
        if not isinstance(uc, UseCase):
            raise ValueError(f"use_case must be a preset name or a UseCase, got {self.use_case!r}")
        object.__setattr__(self, "use_case", uc)
        if isinstance(self.prices, Mapping):
            object.__setattr__(self, "prices", tuple(sorted(self.prices.items())))
        load_model(self.model)
        Precision.parse(self.precision)
        load_runtime(self.runtime)  # an unknown runtime is bad input, not an infeasible trial
        if self.router not in ROUTERS:
            raise ValueError(f"router must be one of {', '.join(ROUTERS)}, got {self.router!r}")
        if not (isinstance(self.length_sigma, int | float) and math.isfinite(self.length_sigma)
                and 0 <= self.length_sigma <= 5):
            raise ValueError(f"length_sigma must be a number in [0, 5] (log-space standard deviation), "
                             f"got {self.length_sigma!r}")
        if self.rate_per_s is not None and not (isinstance(self.rate_per_s, int | float) and self.rate_per_s > 0
                                                and math.isfinite(self.rate_per_s)):
            raise ValueError(f"rate_per_s must be a finite number > 0 or None (offline), got {self.rate_per_s!r}")
        if isinstance(self.num_requests, bool) or not isinstance(self.num_requests, int) or self.num_requests < 1:
            raise ValueError(f"num_requests must be an integer >= 1, got {self.num_requests!r}")
        if isinstance(self.confirm_requests, bool) or not isinstance(self.confirm_requests, int) \
                or not 0 <= self.confirm_requests <= MAX_REQUESTS:
            raise ValueError(f"confirm_requests must be an integer in [0, {MAX_REQUESTS:,}] (0: no confirming run), "
                             f"got {self.confirm_requests!r}")
        if self.num_requests > MAX_REQUESTS:
            raise ValueError(f"num_requests: {self.num_requests:,} is above the limit of {MAX_REQUESTS:,} requests per "
                             "simulated run (each trial runs at least one)")
        if self.concurrency is not None:
            if isinstance(self.concurrency, bool) or not isinstance(self.concurrency, int) or self.concurrency < 1:
                raise ValueError(f"concurrency must be an integer >= 1 or None (open loop), got {self.concurrency!r}")
            if self.rate_per_s is not None:
                raise ValueError("concurrency: a closed loop sends each user's next request when the last is done; "
                                 "give rate_per_s or concurrency, not both")
            if self.find_capacity:
                raise ValueError("concurrency: the capacity objectives search an open-loop arrival rate; "
                                 "drop concurrency (or use throughput/goodput objectives with it)")
        if not (isinstance(self.think_time_s, int | float) and math.isfinite(self.think_time_s)
                and self.think_time_s >= 0):
            raise ValueError(f"think_time_s must be a finite number >= 0, got {self.think_time_s!r}")
        if not (0 <= self.min_slo_attainment <= 1):
            raise ValueError(f"min_slo_attainment must be in [0, 1], got {self.min_slo_attainment!r}")
        if self.slo is not None:
            self.slo.validate("slo.")
        self.memo.validate("memo.")

    # ------------------------------------------------------------------ set-up
    @property
    def effective_slo(self) -> SLO:
        return self.slo if self.slo is not None else SLO.from_use_case(self.use_case)

    def check(self, space, objectives) -> None:
        """Raise ``ValueError`` before a search when an objective cannot be computed for ``space``:
        unknown hardware, goodput without a rate, cost for a GPU without a price."""
        for hw in space.hardware:
            load_device(hw)
        for name in objectives:
            direction_of(name)
            if name == "goodput" and self.rate_per_s is None:
                raise ValueError("objective goodput needs an arrival rate (rate_per_s / --rate); an offline run "
                                 "queues every request at t = 0, so no TTFT objective can hold")
        if "cost" in objectives:
            check_prices(space.hardware, dict(self.prices))

    def describe(self) -> dict:
        """JSON-ready inputs (the ``setup`` of a results file; also how a resumed study is matched)."""
        d = asdict(self)
        d["use_case"] = asdict(self.use_case)
        d["slo"] = asdict(self.effective_slo)
        d["prices"] = dict(self.prices)
        return d

    def trace(self, rate_per_s: float | None) -> list[Request]:
        """The requests at ``rate_per_s`` (None: all at t = 0), drawn with ``seed``."""
        rate = rate_per_s
        wl = self.use_case.workload(rate or 1.0, self.num_requests, arrival=self.arrival,
                                    length_sigma=self.length_sigma)
        reqs = wl.generate(self.seed)
        if rate is None:
            reqs = [Request(q.id, 0.0, q.prompt_tokens, q.output_tokens) for q in reqs]
        return reqs

    def spec(self, config: Mapping, rate_per_s: float | None) -> dict:
        """The resolved serving mapping of one configuration (the schema of scenario files, checked
        by :func:`genz.serving.scenario_file.resolve`): the knobs of ``config`` on this objective's
        model, precision, runtime, router, SLO and memo. Disaggregated when ``config`` has
        ``prefill_replicas`` > 0 (optional ``prefill_hardware``, ``prefill_tp``; default: the decode
        pool's), with the scenario files' default KV link (the prefill GPU's scale-out NIC x tp x pp)."""
        kind = config["scheduler"]
        if config.get("layout"):
            return self._layout_spec(config, rate_per_s)
        raw = {"model": self.model, "hardware": config["hardware"], "precision": self.precision,
               "tp": config["tp"], "pp": config["pp"], "ep": config.get("ep", 1), "runtime": self.runtime,
               "cuda_graphs": self.cuda_graphs, "replicas": config["replicas"], "router": self.router,
               "seed": self.seed,
               "scheduler": {"kind": kind, **{k: config[k] for k in scheduler_knobs(kind) if k in config}},
               "memo": asdict(self.memo),
               "saturation": {"min_arrivals": max(20, self.num_requests // 10), "stop": rate_per_s is not None}}
        if self.concurrency is not None:
            raw["workload"] = {"concurrency": self.concurrency, "think_time_s": self.think_time_s}
        if config.get("prefill_replicas"):
            raw["disaggregation"] = {"prefill_replicas": config["prefill_replicas"],
                                     "hardware": config.get("prefill_hardware") or config["hardware"],
                                     "tp": config.get("prefill_tp") or config["tp"]}
        spec = resolve(raw)
        slo = self.effective_slo
        spec["slo"] = {"ttft_s": slo.ttft_s, "tpot_s": slo.tpot_s}
        return spec

    def _layout_spec(self, config: Mapping, rate_per_s: float | None) -> dict:
        """:meth:`spec` of a configuration naming an MoE cluster ``layout`` file: its pools are the
        replicas (``replicas`` decode pools, ``prefill_replicas`` prefill pools); the layout gives the
        model (it must be this objective's), precision, GPUs and the scheduler defaults."""
        kind = config["scheduler"]
        raw = {"layout": config["layout"], "replicas": config.get("replicas", 1), "router": self.router,
               "seed": self.seed, "memo": asdict(self.memo),
               "scheduler": {"kind": kind, **{k: config[k] for k in scheduler_knobs(kind) if k in config}},
               "saturation": {"min_arrivals": max(20, self.num_requests // 10), "stop": rate_per_s is not None}}
        if self.concurrency is not None:
            raw["workload"] = {"concurrency": self.concurrency, "think_time_s": self.think_time_s}
        if config.get("prefill_replicas"):
            raw["disaggregation"] = {"prefill_replicas": config["prefill_replicas"]}
        spec = resolve(raw)
        if spec["model"] != load_model(self.model).name:
            raise ValueError(f"layout: {config['layout']} serves {spec['model']}, not {self.model}")
        slo = self.effective_slo
        spec["slo"] = {"ttft_s": slo.ttft_s, "tpot_s": slo.tpot_s}
        return spec

    def scenario(self, config: Mapping, rate_per_s: float | None) -> Scenario:
        """The scenario of one configuration at ``rate_per_s`` requests/s (None: offline), built by
        the builder scenario files and ``genz simulate`` use (:func:`genz.serving.build.build_scenario`)."""
        return build_scenario(self.spec(config, rate_per_s), trace=self.trace(rate_per_s), prices=dict(self.prices))

    # ------------------------------------------------------------------ evaluation
    def __call__(self, config: Mapping) -> dict:
        return self.evaluate(config)

    def evaluate(self, config: Mapping) -> dict:
        """``{"feasible", "reason", "structural", "metrics": {...}, "wall_s"}`` of one configuration
        (JSON-ready): a run at ``rate_per_s`` (offline without one), or with ``find_capacity`` the
        highest rate meeting the SLO (metrics of the run at that rate plus ``capacity_rps``)."""
        if self.find_capacity:
            return self.capacity(config)
        return self.evaluate_at(config, self.rate_per_s)

    def capacity(self, config: Mapping) -> dict:
        """The highest Poisson rate (requests/s) at which ``config`` stays feasible (see
        :func:`optimizers.search.rates.max_rate`), started from 70 % of its offline throughput and
        capped by it (a short run starting empty would otherwise flatter an overloaded deployment)."""
        t0 = time.perf_counter()
        offline = self.evaluate_at(config, None)
        gpus = offline["metrics"]["gpus"]
        if not offline["feasible"]:
            return {**offline, "structural": True, "metrics": {**offline["metrics"], "capacity_rps": 0.0,
                                                               "capacity_rps_per_gpu": 0.0}}
        start = 0.7 * offline["metrics"]["throughput_rps"]
        rs = max_rate(lambda r: self.evaluate_at(config, r), start, upper=offline["metrics"]["throughput_rps"],
                      rel_tol=self.capacity_rel_tol)
        ev = dict(rs.evaluation)
        rate, evaluations, confirm = rs.rate, rs.evaluations + 1, {}
        if self.confirm_requests and rate > 0:
            rate, ev, confirm, n = self._confirm(config, rate, ev)
            evaluations += n
        m = {**ev["metrics"], "capacity_rps": rate, "capacity_rps_per_gpu": rate / gpus,
             "offline_throughput_rps": offline["metrics"]["throughput_rps"], "capacity_evaluations": evaluations,
             **confirm}
        feasible = rate > 0
        reason = "" if feasible else (f"capacity not confirmed by a {self.confirm_requests}-request run: {ev['reason']}"
                                      if confirm else rs.reason)
        return {"feasible": feasible, "reason": reason, "structural": bool(ev.get("structural")),
                "metrics": m, "wall_s": time.perf_counter() - t0}

    def _confirm(self, config: Mapping, rate: float, ev: dict) -> tuple[float, dict, dict, int]:
        """Re-run the capacity found by the short bisection runs with ``confirm_requests`` requests (long
        enough for the queue to settle); while that run fails, step the rate down by the bisection's
        tolerance (at most 10 times). Returns the confirmed rate, its evaluation, the confirmation
        metrics and the runs made."""
        longer = replace(self, num_requests=self.confirm_requests, find_capacity=False)
        for n in range(1, 11):
            run = longer.evaluate_at(config, rate)
            if run["feasible"]:
                return rate, run, {"capacity_confirmed": True, "confirm_requests": self.confirm_requests,
                                   "confirm_slo_attainment": run["metrics"].get("slo_attainment"),
                                   "confirm_steps_down": n - 1}, n
            rate *= 1 - self.capacity_rel_tol
        return 0.0, run, {"capacity_confirmed": False, "confirm_requests": self.confirm_requests,
                          "confirm_slo_attainment": run["metrics"].get("slo_attainment")}, 10

    def evaluate_at(self, config: Mapping, rate_per_s: float | None) -> dict:
        """One simulation of ``config`` at ``rate_per_s`` (None: offline). ``structural`` marks
        failures that no lower load would fix (the model does not fit, a lone request misses the SLO)."""
        t0 = time.perf_counter()
        gpus = config_gpus(config)
        try:
            sc = self.scenario(config, rate_per_s)
            res = simulate(sc)
        except ValueError as exc:  # a split the model does not allow, a dtype the GPU lacks...
            return {"feasible": False, "reason": str(exc), "structural": True, "metrics": {"gpus": gpus},
                    "wall_s": time.perf_counter() - t0}
        s = res.summary
        m = summary_metrics(s, gpus)
        m["price_per_hour_usd"] = sc.cost.price_per_hour_usd * sc.replicas
        m["rate_per_s"] = rate_per_s
        for metric in METRICS.values():
            if metric.derive is not None:
                m[metric.key] = float(metric.derive(m))
        reason, structural = "", False
        if not s.feasible:
            reason, structural = s.infeasible_reason, True
        elif s.dropped:
            reason, structural = f"{s.dropped} of {s.requests} requests can never fit in the KV cache", True
        elif rate_per_s is not None and s.saturated:
            reason = f"cannot keep up with {rate_per_s:.4g} requests/s: {s.saturation_reason}"
        elif rate_per_s is not None and not (s.slo_attainment >= self.min_slo_attainment):
            reason = (f"SLO attainment {s.slo_attainment:.3f} < min_slo_attainment {self.min_slo_attainment} "
                      f"at {rate_per_s:.4g} requests/s (TTFT <= {sc.slo.ttft_s:g} s and TPOT <= {sc.slo.tpot_s:g} s)")
        elif self.concurrency is not None and not (s.slo_attainment >= self.min_slo_attainment):
            reason = (f"SLO attainment {s.slo_attainment:.3f} < min_slo_attainment {self.min_slo_attainment} "
                      f"with {self.concurrency} concurrent users (TTFT <= {sc.slo.ttft_s:g} s and "
                      f"TPOT <= {sc.slo.tpot_s:g} s)")
        return {"feasible": not reason, "reason": reason, "structural": structural, "metrics": m,
                "wall_s": time.perf_counter() - t0}


def config_gpus(config: Mapping) -> int:
    """GPUs of a configuration: ``max(tp, ep) x pp x replicas``, plus the prefill pool when disaggregated
    (a cluster ``layout``: its pools' GPUs times their replicas)."""
    if config.get("layout"):
        from genz.moe_cluster.serving import layout_unit

        u = layout_unit(config["layout"])
        return u.decode_gpus * config.get("replicas", 1) + u.prefill_gpus * config.get("prefill_replicas", 1)
    g = devices_per_replica(config["tp"], config["pp"], config.get("ep", 1)) * config["replicas"]
    if config.get("prefill_replicas"):
        g += devices_per_replica(config.get("prefill_tp") or config["tp"], config["pp"],
                                 config.get("ep", 1)) * config["prefill_replicas"]
    return g


def summary_metrics(s, gpus: int) -> dict:
    """The metrics dict of a :class:`genz.serving.Summary` (SI units; NaN where undefined)."""
    return {
        "gpus": gpus, "completed": s.completed, "requests": s.requests, "dropped": s.dropped,
        "duration_s": s.duration_s, "throughput_rps": s.throughput_rps,
        "output_tokens_per_s": s.output_tokens_per_s, "output_tokens_per_s_per_gpu": s.output_tokens_per_s / gpus,
        "goodput_rps": s.goodput_rps, "slo_attainment": s.slo_attainment,
        "ttft_p50_s": s.ttft_s.p50, "ttft_p99_s": s.ttft_s.p99, "tpot_p50_s": s.tpot_s.p50,
        "tpot_p99_s": s.tpot_s.p99, "e2e_p50_s": s.e2e_s.p50, "e2e_p99_s": s.e2e_s.p99,
        "cost_per_million_output_tokens_usd": s.cost_per_million_output_tokens_usd,
        "energy_per_output_token_j": s.energy_per_output_token_j, "preemptions": s.preemptions,
        "saturated": s.saturated,
    }


def metric_value(evaluation: dict, name: str) -> float | None:
    """The objective ``name`` of an evaluation (None when it was not measured or is not finite)."""
    v = evaluation.get("metrics", {}).get(METRICS[name].key)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)
