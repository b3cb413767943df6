"""Runs a plan on the device and writes the dataset directory."""

from __future__ import annotations

import datetime as _dt
import json
import platform
import sys
from pathlib import Path

from validation.collect.bench import Bench
from validation.collect.e2e import e2e_rows
from validation.collect.energy import EnergyMeter
from validation.collect.kernels import attention_rows, gemm_rows, membw_rows
from validation.collect.plan import DEFAULT_MODELS, DRY_RUN_MODELS, Plan, dry_run_plan, full_plan, quick_plan
from validation.collect.writer import TableWriter, write_env, write_readme
from validation.dataset import ENV_FILE, FILES

KINDS = ("membw", "gemm", "attention", "e2e")


def make_plan(models: tuple[str, ...] | None = None, quick: bool = False, dry_run: bool = False) -> Plan:
    """The plan for the chosen mode; ``models`` are preset names of ``workloads``."""
    if dry_run:
        return dry_run_plan(models or DRY_RUN_MODELS)
    return (quick_plan if quick else full_plan)(models or DEFAULT_MODELS)


def device_env(bench: Bench, meter: EnergyMeter) -> dict:
    """What the machine reports, in the layout of h200-2026-11-28's env.json."""
    torch = bench.torch
    env: dict = {"torch": torch.__version__, "cuda": torch.version.cuda}
    if bench.is_cuda:
        props = torch.cuda.get_device_properties(bench.device)
        env["device"] = {"name": props.name, "sm_count": props.multi_processor_count,
                         "total_mem_bytes": props.total_memory, "l2_bytes": bench.l2_bytes(),
                         "cc": f"{props.major}.{props.minor}"}
        env["cudnn"] = torch.backends.cudnn.version()
    else:
        env["device"] = {"name": f"cpu ({platform.processor() or platform.machine()}, dry run)", "sm_count": None,
                         "total_mem_bytes": None, "l2_bytes": None, "cc": None}
    env["nvml_start"] = meter.state() or None
    env["python"] = sys.version
    return env


def collect(out: str | Path, models: tuple[str, ...] | None = None, quick: bool = False, dry_run: bool = False,
            run: str = "run1", append: bool = False, kinds: tuple[str, ...] = KINDS, device: str = "cuda",
            command: str = "") -> dict[str, int]:
    """Measure and write a dataset into ``out``; returns rows written per file.

    ``dry_run`` runs tiny shapes on the CPU (no GPU, graphs or NVML) in the same schema.
    """
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise ValueError(f"kinds: unknown {', '.join(bad)}; allowed: {', '.join(KINDS)}")
    if not run or any(c in run for c in ",\n\""):
        raise ValueError(f"run: label {run!r} must be non-empty, without commas or quotes")
    out = Path(out)
    existing = [f for f in [*(FILES[k] for k in kinds), ENV_FILE] if (out / f).is_file()]
    if existing and not append:
        raise ValueError(f"collect: {out} already holds {', '.join(existing)}; use --append to add a run "
                         "(with another --run label) or choose another --out")
    plan = make_plan(models, quick, dry_run)
    bench = Bench("cpu" if dry_run else device, use_graphs=not dry_run)
    index = (bench.device.index or 0) if bench.is_cuda else 0
    meter = EnergyMeter(bench.torch, index, enabled=bench.is_cuda)
    out.mkdir(parents=True, exist_ok=True)
    previous = _previous_env(out) if append else {}
    env = device_env(bench, meter)
    env["idle_power_w"] = meter.idle_power_w()
    env["energy_note"] = meter.note
    env["dry_run"] = dry_run
    started = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    env["runs"] = previous.get("runs", []) + [{"run": run, "date": started, "mode": plan.mode, "command": command}]
    writers = {k: TableWriter(out, k, append=append) for k in kinds}
    skipped: list[str] = []
    producers = {"membw": membw_rows, "gemm": gemm_rows, "attention": attention_rows, "e2e": e2e_rows}
    counts: dict[str, int] = {}
    bench.torch.manual_seed(0)
    try:
        for kind in kinds:
            print(f"collect: {kind} ...", file=sys.stderr)
            counts[kind] = writers[kind].write_all(producers[kind](bench, meter, plan, run, skipped))
    finally:
        for w in writers.values():
            w.close()
        env["nvml_end"] = meter.state() or None
        env["skipped"] = previous.get("skipped", []) + [f"{run}: {s}" for s in skipped]
        meter.close()
        bench.close()
        write_env(out, env)
        write_readme(out, env, _row_counts(out, kinds), env["skipped"])
    return counts


def _previous_env(out: Path) -> dict:
    path = out / ENV_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return {}


def _row_counts(out: Path, kinds: tuple[str, ...]) -> dict[str, int]:
    counts = {}
    for k in kinds:
        path = out / f"{k}.csv"
        if path.is_file():
            with path.open(encoding="utf-8") as fh:
                counts[k] = max(0, sum(1 for line in fh if line.strip()) - 1)
    return counts
