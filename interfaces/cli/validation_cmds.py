"""``genz calibrate`` and ``genz validate``: fit a GPU profile to a measured dataset, and check it."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import click

from interfaces.cli.common import BadInput, check_writable, echo_json


def _as_bad_input(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except ValueError as exc:
        raise BadInput(str(exc)) from None


@click.command()
@click.option("--data", "data", default=None,
              help="Dataset directory (CSV files and env.json) or a shipped dataset name (required unless --papers).")
@click.option("--hardware", default="h200", show_default=True, help="The GPU the dataset was measured on.")
@click.option("--out", "out", required=True, help="Where to write the profile JSON.")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@click.option("--overhead-models", default="llama-3-8b", show_default=True,
              help="Comma-separated e2e.csv models whose rows fit the CUDA-graph gap and the eager host time "
                   "(the other models' rows stay unseen); empty to fit kernels only.")
def calibrate(data, hardware, out, force, overhead_models):
    """Fit an efficiency profile to the kernel files of a dataset (and two software overheads to the
    e2e rows of --overhead-models).

    \b
    Examples:
      genz calibrate --data validation/data/h200-2026-11-28 --hardware h200 --out h200.json
      genz calibrate --data my-run/ --hardware h100 --out ~/genz-profiles/h100-sxm.json --overhead-models ""
      export GENZ_PROFILE_PATH=~/genz-profiles     # genz predict --hardware h100 now uses it
    """
    from validation.calibrate import calibrate as fit

    path = check_writable(out, force)
    models = tuple(m.strip() for m in overhead_models.split(",") if m.strip())
    prof = _as_bad_input(fit, data, hardware, overhead_models=models)
    from workloads.files import atomic_write_text

    atomic_write_text(path, prof.to_json() + "\n")
    fit_info = prof.extra.get("kernel_fit", {}).get("time_residuals", {})
    click.echo(f"wrote {path}: " + ", ".join(f"{f} MAPE {v['mape_pct']:.1f} % (n={v['n']})" for f, v in fit_info.items()))
    for key, v in prof.extra.get("overhead_fit", {}).items():
        click.echo(f"  {key} = {v['value']:.4g} from {v['rows']} {v['timing']} rows of {', '.join(v['models'])}")
    if prof.expected_error:
        click.echo("  expected error (p90 of this dataset's rows): " + ", ".join(
            f"{q} {100 * v:.1f} %" for q, v in prof.expected_error.items()))
    from hwmodels.spec import load_gpu

    name = load_gpu(hardware).name
    click.echo(f"To make it {name}'s default profile: save it as {name}.json in a directory listed in "
               "GENZ_PROFILE_PATH (genz then reports basis: measured for it, and GPUs transferred from it follow).")


@click.command()
@click.option("--data", "data", default=None,
              help="Dataset directory (CSV files and env.json) or a shipped dataset name (required unless --papers).")
@click.option("--profile", default=None, help="Profile JSON, 'datasheet', or (default) the shipped calibration.")
@click.option("--hardware", default=None, help="GPU name (default: the device named in env.json).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (groups, goals, rejected rows, noise).")
@click.option("--html", "html", default=None, help="Also write a self-contained Plotly page to this file.")
@click.option("--force", is_flag=True, help="Overwrite --html if it exists.")
@click.option("--papers", is_flag=True, help="Check the published paper figures (FlightLLM, LUT Tensor Core); with --data, both.")
def validate(data, profile, hardware, as_json, html, force, papers):
    """Predict every row of a measured dataset and print the errors by file, model, phase, timing, dtype.

    \b
    Examples:
      genz validate --data validation/data/h200-2026-11-28
      genz validate --data my-run/ --profile h100.json --json
      genz validate --data h200-2026-11-28 --html report.html
      genz validate --papers --json
    """
    from validation.report import validate as run

    if data is None and not papers:
        raise BadInput("--data: give a dataset directory (or a shipped dataset name), or --papers")
    if data is None:
        if html:
            raise BadInput("--html: needs --data (the page draws a measured dataset)")
        out = _papers(as_json)
        if as_json:
            echo_json(out)
        else:
            click.echo(out)
        return
    html_path = check_writable(html, force, "--html") if html else None
    report = _as_bad_input(run, data, profile, hardware=hardware)
    papers_out = _papers(as_json) if papers else None
    if html_path:
        report.to_html(html_path)
    if as_json:
        obj = report.to_json()
        if papers_out is not None:
            obj["papers"] = papers_out
        echo_json(obj)
        return
    click.echo(report.to_text())
    if papers_out is not None:
        click.echo("")
        click.echo(papers_out)
    if html_path:
        click.echo(f"wrote {Path(html_path)}")


def _papers(as_json: bool):
    """Hook for the published-figures check: ``validation.papers.figures_report(json=...)`` when that
    module is installed (it belongs to another part of the project). JSON text comes back parsed."""
    if importlib.util.find_spec("validation.papers") is None:
        raise BadInput("--papers: validation.papers is not available in this installation")
    from validation import papers

    out = _as_bad_input(papers.figures_report, json=as_json)
    if as_json and isinstance(out, str):
        try:
            return json.loads(out)
        except json.JSONDecodeError:
            return out
    return out if isinstance(out, str) else str(out)


def register(main: click.Group) -> None:
    """Add ``calibrate`` and ``validate`` to the ``genz`` group."""
    main.add_command(calibrate)
    main.add_command(validate)
