"""Reader of measured datasets: a directory of CSV files plus ``env.json``.

The schema is the one described in ``validation/data/h200-2026-11-28/README.md``: one file per kind of
measurement (``membw.csv``, ``gemm.csv``, ``attention.csv``, ``e2e.csv``, ``hf.csv``), any subset of them,
and ``env.json`` naming the device. Times are in milliseconds in the files (``time_ms``), energies in
joules, powers in watts, sizes in bytes.

Loading never drops a row silently: every row that cannot be used (a missing or non-numeric value,
an unknown dtype, a set ``error`` cell...) is kept out of the tables and listed in
:attr:`MeasuredDataset.rejected` as a :class:`RejectedRow`.

>>> ds = load_dataset("h200-2026-11-28")
>>> ds.device_name, ds.runs, len(ds.gemm)
('NVIDIA H200', ['run1', 'run2'], 478)
>>> nf = noise_floor(ds.attention, NOISE_KEYS["attention"])
>>> round(nf.median * 100, 1)
0.9
"""

from __future__ import annotations

import csv
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).parent / "data"
"""Where the datasets shipped with the project live (one directory each)."""

DTYPES = ("bf16", "fp16", "tf32", "fp8", "int8")
PHASES = ("prefill", "decode")
TIMINGS = ("cudagraph", "eager")
MEMBW_OPS = ("copy", "read_sum", "write_fill")
ENV_FILE = "env.json"
_MISSING = frozenset({"", "nan", "na", "n/a", "null", "none"})


@dataclass(frozen=True)
class Column:
    """One column of a measurement file.

    ``kind`` is ``text``, ``int``, ``float`` or ``bool``. ``required``: the header must name it.
    ``nullable``: empty cells are allowed. ``minimum``: smallest allowed value, ``strict`` makes it
    exclusive. ``choices``: the allowed text values.
    """

    name: str
    kind: str = "float"
    required: bool = True
    nullable: bool = False
    minimum: float | None = None
    strict: bool = False
    choices: tuple[str, ...] | None = None


def _pos(name: str, kind: str = "int") -> Column:
    return Column(name, kind, minimum=0, strict=True)


def _opt(name: str, kind: str = "float", minimum: float | None = 0) -> Column:
    return Column(name, kind, required=False, nullable=True, minimum=minimum)


_RUN = Column("run", "text")
_TIME = (_pos("time_ms", "float"), Column("time_ms_min", "float", required=False, nullable=True, minimum=0, strict=True),
         Column("time_ms_max", "float", required=False, nullable=True, minimum=0, strict=True),
         Column("n_timed", "int", minimum=1))
_TIMING = Column("timing", "text", choices=TIMINGS)
_ENERGY = (_opt("energy_j"), _opt("power_w"))
_ERROR = Column("error", "text", required=False, nullable=True)

SCHEMAS: dict[str, tuple[Column, ...]] = {
    "membw": (
        _RUN, Column("op", "text", choices=MEMBW_OPS), _pos("bytes_moved"), _pos("size_bytes"), *_TIME,
        _pos("gbps", "float"), _TIMING, *_ENERGY,
    ),
    "gemm": (
        _RUN, Column("dtype", "text", choices=DTYPES), _pos("m"), _pos("n"), _pos("k"), _pos("flops", "float"),
        _pos("bytes", "float"), *_TIME, _opt("tflops"), _opt("gbps"), _TIMING, *_ENERGY, _ERROR,
    ),
    "attention": (
        _RUN, Column("phase", "text", choices=PHASES), _pos("batch"), _pos("heads"), _pos("kv_heads"),
        _pos("head_dim"), _pos("q_len"), _pos("kv_len"), Column("causal", "bool"), _pos("flops", "float"),
        _pos("bytes", "float"), *_TIME, _TIMING, _opt("backend", "text", None), *_ENERGY, _ERROR,
    ),
    "e2e": (
        _RUN, Column("model", "text"), Column("phase", "text", choices=PHASES), _pos("batch"),
        Column("prompt_len", "int", minimum=0), Column("ctx_len", "int", minimum=0), *_TIME,
        _pos("tokens_per_s", "float"), _TIMING, _pos("params"), _opt("routing", "text", None), *_ENERGY,
    ),
    "hf": (
        _RUN, Column("model", "text"), Column("phase", "text", choices=PHASES), _pos("batch"),
        Column("prompt_len", "int", minimum=0), Column("ctx_len", "int", nullable=True, minimum=0), *_TIME,
        _pos("tokens_per_s", "float"), _TIMING, _opt("impl", "text", None), _ERROR,
    ),
}
"""Columns of each file, in the order the collector writes them (the order of the shipped files)."""

FILES: dict[str, str] = {name: f"{name}.csv" for name in SCHEMAS}
"""File name of each table."""

NOISE_KEYS: dict[str, tuple[str, ...]] = {
    "membw": ("op", "size_bytes", "timing"),
    "gemm": ("dtype", "m", "n", "k", "timing"),
    "attention": ("phase", "batch", "heads", "kv_heads", "head_dim", "q_len", "kv_len", "causal", "timing"),
    "e2e": ("model", "phase", "batch", "prompt_len", "ctx_len", "timing"),
    "hf": ("model", "phase", "batch", "prompt_len", "ctx_len", "timing"),
}
"""Columns that identify one measured point of each table (what :func:`noise_floor` matches on)."""


def required_columns(table: str) -> tuple[str, ...]:
    """Names of the columns a file of ``table`` must have."""
    if table not in SCHEMAS:
        raise ValueError(f"table: unknown table {table!r}; known: {', '.join(SCHEMAS)}")
    return tuple(c.name for c in SCHEMAS[table] if c.required)


@dataclass(frozen=True)
class RejectedRow:
    """A row kept out of its table, and why.

    ``row_number`` is the line of the file the row starts on, counting the header as line 1 (the row
    number a spreadsheet shows). ``column`` is the first offending column ("" when the whole row is
    malformed); ``reason`` says what was wrong and mentions further offending columns.
    """

    file: str
    row_number: int
    column: str
    reason: str

    def __str__(self) -> str:
        where = f", column {self.column}" if self.column else ""
        return f"{self.file} row {self.row_number}{where}: {self.reason}"


@dataclass(frozen=True)
class NoiseFloor:
    """Run-to-run relative difference ``|b - a| / a`` over matching rows (fractions, not percent)."""

    median: float
    p90: float
    pairs: int


@dataclass
class MeasuredDataset:
    """A loaded dataset: one DataFrame per file present (``None`` where the file is absent).

    Each DataFrame holds the usable rows with typed columns; its index is the row's line number in the
    file (see :class:`RejectedRow`). Columns the schema does not know are dropped.
    """

    path: Path
    env: dict = field(default_factory=dict)
    membw: pd.DataFrame | None = None
    gemm: pd.DataFrame | None = None
    attention: pd.DataFrame | None = None
    e2e: pd.DataFrame | None = None
    hf: pd.DataFrame | None = None
    rejected: list[RejectedRow] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables present, by name (``gemm``, ``e2e``...)."""
        frames = {name: getattr(self, name) for name in SCHEMAS}
        return {name: df for name, df in frames.items() if df is not None}

    @property
    def device_name(self) -> str | None:
        """The GPU as its driver names it (``env.json`` ``device.name``); ``None`` if not recorded."""
        device = self.env.get("device")
        name = device.get("name") if isinstance(device, dict) else None
        return str(name) if name else None

    @property
    def runs(self) -> list[str]:
        """Labels of the runs (column ``run``) found in any table, sorted."""
        labels: set[str] = set()
        for df in self.tables.values():
            labels.update(df["run"].unique())
        return sorted(labels)

    def table(self, name: str) -> pd.DataFrame:
        """The table ``name``; ``ValueError`` naming the tables present if it is absent."""
        if name not in SCHEMAS:
            raise ValueError(f"table: unknown table {name!r}; known: {', '.join(SCHEMAS)}")
        df = getattr(self, name)
        if df is None:
            raise ValueError(f"table: {self.path} has no {FILES[name]}; present: {', '.join(self.tables) or 'none'}")
        return df

    def summary(self) -> str:
        """Human-readable account: rows kept per file, rejected rows with reasons, ignored files."""
        lines = [f"dataset {self.path} (device: {self.device_name or 'unknown'}, runs: {', '.join(self.runs)})"]
        for name, df in self.tables.items():
            n_rej = sum(r.file == FILES[name] for r in self.rejected)
            lines.append(f"  {FILES[name]}: {len(df)} rows kept, {n_rej} rejected")
        lines += [f"  rejected: {r}" for r in self.rejected]
        lines += [f"  ignored file: {f}" for f in self.ignored_files]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------- loading
def shipped_datasets() -> list[str]:
    """Names of the datasets shipped under ``validation/data``."""
    if not DATA_DIR.is_dir():
        return []
    return sorted(p.name for p in DATA_DIR.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def _resolve(path: str | Path) -> Path:
    p = Path(path)
    if p.is_dir():
        return p
    if not p.exists() and (DATA_DIR / str(path)).is_dir():
        return DATA_DIR / str(path)
    if p.exists():
        raise ValueError(f"dataset: {p} is not a directory (give the directory that holds {', '.join(FILES.values())})")
    raise ValueError(f"dataset: directory {p} does not exist; shipped datasets: {', '.join(shipped_datasets()) or 'none'}")


def load_dataset(path: str | Path) -> MeasuredDataset:
    """Load the dataset in directory ``path`` (or a shipped dataset by name, e.g. ``h200-2026-11-28``).

    Raises ``ValueError`` when the directory holds none of the known files, when a file lacks a
    required column (naming the file and the columns), or when a file cannot be parsed as CSV/JSON.
    """
    root = _resolve(path)
    present = {name: root / fname for name, fname in FILES.items() if (root / fname).is_file()}
    if not present:
        raise ValueError(
            f"dataset: {root} holds none of the known files; expected any of: "
            f"{', '.join(FILES.values())} (and {ENV_FILE})"
        )
    ds = MeasuredDataset(path=root, env=_read_env(root / ENV_FILE))
    known = set(FILES.values()) | {ENV_FILE, "README.md"}
    ds.ignored_files = sorted(p.name for p in root.iterdir() if p.is_file() and p.name not in known)
    for name, file_path in present.items():
        df, rejected = read_table(file_path, name)
        setattr(ds, name, df)
        ds.rejected.extend(rejected)
    for r in ds.rejected:
        (log.info if r.column == "error" else log.warning)("rejected %s", r)
    return ds


def _read_env(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        env = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"dataset: {path} is not valid JSON ({exc})") from None
    if not isinstance(env, dict):
        raise ValueError(f"dataset: {path} must hold a JSON object, got {type(env).__name__}")
    return env


def _read_records(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (line number, cells) of each non-blank record."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            records = []
            last_line = reader.line_num
            for cells in reader:
                start, last_line = last_line + 1, reader.line_num
                if any(c.strip() for c in cells):
                    records.append((start, cells))
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ValueError(f"dataset: {path.name} is not a readable CSV file ({exc})") from None
    if not header or not any(h.strip() for h in header):
        raise ValueError(f"dataset: {path.name} is empty; it needs a header with columns {', '.join(required_columns(path.stem))}")
    return [h.strip() for h in header], records


def _parse(cell: str, col: Column) -> tuple[object, str | None]:
    """(value, None) or (None, reason). Missing cells come back as ``None``."""
    text = cell.strip()
    if text.lower() in _MISSING:
        return None, (None if col.nullable else "missing value")
    if col.kind == "text":
        if col.choices and text not in col.choices:
            return None, f"unknown value {text!r}; allowed: {', '.join(col.choices)}"
        return text, None
    if col.kind == "bool":
        low = text.lower()
        if low in ("true", "1", "yes"):
            return True, None
        if low in ("false", "0", "no"):
            return False, None
        return None, f"not a boolean: {text!r} (allowed: True, False)"
    try:
        value: float | int = float(text)
    except ValueError:
        return None, f"not a number: {text!r}"
    if not math.isfinite(value):
        return None, f"not a finite number: {text!r}"
    if col.kind == "int":
        if not float(value).is_integer():
            return None, f"not an integer: {text!r}"
        value = int(text) if text.lstrip("+-").isdigit() else int(value)
    if col.minimum is not None and (value <= col.minimum if col.strict else value < col.minimum):
        return None, f"{text} must be {'>' if col.strict else '>='} {col.minimum:g}"
    return value, None


def read_table(path: str | Path, table: str | None = None) -> tuple[pd.DataFrame, list[RejectedRow]]:
    """Read one measurement file; ``table`` defaults to the file's stem (``gemm`` for ``gemm.csv``).

    Returns the usable rows as a typed DataFrame (index = line number) and the rejected rows.
    """
    path = Path(path)
    table = table or path.stem
    if table not in SCHEMAS:
        raise ValueError(f"dataset: {path.name} is not a known file; expected one of {', '.join(FILES.values())}")
    header, records = _read_records(path)
    dupes = sorted({h for h in header if header.count(h) > 1 and h})
    if dupes:
        raise ValueError(f"dataset: {path.name} names column(s) {', '.join(dupes)} more than once")
    schema = [c for c in SCHEMAS[table] if c.name in header]
    missing = [c.name for c in SCHEMAS[table] if c.required and c.name not in header]
    if missing:
        raise ValueError(
            f"dataset: {path.name} lacks required column(s) {', '.join(missing)}; "
            f"required: {', '.join(required_columns(table))}"
        )
    position = {c.name: header.index(c.name) for c in schema}
    rows: list[dict] = []
    index: list[int] = []
    rejected: list[RejectedRow] = []
    for line, cells in records:
        if len(cells) > len(header) and any(c.strip() for c in cells[len(header):]):
            rejected.append(RejectedRow(path.name, line, "", f"{len(cells)} cells but the header has {len(header)}"))
            continue
        cells = cells + [""] * (len(header) - len(cells))
        error = cells[position["error"]].strip() if "error" in position else ""
        if error.lower() not in _MISSING:
            rejected.append(RejectedRow(path.name, line, "error", f"measurement failed: {error}"))
            continue
        row, problems = {}, []
        for col in schema:
            value, problem = _parse(cells[position[col.name]], col)
            if problem:
                problems.append((col.name, problem))
            row[col.name] = value
        if problems:
            (first_col, first), rest = problems[0], problems[1:]
            also = "; also " + "; ".join(f"{c}: {p}" for c, p in rest) if rest else ""
            rejected.append(RejectedRow(path.name, line, first_col, first + also))
            continue
        rows.append(row)
        index.append(line)
    return _frame(rows, index, schema), rejected


def _frame(rows: list[dict], index: list[int], schema: list[Column]) -> pd.DataFrame:
    data = {}
    for col in schema:
        values = [r[col.name] for r in rows]
        if col.kind == "text":
            data[col.name] = pd.Series(values, dtype=object)
        elif col.kind == "bool":
            data[col.name] = pd.Series(values, dtype=bool)
        elif col.kind == "int" and not col.nullable:
            data[col.name] = pd.Series(values, dtype=np.int64)
        else:
            data[col.name] = pd.Series([np.nan if v is None else v for v in values], dtype=np.float64)
    df = pd.DataFrame(data)
    df.index = pd.Index(index, dtype=np.int64, name="row_number")
    return df


# ---------------------------------------------------------------------------------------- noise floor
def noise_floor(
    df: pd.DataFrame, keys: tuple[str, ...] | list[str], value: str = "time_ms", runs: tuple[str, str] = ("run1", "run2"),
) -> NoiseFloor:
    """Run-to-run relative difference of ``value`` between two runs, over rows that match on ``keys``.

    Every row of ``runs[0]`` is paired with every row of ``runs[1]`` that has the same key values (an
    inner join; a point measured twice in one run thus forms several pairs), and each pair contributes
    ``|b - a| / a``. Returns the median and 90th percentile (fractions) and the number of pairs;
    both are NaN when no row matches. This is how the README of ``h200-2026-11-28`` states its noise floor.
    """
    keys = list(keys)
    missing = [c for c in [*keys, value, "run"] if c not in df.columns]
    if missing:
        raise ValueError(f"noise_floor: column(s) {', '.join(missing)} not in the table; columns: {', '.join(df.columns)}")
    first, second = (df[df["run"] == r] for r in runs)
    pairs = first[[*keys, value]].merge(second[[*keys, value]], on=keys, suffixes=("_a", "_b"))
    a, b = pairs[f"{value}_a"].to_numpy(float), pairs[f"{value}_b"].to_numpy(float)
    ok = np.isfinite(a) & np.isfinite(b) & (a != 0)
    rel = np.abs(b[ok] - a[ok]) / np.abs(a[ok])
    if rel.size == 0:
        return NoiseFloor(math.nan, math.nan, 0)
    return NoiseFloor(float(np.median(rel)), float(np.percentile(rel, 90)), int(rel.size))
