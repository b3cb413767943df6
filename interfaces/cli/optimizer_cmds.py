"""``genz tune`` (knob search), ``genz plan`` (capacity plan) and ``genz place`` (expert placement,
``optimizers.placement``).

Each prints a summary (``--json``: one JSON object), shows a progress bar on stderr, and with
``--out`` writes a results file that ``genz report`` and the dashboard read (docs/optimizers.md).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import click

from genz.serving.registry import SCHEDULERS
from interfaces.cli.common import BadInput, Infeasible, check_writable, echo_json, in_range, progress_bar
from optimizers.search.objective import METRICS


# --------------------------------------------------------------------------- parsing helpers
def _list(text: str | None, flag: str, kind=int) -> tuple | None:
    """``"1,2,4"`` / ``"1:64:x2"`` -> a tuple of ``kind`` (None when the flag was not given)."""
    if text is None:
        return None
    if kind is bool:
        out = []
        for part in (p.strip().lower() for p in text.split(",") if p.strip()):
            if part in ("on", "true", "yes", "1"):
                out.append(True)
            elif part in ("off", "false", "no", "0"):
                out.append(False)
            else:
                raise BadInput(f"{flag}: values must be on/off (or true/false), got {part!r}")
        if not out:
            raise BadInput(f"{flag}: no values given")
        return tuple(out)
    if kind is float:
        try:
            vals = tuple(float(p) for p in text.split(",") if p.strip())
        except ValueError:
            raise BadInput(f"{flag}: expected comma-separated numbers, got {text!r}") from None
        if not vals:
            raise BadInput(f"{flag}: no values given")
        return vals
    if kind is str:
        vals = tuple(p.strip() for p in text.split(",") if p.strip())
        if not vals:
            raise BadInput(f"{flag}: no values given")
        return vals
    from interfaces.cli.values import parse_values

    vals = parse_values(text, flag)
    bad = [v for v in vals if not isinstance(v, int)]
    if bad:
        raise BadInput(f"{flag}: expected integers (1,2,4 or 1:64:x2), got {bad[0]!r}")
    return tuple(vals)


def _pairs(items: tuple[str, ...], flag: str) -> dict[str, float]:
    """``("h100=4.75", "rtx-4090=0.7")`` -> {name: number}."""
    out = {}
    for item in items:
        name, sep, val = item.partition("=")
        try:
            v = float(val)
        except ValueError:
            v = math.nan
        if not sep or not name.strip() or not math.isfinite(v) or v < 0:
            raise BadInput(f"{flag}: expected HARDWARE=NUMBER (a number >= 0), got {item!r}")
        out[name.strip()] = v
    return out


def _slo(ttft, tpot, use_case):
    if ttft is None and tpot is None:
        return None
    from genz.serving import SLO
    from workloads.usecases import get_use_case

    uc = get_use_case(use_case) if isinstance(use_case, str) else use_case
    return SLO(ttft if ttft is not None else uc.ttft_slo_s, tpot if tpot is not None else uc.tpot_slo_s)


def _write_json(kind: str, payload: dict, path: Path) -> None:
    """A results file with the ``genz_result`` envelope (interfaces.reports.formats when it knows
    the kind; the same envelope written here otherwise)."""
    try:
        from interfaces.reports.formats import KINDS, write_result
    except ImportError:  # pragma: no cover - reports are part of the project
        KINDS, write_result = (), None
    if write_result is not None and kind in KINDS:
        write_result(kind, payload, path)
        return
    from datetime import UTC, datetime

    from interfaces.cli.common import _clean

    env = {"genz_result": kind, "format_version": 1, "created": datetime.now(UTC).isoformat(timespec="seconds"),
           **payload}
    from workloads.files import atomic_write_text

    atomic_write_text(path, json.dumps(_clean(env), indent=1, default=str))


def _bar_callback(bar, label: str):
    task = bar.add_task(label, total=None)

    def cb(done, total):
        bar.update(task, completed=done, total=total)
    return cb


_workers_opt = click.option("--workers", type=int, default=None,
                            help="Evaluations in parallel on this machine (default: one per CPU; 1 = in this process).")
_ray_opt = click.option("--ray-address", default=None,
                        help="Run evaluations on a Ray cluster: 'auto', HOST:PORT, ray://HOST:10001, or 'local' "
                             "(a private Ray instance on this machine). Needs pip install -e '.[ray]'.")


def _check_workers(workers):
    if workers is not None and workers < 1:
        raise BadInput(f"--workers: must be an integer >= 1, got {workers}")


# --------------------------------------------------------------------------- genz tune
@click.command()
@click.option("--model", default="llama-3-8b", show_default=True, help="Model preset or config.json path.")
@click.option("--precision", default="bf16", show_default=True)
@click.option("--use-case", default="chatbot", show_default=True, help="Workload shape and SLO: chatbot, question_answering, summarization, code_generation, "
              "retrieval_augmented_generation, reasoning.")
@click.option("--rate", type=float, default=None,
              help="Arrival rate, requests/s (Poisson). Without it the run is offline: every request at t = 0.")
@click.option("--requests", type=int, default=200, show_default=True, help="Requests per simulated run.")
@click.option("--concurrency", type=int, default=None, callback=in_range("concurrency", 1, integer=True),
              help="Closed loop of N users instead of --rate (each sends its next request when the last is done).")
@click.option("--think-time", type=float, default=0.0, show_default=True,
              help="Seconds a closed-loop user waits between a response and its next request.")
@click.option("--confirm-requests", type=int, default=1000, show_default=True,
              callback=in_range("confirm-requests", 0, integer=True),
              help="Capacity objectives: requests of the run confirming each capacity found (0: none).")
@click.option("--length-sigma", type=float, default=0.0, show_default=True,
              help="Log-normal spread of prompt and output lengths around the use case's (0 = fixed).")
@click.option("--slo-ttft", type=float, default=None, help="TTFT objective, s (default: the use case's).")
@click.option("--slo-tpot", type=float, default=None, help="TPOT objective, s (default: the use case's).")
@click.option("--min-attainment", type=float, default=0.9, show_default=True,
              help="Share of requests that must meet the SLO for a configuration to count (runs with --rate).")
@click.option("--objective", default="throughput", show_default=True,
              help=", ".join(METRICS) + "; two or more comma-separated for a Pareto front (e.g. "
                   "throughput,p99_tpot).")
@click.option("--max-num-seqs", default=None, help="Values to try, e.g. 32,64,128,256 or 16:512:x2 [vLLM: 256].")
@click.option("--max-num-batched-tokens", default=None, help="Values to try [vLLM: 8192].")
@click.option("--chunked-prefill", default=None, help="on,off [on].")
@click.option("--block-size", default=None, help="KV block sizes [16].")
@click.option("--gpu-memory-utilization", default=None, help="Fractions, e.g. 0.85,0.9,0.95 [0.9].")
@click.option("--tp", default=None, help="Tensor-parallel sizes [1].")
@click.option("--pp", default=None, help="Pipeline-parallel sizes [1].")
@click.option("--ep", default=None, help="Expert-parallel sizes (MoE models) [1].")
@click.option("--replicas", default=None, help="Data-parallel replicas [1].")
@click.option("--hardware", default="h100", show_default=True, help="GPU types, comma-separated.")
@click.option("--scheduler", default=None,
              help="Scheduling policies to try, comma-separated: " + ", ".join(SCHEDULERS) + " [continuous].")
@click.option("--batch-size", default=None, help="Static batch sizes (with --scheduler static) [1].")
@click.option("--max-gpus", type=int, default=None,
              help="Skip configurations using more GPUs (max(tp, ep) x pp x replicas).")
@click.option("--sampler", default="tpe", show_default=True, type=click.Choice(["grid", "random", "tpe", "nsga2"]))
@click.option("--trials", type=int, default=None, help="Trials in the study (default: the grid size for grid, else 50).")
@click.option("--batch", type=int, default=8, show_default=True, callback=in_range("batch", 1, integer=True),
              help="Trials asked, evaluated in parallel and told together; a seed gives the same result for "
                   "any --workers (more workers than --batch idle).")
@click.option("--seed", type=int, default=0, show_default=True)
@_workers_opt
@_ray_opt
@click.option("--storage", default=None,
              help="Study file to resume from and save to (.db = SQLite, other = Optuna journal file).")
@click.option("--study-name", default=None, help="Study name inside --storage [genz-tune].")
@click.option("--price", "prices", multiple=True, metavar="HW=USD", help="USD per GPU-hour, e.g. --price rtx-4090=0.7.")
@click.option("--runtime", default="vllm", show_default=True)
@click.option("--out", default=None, help="Results file (JSON, read by genz report search); trials also go to <out>.csv.")
@click.option("--force", is_flag=True, help="Overwrite --out.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (the results file's content).")
def tune(model, precision, use_case, rate, requests, concurrency, think_time, confirm_requests, length_sigma, slo_ttft, slo_tpot, min_attainment, objective,
         max_num_seqs, max_num_batched_tokens, chunked_prefill, block_size, gpu_memory_utilization, tp, pp, ep, replicas,
         hardware, scheduler, batch_size, max_gpus, sampler, trials, batch, seed, workers, ray_address, storage, study_name,
         prices, runtime, out, force, as_json):
    """Search serving knobs for the best throughput, goodput, cost or capacity under SLOs.

    Every configuration is a serving simulation of the use case's workload on the analytical engine;
    the result names the best configuration, the baseline (vLLM's defaults) and how far apart.

    \b
    Examples:
      genz tune --model llama-3-8b --hardware h100 --max-num-seqs 16:512:x2 --max-num-batched-tokens 2048,8192
      genz tune --objective cost --rate 20 --hardware a100,h100 --tp 1,2 --replicas 1,2 --max-gpus 4
      genz tune --objective throughput,p99_tpot --sampler nsga2 --trials 60 --max-num-seqs 8:512:x2
      genz tune --sampler tpe --trials 100 --storage study.db --out tune.json   # resumable
      genz tune --ray-address auto --trials 400 --max-num-seqs 8:1024:x2 --tp 1,2,4,8
    """
    from optimizers.search import SearchSpace, ServingObjective, search

    _check_workers(workers)
    out_path = check_writable(out, force) if out else None
    csv_path = out_path.with_suffix(".csv") if out_path else None
    if csv_path is not None and csv_path.exists() and not force:
        raise BadInput(f"--out: {csv_path} (the trials table) exists; pass --force to overwrite it")
    objectives = _list(objective, "--objective", str)
    knobs = {
        "max_num_seqs": _list(max_num_seqs, "--max-num-seqs"),
        "max_num_batched_tokens": _list(max_num_batched_tokens, "--max-num-batched-tokens"),
        "chunked_prefill": _list(chunked_prefill, "--chunked-prefill", bool),
        "block_size": _list(block_size, "--block-size"),
        "gpu_memory_utilization": _list(gpu_memory_utilization, "--gpu-memory-utilization", float),
        "tp": _list(tp, "--tp"), "pp": _list(pp, "--pp"), "ep": _list(ep, "--ep"), "replicas": _list(replicas, "--replicas"),
        "hardware": _list(hardware, "--hardware", str), "scheduler": _list(scheduler, "--scheduler", str),
        "batch_size": _list(batch_size, "--batch-size"),
    }
    space = SearchSpace(**{k: v for k, v in knobs.items() if v is not None}, max_gpus=max_gpus)
    ob = ServingObjective(model=model, precision=precision, use_case=use_case, rate_per_s=rate, num_requests=requests,
                          length_sigma=length_sigma, slo=_slo(slo_ttft, slo_tpot, use_case),
                          min_slo_attainment=min_attainment, seed=seed, runtime=runtime,
                          confirm_requests=confirm_requests, concurrency=concurrency, think_time_s=think_time,
                          prices=_pairs(prices, "--price"))
    with progress_bar(0, "tune", enabled=not as_json) as bar:
        res = search(space, ob, objectives=objectives, sampler=sampler, n_trials=trials, seed=seed, batch=batch,
                     workers=workers if workers is not None else (os.cpu_count() or 1), ray_address=ray_address,
                     storage=storage, study_name=study_name, progress=_bar_callback(bar, f"{sampler} trials"))
    payload = res.to_payload()
    if out_path is not None:
        _write_json("search", payload, out_path)
        from interfaces.reports.formats import write_table

        write_table(res.frame(), csv_path)
    none_feasible = res.best is None or res.best.get("value") is None
    if as_json:
        echo_json({**payload, "out": str(out_path) if out_path else None})
        if none_feasible:
            raise SystemExit(1)
        return
    for line in res.summary_lines():
        click.echo(line)
    capacity = any(o.startswith("capacity") for o in objectives)
    if rate is None and not capacity:
        click.echo("note: offline run (no --rate): every request arrives at t = 0, so the TTFT/TPOT SLOs were not "
                   "applied; give --rate (or --objective capacity) to search under the SLO")
    if out_path is not None:
        click.echo(f"wrote {out_path} and {csv_path} (genz report search --in {out_path} --out search.html)")
    if none_feasible:
        raise Infeasible("no configuration met the SLOs and fit in memory (the trials table gives each reason); "
                         "widen the space (--tp, --replicas, --hardware) or relax --slo-ttft/--slo-tpot")


# --------------------------------------------------------------------------- genz plan
def _demands(workload: str):
    """``chatbot=20,code=5`` or a YAML/JSON file (see docs/optimizers.md)."""
    from optimizers.capacity import Demand, parse_demand

    p = Path(workload)
    if p.suffix.lower() not in (".yaml", ".yml", ".json"):
        return parse_demand(workload)
    if not p.exists():
        raise BadInput(f"--workload: file {p} does not exist")
    from workloads.yamlfile import load_yaml

    data = load_yaml(p.read_text(), f"--workload: {p}")  # JSON is YAML
    items = data.get("use_cases") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise BadInput(f"--workload: {p} needs a list 'use_cases' of {{use_case, rate_per_s, ttft_slo_s?, tpot_slo_s?}}")
    out = []
    for k, it in enumerate(items):
        if not isinstance(it, dict) or "use_case" not in it or "rate_per_s" not in it:
            raise BadInput(f"--workload: {p}: use_cases[{k}] needs use_case and rate_per_s")
        unknown = set(it) - {"use_case", "rate_per_s", "ttft_slo_s", "tpot_slo_s"}
        if unknown:
            raise BadInput(f"--workload: {p}: use_cases[{k}] has unknown key(s) {sorted(unknown)}")
        slo = _slo(it.get("ttft_slo_s"), it.get("tpot_slo_s"), it["use_case"])
        out.append(Demand(it["use_case"], it["rate_per_s"], slo))
    return out


def _ratios(text: str) -> tuple[tuple[int, int], ...]:
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        a, sep, b = part.partition(":")
        if not (sep and a.isdigit() and b.isdigit() and int(a) >= 1 and int(b) >= 1):
            raise BadInput(f"--pd-ratios: expected PREFILL:DECODE pairs such as 1:1,2:1, got {part!r}")
        out.append((int(a), int(b)))
    if not out:
        raise BadInput("--pd-ratios: no ratio given")
    return tuple(out)


@click.command()
@click.option("--workload", required=True,
              help="Use cases and rates: chatbot=20,code_generation=5 (requests/s), or a YAML file with SLOs.")
@click.option("--model", default="llama-3-8b", show_default=True)
@click.option("--precision", default="bf16", show_default=True)
@click.option("--hardware", default=None, help="GPU types of the catalog [a100,h100; none with --layout].")
@click.option("--tp", default="1,2,4,8", show_default=True, help="Tensor-parallel sizes of the candidates.")
@click.option("--pp", default="1", show_default=True, help="Pipeline-parallel sizes of the candidates.")
@click.option("--layout", "layouts", multiple=True, type=click.Path(dir_okay=False),
              help="An MoE cluster layout (genz predict --layout file) as a candidate unit: its prefill and "
                   "decode pools; repeat for several. Only layouts unless --hardware is given too.")
@click.option("--disaggregated/--colocated-only", default=True, show_default=True,
              help="Also consider Splitwise prefill/decode units.")
@click.option("--pd-ratios", default="1:1,2:1,1:2", show_default=True, help="Prefill:decode replicas per unit.")
@click.option("--objective", default="cost", show_default=True, type=click.Choice(["cost", "power"]))
@click.option("--budget", type=float, default=None, help="Limit: USD per hour.")
@click.option("--power-kw", type=float, default=None, help="Limit: provisioned power, kW.")
@click.option("--racks", type=int, default=None, help="Limit: racks.")
@click.option("--gpus-per-server", type=int, default=8, show_default=True)
@click.option("--servers-per-rack", type=int, default=4, show_default=True)
@click.option("--server-overhead-w", type=float, default=0.0, show_default=True, help="Power per server beyond its GPUs.")
@click.option("--whole-servers", is_flag=True, help="Pay and power whole servers, not GPUs.")
@click.option("--price", "prices", multiple=True, metavar="HW=USD", help="USD per GPU-hour (required for GPUs without one).")
@click.option("--power", "powers", multiple=True, metavar="HW=W", help="Provisioned W per GPU (default: its power limit).")
@click.option("--requests", type=int, default=200, show_default=True, help="Requests per capacity run.")
@click.option("--confirm-requests", type=int, default=1000, show_default=True, help="Requests per confirming run.")
@click.option("--min-attainment", type=float, default=0.9, show_default=True)
@click.option("--no-confirm", is_flag=True, help="Skip the confirming simulations.")
@click.option("--repair-rounds", type=int, default=2, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@_workers_opt
@_ray_opt
@click.option("--cache", default=None, help="JSON file caching capacities between runs.")
@click.option("--out", default=None, help="Results file (JSON plan).")
@click.option("--force", is_flag=True, help="Overwrite --out.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (the results file's content).")
def plan(workload, model, precision, hardware, tp, pp, layouts, disaggregated, pd_ratios, objective, budget, power_kw, racks,
         gpus_per_server, servers_per_rack, server_overhead_w, whole_servers, prices, powers, requests,
         confirm_requests, min_attainment, no_confirm, repair_rounds, seed, workers, ray_address, cache, out, force,
         as_json):
    """The cheapest (or lowest-power) deployment serving a workload mix within its SLOs and limits.

    Candidates (GPU type x tp x colocated or Splitwise-disaggregated) get a per-unit capacity for
    each use case from short simulations; a mixed-integer program picks how many units of each;
    longer simulations confirm the plan. With no feasible plan the message names the binding limit.

    \b
    Examples:
      genz plan --workload chatbot=30,code_generation=3 --hardware a100,h100
      genz plan --workload chatbot=100 --budget 40 --racks 1 --objective power --json
      genz plan --workload mix.yaml --hardware h100,rtx-4090 --price rtx-4090=0.7 --cache caps.json --out plan.json
      genz plan --workload chatbot=200 --model deepseek-v3 --layout docs/layouts/deepseek-v3-sglang-96xh100.yaml
    """
    from optimizers.capacity import (
        InfeasiblePlan,
        Limits,
        SimulationSettings,
        hardware_catalog,
        layout_candidate,
        make_candidates,
        plan_capacity,
    )

    _check_workers(workers)
    out_path = check_writable(out, force) if out else None
    demands = _demands(workload)
    lay_cands = [layout_candidate(f) for f in layouts]
    if hardware is None:  # the default catalog, unless only layouts are asked for
        hws = [] if lay_cands else ["a100", "h100"]
    else:
        hws = list(_list(hardware, "--hardware", str))
    catalog = hardware_catalog(list(dict.fromkeys(hws + [c.hardware for c in lay_cands])), _pairs(prices, "--price"),
                               _pairs(powers, "--power"))
    limits = Limits(budget_usd_per_hour=budget, power_w=None if power_kw is None else power_kw * 1e3, racks=racks,
                    gpus_per_server=gpus_per_server, servers_per_rack=servers_per_rack,
                    server_overhead_w=server_overhead_w, charge_whole_servers=whole_servers)
    cands = (make_candidates(hws, _list(tp, "--tp"), pp=_list(pp, "--pp"), disaggregated=disaggregated,
                             pd_ratios=_ratios(pd_ratios), gpus_per_server=gpus_per_server) if hws else []) + lay_cands
    settings = SimulationSettings(model=model, precision=precision, num_requests=requests,
                                  confirm_requests=confirm_requests, min_slo_attainment=min_attainment, seed=seed)
    settings.objective(demands[0])  # validates model, precision and the numbers before any simulation
    if repair_rounds < 0:
        raise BadInput(f"--repair-rounds: must be >= 0, got {repair_rounds}")
    with progress_bar(0, "plan", enabled=not as_json) as bar:
        tasks = {}

        def cb(stage, done, total):
            if stage not in tasks:
                tasks[stage] = bar.add_task("capacities (bisection per candidate x use case)" if stage == "capacities"
                                            else "confirming simulations", total=None)
            bar.update(tasks[stage], completed=done, total=total)

        try:
            result = plan_capacity(demands, cands, catalog, limits, objective=objective, settings=settings,
                                   confirm=not no_confirm, repair_rounds=repair_rounds,
                                   workers=workers if workers is not None else (os.cpu_count() or 1),
                                   ray_address=ray_address, cache_path=cache, progress=cb)
        except InfeasiblePlan as exc:
            result = exc.plan
            payload = result.to_payload() if result is not None else {"feasible": False, "message": str(exc)}
            if out_path is not None:
                _write_json("plan", payload, out_path)
            if as_json:
                echo_json({**payload, "out": str(out_path) if out_path else None})
                raise SystemExit(1) from None
            raise Infeasible(str(exc)) from None
    payload = result.to_payload()
    if out_path is not None:
        _write_json("plan", payload, out_path)
    if as_json:
        echo_json({**payload, "out": str(out_path) if out_path else None})
        return
    for line in result.summary_lines():
        click.echo(line)
    if out_path is not None:
        click.echo(f"wrote {out_path}")

# --------------------------------------------------------------------------- genz place
#: Largest synthetic routing trace (tokens x layers x top_k), a few hundred MB of ids at most.
MAX_TRACE_ENTRIES = 50_000_000


def _routing_trace(trace, experts, synthetic, tokens, layers, top_k, affinity, seed, skew=0.0):
    from workloads import routing

    if trace is None and synthetic is None:
        raise BadInput("give a routing trace (--trace FILE.npy|FILE.csv) or --synthetic AFFINITY "
                       "(a generated trace, 0 = no inter-layer affinity, 1 = deterministic chains)")
    if trace is not None and synthetic is not None:
        raise BadInput("--trace and --synthetic: give one of them")
    if skew and synthetic is None:
        raise BadInput("--skew: shapes a synthetic trace; give --synthetic AFFINITY (a measured trace has its own skew)")
    if synthetic is not None:
        if experts is None:
            raise BadInput("--synthetic: needs --experts (experts per MoE layer)")
        if top_k > experts:
            raise BadInput(f"--top-k: {top_k} exceeds --experts ({experts})")
        if tokens * layers * top_k > MAX_TRACE_ENTRIES:
            raise BadInput(f"--tokens x --layers x --top-k = {tokens * layers * top_k:,} routing entries; at most "
                           f"{MAX_TRACE_ENTRIES:,}")
        return routing.synthetic_routing(tokens=tokens, layers=layers, experts=experts, top_k=top_k,
                                         affinity=synthetic, seed=seed, skew=skew)
    p = Path(trace)
    if not p.exists():
        raise BadInput(f"--trace: file {p} does not exist")
    if p.suffix == ".npy":
        return routing.load_routing_npy(p, experts)
    if p.suffix == ".csv":
        return routing.load_routing_csv(p, experts)
    raise BadInput(f"--trace: {p} must end in .npy (array tokens x layers x top_k) or .csv (token,layer,e0,...)")


def placement_payload(rep, model: str = "") -> dict:
    """The ``placement`` results file of an ``optimizers.placement.PlacementReport``: every method's
    held-out metrics (``objective`` = hop cost per token per layer transition) and expert-to-GPU map."""
    d = rep.to_dict()
    methods = {}
    for name, m in rep.metrics.items():
        entry = {"objective": m.hop_cost_per_token_layer, **m.to_dict(),
                 "gpu_of": rep.placements[name].gpu_of.tolist(),
                 "reduction_vs_round_robin": rep.reduction(name)}
        if name == "ilp":
            entry.update(status=rep.solve.status, gap=rep.solve.gap, wall_s=rep.solve.wall_s,
                         solver=rep.solve.solver, formulation=rep.solve.formulation)
        methods[name] = entry
    t = rep.trace_info
    return {"model": model, "cluster": d["cluster"], "layers": t["layers"], "experts": t["experts"],
            "tokens": t["tokens"], "trace": t, "hidden_bytes": rep.hidden_bytes, "baseline": "round_robin",
            "methods": methods, "nothing_to_gain": rep.nothing_to_gain, "solve": d["solve"]}


@click.command()
@click.option("--trace", default=None, help="Routing trace: .npy (tokens x MoE layers x top_k expert ids) or "
                                            ".csv (token,layer,e0,e1,...).")
@click.option("--synthetic", type=float, default=None, metavar="AFFINITY", callback=in_range("synthetic", 0, 1),
              help="Instead of a file: a generated trace whose tokens follow a fixed expert chain with this "
                   "probability (0 ... 1).")
@click.option("--experts", type=int, default=None, callback=in_range("experts", 1, 4096, integer=True),
              help="Experts per MoE layer (default for files: largest id + 1; at most 4096).")
@click.option("--tokens", type=int, default=2000, show_default=True, callback=in_range("tokens", 1, 1_000_000, integer=True),
              help="Tokens of a --synthetic trace.")
@click.option("--layers", type=int, default=8, show_default=True, callback=in_range("layers", 1, 1000, integer=True),
              help="MoE layers of a --synthetic trace.")
@click.option("--top-k", type=int, default=2, show_default=True, callback=in_range("top-k", 1, 4096, integer=True),
              help="Experts per token of a --synthetic trace.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--skew", type=float, default=0.0, show_default=True, callback=in_range("skew", 0, 10),
              help="Hot experts in a --synthetic trace: Zipf exponent of the experts' popularity (0: uniform).")
@click.option("--nodes", type=int, default=1, show_default=True, callback=in_range("nodes", 1, 512, integer=True))
@click.option("--gpus-per-node", type=int, default=8, show_default=True,
              callback=in_range("gpus-per-node", 1, 72, integer=True))
@click.option("--intra-cost", type=float, default=1.0, show_default=True, callback=in_range("intra-cost", 0),
              help="Cost of a hop inside a node (ExFlow: 1).")
@click.option("--inter-cost", type=float, default=2.0, show_default=True, callback=in_range("inter-cost", 0),
              help="Cost of a hop across nodes (ExFlow: 2).")
@click.option("--model", default=None, help="MoE preset: its hidden size (bf16) sizes the all-to-all bytes.")
@click.option("--solver", default="cbc", show_default=True, type=click.Choice(["cbc", "highs"]))
@click.option("--time-limit", type=float, default=60.0, show_default=True, callback=in_range("time-limit", 0, 86400, lo_open=True),
              help="Solver wall-clock limit, s.")
@click.option("--threads", type=int, default=1, show_default=True, callback=in_range("threads", 1, 256, integer=True))
@click.option("--holdout", type=float, default=0.25, show_default=True, callback=in_range("holdout", 0, 0.9),
              help="Share of the tokens (the last ones) kept out of the optimisation and used for the metrics.")
@click.option("--out", default=None, help="Results file (JSON, read by genz report placement).")
@click.option("--force", is_flag=True, help="Overwrite --out.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (the results file's content).")
def place(trace, synthetic, experts, tokens, layers, top_k, seed, skew, nodes, gpus_per_node, intra_cost, inter_cost, model,
          solver, time_limit, threads, holdout, out, force, as_json):
    """Place MoE experts on GPUs to cut cross-GPU routing (ExFlow's integer program), against round
    robin, greedy and local search, on held-out tokens of a routing trace.

    \b
    Examples:
      genz place --synthetic 0.8 --experts 16 --layers 8 --nodes 2 --gpus-per-node 4
      genz place --trace routing.npy --experts 8 --gpus-per-node 8 --model mixtral-8x7b --out place.json
      genz place --synthetic 0.8 --skew 1 --experts 8 --nodes 2 --gpus-per-node 4 --out place.json
      genz simulate --model mixtral-8x7b --hardware a100 --ep 8 --placement place.json   # serve it
    """
    from optimizers.capacity.mip import quiet_stdout

    try:
        from optimizers.placement import Cluster, optimize_placement
        from optimizers.placement.problem import check_divisible
    except ImportError as exc:  # pragma: no cover - a checkout without the placement package
        raise click.ClickException(f"expert placement is not available in this checkout ({exc})") from None

    out_path = check_writable(out, force) if out else None
    tr = _routing_trace(trace, experts, synthetic, tokens, layers, top_k, synthetic, seed, skew)
    cluster = Cluster(nodes=nodes, gpus_per_node=gpus_per_node, intra_node_cost=intra_cost, inter_node_cost=inter_cost)
    check_divisible(tr.experts, cluster.gpus)
    kw = {}
    if model is not None:
        from workloads import load_model

        m = load_model(model)
        if not m.is_moe:
            raise BadInput(f"--model: {m.name} has no experts")
        if m.experts != tr.experts:
            raise BadInput(f"--model: {m.name} has {m.experts} experts per layer, the trace {tr.experts}")
        kw["hidden_bytes"] = m.hidden * 2.0
    with progress_bar(0, "place", enabled=not as_json) as bar:
        bar.add_task(f"solving the placement ILP ({tr.layers} layers x {tr.experts} experts on {cluster.gpus} GPUs)",
                     total=None)
        with quiet_stdout():  # HiGHS prints a banner on stdout, which would break --json
            rep = optimize_placement(tr, cluster, solver=solver, time_limit_s=time_limit, threads=threads,
                                     holdout=holdout, **kw)
    payload = placement_payload(rep, model or "")
    if out_path is not None:
        _write_json("placement", payload, out_path)
    if as_json:
        echo_json({**payload, "out": str(out_path) if out_path else None})
        return
    click.echo(rep.summary())
    if out_path is not None:
        click.echo(f"wrote {out_path} (genz report placement --in {out_path} --out placement.html)")


def register(main: click.Group) -> None:
    main.add_command(tune)
    main.add_command(plan)
    main.add_command(place)
