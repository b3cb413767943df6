"""``genz report``, ``genz dashboard`` and ``genz doctor``."""

from __future__ import annotations

import copy
import importlib
import inspect
import platform
import re
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import click

from interfaces.cli.common import BadInput, check_writable, echo_json, progress_bar


def _check_out(out: str, force: bool) -> Path:
    if not out.endswith(".html"):
        raise BadInput(f"--out: must end in .html, got {out}")
    return check_writable(out, force)


def _write(kind: str, load, out: Path, as_json: bool, source: str | None, **options) -> None:
    """Load (a callable returning the payload), build and write, with a progress bar on stderr."""
    from interfaces.reports import build_report, write_html

    with progress_bar(3, "report", enabled=not as_json) as bar:
        task = bar.add_task(f"{kind} report", total=3)
        payload = load()
        bar.update(task, advance=1, description="building figures")
        rep = build_report(kind, payload, **options)
        bar.update(task, advance=1, description="writing page")
        ctx = click.get_current_context()
        shared = bool(ctx.parent and ctx.parent.params.get("shared_plotlyjs"))
        write_html(rep, out, source=source, shared_plotlyjs=shared)
        bar.update(task, advance=1, description="done")
    summary = {"out": str(out), "kind": kind, "title": rep.title, "figures": len(rep.sections),
               "bytes": out.stat().st_size, "notes": rep.notes}
    if as_json:
        echo_json(summary)
        return
    click.echo(f"wrote {out} ({summary['bytes'] / 1e6:.1f} MB, {summary['figures']} figures; opens offline)")
    for n in rep.notes:
        click.echo(f"note: {n}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--shared-plotlyjs", is_flag=True,
              help="Reference one plotly.min.js beside the pages instead of inlining ~4.8 MB in each.")
def report(shared_plotlyjs) -> None:
    """Self-contained HTML report (plotly, opens offline) of a result.

    \b
    Examples:
      genz report predict --model llama-3-70b --hardware h100 --tp 4 --out llama70b.html
      genz predict --json > p.json && genz report predict --in p.json --out p.html
      genz sweep --model llama-3-8b --batch 1:256:x2 --prompt 256,1024,4096 --out s.csv
      genz report sweep --in s.csv --out sweep.html --metric throughput_tok_s
      genz report auto --in results.json --out page.html      # kind read from the file
      genz report --shared-plotlyjs predict --out a.html      # one plotly.min.js for many pages
      genz simulate --json --out-requests req.csv > sim.json
      genz report simulate --in sim.json --requests req.csv --out sim.html

    \b
    Results files: JSON with {"genz_result": KIND, "format_version": 1, ...}
    (interfaces/reports/formats.py defines each KIND), the CSV/Parquet of
    genz sweep, or what genz predict/simulate/validate --json print
    (genz simulate --json: name its --out-requests CSV with --requests).
    """


def _file_command(kind: str, doc: str, extra: list | None = None):
    @click.command(name=kind, help=doc)
    @click.option("--in", "in_path", required=True, help="Results file (.json, .csv or .parquet).")
    @click.option("--out", required=True, help="HTML page to write.")
    @click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
    @click.option("--json", "as_json", is_flag=True, help="Print a JSON summary (path, figures, bytes).")
    def cmd(in_path, out, force, as_json, **options):
        from interfaces.reports import load_results

        path = _check_out(out, force)
        requests = options.pop("requests", None)
        found, payload = load_results(in_path, None if kind == "auto" else kind)
        if found == "simulate":
            _attach_requests(payload, requests)
        elif requests:
            raise BadInput(f"--requests: only for simulation results; {in_path} holds a {found} result")
        _write(found, lambda: payload, path, as_json, in_path, **options)

    for opt in extra or []:
        cmd = opt(cmd)
    return cmd


def _attach_requests(payload: dict, requests: str | None) -> None:
    """The per-request CSV of a simulation, from the file the user named (never a path inside the
    results file, which only prompts a note)."""
    from interfaces.reports.formats import read_table

    if requests:
        payload["requests"] = read_table(requests)
    elif payload.get("requests") is None or payload["requests"].empty:
        named = payload.get("requests_file_named")
        if named:
            click.echo(f"note: the results name a per-request file ({named}); pass --requests {named} to draw the "
                       "per-request figures", err=True)


_REQUESTS_OPT = [click.option("--requests", default=None,
                              help="Per-request CSV of a simulation (its --out-requests file), for the TTFT/TPOT "
                                   "figures of `genz simulate --json` results.")]

_SWEEP_OPTS = [
    click.option("--metric", default="throughput_tok_s", show_default=True,
                 type=click.Choice(["throughput_tok_s", "decode_tok_s", "ttft_s", "tpot_s", "e2e_s",
                                    "energy_per_token_j", "memory_bytes"]), help="Heatmap colour."),
    click.option("--latency", default="tpot_s", show_default=True, type=click.Choice(["tpot_s", "ttft_s", "e2e_s"]),
                 help="Latency axis of the Pareto front."),
]

for _kind, _doc in (
    ("sweep", "Heatmaps over batch x prompt and the throughput-latency Pareto front of a `genz sweep` file.\n\n"
              "\b\nExample:\n  genz report sweep --in sweep.csv --out sweep.html"),
    ("simulate", "TTFT/TPOT distributions against the SLO, utilization and queues of a serving simulation.\n\n"
                 "\b\nExample:\n  genz report simulate --in sim.json --out sim.html"),
    ("placement", "Hop cost per method against the baseline and the expert-to-GPU map of a placement result.\n\n"
                  "\b\nExample:\n  genz report placement --in placement.json --out placement.html"),
    ("search", "Objective over trials, running best, baseline and knob values of a knob search.\n\n"
               "\b\nExample:\n  genz report search --in search.json --out search.html"),
    ("plan", "Capacities per candidate, the deployment, and the confirming simulations of a capacity plan.\n\n"
             "\b\nExample:\n  genz report plan --in plan.json --out plan.html"),
    ("validate", "Predicted-versus-measured scatter and error per group of a validation run.\n\n"
                 "\b\nExample:\n  genz report validate --in validation.json --out validation.html"),
    ("auto", "Any results file: the kind is read from the file.\n\n"
             "\b\nExample:\n  genz report auto --in results.json --out page.html"),
):
    report.add_command(_file_command(_kind, _doc, _SWEEP_OPTS if _kind == "sweep" else
                                     _REQUESTS_OPT if _kind in ("simulate", "auto") else None))


def _predict_command() -> click.Command:
    """``genz report predict``: same flags as ``genz predict`` (copied from it), or ``--in``."""
    from interfaces.cli.predict_cmds import predict as predict_cmd

    @click.command(name="predict")
    @click.option("--in", "in_path", default=None, help="A predict result (`genz predict --json` output) instead of flags.")
    @click.option("--out", required=True, help="HTML page to write.")
    @click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
    @click.option("--json", "as_json", is_flag=True, help="Print a JSON summary (path, figures, bytes).")
    @click.pass_context
    def cmd(ctx, in_path, out, force, as_json, **flags):
        """Roofline with every prefill and decode operator, latency and energy breakdowns and memory
        against capacity, for one configuration (flags as `genz predict`) or a saved prediction.

        \b
        Examples:
          genz report predict --out p.html
          genz report predict --model mixtral-8x7b --hardware h200 --tp 2 --ep 2 --batch 16 --out moe.html
          genz report predict --in p.json --out p.html
        """
        import genz
        from interfaces.reports import load_results

        path = _check_out(out, force)
        profile = flags.get("profile", "auto")
        if in_path:
            given = [f"--{n.replace('_', '-')}" for n in flags
                     if ctx.get_parameter_source(n) != click.core.ParameterSource.DEFAULT and n != "profile"]
            if given:
                raise BadInput(f"--in: give either --in or configuration flags, not both (got {', '.join(given)})")
            _write("predict", lambda: load_results(in_path, "predict")[1], path, as_json, in_path, profile=profile)
            return
        accepted = set(inspect.signature(genz.predict).parameters)
        kwargs = {k: v for k, v in flags.items() if k in accepted}
        _write("predict", lambda: {"prediction": genz.predict(**kwargs).to_dict()}, path, as_json, None,
               profile=profile)

    for p in predict_cmd.params:
        if p.name not in {"as_json"} and p.name not in {q.name for q in cmd.params}:
            cmd.params.append(copy.copy(p))
    return cmd


report.add_command(_predict_command())


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (keep it local).")
@click.option("--port", default=8050, show_default=True, type=click.IntRange(1, 65535), help="TCP port.")
@click.option("--results", "results", multiple=True, help="Results file to offer in the 'Results file' tab (repeatable).")
@click.option("--debug", is_flag=True, help="Dash debug mode (reloads on code changes).")
def dashboard(host, port, results, debug):
    """Interactive what-if in the browser: pick model, hardware, precision, parallelism, workload
    and SLOs; compare two hardware choices; open results files. Needs the `dashboard` extra.

    \b
    Examples:
      genz dashboard                          # then open http://127.0.0.1:8050
      genz dashboard --port 8060 --results sweep.csv --results sim.json
    """
    from interfaces.dashboard import MISSING_DASH, dash_available, run

    if not dash_available():
        raise click.ClickException(MISSING_DASH)
    for r in results:
        if not Path(r).exists():
            raise BadInput(f"--results: file {r} does not exist")
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: listening on {host}, not localhost: anyone who can reach this machine's port {port} "
                   "can use the dashboard and open the --results files", err=True)
    click.echo(f"genz dashboard on http://{host}:{port} (Ctrl+C to stop)", err=True)
    run(host, port, list(results), debug)


# --- doctor -------------------------------------------------------------------------------------

#: (name = distribution, what it is needed for)
OPTIONAL_PARTS = (
    ("pulp", "integer programs (expert placement, capacity plans)"),
    ("highspy", "HiGHS solver (faster MILP)"),
    ("ray", "knob search on a cluster"),
    ("optuna", "knob search samplers (TPE)"),
    ("dash", "genz dashboard"),
    ("pyarrow", "Parquet results files"),
    ("torch", "the CUDA collector (validation/collect)"),
    ("selenium", "browser tests of the dashboard"),
    ("nbclient", "running the notebooks in tests"),
    ("ipykernel", "running the notebooks in tests"),
)
#: Names ``--require`` accepts (lower case).
PART_KEYS = tuple(n for n, _ in OPTIONAL_PARTS) + ("cbc", "highs", "chromium", "chromedriver")


def _dist_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cmd_version(exe: str) -> str:
    """The first dotted version number ``exe --version`` prints ('' if none)."""
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.SubprocessError):
        return ""
    m = re.search(r"\d+(?:\.\d+)+", out.stdout or out.stderr or "")
    return m.group(0) if m else ""


def _check_pulp_solver(*classes: str) -> tuple[bool, str]:
    """Whether PuLP can run one of its solver ``classes`` (first that works wins)."""
    import warnings

    try:
        pulp = importlib.import_module("pulp")
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable"
        return False, f"PuLP not usable: {exc}"
    for name in classes:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                if getattr(pulp, name)(msg=False).available():
                    return True, f"PuLP {name}"
        except Exception:  # noqa: BLE001, S112 - try the next one
            continue
    return False, "PuLP cannot run it"


def _check_torch() -> dict:
    try:
        torch = importlib.import_module("torch")
    except Exception as exc:  # noqa: BLE001
        return {"installed": False, "detail": f"cannot import: {exc}"}
    cuda = bool(torch.cuda.is_available())
    detail = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU-only build"
    if cuda:
        detail += f", device: {torch.cuda.get_device_name(0)}"
    elif torch.version.cuda:
        detail += ", no GPU visible"
    return {"installed": True, "detail": detail, "cuda": cuda}


def doctor_checks(progress=None) -> list[dict]:
    """One dict per optional part: name, installed, version, detail, needed_for."""
    rows = []
    steps = len(OPTIONAL_PARTS) + 4
    done = 0

    def tick():
        nonlocal done
        done += 1
        if progress:
            progress(done, steps)

    for name, need in OPTIONAL_PARTS:
        v = _dist_version(name)
        row = {"name": name, "installed": v is not None, "version": v, "detail": "", "needed_for": need}
        if name == "torch" and v is not None:
            row.update(_check_torch())
        rows.append(row)
        tick()
    for solver, classes, need in (("CBC", ("COIN_CMD", "PULP_CBC_CMD"), "default MILP solver of PuLP"),
                                  ("HiGHS", ("HiGHS", "HiGHS_CMD"), "MILP solver through PuLP")):
        ok, detail = _check_pulp_solver(*classes) if _dist_version("pulp") else (False, "needs pulp")
        rows.append({"name": f"{solver} (solver)", "installed": ok, "version": None, "detail": detail,
                     "needed_for": need})
        tick()
    browser = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)
    rows.append({"name": "chromium", "installed": browser is not None, "version": _cmd_version(browser) if browser else None,
                 "detail": browser or "apt-get install chromium", "needed_for": "browser tests, report screenshots"})
    tick()
    driver = shutil.which("chromedriver")
    rows.append({"name": "chromedriver", "installed": driver is not None,
                 "version": _cmd_version(driver) if driver else None,
                 "detail": driver or "apt-get install chromium-driver", "needed_for": "browser tests (selenium)"})
    tick()
    return rows


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--require", default="", help="Comma-separated names that must be present (exit 1 otherwise), e.g. dash,cbc.")
def doctor(as_json, require):
    """Which optional parts are installed: solvers (CBC via PuLP, HiGHS), Ray, Optuna, Dash,
    PyTorch and CUDA (for the collector), pyarrow (Parquet), Chromium (browser tests).

    \b
    Examples:
      genz doctor
      genz doctor --json
      genz doctor --require dash,chromium     # exit 1 if either is missing
    """
    wanted = [w.strip().lower() for w in require.split(",") if w.strip()]
    unknown = [w for w in wanted if w not in PART_KEYS]
    if unknown:
        raise BadInput(f"--require: unknown part(s) {', '.join(unknown)}; known: {', '.join(sorted(PART_KEYS))}")
    with progress_bar(0, "doctor", enabled=not as_json) as bar:
        task = bar.add_task("checking", total=None)
        rows = doctor_checks(lambda d, t: bar.update(task, completed=d, total=t))
    by_key = {r["name"].split(" ")[0].lower(): r for r in rows}
    missing = [w for w in wanted if not by_key[w]["installed"]]
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "genz_sim": _dist_version("genz-sim"), "parts": rows, "missing_required": missing}
    if as_json:
        echo_json(info)
    else:
        from rich.console import Console
        from rich.table import Table

        t = Table(title=f"genz-sim {info['genz_sim']} on Python {info['python']} ({info['platform']})")
        for col in ("part", "status", "version", "detail", "needed for"):
            t.add_column(col)
        for r in rows:
            t.add_row(r["name"], "[green]ok[/]" if r["installed"] else "[yellow]missing[/]", r["version"] or "",
                      r["detail"], r["needed_for"])
        Console().print(t)
    if missing:
        raise click.ClickException(f"missing required part(s): {', '.join(missing)}")


def register(main: click.Group) -> None:
    main.add_command(report)
    main.add_command(dashboard)
    main.add_command(doctor)
