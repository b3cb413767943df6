"""``genz predict``, ``genz list`` and ``genz sweep``."""

from __future__ import annotations

import json

import click

from interfaces.cli.common import BadInput, check_writable, echo_json, progress_bar


def _positive(name: str):
    def cb(ctx, param, value):
        if value is not None and value < 1:
            raise BadInput(f"--{name}: must be an integer >= 1, got {value}")
        return value
    return cb


def _fmt_time(s: float) -> str:
    return f"{s * 1e3:.3f} ms" if s < 1 else f"{s:.3f} s"


@click.command()
@click.option("--model", default="llama-3-8b", show_default=True, help="Preset name or path to a config.json.")
@click.option("--hardware", default="h200", show_default=True, help="GPU, FPGA or LUT Tensor Core name (genz list hardware).")
@click.option("--batch", default=1, show_default=True, type=int, callback=_positive("batch"), help="Concurrent sequences.")
@click.option("--prompt", default=1024, show_default=True, type=int, callback=_positive("prompt"), help="Input tokens per sequence.")
@click.option("--output", default=128, show_default=True, type=int, callback=_positive("output"), help="Generated tokens per sequence.")
@click.option("--tp", default=1, show_default=True, type=int, callback=_positive("tp"), help="Tensor-parallel size.")
@click.option("--pp", default=1, show_default=True, type=int, callback=_positive("pp"), help="Pipeline-parallel stages.")
@click.option("--ep", default=1, show_default=True, type=int, callback=_positive("ep"), help="Expert-parallel size (MoE).")
@click.option("--dp", default=1, show_default=True, type=int, callback=_positive("dp"), help="Data-parallel replicas.")
@click.option("--precision", default="bf16", show_default=True,
              help="bf16, fp16, fp8, int8, int4, w4a16, w8a8kv8, ... with an optional KV part: fp8+kvfp8 "
                   "(genz list precisions).")
@click.option("--kv-cache-dtype", default="auto", show_default=True, help="KV-cache dtype as engines name it: auto (the precision's own), fp8, fp8_e4m3, fp8_e5m2, int8, bf16, fp16.")
@click.option("--cuda-graphs/--eager", default=True, show_default=True, help="CUDA-graph replay or eager kernel launches.")
@click.option("--runtime", default="vllm", show_default=True,
              help="Software stack: vllm, sglang, trt-llm, plain-pytorch, hf-transformers (genz list runtimes).")
@click.option("--profile", default="auto", show_default=True,
              help="GPU efficiency profile: auto (the GPU's own: yours on GENZ_PROFILE_PATH, else the shipped "
                   "measured, transferred or prior one), datasheet (ideal roofline), a profile name or a JSON path.")
@click.option("--allow-long-context", is_flag=True,
              help="Predict even when prompt + output exceeds the model's context window.")
@click.option("--layout", type=click.Path(dir_okay=False),
              help="MoE cluster layout (YAML/JSON: cluster, prefill/decode pools, EP, redundant experts); prints "
                   "per-node throughput, memory per GPU and the time split (docs/moe-clusters.md).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object in SI units.")
def predict(model, hardware, batch, prompt, output, tp, pp, ep, dp, precision, kv_cache_dtype, cuda_graphs, runtime,
            profile, allow_long_context, layout, as_json):
    """Latency, throughput, memory and energy of one configuration.

    \b
    Examples:
      genz predict
      genz predict --model llama-3-70b --hardware h100 --tp 4 --batch 32 --precision fp8
      genz predict --model mixtral-8x7b --hardware h200 --tp 2 --ep 2 --json
      genz predict --model deepseek-v3 --layout examples/deepseek-v3-pd.yaml
    """
    if layout:
        from interfaces.cli.moe_cmds import predict_layout

        given = click.get_current_context().get_parameter_source("model") != click.core.ParameterSource.DEFAULT
        predict_layout(layout, model if given else None, as_json, profile)
        return
    import genz
    from workloads import Precision

    precision = Precision.parse(precision).with_kv_cache(kv_cache_dtype)
    p = genz.predict(model, hardware, batch=batch, prompt=prompt, output=output, precision=precision, tp=tp, pp=pp,
                     ep=ep, dp=dp, cuda_graphs=cuda_graphs, runtime=runtime, profile=profile,
                     allow_long_context=allow_long_context)
    hint = ""
    if not p.fits:
        from genz.sizing import fit_hint

        hint = fit_hint(model, hardware, batch=batch, prompt=prompt, output=output, precision=precision.name, tp=tp,
                        pp=pp, ep=ep)
    if as_json:
        echo_json(p.to_dict() | ({"fit_hint": hint} if hint else {}))
        return
    if not p.fits:  # no latency for a deployment that cannot run: what would fit instead
        click.echo(f"{p.model} {p.precision} on {p.hardware} (tp {p.tp} pp {p.pp} ep {p.ep}, batch {p.batch}, "
                   f"{p.prompt} in / {p.output} out): {p.fit_message()}")
        click.echo(f"  weights {p.memory['weights_bytes'] / 1e9:.1f} GB, KV cache {p.memory['kv_cache_bytes'] / 1e9:.1f} "
                   f"GB, activations {p.memory['activation_bytes'] / 1e9:.1f} GB per device")
        click.echo(f"  {hint}")
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{p.model} on {p.hardware} ({p.precision}, batch {p.batch}, {p.prompt} in / {p.output} out, "
                    f"tp {p.tp} pp {p.pp} ep {p.ep}, {p.execution})")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    rows = [
        ("time to first token", _fmt_time(p.ttft_s)),
        ("time per output token", _fmt_time(p.tpot_s)),
        ("end-to-end latency", _fmt_time(p.e2e_s)),
        ("throughput (generated)", f"{p.throughput_tok_s:,.1f} tok/s"),
        ("decode throughput", f"{p.decode_tok_s:,.1f} tok/s"),
        ("memory per device", p.fit_message()),
        ("  weights / KV cache / activations",
         f"{p.memory['weights_bytes'] / 1e9:.2f} / {p.memory['kv_cache_bytes'] / 1e9:.2f} / "
         f"{p.memory['activation_bytes'] / 1e9:.2f} GB"),
        ("engine CPU per decode step", f"{p.breakdown['decode'].get('cpu_s', 0.0) * 1e3:.3f} ms not hidden by the GPU"),
        ("energy per output token", f"{p.energy_per_token_j:.3f} J"),
        ("mean power per device", f"{p.power_w:.0f} W"),
    ]
    for phase in ("prefill", "decode"):
        b = p.breakdown[phase]
        total = sum(b["by_class_s"].values()) or 1.0
        top = sorted(b["by_class_s"].items(), key=lambda kv: -kv[1])[:4]
        rows.append((f"{phase} time by operator", ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in top)))
        bt = sum(b["by_bound_s"].values()) or 1.0
        rows.append((f"{phase} time by bound",
                     ", ".join(f"{k} {100 * v / bt:.0f}%" for k, v in b["by_bound_s"].items() if v > 0)))
    for k, v in rows:
        t.add_row(k, v)
    Console().print(t)
    click.echo(p.basis)


@click.command(name="list")
@click.argument("what", type=click.Choice(["models", "hardware", "runtimes", "precisions"]))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def list_cmd(what, as_json):
    """List shipped models, hardware, runtimes or precisions."""
    if what == "models":
        from workloads import list_models, load_model

        items = [{"name": n, "params": load_model(n).params(), "source": load_model(n).source} for n in list_models()]
    elif what == "hardware":
        items = _hardware_rows()
        if not as_json:
            _print_hardware(items)
            return
    elif what == "runtimes":
        from genz.runtime import list_runtimes, load_runtime

        items = [{"name": n, "description": load_runtime(n).description} for n in list_runtimes()]
    else:
        from workloads import Precision, precision_names
        from workloads.precision import DEPLOYMENT_EXAMPLES

        def info(name: str, desc: str = "") -> dict:
            p = Precision.parse(name)
            return {"name": p.name, "weight_bits": p.weight_bits, "act_bits": p.act_bits, "kv_bits": p.kv_bits,
                    "kv_dtype": p.kv_dtype, "compute_dtype": p.compute_dtype, "description": desc}

        examples = dict(DEPLOYMENT_EXAMPLES)
        items = [info(n, examples.get(n, "")) for n in precision_names()]
        items += [info(n, d) for n, d in DEPLOYMENT_EXAMPLES if n not in precision_names()]
        items.append({"name": "w<bits>a<bits>[kv<bits>][+kv<dtype>]",
                      "description": "any mix, e.g. w4a8kv8, w8a16+kvfp8 (KV dtypes: fp8, fp8_e4m3, fp8_e5m2, int8, "
                                     "int4, bf16, fp16)"})
    if as_json:
        echo_json(items)
        return
    for it in items:
        if "weight_bits" in it:
            click.echo(f"{it['name']:14s} weights {it['weight_bits']:g} bit, activations {it['act_bits']:g} bit "
                       f"({it['compute_dtype']}), KV cache {it['kv_bits']:g} bit ({it['kv_dtype']})"
                       + (f"  {it['description']}" if it["description"] else ""))
            continue
        extra = f"  {it['params'] / 1e9:.2f}B params" if "params" in it else ""
        desc = f"  {it['description']}" if it.get("description") else ""
        click.echo(f"{it['name']}{extra}{desc}")


def _hardware_rows() -> list[dict]:
    """One row per device (aliases folded in): memory, bandwidth, dense peaks, profile basis, sources."""
    from genz.predict import device_basis
    from hwmodels.registry import all_hardware_names, load_device

    rows, seen = [], {}
    for n in all_hardware_names():
        dev = load_device(n)
        if dev.name in seen:
            if n != dev.name:
                seen[dev.name]["aliases"].append(n)
            continue
        spec = getattr(dev, "spec", None)
        prof = getattr(dev, "profile", None)
        row = {"name": dev.name, "aliases": [n] if n != dev.name else [], "kind": getattr(spec, "kind", "device"),
               "architecture": getattr(spec, "architecture", ""), "memory_bytes": dev.memory_bytes,
               "memory_bandwidth": getattr(spec, "memory_bandwidth", None),
               "peak_flops": dict(getattr(spec, "peak_flops", {}) or {}), **device_basis(dev),
               "profile_source": getattr(prof, "source", ""),
               "profile_sources": dict(getattr(prof, "sources", {}) or {}),
               "spec_sources": dict(getattr(spec, "sources", {}) or {})}
        seen[dev.name] = row
        rows.append(row)
    return rows


def _print_hardware(rows: list[dict]) -> None:
    head = f"{'name':18s} {'memory':>7s} {'bandwidth':>10s}  {'basis':11s} {'expected error':24s} dense peak TFLOP/s; aliases"
    click.echo(head)
    for r in sorted(rows, key=lambda r: (r["kind"] != "gpu", r["name"])):
        peaks = " ".join(f"{d}:{v / 1e12:,.0f}" for d, v in r["peak_flops"].items() if d not in ("fp32", "tf32"))
        bw = f"{r['memory_bandwidth'] / 1e12:.2f} TB/s" if r["memory_bandwidth"] else ""
        err = " ".join(f"{q} {100 * r['expected_error'][q]:.0f}%" for q in ("tpot", "ttft", "energy")
                       if q in r["expected_error"])
        also = f"; {', '.join(r['aliases'])}" if r["aliases"] else ""
        click.echo(f"{r['name']:18s} {r['memory_bytes'] / 1e9:5.0f} GB {bw:>10s}  {r['profile_basis']:11s} "
                   f"{err:24s} {peaks}{also}")


@click.command()
@click.option("--model", "models", default="llama-3-8b", show_default=True, help="Comma-separated model names.")
@click.option("--hardware", default="h200", show_default=True, help="Comma-separated hardware names.")
@click.option("--batch", default="1:256:x2", show_default=True, help="Values: 1,2,4 or ranges 1:256:x2 / 128:1024:128.")
@click.option("--prompt", default="1024", show_default=True)
@click.option("--output", default="128", show_default=True)
@click.option("--precision", default="bf16", show_default=True, help="Comma-separated precisions (fp8,fp8+kvfp8,...).")
@click.option("--kv-cache-dtype", default="auto", show_default=True, help="KV-cache dtype as engines name it: auto (the precision's own), fp8, fp8_e4m3, fp8_e5m2, int8, bf16, fp16. Applies to every precision.")
@click.option("--tp", default="1", show_default=True)
@click.option("--pp", default="1", show_default=True)
@click.option("--ep", default="1", show_default=True)
@click.option("--cuda-graphs/--eager", default=True, show_default=True)
@click.option("--runtime", default="vllm", show_default=True)
@click.option("--profile", default="auto", show_default=True)
@click.option("--out", "out", required=True, help="Results file: .csv or .parquet.")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists (and discard a partial run of another sweep).")
@click.option("--max-configs", default=10_000_000, show_default=True, type=int, callback=_positive("max-configs"),
              help="Refuse grids larger than this before any work starts.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary instead of text.")
def sweep(models, hardware, batch, prompt, output, precision, kv_cache_dtype, tp, pp, ep, cuda_graphs, runtime, profile,
          out, force,
          max_configs, as_json):
    """Evaluate a grid of configurations into a CSV or Parquet file (one vectorized pass per split).

    Groups are written as they finish; a sweep stopped half-way resumes when run again with the same
    flags (its finished groups are kept in OUT.partial/), and OUT appears only when complete.

    \b
    Example:
      genz sweep --model llama-3-8b,llama-3-70b --hardware h100,h200 --batch 1:256:x2 \\
                 --prompt 512,2048 --tp 1,2,4,8 --out sweep.csv
    """
    import time

    from genz.sweep import iter_sweep, sweep_groups
    from interfaces.cli.sweep_output import SweepOutput
    from interfaces.cli.values import parse_values
    from workloads import Precision, load_model

    if not (out.endswith(".csv") or out.endswith(".parquet")):
        raise BadInput(f"--out: must end in .csv or .parquet, got {out}")
    path = check_writable(out, force)
    axes = {k: parse_values(v, f"--{k}") for k, v in
            (("batch", batch), ("prompt", prompt), ("output", output), ("tp", tp), ("pp", pp), ("ep", ep))}
    for k, vals in axes.items():
        if any(not isinstance(v, int) or v < 1 for v in vals):
            raise BadInput(f"--{k}: values must be integers >= 1, got {vals[:8]}")
    names = {"models": parse_values(models, "--model"), "hardware": parse_values(hardware, "--hardware"),
             "precision": [Precision.parse(str(p)).with_kv_cache(kv_cache_dtype).name
                           for p in parse_values(precision, "--precision")]}
    for m in names["models"]:
        load_model(str(m))  # unknown names are bad input before any work
    for pr in names["precision"]:
        Precision.parse(str(pr))
    kwargs = dict(precision=names["precision"], cuda_graphs=cuda_graphs, runtime=runtime, profile=profile,
                  max_configs=max_configs, **axes)
    order = sweep_groups(names["models"], names["hardware"], precision=names["precision"], tp=axes["tp"],
                         pp=axes["pp"], ep=axes["ep"])
    inputs = {"models": names["models"], "hardware": names["hardware"], **{k: v for k, v in kwargs.items()}}
    writer = SweepOutput(path, json.loads(json.dumps(inputs)))
    t0 = time.perf_counter()
    iter_sweep(names["models"], names["hardware"], **kwargs)  # sizes, values and names, before any work
    done = writer.start(restart=force)
    if done and not as_json:
        click.echo(f"resuming {writer.folder}: {len(done)} of {len(order)} groups already done", err=True)
    groups = iter_sweep(names["models"], names["hardware"], skip=done, **kwargs)
    with progress_bar(len(order), "sweep", enabled=not as_json) as bar:
        task = bar.add_task("sweeping (groups)", total=len(order), completed=len(done))
        for g in groups:
            if g.frame is None:
                writer.skip(g.key, g.reason)
            else:
                writer.add(g.key, g.frame)
            bar.advance(task)
    rows = writer.finish([tuple(json.loads(json.dumps(k))) for k in order])
    elapsed = time.perf_counter() - t0
    summary = {"out": str(path) if rows else None, "configurations": rows, "seconds": elapsed,
               "configs_per_s": rows / elapsed if elapsed else None,
               "skipped": [dict(zip(("model", "hardware", "precision", "tp", "pp", "ep"), s["key"], strict=True))
                           | {"reason": s["reason"]} for s in writer.skipped]}
    if as_json:
        echo_json(summary)
    else:
        if rows:
            click.echo(f"wrote {rows:,} configurations to {path} in {elapsed:.2f} s")
        for s in writer.skipped:
            click.echo("skipped " + " ".join(map(str, s["key"])) + f": {s['reason']}", err=True)
    if not rows:
        raise click.exceptions.Exit(1) if as_json else click.ClickException(
            "no configuration could be evaluated (every group was skipped); nothing written")


def register(main: click.Group) -> None:
    main.add_command(predict)
    main.add_command(list_cmd)
    main.add_command(sweep)
