"""``genz sweep --out``: results written group by group, resumable, never half a file.

While a sweep runs, each finished (model, hardware, precision, tp, pp, ep) group is written to
``<out>.partial/part-NNNNN.<csv|parquet>`` and listed in ``<out>.partial/manifest.json`` (both
atomically). When every group is done the parts are joined into ``<out>`` (atomically, with the
completeness marker of :mod:`interfaces.reports.formats`) and the folder is removed. A sweep killed
half-way leaves ``<out>`` as it was (or absent) and its finished groups in ``.partial``; the same
command run again picks up where it stopped and ends with the same file a single run writes. A
``.partial`` folder from a sweep with other inputs is an error, not silently mixed in.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from interfaces.reports.formats import join_table_parts
from workloads.files import atomic_path, atomic_write_text

FORMAT = "genz-sweep-partial/1"


class SweepOutput:
    """The partial-output folder of one sweep (see the module docstring)."""

    def __init__(self, out: Path, inputs: dict):
        self.out = Path(out)
        self.suffix = self.out.suffix
        self.folder = self.out.with_name(self.out.name + ".partial")
        self.manifest_path = self.folder / "manifest.json"
        self.inputs = inputs
        self.parts: list[dict] = []
        self.skipped: list[dict] = []

    # ---------------------------------------------------------------- start / resume
    def start(self, restart: bool) -> set[tuple]:
        """Group keys already done (empty for a fresh start). ``restart`` discards a partial output."""
        if self.folder.exists() and restart:
            shutil.rmtree(self.folder)
        if not self.folder.exists():
            self.folder.mkdir()
            self._save()
            return set()
        try:
            man = json.loads(self.manifest_path.read_text())
        except (OSError, ValueError):
            raise ValueError(f"--out: {self.folder} holds an unreadable partial sweep; remove it or pass --force "
                             "to start over") from None
        if not isinstance(man, dict) or man.get("format") != FORMAT or man.get("inputs") != self.inputs:
            raise ValueError(f"--out: {self.folder} holds a partial sweep with other inputs; remove it or pass "
                             "--force to start over")
        self.parts = [p for p in man.get("parts", []) if (self.folder / p["file"]).is_file()]
        self.skipped = list(man.get("skipped", []))
        return {tuple(p["key"]) for p in self.parts} | {tuple(s["key"]) for s in self.skipped}

    def _save(self) -> None:
        atomic_write_text(self.manifest_path, json.dumps(
            {"format": FORMAT, "inputs": self.inputs, "parts": self.parts, "skipped": self.skipped}, indent=1))

    # ---------------------------------------------------------------- groups
    def add(self, key: tuple, frame) -> None:
        """Write one finished group's rows."""
        name = f"part-{len(self.parts):05d}{self.suffix}"
        with atomic_path(self.folder / name) as tmp:
            if self.suffix == ".parquet":
                frame.to_parquet(tmp, index=False)
            else:
                frame.to_csv(tmp, index=False)
        self.parts.append({"key": list(key), "file": name, "rows": int(len(frame))})
        self._save()

    def skip(self, key: tuple, reason: str) -> None:
        """Record a group that cannot be evaluated (it is not retried on resume)."""
        self.skipped.append({"key": list(key), "reason": reason})
        self._save()

    @property
    def rows(self) -> int:
        return sum(p["rows"] for p in self.parts)

    # ---------------------------------------------------------------- finish
    def finish(self, order: list[tuple]) -> int:
        """Join the parts in sweep order into ``out`` (atomically); returns the row count. Nothing is
        written when no group produced rows."""
        by_key = {tuple(p["key"]): p for p in self.parts}
        files = [self.folder / by_key[k]["file"] for k in order if k in by_key]
        if files:
            with atomic_path(self.out) as tmp:
                join_table_parts(files, tmp, self.suffix)
        shutil.rmtree(self.folder)
        return self.rows
