"""Per-unit capacity of each candidate for each use case: the highest Poisson rate one unit serves
within the use case's SLO, found by simulation (:meth:`ServingObjective.capacity`), in parallel and
cached (in memory and, with ``cache_path``, in a JSON file keyed on every input that matters)."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from genz.serving import MemoConfig
from optimizers.capacity.inputs import Candidate, Demand
from optimizers.search.objective import ServingObjective
from optimizers.search.parallel import make_executor
from workloads.files import atomic_write_text

__all__ = ["CAPACITY_CACHE_VERSION", "CapacityTable", "SimulationSettings", "compute_capacities"]

CAPACITY_CACHE_VERSION = 1


@dataclass(frozen=True)
class SimulationSettings:
    """How capacities are measured: ``num_requests`` per bisection run (short; the plan is
    confirmed with ``confirm_requests``), the SLO attainment a rate must reach, the bisection's
    relative tolerance, the seed, the memo buckets and the software stack."""

    model: str = "llama-3-8b"
    precision: str = "bf16"
    num_requests: int = 200
    confirm_requests: int = 1000
    min_slo_attainment: float = 0.9
    rel_tol: float = 0.05
    seed: int = 0
    runtime: str = "vllm"
    length_sigma: float = 0.0
    prefill_bucket: int = 64
    context_bucket: int = 1024

    def __post_init__(self) -> None:
        for name in ("num_requests", "confirm_requests", "prefill_bucket", "context_bucket"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: must be an integer >= 1, got {v!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed: must be an integer >= 0, got {self.seed!r}")
        if not (isinstance(self.rel_tol, int | float) and 0 < self.rel_tol < 1):
            raise ValueError(f"rel_tol: must be in (0, 1), got {self.rel_tol!r}")

    def objective(self, demand: Demand, num_requests: int | None = None) -> ServingObjective:
        """The capacity-finding objective of ``demand`` (``num_requests`` per run; default: the
        bisection's ``num_requests``)."""
        return ServingObjective(model=self.model, precision=self.precision, use_case=demand.use_case,
                                num_requests=self.num_requests if num_requests is None else num_requests,
                                slo=demand.slo,
                                min_slo_attainment=self.min_slo_attainment, seed=self.seed, runtime=self.runtime,
                                length_sigma=self.length_sigma,
                                memo=MemoConfig(self.prefill_bucket, self.context_bucket), find_capacity=True,
                                capacity_rel_tol=self.rel_tol)


@dataclass
class CapacityTable:
    """``rate[i][j]``: requests/s one unit of candidate ``i`` serves for demand ``j`` (0: cannot);
    ``reason[i][j]`` says why when 0; ``evaluation[i][j]`` is the run at that rate."""

    candidates: list[Candidate]
    demands: list[Demand]
    rate: list[list[float]]
    reason: list[list[str]]
    evaluation: list[list[dict]]
    simulations: int = 0
    cached: int = 0

    def rows(self) -> list[dict]:
        out = []
        for i, c in enumerate(self.candidates):
            for j, d in enumerate(self.demands):
                m = self.evaluation[i][j].get("metrics", {})
                out.append({"candidate": c.label, "use_case": d.name, "gpus": c.gpus,
                            "capacity_rps": self.rate[i][j], "capacity_rps_per_gpu": self.rate[i][j] / c.gpus,
                            "ttft_p99_s": m.get("ttft_p99_s"), "tpot_p99_s": m.get("tpot_p99_s"),
                            "slo_attainment": m.get("slo_attainment"), "reason": self.reason[i][j]})
        return out


def _key(objective: ServingObjective, config: dict) -> str:
    d = objective.describe()
    d.pop("prices", None)  # prices do not change what a unit can serve
    blob = json.dumps({"v": CAPACITY_CACHE_VERSION, "objective": d, "config": config}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _load_cache(path: Path | None) -> dict:
    if path is None or not path.exists():
        return {}
    text = path.read_text(errors="replace")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if text.lstrip().startswith('{"genz_capacity_cache"'):  # ours, cut short by an older version: rebuilt
            warnings.warn(f"--cache: {path} is a damaged capacity cache; starting it again", stacklevel=2)
            return {}
        raise ValueError(f"--cache: {path} is not a capacity cache ({exc}); pass another file") from None
    if not isinstance(data, dict) or data.get("genz_capacity_cache") != CAPACITY_CACHE_VERSION:
        raise ValueError(f"--cache: {path} is not a capacity cache of version {CAPACITY_CACHE_VERSION}")
    return data.get("entries", {})


def compute_capacities(candidates: Sequence[Candidate], demands: Sequence[Demand], settings: SimulationSettings,
                       *, workers: int | None = 1, ray_address: str | None = None,
                       cache_path: str | Path | None = None, memory_cache: dict | None = None,
                       progress: Callable[[int, int], None] | None = None) -> CapacityTable:
    """Capacity of every (candidate, demand) pair; see the module docstring."""
    path = Path(cache_path) if cache_path is not None else None
    if path is not None and not path.parent.exists():
        raise ValueError(f"--cache: directory {path.parent} does not exist")
    disk = _load_cache(path)
    mem = memory_cache if memory_cache is not None else {}
    n_c, n_d = len(candidates), len(demands)
    results: list[list[dict | None]] = [[None] * n_d for _ in range(n_c)]
    tasks = []
    cached = 0
    for i, c in enumerate(candidates):
        for j, d in enumerate(demands):
            ob = settings.objective(d, settings.num_requests * c.request_scale)
            cfg = c.config()
            k = _key(ob, cfg)
            hit = mem.get(k) or disk.get(k)
            if hit is not None:
                results[i][j] = hit
                cached += 1
            else:
                tasks.append((i, j, k, ob, cfg))
    total, done = len(tasks), 0
    if progress:
        progress(0, total)
    sims = 0
    if tasks:
        ex = make_executor(workers, ray_address)
        try:
            pending = {}
            queue = list(tasks)
            while queue or pending:
                while queue and len(pending) < ex.capacity:
                    i, j, k, ob, cfg = queue.pop(0)
                    pending[ex.submit(ob, cfg)] = (i, j, k)
                for h, res, err in ex.wait(list(pending)):
                    i, j, k = pending.pop(h)
                    if err is not None:
                        res = {"feasible": False, "reason": f"evaluation failed: {type(err).__name__}: {err}",
                               "metrics": {"capacity_rps": 0.0}, "structural": True}
                    else:
                        mem[k] = disk[k] = res
                    sims += int(res.get("metrics", {}).get("capacity_evaluations", 1))
                    results[i][j] = res
                    done += 1
                    if progress:
                        progress(done, total)
        finally:
            ex.close()
        if path is not None:
            atomic_write_text(path, json.dumps({"genz_capacity_cache": CAPACITY_CACHE_VERSION, "entries": disk},
                                               default=lambda o: None))
    rate = [[float(results[i][j].get("metrics", {}).get("capacity_rps") or 0.0) if results[i][j]["feasible"] else 0.0
             for j in range(n_d)] for i in range(n_c)]
    reason = [[results[i][j].get("reason", "") if rate[i][j] <= 0 else "" for j in range(n_d)] for i in range(n_c)]
    return CapacityTable(list(candidates), list(demands), rate, reason, [list(r) for r in results], sims, cached)
