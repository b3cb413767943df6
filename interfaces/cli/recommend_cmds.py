"""``genz recommend``: the best deployment of a model under an SLA, in one command."""

from __future__ import annotations

import math

import click

from interfaces.cli.common import check_writable, echo_json, in_range, progress_bar


def _ascii_front(rec, width: int = 56, height: int = 12) -> list[str]:
    """Throughput per GPU (up) against per-user speed (right); '*' the Pareto front, 'o' the others."""
    pts = [d for d in rec.ranked if d.feasible and math.isfinite(d.per_user_tok_s)]
    if not pts:
        return []
    xs, ys = [d.per_user_tok_s for d in pts], [d.tok_s_per_gpu for d in pts]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    grid = [[" "] * width for _ in range(height)]
    front = {id(d) for d in rec.front}
    for d in sorted(pts, key=lambda d: id(d) in front):
        c = 0 if x1 == x0 else round((d.per_user_tok_s - x0) / (x1 - x0) * (width - 1))
        r = 0 if y1 == y0 else round((d.tok_s_per_gpu - y0) / (y1 - y0) * (height - 1))
        grid[height - 1 - r][c] = "*" if id(d) in front else "o"
    lines = [f"{y1:8.0f} |" + "".join(grid[0])] + [" " * 9 + "|" + "".join(row) for row in grid[1:-1]]
    lines += [f"{y0:8.0f} |" + "".join(grid[-1]), " " * 9 + "+" + "-" * width,
              f"{'':10s}{x0:<8.1f}{'per-user output tok/s (1 / TPOT p50)':^{width - 16}}{x1:>8.1f}",
              "          up: output tok/s per GPU at capacity; * Pareto front, o other feasible deployments"]
    return lines


@click.command()
@click.option("--model", default="llama-3-8b", show_default=True, help="Preset or config.json path.")
@click.option("--gpus", type=int, default=8, show_default=True, callback=in_range("gpus", 1, integer=True),
              help="GPU budget (all replicas together).")
@click.option("--hardware", default="h100,h200", show_default=True, help="GPU kinds to consider, comma-separated.")
@click.option("--precision", "precisions", default="bf16,fp8", show_default=True,
              help="Precisions to consider (those a GPU lacks are skipped with the reason).")
@click.option("--use-case", default="chatbot", show_default=True, help="Prompt/output lengths and default SLOs.")
@click.option("--rate", type=float, required=True, callback=in_range("rate", 0, lo_open=True),
              help="Traffic to serve, requests/s (Poisson).")
@click.option("--ttft", type=float, default=None, callback=in_range("ttft", 0, lo_open=True),
              help="TTFT SLO, s [the use case's].")
@click.option("--tpot", type=float, default=None, callback=in_range("tpot", 0, lo_open=True),
              help="TPOT SLO, s [the use case's].")
@click.option("--requests", type=int, default=150, show_default=True, callback=in_range("requests", 10, integer=True),
              help="Requests per capacity run.")
@click.option("--confirm-requests", type=int, default=600, show_default=True,
              callback=in_range("confirm-requests", 10, integer=True),
              help="Requests of the run confirming the best deployment at --rate.")
@click.option("--top", type=int, default=5, show_default=True, callback=in_range("top", 1, integer=True))
@click.option("--workers", type=int, default=None, help="Processes [one per CPU].")
@click.option("--launch", "launch_path", default="genz-launch.sh", show_default=True,
              help="Where to write the winner's vLLM launch script ('' for none).")
@click.option("--force", is_flag=True, help="Overwrite --launch.")
@click.option("--layout", "layouts", multiple=True, type=click.Path(dir_okay=False),
              help="Also consider an MoE cluster layout (genz predict --layout file): a replica is one unit of its "
                   "prefill and decode pools; repeat for several.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def recommend(model, gpus, hardware, precisions, use_case, rate, ttft, tpot, requests, confirm_requests, top, workers,
              launch_path, force, layouts, as_json):
    """Best deployments of a model on a GPU budget serving a traffic within its SLOs.

    Every hardware x precision x tensor-parallel split is screened analytically (fits, a lone request
    meets the SLO), its capacity per replica under the SLO is found by simulation, replicas are sized
    for --rate, and the best is confirmed by a longer simulation at --rate; ranked by GPUs, then price,
    then tokens per GPU.

    \b
    Examples:
      genz recommend --model llama-3-70b --gpus 16 --hardware h100,h200 --ttft 0.5 --tpot 0.05 --rate 20
      genz recommend --model llama-3-8b --gpus 4 --hardware a100-40gb,l40s --rate 5 --json
      genz recommend --model deepseek-v3 --gpus 256 --rate 100 --layout docs/layouts/deepseek-v3-sglang-96xh100.yaml
    """
    from genz.serving import SLO
    from optimizers.recommend import launch_script
    from optimizers.recommend import recommend as run
    from workloads.files import atomic_write_text
    from workloads.usecases import get_use_case

    out = check_writable(launch_path, force, "--launch") if launch_path else None
    uc = get_use_case(use_case)
    slo = SLO(ttft if ttft is not None else uc.ttft_slo_s, tpot if tpot is not None else uc.tpot_slo_s)
    hws = [h.strip() for h in hardware.split(",") if h.strip()]
    precs = [p.strip() for p in precisions.split(",") if p.strip()]
    with progress_bar(0, "recommend", enabled=not as_json) as bar:
        task = bar.add_task("capacity under the SLO (deployments)", total=None)
        rec = run(model, gpus=gpus, hardware=hws, rate_per_s=rate, use_case=use_case, slo=slo, precisions=precs,
                  requests=requests, confirm_requests=confirm_requests, workers=workers, layouts=layouts,
                  progress=lambda d, t: bar.update(task, completed=d, total=t))
    best = rec.best
    if best is not None and out is not None:
        atomic_write_text(out, launch_script(best, model))
    if as_json:
        echo_json(rec.to_dict() | {"launch": str(out) if best is not None and out is not None else None})
        if best is None:
            raise SystemExit(1)
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(130, Console().width))
    click.echo(f"{model} at {rate:g} req/s of {uc.name} (TTFT <= {slo.ttft_s:g} s, TPOT <= {slo.tpot_s:g} s) on at most "
               f"{gpus} GPUs of {', '.join(hws)}")
    for line in _ascii_front(rec):
        click.echo(line)
    t = Table(title=f"top {top} deployments")
    for col in ("deployment", "GPUs", "req/s per replica", "tok/s/GPU", "user tok/s", "TTFT p99", "TPOT p99", "$/h",
                "why"):
        t.add_column(col, justify="left" if col in ("deployment", "why") else "right")
    for d in [d for d in rec.ranked if d.feasible][:top]:
        t.add_row(d.label, str(d.gpus), f"{d.capacity_rps:.2f}", f"{d.tok_s_per_gpu:,.0f}", f"{d.per_user_tok_s:.1f}",
                  f"{d.ttft_p99_s * 1e3:.0f} ms", f"{d.tpot_p99_s * 1e3:.1f} ms",
                  "unknown" if not math.isfinite(d.price_per_hour_usd) else f"{d.price_per_hour_usd:.2f}", d.why)
    console.print(t)
    rejected = [d for d in rec.ranked if not d.feasible]
    if rejected:
        click.echo(f"{len(rejected)} other deployments cannot serve it, e.g. " +
                   "; ".join(f"{d.hardware} tp{d.tp} {d.precision}: {d.reason[:90]}" for d in rejected[:3]))
    if best is None:
        raise click.ClickException("no deployment serves this traffic within the SLO and the GPU budget")
    c = rec.confirmation
    click.echo(f"recommended: {best.label} ({best.gpus} GPUs); confirmed by a {c['requests']}-request simulation at "
               f"{c['rate_per_s']:g} req/s: SLO attainment {c['slo_attainment']:.1%}, TTFT p99 "
               f"{c['ttft_p99_s'] * 1e3:.0f} ms, TPOT p99 {c['tpot_p99_s'] * 1e3:.1f} ms")
    if out is not None:
        click.echo(f"wrote the {'SGLang' if best.layout else 'vLLM'} launch script to {out}")
