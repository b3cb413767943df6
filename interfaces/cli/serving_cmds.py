"""``genz simulate``: a serving scenario replayed on the discrete-event simulation, costed by the engine."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import click

from genz.ep_traffic import PLACEMENT_METHODS
from genz.serving.config import MAX_REQUESTS
from genz.serving.registry import ROUTERS, SCHEDULERS, all_knobs
from interfaces.cli.common import BadInput, check_writable, echo_json, progress_bar


def scheduler_options(f):
    """One option per knob of the registered scheduling policies (``--max-num-seqs``,
    ``--chunked-prefill/--no-chunked-prefill``...), typed from the policy configs."""
    for knob in reversed(list(all_knobs().values())):
        flag = knob.name.replace("_", "-")
        defaults = ", ".join(f"{k} {v}" for k, v in knob.defaults.items())
        text = f"{knob.help} [{defaults}]" if knob.help else f"[{defaults}]"
        if knob.type == "bool":
            f = click.option(f"--{flag}/--no-{flag}", knob.name, default=None, help=text)(f)
        elif knob.type == "int":
            f = click.option(f"--{flag}", knob.name, type=int, callback=_at_least(flag, 1), help=text)(f)
        elif knob.type == "float":
            f = click.option(f"--{flag}", knob.name, type=float, help=text)(f)
        else:
            f = click.option(f"--{flag}", knob.name, help=text)(f)
    return f


def _positive_or_zero(name: str):
    def cb(ctx, param, value):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise BadInput(f"--{name}: must be a finite number >= 0, got {value}")
        return value
    return cb


def _concurrencies(text: str | None) -> list[int] | None:
    if text is None:
        return None
    out = []
    for part in text.split(","):
        try:
            v = int(part.strip())
        except ValueError:
            raise BadInput(f"--concurrency: must be a positive integer or a comma-separated list of them, "
                           f"got {text!r}") from None
        if v < 1:
            raise BadInput(f"--concurrency: must be >= 1, got {v}")
        out.append(v)
    return out


def _curve(spec: dict, levels: list[int], max_requests: int, as_json: bool) -> None:
    """One closed-loop run per concurrency level: the curve benchmark tools draw."""
    import copy

    from genz.serving import simulate as run_simulation
    from genz.serving.build import build_scenario

    rows = []
    for c in levels:
        s = copy.deepcopy(spec)
        s["workload"]["concurrency"] = c
        summ = run_simulation(build_scenario(s), max_requests=max_requests).summary
        rows.append({"concurrency": c, "output_tokens_per_s": summ.output_tokens_per_s,
                     "throughput_rps": summ.throughput_rps, "ttft_p50_s": summ.ttft_s.p50,
                     "ttft_p99_s": summ.ttft_s.p99, "tpot_p50_s": summ.tpot_s.p50, "tpot_p99_s": summ.tpot_s.p99,
                     "itl_p50_s": summ.itl_s.p50, "itl_p99_s": summ.itl_s.p99, "e2e_p50_s": summ.e2e_s.p50,
                     "peak_in_system": summ.peak_in_system, "completed": summ.completed, "dropped": summ.dropped})
    if as_json:
        echo_json({"curve": rows, "inputs": spec})
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"closed-loop curve: {_describe(spec)}")
    for col in ("users", "output tok/s", "req/s", "TTFT p50", "TTFT p99", "ITL p50", "ITL p99", "TPOT p50",
                "TPOT p99"):
        t.add_column(col, justify="right")
    for r in rows:
        t.add_row(str(r["concurrency"]), f"{r['output_tokens_per_s']:,.0f}", f"{r['throughput_rps']:.2f}",
                  _fmt_s(r["ttft_p50_s"]), _fmt_s(r["ttft_p99_s"]), _fmt_s(r["itl_p50_s"]), _fmt_s(r["itl_p99_s"]),
                  _fmt_s(r["tpot_p50_s"]), _fmt_s(r["tpot_p99_s"]))
    Console().print(t)


def _at_least(name: str, lo: float, integer: bool = True):
    def cb(ctx, param, value):
        if value is not None and value < lo:
            raise BadInput(f"--{name}: must be an integer >= {lo:g}, got {value}")
        return value
    return cb


def _positive(name: str):
    def cb(ctx, param, value):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise BadInput(f"--{name}: must be a finite number > 0, got {value}")
        return value
    return cb


# flag -> path in the scenario mapping (see genz.serving.scenario_file)
_FLAG_PATHS = {
    "name": ("name",), "model": ("model",), "hardware": ("hardware",), "precision": ("precision",),
    "tp": ("tp",), "pp": ("pp",), "ep": ("ep",), "runtime": ("runtime",), "replicas": ("replicas",),
    "router": ("router",), "seed": ("seed",),
    "scheduler": ("scheduler", "kind"),
    "use_case": ("workload", "use_case"), "rate": ("workload", "rate_per_s"), "requests": ("workload", "requests"),
    "prompt": ("workload", "prompt"), "output": ("workload", "output"), "arrival": ("workload", "arrival"),
    "cv": ("workload", "cv"), "trace": ("workload", "trace"), "think_time": ("workload", "think_time_s"),
    "concurrency": ("workload", "concurrency"), "shared_prefix": ("workload", "shared_prefix_tokens"),
    "prefix_fraction": ("workload", "shared_prefix_fraction"), "prefix_groups": ("workload", "prefix_groups"),
    "turns": ("workload", "turns"),
    "slo_ttft": ("slo", "ttft_s"), "slo_tpot": ("slo", "tpot_s"),
    "prefill_hardware": ("disaggregation", "hardware"), "prefill_replicas": ("disaggregation", "prefill_replicas"),
    "prefill_tp": ("disaggregation", "tp"), "link": ("disaggregation", "link"),
    "link_count": ("disaggregation", "link_count"),
    "placement": ("placement", "file"), "placement_method": ("placement", "method"),
    "layout": ("layout",),
}
_FLAG_PATHS.update({k: ("scheduler", k) for k in all_knobs()})  # one flag per registered policy knob
_GENERATED_FLAGS = ("use_case", "rate", "prompt", "output", "arrival", "cv", "turns")


def overrides_from_flags(flags: dict, file_raw: dict) -> dict:
    """The scenario mapping the given flags set (``None`` = not given), ready to merge over a file.

    A trace on the command line replaces a file's generated workload and vice versa; ``--colocated``
    removes a file's disaggregation section."""
    over: dict = {}
    for flag, path in _FLAG_PATHS.items():
        v = flags.get(flag)
        if v is None:
            continue
        d = over
        for k in path[:-1]:
            d = d.setdefault(k, {})
        d[path[-1]] = v
    if flags.get("layout") is not None:  # a command-line path is the shell's, not relative to a scenario file
        over["layout"] = str(Path(flags["layout"]).resolve())
    dis = flags.get("disaggregate")
    if dis is False:
        if "disaggregation" in over:
            raise BadInput("--colocated: cannot be combined with --prefill-* or --link options")
        over["disaggregation"] = None
    elif dis is True:
        over.setdefault("disaggregation", {})
    w = over.get("workload", {})
    file_w = file_raw.get("workload") or {}
    if w.get("trace") is not None:
        for k in ("rate_per_s", "arrival", "cv", "prompt", "output", "length_sigma"):
            if k in file_w and k not in w:
                w[k] = None  # the command line's trace replaces the file's generated workload
    elif any(flags.get(f) is not None for f in _GENERATED_FLAGS) and file_w.get("trace") is not None:
        w["trace"] = None
    return over


def _fmt_s(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x * 1e3:.1f} ms" if x < 1 else f"{x:.3f} s"


def _pct_row(p) -> str:
    return " / ".join(_fmt_s(v) for v in (p.mean, p.p50, p.p90, p.p99))


def _describe(spec: dict) -> str:
    par = f"tp {spec['tp']} pp {spec['pp']} ep {spec['ep']}"
    s = spec["scheduler"]
    if s["kind"] == "continuous":
        sched = (f"continuous (max_num_seqs {s['max_num_seqs']}, {s['max_num_batched_tokens']} tokens, "
                 f"chunked prefill {'on' if s['chunked_prefill'] else 'off'})")
    elif s["kind"] == "static":
        sched = f"static (batch {s['batch_size']})"
    else:
        sched = f"{s['kind']} (" + ", ".join(f"{k} {v}" for k, v in s.items() if k != "kind") + ")"
    if spec.get("layout"):
        from genz.moe_cluster import load_layout

        lay = load_layout(spec["layout"]["file"])
        pools = ", ".join(f"{p.role} pool {p.nodes} nodes (EP {p.ep or 'all'}, attention TP {p.attention_tp})"
                          for p in lay.pools)
        par = f"layout {Path(spec['layout']['file']).name} on {lay.cluster}: {pools}"
    text = f"{spec['model']} {spec['precision']} on {spec['replicas']} x {spec['hardware']} ({par}), {sched}"
    if spec.get("placement"):
        text += f"; experts placed by {spec['placement']['method']} ({Path(spec['placement']['file']).name})"
    d = spec["disaggregation"]
    if d is not None:
        text += (f"; prefill pool {d['prefill_replicas']} x {d['hardware']} (tp {d['tp']}), KV over "
                 f"{d['link_count']} x {d['link']['name']}")
    return text


def _workload_text(spec: dict) -> str:
    w = spec["workload"]
    if w.get("trace"):
        return f"trace {w['trace']}" + (f" (first {w['requests']})" if w.get("requests") else "")
    uc = f"{w['use_case']}: " if w.get("use_case") else ""

    def dist(d):
        return {"fixed": lambda: f"{d['tokens']}", "uniform": lambda: f"U[{d['low']}, {d['high']}]",
                "lognormal": lambda: f"lognormal(mean {d['mean']:g}, sigma {d['sigma']:g})",
                "empirical": lambda: f"empirical({d['file']})"}[d["dist"]]()
    if w.get("concurrency") is not None:
        load = f"closed loop of {w['concurrency']} users (think {w.get('think_time_s', 0):g} s)"
    else:
        load = f"{w['arrival']} arrivals at {w['rate_per_s']:g}/s"
    text = f"{uc}{w['requests']} requests, {load}, prompt {dist(w['prompt'])}, output {dist(w['output'])} tokens"
    if w.get("shared_prefix_tokens"):
        text += (f", a {w['shared_prefix_tokens']}-token shared prefix on {100 * w['shared_prefix_fraction']:g} % "
                 f"({w['prefix_groups']} distinct)")
    if w.get("turns", 1) > 1:
        text += f", {w['turns']}-turn conversations"
    return text


def _basis(spec: dict) -> dict:
    """Pool -> what its step costs stand on (profile, basis, expected errors; see genz.predict.device_basis)."""
    from genz.predict import device_basis
    from hwmodels.registry import load_device

    pools = {"replicas": spec["hardware"]}
    dis = spec.get("disaggregation")
    if dis:
        pools = {"decode": spec["hardware"], "prefill": dis.get("hardware") or spec["hardware"]}
    return {pool: device_basis(load_device(hw)) for pool, hw in pools.items()}


def _print_table(spec: dict, s, wall: float) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{spec['name'] or 'serving simulation'}: {_describe(spec)}", title_justify="left")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    rows = [
        ("workload", _workload_text(spec)),
        ("requests completed / dropped / unfinished", f"{s.completed} / {s.dropped} / {s.unfinished}"),
        ("simulated duration", _fmt_s(s.duration_s)),
        ("throughput", f"{s.throughput_rps:.3f} req/s, {s.output_tokens_per_s:,.0f} output tok/s"),
    ]
    if spec["slo"] is not None:
        slo = spec["slo"]
        rows.append((f"goodput (TTFT <= {_fmt_s(slo['ttft_s'])}, TPOT <= {_fmt_s(slo['tpot_s'])})",
                     f"{s.goodput_rps:.3f} req/s, SLO attainment {100 * s.slo_attainment:.1f} %"
                     if math.isfinite(s.slo_attainment) else f"{s.goodput_rps:.3f} req/s"))
    rows += [
        ("TTFT mean / p50 / p90 / p99", _pct_row(s.ttft_s)),
        ("TPOT mean / p50 / p90 / p99", _pct_row(s.tpot_s)),
        ("ITL (all tokens) mean / p50 / p90 / p99", _pct_row(s.itl_s)),
        ("end-to-end mean / p50 / p90 / p99", _pct_row(s.e2e_s)),
        ("queueing mean / p50 / p90 / p99", _pct_row(s.queueing_s)),
        ("preemptions (recomputed tokens)", f"{s.preemptions} ({s.recomputed_tokens:,})"),
        ("requests in the system: mean / peak", f"{s.mean_in_system:.1f} / {s.peak_in_system}"),
        ("mean busy fraction of replicas", f"{100 * s.mean_utilization:.1f} %" if math.isfinite(s.mean_utilization)
         else "-"),
        ("energy", f"{s.energy_j / 3.6e6:.3f} kWh, {s.energy_per_output_token_j:.3f} J per output token"),
        ("cost", "price unknown (no price_per_hour_usd in the hardware data)" if math.isnan(s.cost_usd) else
         f"${s.cost_usd:.4f}, ${s.cost_per_million_output_tokens_usd:.3f} per million output tokens"),
        ("saturated", f"yes: {s.saturation_reason}" if s.saturated else "no"),
        ("wall time", f"{wall:.2f} s"),
    ]
    sc = spec["scheduler"]
    if sc.get("enable_prefix_caching") or sc.get("radix_cache"):
        rows.insert(-4, ("prefix cache: hit rate (prompt tokens reused)",
                         f"{100 * s.prefix_hit_rate:.1f} % ({s.prefix_hit_tokens:,})"))
    for k, v in rows:
        t.add_row(k, v)
    Console().print(t)


@click.command()
@click.option("--scenario", "scenario_path", type=click.Path(dir_okay=False),
              help="Scenario file (.yaml, .yml or .toml); the flags below override its values.")
@click.option("--name", help="Free-text name of the scenario.")
@click.option("--model", help="Preset or config.json path [llama-3-8b].")
@click.option("--hardware", help="GPU of each replica (genz list hardware) [h200].")
@click.option("--precision", help="bf16, fp8, int8, w4a16, fp8+kvfp8, ... [bf16].")
@click.option("--kv-cache-dtype", default=None, help="KV-cache dtype as engines name it: auto (the precision's own), fp8, fp8_e4m3, fp8_e5m2, int8, bf16, fp16.")
@click.option("--tp", type=int, callback=_at_least("tp", 1), help="Tensor-parallel size of a replica [1].")
@click.option("--pp", type=int, callback=_at_least("pp", 1), help="Pipeline stages of a replica [1].")
@click.option("--ep", type=int, callback=_at_least("ep", 1), help="Expert-parallel size (MoE) [1].")
@click.option("--runtime", help="vllm, sglang, trt-llm, plain-pytorch or hf-transformers [vllm].")
@click.option("--placement", type=click.Path(dir_okay=False),
              help="MoE expert placement (a genz place --out file): the EP all-to-all moves its intra- and "
                   "inter-node volumes, one per layer (ExFlow), and waits for its busiest GPU.")
@click.option("--placement-method", type=click.Choice(list(PLACEMENT_METHODS)),
              help="Which of the file's placements to serve [ilp].")
@click.option("--layout", type=click.Path(dir_okay=False),
              help="MoE cluster layout (a genz predict --layout file) instead of --model/--hardware/--tp...: each "
                   "replica is one of its pools, prefill and decode disaggregated when it has both.")
@click.option("--replicas", type=int, callback=_at_least("replicas", 1),
              help="Replicas (the decode pool when disaggregated) [1].")
@click.option("--router", type=click.Choice(list(ROUTERS)),
              help="; ".join(f"{k}: {r.description}" for k, r in ROUTERS.items()) + " [round_robin]")
@click.option("--scheduler", type=click.Choice(list(SCHEDULERS)),
              help="; ".join(f"{k}: {p.description}" for k, p in SCHEDULERS.items()) + " [continuous]")
@scheduler_options
@click.option("--use-case", help="chatbot, question_answering, summarization, code_generation, rag, reasoning: "
                                 "lengths and SLO [chatbot].")
@click.option("--rate", type=float, callback=_positive("rate"), help="Arrivals per second [4].")
@click.option("--requests", type=int, callback=_at_least("requests", 1), help="Requests to generate [1000].")
@click.option("--prompt", help="Prompt tokens: N, uniform:LOW:HIGH, lognormal:MEAN:SIGMA, empirical:FILE[:COL].")
@click.option("--output", help="Output tokens, same forms as --prompt.")
@click.option("--arrival", type=click.Choice(["poisson", "gamma", "fixed"]), help="[poisson]")
@click.option("--cv", type=float, callback=_positive("cv"), help="Coefficient of variation of gamma inter-arrival gaps [1].")
@click.option("--trace", type=click.Path(dir_okay=False), help="CSV trace (arrival_s,prompt_tokens,output_tokens).")
@click.option("--slo-ttft", type=float, callback=_positive("slo-ttft"), help="Time-to-first-token objective, seconds.")
@click.option("--slo-tpot", type=float, callback=_positive("slo-tpot"), help="Time-per-output-token objective, seconds.")
@click.option("--seed", type=int, callback=_at_least("seed", 0), help="Seed of the generated workload [0].")
@click.option("--disaggregate/--colocated", default=None,
              help="Split prefill onto its own pool (Splitwise), or force co-located replicas.")
@click.option("--prefill-hardware", help="GPU of the prefill pool [same as --hardware].")
@click.option("--prefill-replicas", type=int, callback=_at_least("prefill-replicas", 1), help="[1]")
@click.option("--prefill-tp", type=int, callback=_at_least("prefill-tp", 1), help="[same as --tp]")
@click.option("--link", help="KV-transfer link: ib-ndr400, ib-hdr200, roce-400, ... [ib-ndr400].")
@click.option("--link-count", type=int, callback=_at_least("link-count", 1),
              help="Parallel links per prefill replica, e.g. 8 NICs of a DGX [1].")
@click.option("--concurrency", default=None,
              help="Closed-loop clients, as benchmark tools run them (vLLM --max-concurrency): N users each send "
                   "a request when their last one finished; a list (1,8,32,128) prints the curve.")
@click.option("--think-time", type=float, default=None, callback=_positive_or_zero("think-time"),
              help="Seconds a closed-loop client waits between an answer and its next request [0].")
@click.option("--shared-prefix", type=int, default=None, callback=_at_least("shared-prefix", 1),
              help="Tokens of a system prompt shared by --prefix-fraction of the requests (use with "
                   "--enable-prefix-caching to reuse it).")
@click.option("--prefix-fraction", type=float, default=None, help="Share of requests with the shared prefix [1].")
@click.option("--prefix-groups", type=int, default=None, callback=_at_least("prefix-groups", 1),
              help="Distinct shared prompts, drawn uniformly [1].")
@click.option("--turns", type=int, callback=_at_least("turns", 1),
              help="Conversations of N turns, each resending its history (--rate counts conversations) [1].")
@click.option("--max-requests", type=int, default=MAX_REQUESTS, show_default=True,
              callback=_at_least("max-requests", 1), help="Refuse runs of more requests (a guard against typos).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (SI units): summary and inputs.")
@click.option("--out-requests", type=click.Path(dir_okay=False), help="Write the per-request frame to a CSV file.")
@click.option("--force", is_flag=True, help="Overwrite --out-requests if it exists.")
@click.pass_context
def simulate(ctx, scenario_path, as_json, out_requests, force, max_requests, **flags):
    """Replay requests through replicas on a simulated clock; report latency, goodput, energy, cost.

    Each iteration's time and energy come from the analytical engine (as in genz predict). An
    impossible scenario (the model does not fit, an SLO below a lone request's latency) exits with
    code 1 without simulating; with --json it still prints the object, with feasible false.

    \b
    Examples:
      genz simulate --model llama-3-8b --hardware h100 --use-case chatbot --rate 10 --replicas 2
      genz simulate --scenario docs/scenarios/chatbot-h100.yaml --rate 20 --json
      genz simulate --model llama-2-70b --hardware h100 --tp 8 --disaggregate --prefill-replicas 1 \\
                    --link ib-ndr400 --link-count 8 --use-case chatbot --rate 3
      genz simulate --trace my_trace.csv --slo-ttft 1 --slo-tpot 0.05 --out-requests per_request.csv
    """
    from genz.serving import simulate as run_simulation
    from genz.serving.results import Summary
    from genz.serving.scenario_file import build_scenario, fit_problem, load_file, merge, resolve

    out_path = check_writable(out_requests, force, "--out-requests") if out_requests else None
    kv_dtype = flags.pop("kv_cache_dtype", None)
    levels = _concurrencies(flags.pop("concurrency", None))
    if levels is not None and len(levels) == 1:
        flags["concurrency"] = levels[0]
    raw = load_file(scenario_path) if scenario_path else {}
    spec = resolve(merge(raw, overrides_from_flags(flags, raw)), Path(scenario_path).parent if scenario_path else None,
                   max_requests=max_requests)
    if kv_dtype:
        from workloads import Precision

        spec["precision"] = Precision.parse(spec["precision"]).with_kv_cache(kv_dtype).name
        if spec.get("disaggregation"):
            spec["disaggregation"]["precision"] = Precision.parse(
                spec["disaggregation"].get("precision") or spec["precision"]).with_kv_cache(kv_dtype).name
    problem = fit_problem(spec)
    if levels is not None and len(levels) > 1 and not problem:
        if out_path is not None:
            raise BadInput("--out-requests: give one --concurrency value to write its requests")
        _curve(spec, levels, max_requests, as_json)
        return
    t0 = time.perf_counter()
    if problem:
        n = spec["workload"].get("requests") or 0
        summary, memo = Summary(requests=n, feasible=False, infeasible_reason=problem), {}
        frame = None
    else:
        sc = build_scenario(spec)
        total = len(sc.trace) if sc.trace is not None else sc.workload.num_requests
        bar = progress_bar(total, "simulating", enabled=not as_json)
        task = None

        def cb(done, total_):  # called once per simulated window; the bar starts with the first
            nonlocal task
            if task is None:
                bar.start()
                task = bar.add_task("simulating (requests done)", total=total_)
            bar.update(task, completed=done)

        try:
            result = run_simulation(sc, progress=cb, max_requests=max_requests)
        finally:
            if task is not None:
                bar.stop()
        summary, memo, frame = result.summary, result.memo, result.requests
    wall = time.perf_counter() - t0
    if frame is not None and out_path is not None and summary.feasible:
        from interfaces.reports.formats import write_table

        write_table(frame, out_path)
    basis = _basis(spec)
    if as_json:
        echo_json(dataclasses.asdict(summary) | {"memo": memo, "wall_s": wall,
                                                 "out_requests": str(out_path) if out_path else None,
                                                 "basis": basis, "inputs": spec})
    if not summary.feasible:
        if as_json:
            ctx.exit(1)
        raise click.ClickException(f"infeasible scenario, not simulated: {summary.infeasible_reason}")
    if not as_json:
        _print_table(spec, summary, wall)
        for pool, b in basis.items():
            click.echo(f"{pool}: {b['basis']}" if len(basis) > 1 else b["basis"])
        if out_path is not None:
            click.echo(f"wrote {len(frame)} requests to {out_path}")


def register(main: click.Group) -> None:
    main.add_command(simulate)


__all__ = ["overrides_from_flags", "register", "simulate"]
