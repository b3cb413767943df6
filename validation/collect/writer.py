"""Writing a dataset: CSV files in the column order of ``validation.dataset.SCHEMAS``, ``env.json`` and
a README.md saying how the data was produced."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path

from validation.dataset import ENV_FILE, FILES, SCHEMAS


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


class TableWriter:
    """Appends rows to ``<dir>/<table>.csv``, flushing each row, so an interrupted run keeps what it measured."""

    def __init__(self, directory: Path, table: str, append: bool = False):
        self.path = directory / FILES[table]
        self.columns = [c.name for c in SCHEMAS[table]]
        self.rows = 0
        exists = self.path.is_file() and self.path.stat().st_size > 0
        if exists and append:
            with self.path.open(newline="", encoding="utf-8") as fh:
                header = next(csv.reader(fh), [])
            if header != self.columns:
                raise ValueError(f"collect: cannot append to {self.path}: its columns {header} differ from {self.columns}")
        elif exists:
            raise ValueError(f"collect: {self.path} exists; use --append to add a run or choose another --out")
        self._fh = self.path.open("a" if exists else "w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._fh, lineterminator="\n")
        if not exists:
            self._csv.writerow(self.columns)

    def write(self, row: dict) -> None:
        unknown = set(row) - set(self.columns)
        if unknown:
            raise ValueError(f"collect: {self.path.name} has no column(s) {', '.join(sorted(unknown))}")
        self._csv.writerow([_cell(row.get(c)) for c in self.columns])
        self._fh.flush()
        self.rows += 1

    def write_all(self, rows: Iterable[dict]) -> int:
        for row in rows:
            self.write(row)
        return self.rows

    def close(self) -> None:
        self._fh.close()


def write_env(directory: Path, env: dict) -> Path:
    path = directory / ENV_FILE
    path.write_text(json.dumps(env, indent=1) + "\n", encoding="utf-8")
    return path


def write_readme(directory: Path, env: dict, counts: dict[str, int], skipped: list[str]) -> Path:
    """README.md of a collected dataset: command, dates, versions, device, what was measured and skipped."""
    dev = env.get("device", {})
    runs = env.get("runs", [])
    lines = [
        f"# Measured with `python -m validation.collect` on {dev.get('name', 'unknown device')}",
        "",
        "Produced by the project's collector (`validation/collect/`); the schema and the method are those of",
        "`validation/data/h200-2026-11-28/README.md` (CUDA-event medians, CUDA graphs for kernels and decode",
        "steps, eager prefill, operands rotated over more than 4 x L2, NVML energy where measured).",
        "",
        "## Runs",
    ]
    for r in runs:
        lines.append(f"- `{r.get('run')}`: {r.get('date')} ({r.get('mode')} mode): `{r.get('command')}`")
    lines += ["", "## Machine and software", f"- Device: {dev.get('name')}"]
    if dev.get("sm_count"):
        lines[-1] += (f", {dev.get('sm_count')} SMs, L2 {dev.get('l2_bytes')} bytes, {dev.get('total_mem_bytes')} "
                      f"bytes of memory, compute capability {dev.get('cc')}.")
    lines += [
        f"- PyTorch {env.get('torch')}, CUDA {env.get('cuda')}, Python {env.get('python', '').split(' ')[0]}.",
        f"- Energy: {env.get('energy_note')}.",
    ]
    if env.get("dry_run"):
        lines += [
            "",
            "**Dry run**: tiny shapes on the CPU, host-clock timing, no CUDA graphs, no NVML. These rows test",
            "the pipeline; they are not measurements of any GPU. Model names end in `-tiny`: shrunk",
            "versions of the presets (hidden 64, 2 layers), not the presets themselves.",
        ]
    lines += ["", "## Files", ""]
    lines += [f"- `{FILES[t]}`: {n} rows" for t, n in counts.items()]
    lines += [
        "",
        "Columns as in h200-2026-11-28. In `e2e.csv`, `params` counts the weights of every GEMM and embedding",
        "(norm gains left out, as in h200-2026-11-28) and `routing` is empty for dense models, `router` where MoE",
        "tokens went where the router sent them, `fixed-uniform` where a decode graph fixed one uniform random",
        "top-k assignment at capture. Attention `bytes` = Q + K + V read once + output written once.",
    ]
    if skipped:
        lines += ["", "## Points not measured", ""] + [f"- {s}" for s in skipped]
    path = directory / "README.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
