"""The deployment a capacity planner came for: model + GPUs + traffic + SLOs -> ranked deployments.

:func:`recommend` enumerates deployments (hardware x precision x tensor-parallel size, replicas filling
the GPU budget), screens them analytically (:func:`genz.predict`: the weights must fit, a lone request
must meet the SLO), measures each survivor's capacity per replica under the SLO with the serving
simulation (the bisection ``genz tune --objective capacity`` and ``genz plan`` use,
:meth:`~optimizers.search.objective.ServingObjective.capacity`), sizes the replicas the traffic needs,
and confirms the best deployment with one longer simulation at the requested rate. Deployments are
ranked by GPUs needed, then price per hour, then throughput per GPU; the Pareto front is throughput
per GPU against per-user speed (1 / TPOT) at capacity.

Assumptions (named): replicas are data-parallel copies behind a least-outstanding-tokens router (no
disaggregation, no pipeline parallelism here: ``genz plan`` covers Splitwise pools); a replica spans
at most one 8-GPU server; the engine knobs are vLLM's defaults.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from genz.moe_cluster.serving import unit_request_scale
from genz.predict import predict
from genz.serving import SLO
from hwmodels.device import price_of
from hwmodels.registry import load_device
from optimizers.search.objective import ServingObjective
from optimizers.search.parallel import make_executor
from optimizers.search.space import VLLM_DEFAULTS
from workloads import Precision, load_model
from workloads.usecases import get_use_case

__all__ = ["Deployment", "Recommendation", "launch_script", "pareto", "recommend", "sglang_launch_script"]

TPS = (1, 2, 4, 8)


@dataclass
class Deployment:
    """One way to serve the traffic: ``replicas`` x (``tp`` GPUs of ``hardware`` at ``precision``).

    ``capacity_rps`` is one replica's highest Poisson rate within the SLO (requests/s);
    ``per_user_tok_s`` = 1 / TPOT p50 at that rate; ``tok_s_per_gpu`` the output tokens per second per
    GPU at capacity; ``reason`` says why it cannot serve the traffic ('' when it can)."""

    hardware: str
    precision: str
    tp: int
    layout: str = ""  # an MoE cluster layout file: a replica is one of its units (prefill + decode pool)
    unit_gpus: int = 0  # GPUs of one replica (tp, or a layout unit's)
    layout_prefill: bool = False  # the layout has a prefill pool (runs disaggregated)
    replicas: int = 0
    gpus: int = 0
    capacity_rps: float = 0.0
    tok_s_per_gpu: float = 0.0
    per_user_tok_s: float = 0.0
    ttft_p99_s: float = math.nan
    tpot_p99_s: float = math.nan
    price_per_hour_usd: float = math.nan
    reason: str = ""
    why: str = ""

    @property
    def feasible(self) -> bool:
        """True when it serves the traffic within the GPU budget and the SLO."""
        return not self.reason

    @property
    def label(self) -> str:
        """``2 x h100-sxm tp4 fp8`` (a layout: ``1 x layout NAME (104 x h100-sxm) fp8``)."""
        if self.layout:
            return f"{self.replicas} x layout {Path(self.layout).stem} ({self.unit_gpus} x {self.hardware}) {self.precision}"
        return f"{self.replicas} x {self.hardware} tp{self.tp} {self.precision}"

    def config(self, replicas: int = 1) -> dict:
        """The serving configuration of ``replicas`` replicas (the search objective's schema)."""
        if self.layout:
            c = {"layout": self.layout, "replicas": replicas, "scheduler": "continuous"}
            if self.layout_prefill:
                c["prefill_replicas"] = replicas
            return c
        return {**VLLM_DEFAULTS, "tp": self.tp, "pp": 1, "ep": 1, "replicas": replicas, "hardware": self.hardware}


@dataclass
class Recommendation:
    """Every deployment considered (``ranked``: feasible ones first, best first), the Pareto front, the
    confirming run of the best (its SLO attainment at the requested rate) and the inputs."""

    ranked: list[Deployment]
    front: list[Deployment]
    confirmation: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)

    @property
    def best(self) -> Deployment | None:
        """The recommended deployment (None when none is feasible)."""
        return self.ranked[0] if self.ranked and self.ranked[0].feasible else None

    def to_dict(self) -> dict:
        """JSON-ready."""
        return {"inputs": self.inputs, "best": None if self.best is None else asdict(self.best),
                "ranked": [asdict(d) for d in self.ranked], "pareto": [asdict(d) for d in self.front],
                "confirmation": self.confirmation}


def _candidates(model: str, hardware: Sequence[str], precisions: Sequence[str], gpus: int, prompt: int,
                output: int, slo: SLO) -> tuple[list[Deployment], list[Deployment]]:
    """(survivors of the analytical screen, rejected ones with their reason)."""
    keep, drop = [], []
    for hw in dict.fromkeys(hardware):
        dev = load_device(hw)
        for prec in dict.fromkeys(precisions):
            for tp in TPS:
                if tp > gpus:
                    continue
                d = Deployment(dev.name, Precision.parse(prec).name, tp)
                try:
                    p = predict(model, dev, batch=1, prompt=prompt, output=output, precision=prec, tp=tp)
                except ValueError as exc:  # a dtype the GPU lacks, a split the model does not allow
                    d.reason = str(exc)
                    drop.append(d)
                    continue
                if not p.fits:
                    d.reason = p.fit_message()
                elif p.ttft_s > slo.ttft_s or p.tpot_s > slo.tpot_s:
                    d.reason = (f"a lone request already misses the SLO (TTFT {p.ttft_s * 1e3:.0f} ms, TPOT "
                                f"{p.tpot_s * 1e3:.1f} ms)")
                (drop if d.reason else keep).append(d)
    return keep, drop


def _layout_deployments(layouts: Sequence[str]) -> list[Deployment]:
    """One deployment per MoE cluster layout file (``ValueError`` naming ``--layout`` for a bad one)."""
    from genz.moe_cluster.serving import layout_unit

    out = []
    for f in dict.fromkeys(layouts):
        try:
            u = layout_unit(f)
        except ValueError as exc:
            raise ValueError(f"--layout: {exc}") from None
        out.append(Deployment(u.gpu, u.precision, u.attention_tp, layout=u.path, unit_gpus=u.gpus,
                              layout_prefill=bool(u.prefill_gpus)))
    return out


def _capacity(job: tuple) -> dict:
    """One replica's capacity (a picklable job for the executor)."""
    objective, config = job
    return objective.capacity(config)


def pareto(deployments: Sequence[Deployment]) -> list[Deployment]:
    """The feasible deployments no other beats on both throughput per GPU and per-user speed."""
    ok = [d for d in deployments if d.feasible]
    front = []
    for d in ok:
        dominated = any(o is not d and o.tok_s_per_gpu >= d.tok_s_per_gpu and o.per_user_tok_s >= d.per_user_tok_s
                        and (o.tok_s_per_gpu > d.tok_s_per_gpu or o.per_user_tok_s > d.per_user_tok_s) for o in ok)
        if not dominated:
            front.append(d)
    return sorted(front, key=lambda d: -d.tok_s_per_gpu)


def recommend(model: str, *, gpus: int, hardware: Sequence[str], rate_per_s: float, use_case: str = "chatbot",
              slo: SLO | None = None, precisions: Sequence[str] = ("bf16", "fp8"), runtime: str = "vllm",
              requests: int = 150, confirm_requests: int = 600, workers: int | None = 1, seed: int = 0,
              progress: Callable[[int, int], None] | None = None, layouts: Sequence[str] = ()) -> Recommendation:
    """Ranked deployments of ``model`` on at most ``gpus`` GPUs of the ``hardware`` kinds serving
    ``rate_per_s`` requests/s of ``use_case`` within ``slo`` (default: the use case's); see the module
    docstring. ``requests``: per capacity run; ``confirm_requests``: the confirming run of the best.
    ``layouts``: MoE cluster layout files, each a deployment whose replica is one unit of the layout
    (its prefill and decode pools); their runs use the request counts times the unit's GPUs / 8
    (sized for one 8-GPU server, they could not fill a 100-GPU unit)."""
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
        raise ValueError(f"gpus: must be an integer >= 1, got {gpus!r}")
    if not (isinstance(rate_per_s, int | float) and math.isfinite(rate_per_s) and rate_per_s > 0):
        raise ValueError(f"rate: must be a finite number of requests/s > 0, got {rate_per_s!r}")
    if not hardware and not layouts:
        raise ValueError("hardware: give at least one GPU kind (or a --layout)")
    load_model(model)
    uc = get_use_case(use_case)
    slo = slo or SLO.from_use_case(uc)
    keep, drop = _candidates(model, hardware, precisions, gpus, uc.prompt_tokens, uc.output_tokens, slo)
    keep += _layout_deployments(layouts)
    base = ServingObjective(model=model, use_case=uc, slo=slo, num_requests=requests, seed=seed, runtime=runtime,
                            find_capacity=True)
    jobs = []
    for d in keep:
        d.unit_gpus = d.unit_gpus or d.tp
        scale = unit_request_scale(d.unit_gpus) if d.layout else 1
        jobs.append((replace(base, precision=d.precision, num_requests=requests * scale), d.config()))
    results = _run_all(jobs, workers, progress)
    for d, ev in zip(keep, results, strict=True):
        m = ev.get("metrics", {})
        cap = float(m.get("capacity_rps") or 0.0)
        if not ev.get("feasible") or cap <= 0:
            d.reason = ev.get("reason") or "no rate meets the SLO"
            continue
        d.capacity_rps = cap
        d.replicas = math.ceil(rate_per_s / cap * (1 - 1e-9))
        d.gpus = d.replicas * d.unit_gpus
        d.tok_s_per_gpu = cap * uc.output_tokens / d.unit_gpus
        tpot = m.get("tpot_p50_s") or math.nan
        d.per_user_tok_s = 1.0 / tpot if tpot and tpot > 0 else math.nan
        d.ttft_p99_s, d.tpot_p99_s = m.get("ttft_p99_s", math.nan), m.get("tpot_p99_s", math.nan)
        price = price_of(load_device(d.hardware))
        d.price_per_hour_usd = math.nan if price is None else price * d.gpus
        if d.gpus > gpus:
            d.reason = f"needs {d.replicas} replicas = {d.gpus} GPUs for {rate_per_s:g} req/s, over the budget of {gpus}"
    ranked = sorted(keep, key=lambda d: (not d.feasible, d.gpus if d.feasible else 0,
                                         d.price_per_hour_usd if math.isfinite(d.price_per_hour_usd) else math.inf,
                                         -d.tok_s_per_gpu)) + drop
    ok = [d for d in ranked if d.feasible]
    if ok:
        fewest = min(d.gpus for d in ok)
        fastest = max(d.per_user_tok_s for d in ok)
        densest = max(d.tok_s_per_gpu for d in ok)
        for d in ok:
            why = [w for w, hit in (("fewest GPUs", d.gpus == fewest), ("fastest per user", d.per_user_tok_s == fastest),
                                    ("most tokens per GPU", d.tok_s_per_gpu == densest)) if hit]
            d.why = ", ".join(why)
    confirmation = {}
    for d in ok[:3]:  # the best whose confirming run holds
        scale = unit_request_scale(d.unit_gpus) if d.layout else 1
        ob = replace(base, precision=d.precision, num_requests=confirm_requests * scale, find_capacity=False,
                     rate_per_s=rate_per_s)
        ev = ob.evaluate(d.config(d.replicas))
        confirmation = {"deployment": d.label, "rate_per_s": rate_per_s, "requests": confirm_requests,
                        "feasible": ev["feasible"], "reason": ev["reason"],
                        "slo_attainment": ev["metrics"].get("slo_attainment"),
                        "ttft_p99_s": ev["metrics"].get("ttft_p99_s"), "tpot_p99_s": ev["metrics"].get("tpot_p99_s")}
        if ev["feasible"]:
            if d is not ranked[0]:
                ranked.remove(d)
                ranked.insert(0, d)
            break
        d.reason = f"its confirming {confirm_requests}-request run failed: {ev['reason']}"
        ranked.remove(d)
        ranked.append(d)
    inputs = {"model": model, "gpus": gpus, "hardware": list(hardware), "layouts": [str(f) for f in layouts],
              "rate_per_s": rate_per_s, "use_case": uc.name,
              "slo": asdict(slo), "precisions": list(precisions), "runtime": runtime, "requests": requests,
              "confirm_requests": confirm_requests}
    return Recommendation(ranked, pareto(ranked), confirmation, inputs)


def _run_all(jobs: list, workers: int | None, progress) -> list[dict]:
    if not jobs:
        return []
    ex = make_executor(workers)
    try:
        handles = [ex.submit(_capacity, j) for j in jobs]
        out: dict = {}
        left = list(handles)
        while left:
            for h, result, error in ex.wait(left):
                left.remove(h)
                out[h] = result if error is None else {"feasible": False, "reason": f"{type(error).__name__}: {error}"}
                if progress:
                    progress(len(out), len(jobs))
        return [out[h] for h in handles]
    finally:
        ex.close()


def launch_script(d: Deployment, model: str) -> str:
    """A shell script starting the deployment with vLLM (one server per replica, one port each); a
    layout deployment gets SGLang's PD-disaggregated commands per pool (:func:`sglang_launch_script`)."""
    m = load_model(model)
    repo = m.source.split("huggingface.co/")[-1].split("/blob/")[0] if "huggingface.co/" in m.source else m.name
    if d.layout:
        return sglang_launch_script(d, repo)
    quant = {"fp8": " --quantization fp8", "int8": " --quantization int8"}.get(d.precision, "")
    lines = ["#!/bin/sh", f"# genz recommend: {d.label} ({d.capacity_rps:.3g} req/s per replica within the SLO)",
             f"# {d.replicas} replica(s) of tp {d.tp}; put a router (least outstanding tokens) in front of the ports",
             "set -e"]
    for i in range(d.replicas):
        gpus = ",".join(str(g) for g in range(i * d.tp % 8, i * d.tp % 8 + d.tp))
        lines.append(f"CUDA_VISIBLE_DEVICES={gpus} vllm serve {repo} --tensor-parallel-size {d.tp}{quant} "
                     f"--max-num-seqs {VLLM_DEFAULTS['max_num_seqs']} --max-num-batched-tokens "
                     f"{VLLM_DEFAULTS['max_num_batched_tokens']} --gpu-memory-utilization "
                     f"{VLLM_DEFAULTS['gpu_memory_utilization']} --port {8000 + i} &  # server {i // max(1, 8 // d.tp)}")
    lines.append("wait")
    return "\n".join(lines) + "\n"


def sglang_launch_script(d: Deployment, repo: str) -> str:
    """Commands starting one unit of a layout deployment with SGLang (PD disaggregation, DP attention,
    DeepEP, EPLB's redundant experts, two-batch overlap), on every node of each pool; flags as in
    SGLang's instructions for the May 2025 DeepSeek deployment (sglang issue #6017); check them
    against the installed version."""
    from genz.moe_cluster import load_layout
    from hwmodels.clusters import load_cluster

    lay = load_layout(d.layout)
    gpn = load_cluster(lay.cluster).gpus_per_node
    lines = ["#!/bin/sh", f"# genz recommend: {d.label} ({d.capacity_rps:.3g} req/s per unit within the SLO)",
             f"# {d.replicas} unit(s) of {Path(d.layout).name}; on each node of a pool set RANK (0..nodes-1) and "
             "MASTER (the pool's node 0)", "set -e", 'ROLE="$1"  # prefill or decode']
    for p in lay.pools:
        g = p.gpus(gpn)
        mode = {"normal": "normal", "low_latency": "low_latency"}.get(p.a2a, "auto")
        flags = [f"--model-path {repo}", "--trust-remote-code", f"--disaggregation-mode {p.role}",
                 f"--tp-size {g}", f"--dp-size {g // p.attention_tp}", "--enable-dp-attention",
                 "--enable-deepep-moe", f"--deepep-mode {mode}", "--moe-dense-tp-size 1", "--enable-dp-lm-head",
                 f"--nnodes {p.nodes}", '--node-rank "$RANK"', '--dist-init-addr "$MASTER:5757"', "--port 30000"]
        if p.redundant_experts:
            flags.append(f"--ep-num-redundant-experts {p.redundant_experts}")
        if p.two_batch_overlap:
            flags.append("--enable-two-batch-overlap")
        if p.role == "prefill":
            flags += [f"--chunked-prefill-size {p.batch_per_gpu * g}", "--disable-radix-cache"]
        else:
            flags += [f"--cuda-graph-bs {p.batch_per_gpu}", f"--max-running-requests {p.batch_per_gpu * g}"]
        lines.append(f'[ "$ROLE" = {p.role} ] && python -m sglang.launch_server ' + " ".join(flags))
    lines.append("# then, on one host: python -m sglang_router.launch_router --pd-disaggregation "
                 "--prefill http://PREFILL_MASTER:30000 --decode http://DECODE_MASTER:30000")
    return "\n".join(lines) + "\n"
