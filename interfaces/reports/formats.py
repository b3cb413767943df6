"""Results files: what ``genz`` commands write and ``genz report`` / the dashboard read.

Every JSON results file is one object with an envelope::

    {"genz_result": KIND, "format_version": 1, "created": "2026-11-28T12:00:00+00:00", ...}

and the fields of its kind below (SI units: seconds, bytes, FLOP/s, joules, watts, USD). Tabular
parts ("frames") are either a list of row objects or pandas' ``split`` layout
``{"columns": [...], "data": [[...], ...]}``; both are read. Fields not listed are kept and ignored.

``predict``
    ``{"prediction": <genz predict --json object>}``. The bare output of ``genz predict --json``
    (an object with ``ttft_s`` and ``breakdown``) is read as well.
Tables (CSV or Parquet) written by genz are complete or absent: they are written atomically and
carry a completeness marker with their row count, a last line ``# genz: complete, N rows`` in CSV
(read them with ``pandas.read_csv(path, comment="#")``) and the metadata key ``genz_complete`` in
Parquet. ``genz report`` refuses a table without its marker (cut short, or not written by genz).

``sweep``
    The CSV or Parquet file of ``genz sweep`` (one row per configuration: ``model, hardware,
    precision, tp, pp, ep, batch, prompt, output``, then the ``genz.predict.evaluate`` columns such
    as ``ttft_s, tpot_s, e2e_s, throughput_tok_s, memory_bytes, fits, devices``), or JSON
    ``{"rows": frame}``.
``simulate``
    ``{"name", "scenario": {...inputs...}, "slo": {"ttft_s", "tpot_s"} | null,
    "summary": {fields of genz.serving.results.Summary; percentiles as {"mean","p50","p90","p99"}},
    "requests": frame (REQUEST_COLUMNS: id, arrival_s, prompt_tokens, output_tokens, status, ...,
    ttft_s, tpot_s, e2e_s, queueing_s, meets_slo), "utilization": frame (pool, replica,
    window_start_s, window_end_s, busy_fraction, output_tokens), "queue": frame (time_s, arrived,
    done, in_system, waiting, running)}``. :func:`serving_payload` builds it from a ``ServingResult``.
    A CSV of the ``requests`` frame alone is read too (no SLO lines then), and so is the object
    ``genz simulate --json`` prints (with its ``--out-requests`` CSV when that file exists).
``placement``
    ``{"model", "cluster": {"nodes", "gpus_per_node", "gpus", "intra_node_cost",
    "inter_node_cost"}, "layers", "experts", "baseline": METHOD, "methods": {METHOD: {"objective"
    (mean hop cost per token per layer transition), "gpu_of": [[GPU of expert e in MoE layer l]],
    "status", "wall_s", "gap", ...}}}``.
``search``
    ``{"objective": metric name, "direction": "maximize" | "minimize", "space": {param: [values]},
    "trials": [{"number", "params": {...}, "value", "feasible", ...other metrics}],
    "best": {"params", "value"}, "baseline": {"params", "value"}}``
    (``optimizers.search.SearchResult.to_payload()``).

JSON written without the envelope is recognised too: ``genz predict --json``, ``genz simulate
--json``, ``genz validate --json``, and the ``to_payload()`` dicts of a search (``trials`` and ``objective``) or a capacity
plan (``deployment`` and ``totals``).
``plan``
    A capacity plan, ``optimizers.capacity.CapacityPlan.to_payload()``: ``{"objective", "feasible",
    "confirmed", "message", "binding", "demand": [{"use_case", "rate_per_s", "ttft_slo_s",
    "tpot_slo_s", ...}], "totals": {"cost_usd_per_hour", "power_w", "gpus": {hw: n}, "servers",
    "racks", "cost_per_million_output_tokens_usd"}, "deployment": [{"use_case", "candidate",
    "units", "gpus", "rate_share_per_s", "capacity_rps_per_unit", "utilization"}], "confirmation":
    [{"use_case", "candidate", "passed", "slo_attainment", "ttft_p99_s", "tpot_p99_s", ...}],
    "capacities": [{"candidate", "use_case", "capacity_rps_per_gpu", "reason", ...}]}``.
``validate``
    ``{"dataset", "hardware", "profile", "rows": frame with measured_s and predicted_s (and
    measured_j, predicted_j) and any of kind, file, phase, model, dtype, timing, batch, context,
    label}``, optionally ``"goals": [{"name", "value_pct", "limit_pct", "passed", "n"}]``,
    ``"groups": [{"file", "model", "phase", "timing", "dtype", "n", "mape_time_pct", ...}]`` and
    ``"noise_floor": {file: {"median_pct", "p90_pct"}}``; or a CSV/Parquet of rows.
    :func:`validation_payload` builds it from a ``validation.report.ValidationReport``; the object
    ``genz validate --json`` prints (groups and goals, no rows) is read too.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from workloads.errors import MissingDependency

FORMAT_VERSION = 1
KINDS = ("predict", "sweep", "simulate", "placement", "search", "plan", "validate")
TABLE_SUFFIXES = (".csv", ".parquet")


def envelope(kind: str, payload: dict) -> dict:
    """``payload`` with the ``genz_result`` envelope in front."""
    if kind not in KINDS:
        raise ValueError(f"kind: unknown results kind {kind!r}; allowed: {', '.join(KINDS)}")
    return {"genz_result": kind, "format_version": FORMAT_VERSION,
            "created": datetime.now(UTC).isoformat(timespec="seconds"), **payload}


def _clean(obj):
    if isinstance(obj, pd.DataFrame):
        return frame_to_json(obj)
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if obj is pd.NA or obj is pd.NaT:
        return None
    if hasattr(obj, "tolist") and not isinstance(obj, str):
        return _clean(obj.tolist())
    if hasattr(obj, "item") and not isinstance(obj, str):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def frame_to_json(df: pd.DataFrame) -> dict:
    """A frame in pandas' ``split`` layout with NaN as null."""
    return {"columns": [str(c) for c in df.columns],
            "data": [_clean(list(r)) for r in df.itertuples(index=False, name=None)]}


def frame_from_json(obj, field: str = "frame") -> pd.DataFrame:
    """Read a frame written as a list of rows or in ``split`` layout (``None`` -> empty frame)."""
    if obj is None:
        return pd.DataFrame()
    if isinstance(obj, pd.DataFrame):
        return obj
    if isinstance(obj, list):
        return pd.DataFrame.from_records(obj)
    if isinstance(obj, dict) and "columns" in obj and "data" in obj:
        return pd.DataFrame(obj["data"], columns=obj["columns"])
    raise ValueError(f"{field}: expected a list of row objects or {{'columns': [...], 'data': [...]}}")


def write_result(kind: str, payload: dict, path: str | Path) -> Path:
    """Write a JSON results file of ``kind`` (frames inside ``payload`` may be DataFrames)."""
    from workloads.files import atomic_write_text

    p = Path(path)
    atomic_write_text(p, json.dumps(_clean(envelope(kind, payload)), indent=1))
    return p


def serving_payload(result, slo=None, scenario: dict | None = None) -> dict:
    """The ``simulate`` payload of a ``genz.serving`` result (read by attribute: ``summary``
    dataclass, ``requests``/``utilization``/``queue`` frames, ``name``); ``slo`` has ``ttft_s``
    and ``tpot_s`` (an object or a dict)."""
    from dataclasses import asdict, is_dataclass

    summary = asdict(result.summary) if is_dataclass(result.summary) else dict(result.summary)
    if slo is not None and not isinstance(slo, dict):
        slo = {"ttft_s": getattr(slo, "ttft_s", None), "tpot_s": getattr(slo, "tpot_s", None)}
    return {"name": getattr(result, "name", ""), "scenario": scenario or {}, "slo": slo, "summary": summary,
            "requests": result.requests, "utilization": getattr(result, "utilization", None),
            "queue": getattr(result, "queue", None)}


def placement_payload(problem, cluster, methods: dict, baseline: str | None = None, **extra) -> dict:
    """The ``placement`` payload from ``optimizers.placement`` objects (read by attribute):
    ``methods`` maps a name to a ``SolveResult`` (has ``placement`` and ``to_dict``) or a
    ``Placement`` (has ``gpu_of``; its objective is ``problem.hop_cost``)."""
    out = {}
    for name, m in methods.items():
        if hasattr(m, "placement") and hasattr(m, "to_dict"):
            d = m.to_dict()
            d["gpu_of"] = m.placement.gpu_of.tolist()
        else:
            d = {"objective": problem.hop_cost(m.gpu_of, cluster), "gpu_of": m.gpu_of.tolist()}
        out[name] = d
    return {"cluster": cluster.to_dict(), "layers": problem.layers, "experts": problem.experts,
            "tokens": problem.tokens, "baseline": baseline, "methods": out, **extra}


def validation_payload(report) -> dict:
    """The ``validate`` payload of a ``validation.report.ValidationReport`` (read by attribute)."""
    from dataclasses import asdict, is_dataclass

    def plain(items):
        return [asdict(x) if is_dataclass(x) else dict(x) for x in items or []]

    return {"dataset": report.dataset, "hardware": report.device, "profile": report.profile,
            "profile_source": getattr(report, "profile_source", ""), "rows": report.rows,
            "groups": plain(report.groups), "held_out": plain(getattr(report, "held_out", [])),
            "goals": plain(report.goals), "noise_floor": getattr(report, "noise", {}),
            "rejected": len(getattr(report, "rejected", []))}


def _kind_of_table(df: pd.DataFrame, where: str) -> str:
    cols = set(df.columns)
    if {"measured_s", "predicted_s"} <= cols:
        return "validate"
    if {"arrival_s", "ttft_s"} <= cols:
        return "simulate"
    if {"batch", "prompt", "ttft_s", "throughput_tok_s"} <= cols:
        return "sweep"
    raise ValueError(f"--in: cannot tell what {where} holds; a sweep needs columns batch, prompt, ttft_s, "
                     "throughput_tok_s; a validation run measured_s and predicted_s; a simulation's "
                     "requests arrival_s and ttft_s")


#: Tables genz writes end with this line (CSV) or carry this key in their metadata (Parquet), with
#: their row count, so a reader can tell a complete file from one cut short.
MARKER_KEY = "genz_complete"
_CSV_MARKER = "# genz: complete, {rows} rows"


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a table (CSV or Parquet by suffix) atomically, with the completeness marker."""
    from workloads.files import atomic_path

    p = Path(path)
    with atomic_path(p) as tmp:
        if p.suffix == ".parquet":
            _write_parquet(frame, tmp, len(frame))
        else:
            frame.to_csv(tmp, index=False)
            with open(tmp, "a", encoding="utf-8") as fh:
                fh.write(_CSV_MARKER.format(rows=len(frame)) + "\n")
    return p


def _write_parquet(frame: pd.DataFrame, path: Path, rows: int) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependency("--out: writing Parquet needs pyarrow (pip install -e \".[parquet]\")") from None
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = {**(table.schema.metadata or {}), MARKER_KEY.encode(): str(rows).encode()}
    pq.write_table(table.replace_schema_metadata(meta), path)


def join_table_parts(parts: list[Path], dest: Path, suffix: str) -> int:
    """Join table files written by the same writer (same columns) into ``dest``, with the marker;
    returns the rows. CSV parts are joined as text, so the result is byte-identical however the
    work was split."""
    rows = 0
    if suffix == ".parquet":
        frames = [pd.read_parquet(p) for p in parts]
        frame = pd.concat(frames, ignore_index=True)
        _write_parquet(frame, dest, len(frame))
        return len(frame)
    with open(dest, "w", encoding="utf-8", newline="") as out:
        for i, p in enumerate(parts):
            with open(p, encoding="utf-8", newline="") as fh:
                header = fh.readline()
                if i == 0:
                    out.write(header)
                for line in fh:
                    out.write(line)
                    rows += 1
        out.write(_CSV_MARKER.format(rows=rows) + "\n")
    return rows


def read_table(path: str | Path, require_marker: bool = True) -> pd.DataFrame:
    """A table genz wrote; one without its completeness marker (cut short, or not written by genz)
    is refused unless ``require_marker`` is False."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"--in: {p} is not a file")
    if p.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise MissingDependency("--in: reading Parquet needs pyarrow (pip install -e \".[parquet]\")") from None
        try:
            meta = pq.read_schema(p).metadata or {}
            df = pd.read_parquet(p)
        except Exception as exc:  # pyarrow raises its own error types for damaged files
            raise ValueError(f"--in: {p} is not a readable Parquet file ({exc})") from None
        marked = meta.get(MARKER_KEY.encode())
        expected = int(marked) if marked is not None else None
    else:
        with open(p, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 200))
            tail = fh.read().decode("utf-8", "replace").rstrip("\n").rsplit("\n", 1)[-1]
        prefix = _CSV_MARKER.split("{")[0]
        expected = int(tail[len(prefix):].split()[0]) if tail.startswith(prefix) else None
        try:
            df = pd.read_csv(p, comment="#")
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise ValueError(f"--in: {p} is not a readable CSV table ({exc})") from None
    if expected is None and require_marker:
        raise ValueError(f"--in: {p} has no completeness marker: it was cut short while being written, or was "
                         "not written by genz; rerun the command that writes it")
    if expected is not None and expected != len(df):
        raise ValueError(f"--in: {p} says it holds {expected} rows but has {len(df)}: it is damaged")
    return df


def load_results(path: str | Path, kind: str | None = None) -> tuple[str, dict]:
    """Read a results file -> (kind, payload). Tables come back as DataFrames under ``"rows"``
    (sweep, validate) or ``"requests"`` (simulate). ``kind`` None detects it from the contents."""
    p = Path(path)
    if not p.exists():
        raise ValueError(f"--in: file {p} does not exist")
    if not p.is_file():
        raise ValueError(f"--in: {p} is not a file")
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind: unknown results kind {kind!r}; allowed: {', '.join(KINDS)}")
    if p.suffix in TABLE_SUFFIXES:
        df = read_table(p)
        found = _kind_of_table(df, str(p))
        payload = {"requests": df} if found == "simulate" else {"rows": df}
        payload["source_file"] = str(p)
    elif p.suffix == ".json":
        try:
            data = json.loads(p.read_text())
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"--in: cannot read {p} ({exc})") from None
        except ValueError as exc:
            raise ValueError(f"--in: {p} is not valid JSON ({exc}): cut short while written, or not a genz "
                             "results file") from None
        found, payload = _from_json(data, str(p))
        payload["source_file"] = str(p)
    else:
        raise ValueError(f"--in: {p} must end in .json, .csv or .parquet")
    if kind is not None and kind != found:
        raise ValueError(f"--in: {p} holds a {found} result, not a {kind} result; "
                         f"use `genz report {found}` (or `genz report auto`)")
    return found, payload


def _from_simulate_json(data: dict, where: str) -> dict:
    """The object ``genz simulate --json`` prints (summary fields, ``inputs``, ``out_requests``):
    its per-request CSV is read when ``out_requests`` names a file that exists (as given, or next
    to the JSON file)."""
    inputs = data.get("inputs") or {}
    summary = {k: v for k, v in data.items() if k not in ("inputs", "memo", "wall_s", "out_requests")}
    slo = inputs.get("slo") if isinstance(inputs, dict) else None
    # the per-request CSV named inside the results is not opened (a results file must not make genz
    # read other paths); the user names it with `genz report --requests FILE`
    named = data.get("out_requests") if isinstance(data.get("out_requests"), str) else None
    return {"name": inputs.get("name", "") if isinstance(inputs, dict) else "", "scenario": inputs, "slo": slo,
            "summary": summary, "requests": pd.DataFrame(), "utilization": pd.DataFrame(), "queue": pd.DataFrame(),
            "requests_file_named": named}


def _from_json(data, where: str) -> tuple[str, dict]:
    if not isinstance(data, dict):
        raise ValueError(f"--in: {where} must hold one JSON object")
    if "genz_result" in data:
        kind = data["genz_result"]
        if kind not in KINDS:
            raise ValueError(f"--in: {where} has genz_result {kind!r}; known kinds: {', '.join(KINDS)}")
        version = data.get("format_version", FORMAT_VERSION)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ValueError(f"--in: {where} has format_version {version!r}; this genz reads up to {FORMAT_VERSION}")
        payload = {k: v for k, v in data.items() if k not in ("genz_result", "format_version")}
    elif {"ttft_s", "breakdown"} <= set(data):
        kind, payload = "predict", {"prediction": data}
    elif {"throughput_rps", "slo_attainment", "ttft_s"} <= set(data):
        kind, payload = "simulate", _from_simulate_json(data, where)
    elif {"groups", "goals", "dataset"} <= set(data):
        kind, payload = "validate", dict(data)
    elif {"trials", "objective"} <= set(data):
        kind, payload = "search", dict(data)
    elif {"deployment", "totals"} <= set(data) or {"feasible", "demand", "capacities"} <= set(data):
        kind, payload = "plan", dict(data)
    elif "configurations" in data and "out" in data:
        raise ValueError(f"--in: {where} is the summary printed by `genz sweep --json`; pass the sweep's "
                         f"results file instead ({data.get('out')})")
    else:
        raise ValueError(f"--in: {where} is not a genz results file (no 'genz_result' field); "
                         f"see `genz report --help` for the formats")
    if kind == "sweep":
        payload["rows"] = frame_from_json(payload.get("rows"), "rows")
    elif kind == "validate":
        payload["rows"] = frame_from_json(payload.get("rows"), "rows")
        if isinstance(payload.get("rejected"), list):
            payload["rejected"] = len(payload["rejected"])
    elif kind == "simulate":
        for key in ("requests", "utilization", "queue"):
            payload[key] = frame_from_json(payload.get(key), key)
    elif kind == "predict" and not isinstance(payload.get("prediction"), dict):
        raise ValueError(f"--in: {where}: a predict result needs a 'prediction' object")
    return kind, payload
