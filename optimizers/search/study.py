"""The search loop: Optuna asks for configurations, executors evaluate them, Optuna is told.

Samplers: ``grid`` (every configuration, Optuna's ``GridSampler``), ``random``, ``tpe`` and
``nsga2``. All run as Optuna studies, so a study on disk (``storage``) resumes where it stopped:
a file ending in ``.db``/``.sqlite`` is an SQLite database, any other path an Optuna journal file,
and a URL (``postgresql://...``) is passed through. Trials left running by a killed process are
marked failed and re-queued. The study remembers its space, objectives and set-up; resuming with
different ones is refused.

Infeasible configurations (see :mod:`optimizers.search.objective`) are told to Optuna with a
positive constraint value (TPE and NSGA-II then steer away from them) and a placeholder objective
value; results files report them with ``feasible: false`` and no value. Identical configurations
(knobs the scheduler ignores differ) are evaluated once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from optimizers.search.objective import (
    CAPACITY_METRICS,
    METRICS,
    ServingObjective,
    direction_of,
    metric_value,
)
from optimizers.search.parallel import make_executor
from optimizers.search.space import KNOBS, SearchSpace, canonical, canonical_key, config_problem
from workloads.errors import MissingDependency

__all__ = ["SAMPLERS", "SearchResult", "pareto_front", "search"]

SAMPLERS = ("grid", "random", "tpe", "nsga2")
_PLACEHOLDER = 1e18  # objective value told to Optuna for infeasible trials (worst side of each direction)
Progress = Callable[[int, int], None]


#: Trials one study may run (each is at least one serving simulation).
MAX_TRIALS = 100_000

def _optuna():
    try:
        import optuna
    except ImportError:
        raise MissingDependency("knob search needs Optuna: pip install -e \".[search]\" (or pip install optuna)") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _new_constraints() -> bool:
    try:
        import optuna
    except ImportError:
        return False
    return hasattr(optuna.trial.Trial, "set_constraint")


_NEW_CONSTRAINTS = _new_constraints()


def _constraints(trial) -> tuple[float]:
    return (float(trial.user_attrs.get("violation", 0.0)),)


def _sampler(name: str, space: SearchSpace, n_objectives: int, seed: int):
    optuna = _optuna()
    if name == "grid":
        class Grid(optuna.samplers.GridSampler):
            def after_trial(self, study, trial, state, values):  # GridSampler stops the study, which
                pass  # raises outside optimize(); the loop counts trials itself

        return Grid(space.choices(), seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # Optuna >= 5 reads constraints set on the trial; older versions need constraints_func
    cons = {} if _NEW_CONSTRAINTS else {"constraints_func": _constraints}
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(2, space.size // 4)), **cons)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=min(50, max(4, space.size // 4)), **cons)
    raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {name!r}")


def _is_study_file(p: Path) -> bool:
    """A SQLite database, or an Optuna journal (JSON lines with an ``op_code``); an empty file counts."""
    with open(p, "rb") as fh:
        head = fh.read(4096)
    if not head:
        return True
    if head.startswith(b"SQLite format 3\x00"):
        return True
    first = head.split(b"\n", 1)[0]
    try:
        return isinstance(obj := json.loads(first), dict) and "op_code" in obj
    except ValueError:
        return False


def _storage(storage: str | Path | None):
    if storage is None:
        return None
    s = str(storage)
    if "://" in s:
        return s
    p = Path(s).expanduser().resolve()
    if not p.parent.exists():
        raise ValueError(f"storage: directory {p.parent} does not exist")
    if p.exists() and (not p.is_file() or not _is_study_file(p)):
        raise ValueError(f"storage: {p} exists and is not an Optuna study file (a SQLite .db or a journal); "
                         "name a new file or one a previous `genz tune --storage` wrote")
    if p.suffix in (".db", ".sqlite", ".sqlite3"):
        return f"sqlite:///{p}"
    optuna = _optuna()
    try:  # Optuna >= 4
        from optuna.storages.journal import JournalFileBackend as backend
    except ImportError:  # Optuna 3.x
        backend = optuna.storages.JournalFileStorage
    return optuna.storages.JournalStorage(backend(str(p)))


# --------------------------------------------------------------------------- results
def _dominates(a: Sequence[float], b: Sequence[float], signs: Sequence[int]) -> bool:
    return all(s * x >= s * y for x, y, s in zip(a, b, signs, strict=True)) and \
        any(s * x > s * y for x, y, s in zip(a, b, signs, strict=True))


def pareto_front(points: Sequence[Sequence[float]], directions: Sequence[str]) -> list[int]:
    """Indices of the non-dominated points (``directions``: "maximize"/"minimize" per coordinate)."""
    signs = [1 if d == "maximize" else -1 for d in directions]
    front = []
    for i, p in enumerate(points):
        if not any(_dominates(q, p, signs) for j, q in enumerate(points) if j != i):
            front.append(i)
    return front


@dataclass
class SearchResult:
    """Every trial, the best feasible one (or the Pareto front), the baseline, and how far apart.

    ``trials``: one dict per trial ``{"number", "params", "values", "value", "feasible", "reason",
    "metrics", "wall_s", "duplicate_of"}``; ``improvement``: (best - baseline) / |baseline| of the
    first objective, signed so that positive is better (None when either is missing).
    """

    objectives: tuple[str, ...]
    directions: tuple[str, ...]
    space: SearchSpace
    sampler: str
    trials: list[dict]
    baseline: dict
    best: dict | None
    pareto: list[dict] = field(default_factory=list)
    setup: dict = field(default_factory=dict)
    study_name: str = ""
    storage: str | None = None
    wall_s: float = 0.0
    evaluations: int = 0

    @property
    def improvement(self) -> float | None:
        b = (self.best or {}).get("value")
        base = self.baseline.get("value")
        if b is None or base is None or base == 0:
            return None
        sign = 1 if self.directions[0] == "maximize" else -1
        return sign * (b - base) / abs(base)

    def frame(self):
        """Trials as a DataFrame: number, feasible, reason, knobs, objective values, metrics."""
        import pandas as pd

        rows = []
        for t in self.trials:
            row = {"number": t["number"], "feasible": t["feasible"], "reason": t["reason"]}
            row.update(t["params"])
            for name, v in zip(self.objectives, t["values"], strict=True):
                row[name] = v
            row.update({k: v for k, v in t["metrics"].items() if k not in row})
            row["wall_s"] = t["wall_s"]
            rows.append(row)
        return pd.DataFrame(rows)

    def to_payload(self) -> dict:
        """The ``search`` results file (see docs/optimizers.md)."""
        return {
            "objective": self.objectives[0], "direction": self.directions[0],
            "objectives": list(self.objectives), "directions": list(self.directions),
            "space": self.space.choices(), "max_gpus": self.space.max_gpus, "sampler": self.sampler,
            "study_name": self.study_name, "storage": self.storage, "setup": self.setup,
            "trials": self.trials, "best": self.best, "baseline": self.baseline,
            "improvement": self.improvement, "pareto": self.pareto, "wall_s": self.wall_s,
            "evaluations": self.evaluations,
        }

    def summary_lines(self) -> list[str]:
        m = METRICS[self.objectives[0]]
        feasible = sum(t["feasible"] for t in self.trials)
        varying = [k for k in KNOBS if len(getattr(self.space, k)) > 1]
        fixed = {k: getattr(self.space, k)[0] for k in KNOBS if k not in varying}
        if "static" not in self.space.scheduler:
            fixed.pop("batch_size", None)
        if "continuous" not in self.space.scheduler:
            for k in ("max_num_seqs", "max_num_batched_tokens", "chunked_prefill"):
                fixed.pop(k, None)
        out = [f"{len(self.trials)} trials ({feasible} feasible, {self.evaluations} simulations) with {self.sampler} "
               f"in {self.wall_s:.1f} s; fixed: {_knobs(fixed, None)}"]

        def fmt(entry: dict | None) -> str:
            if not entry:
                return "none feasible"
            if entry.get("value") is None:
                return f"infeasible ({entry.get('reason', '')}) with {_knobs(entry['params'], varying)}"
            return f"{_num(entry['value'])} {m.unit} with {_knobs(entry['params'], varying)}"

        out.append(f"best {m.name}: {fmt(self.best)}")
        out.append(f"baseline: {fmt(self.baseline)}")
        if self.improvement is not None:
            out.append(f"best vs baseline: {self.improvement:+.1%} ({'higher' if m.direction == 'maximize' else 'lower'}"
                       " is better)")
        if len(self.objectives) > 1:
            out.append(f"Pareto front ({' vs '.join(self.objectives)}): {len(self.pareto)} configurations")
            for p in self.pareto:
                vals = ", ".join(f"{n} {_num(v)}" for n, v in zip(self.objectives, p["values"], strict=True))
                out.append(f"  {vals}: {_knobs(p['params'], varying)}")
        return out


def _num(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 1e4 else f"{v:.4g}"


def _knobs(params: Mapping, only: Sequence[str] | None) -> str:
    """``k=v`` of the knobs in ``only`` (all when None) that apply to the configuration's scheduler."""
    if only is not None and not only:
        return "(no knob varies)"
    keys = [k for k in KNOBS if k in params and (only is None or k in only)]
    if "scheduler" in params and all(k in params for k in KNOBS):
        c = canonical(params)
        keys = [k for k in keys if c[k] is not None]
    return ", ".join(f"{k}={params[k]}" for k in keys)


# --------------------------------------------------------------------------- the loop
def _record(number: int, params: dict, ev: dict, objectives: Sequence[str], duplicate_of: int | None = None) -> dict:
    values = [metric_value(ev, o) for o in objectives]
    feasible = bool(ev.get("feasible")) and all(v is not None for v in values)
    reason = ev.get("reason", "") or ("" if feasible else "objective not measured")
    return {"number": number, "params": params, "values": values if feasible else [None] * len(values),
            "value": values[0] if feasible else None, "feasible": feasible, "reason": reason,
            "metrics": ev.get("metrics", {}), "wall_s": ev.get("wall_s", 0.0), "duplicate_of": duplicate_of}


def _tell(study, trial, rec: dict, directions: Sequence[str]) -> None:
    optuna = _optuna()
    trial.set_user_attr("record", {k: rec[k] for k in ("params", "values", "feasible", "reason", "metrics",
                                                        "wall_s", "duplicate_of")})
    violation = 0.0 if rec["feasible"] else 1.0
    trial.set_user_attr("violation", violation)
    if _NEW_CONSTRAINTS:
        trial.set_constraint("feasible", violation)
    values = [v if rec["feasible"] else (-_PLACEHOLDER if d == "maximize" else _PLACEHOLDER)
              for v, d in zip(rec["values"], directions, strict=True)]
    study.tell(trial, values if len(values) > 1 else values[0], state=optuna.trial.TrialState.COMPLETE)


def _open_study(optuna, space, objectives, directions, sampler_name, sampler, objective, storage, study_name):
    setup = {"space": space.to_dict(), "objectives": list(objectives), "setup": _jsonable(objective.describe())}
    st = _storage(storage)
    name = study_name or "genz-tune"
    study = optuna.create_study(study_name=name, storage=st, sampler=sampler, directions=list(directions),
                                load_if_exists=True)
    old = study.user_attrs.get("genz")
    if old is None:
        study.set_user_attr("genz", setup)
        study.set_user_attr("sampler", sampler_name)
    elif old != setup:
        what = [k for k in setup if setup[k] != old.get(k)]
        raise ValueError(f"storage: study {name!r} in {storage} was created with a different {' and '.join(what)}; "
                         "pass another --study-name or the original settings")
    # trials left running by a killed run: fail them and queue their knobs again
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)):
        if t.state == optuna.trial.TrialState.RUNNING:
            study.tell(t.number, state=optuna.trial.TrialState.FAIL)
            study.enqueue_trial(t.params)
    return study


def _jsonable(obj):
    import json
    return json.loads(json.dumps(obj, default=str))


def search(space: SearchSpace, objective: ServingObjective, *, objectives: Sequence[str] = ("throughput",),
           sampler: str = "tpe", n_trials: int | None = None, seed: int = 0, workers: int | None = 1,
           ray_address: str | None = None, storage: str | Path | None = None, study_name: str | None = None,
           baseline: Mapping | None = None, progress: Progress | None = None, batch: int = 8) -> SearchResult:
    """Search ``space`` for the best ``objectives`` of ``objective``'s workload.

    ``objectives``: one name of :data:`~optimizers.search.objective.METRICS` (single objective) or
    several (a Pareto front; the first also picks ``best``). ``n_trials``: trials in the study in
    all (a resumed study runs only the missing ones); default: the grid size for ``grid``, else
    ``min(50, space size)``. ``workers``: evaluations in parallel (1 = in this process, None = one
    per CPU); ``ray_address`` sends them to a Ray cluster instead. ``baseline``: the configuration
    to compare with (default: :meth:`SearchSpace.baseline`, vLLM's defaults). ``batch``: trials asked
    at a time, evaluated in parallel and told in trial order (the sampler's history, and so the
    study for a seed, depends on ``batch`` and not on ``workers``; more workers than ``batch`` idle).

    >>> from optimizers.search import SearchSpace, ServingObjective, search
    >>> sp = SearchSpace(max_num_seqs=(8, 64), hardware=("h100",), max_num_batched_tokens=(2048,))
    >>> ob = ServingObjective("llama-3.2-1b", use_case="chatbot", num_requests=40)
    >>> r = search(sp, ob, sampler="grid")
    >>> r.best["params"]["max_num_seqs"], len(r.trials)
    (64, 2)
    """
    t_start = time.perf_counter()
    objectives = tuple(objectives)
    if not objectives:
        raise ValueError("objectives: give at least one of " + ", ".join(METRICS))
    if len(set(objectives)) != len(objectives):
        raise ValueError(f"objectives: repeated name in {list(objectives)}")
    directions = tuple(direction_of(o) for o in objectives)
    if not isinstance(space, SearchSpace):
        raise ValueError("space must be a SearchSpace")
    objective.check(space, objectives)
    if any(o in CAPACITY_METRICS for o in objectives) and not objective.find_capacity:
        objective = replace(objective, find_capacity=True)
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    if n_trials is None:
        n_trials = space.grid_size if sampler == "grid" else min(50, space.size)
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise ValueError(f"n_trials must be an integer >= 1, got {n_trials!r}")
    if n_trials > MAX_TRIALS:
        raise ValueError(f"n_trials: {n_trials:,} is above the limit of {MAX_TRIALS:,} trials per study (each is a "
                         "simulation); narrow the space or split the study")
    if sampler == "grid":
        n_trials = min(n_trials, space.grid_size)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be an integer >= 1, got {batch!r}")
    unknown = sorted(set(baseline or {}) - set(KNOBS))
    if unknown:
        raise ValueError(f"baseline: unknown knob(s) {', '.join(unknown)}; knobs are {', '.join(KNOBS)}")
    base_cfg = {**space.baseline(), **dict(baseline or {})}

    optuna = _optuna()
    smp = _sampler(sampler, space, len(objectives), seed)
    study = _open_study(optuna, space, objectives, directions, sampler, smp, objective, storage, study_name)
    done_before = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))]
    cache: dict[tuple, tuple[int, dict]] = {}
    for t in done_before:
        rec = t.user_attrs.get("record")
        if rec and rec.get("duplicate_of") is None:
            ev = {"feasible": rec["feasible"], "reason": rec["reason"], "metrics": rec["metrics"],
                  "wall_s": rec["wall_s"]}
            cache.setdefault(canonical_key(rec["params"]), (t.number, ev))
    to_run = max(0, n_trials - len(done_before))

    executor = make_executor(workers, ray_address)
    evaluations = 0
    finished = 0

    def report():
        if progress is not None:
            progress(finished, to_run)

    def wait_all(handles: list) -> dict:
        """Every handle's (result, error), whatever order they finish in."""
        left, out = list(handles), {}
        while left:
            for h, result, error in executor.wait(left):
                out[h] = (result, error)
                left.remove(h)
        return out

    def failed(error) -> dict:
        return {"feasible": False, "reason": f"evaluation failed: {type(error).__name__}: {error}", "metrics": {},
                "wall_s": 0.0}

    try:
        # the baseline goes first, so a pool starts on it while trials are asked for
        base_handle = executor.submit(objective, base_cfg)
        asked = 0
        report()
        while asked < to_run:
            # a batch of ``batch`` trials is asked, evaluated (in parallel) and told in trial order, so
            # the sampler sees the same history, and a seed gives the same study, for any worker count
            trials_now = []
            for _ in range(min(batch, to_run - asked)):
                trial = study.ask()
                trials_now.append((trial, {k: trial.suggest_categorical(k, list(getattr(space, k))) for k in KNOBS}))
                asked += 1
            submitted: dict = {}
            for trial, params in trials_now:
                key = canonical_key(params)
                if not config_problem(params, space.max_gpus) and key not in cache and key not in submitted:
                    submitted[key] = (trial.number, executor.submit(objective, params))
            results = wait_all([h for _, h in submitted.values()])
            for key, (first, h) in submitted.items():
                result, error = results[h]
                cache[key] = (first, failed(error) if error is not None else result)
                evaluations += 1
            for trial, params in trials_now:
                problem = config_problem(params, space.max_gpus)
                if problem:
                    rec = _record(trial.number, params, {"feasible": False, "reason": problem, "metrics": {}},
                                  objectives)
                else:
                    num, ev = cache[canonical_key(params)]
                    dup = None if num == trial.number else num
                    rec = _record(trial.number, params, ev if dup is None else {**ev, "wall_s": 0.0}, objectives, dup)
                _tell(study, trial, rec, directions)
                finished += 1
                report()
        (base_result, base_error), = wait_all([base_handle]).values()
        base_ev = failed(base_error) if base_error is not None else base_result
        evaluations += 1
    finally:
        executor.close()

    trials = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        rec = t.user_attrs.get("record")
        if rec is not None:
            trials.append({"number": t.number, **rec, "value": rec["values"][0]})
    base_rec = _record(-1, base_cfg, base_ev, objectives)
    baseline_entry = {"params": base_cfg, "value": base_rec["value"], "values": base_rec["values"],
                      "feasible": base_rec["feasible"], "reason": base_rec["reason"], "metrics": base_rec["metrics"]}
    ok = [t for t in trials if t["feasible"]]
    best = None
    pareto: list[dict] = []
    if ok:
        sign = 1 if directions[0] == "maximize" else -1
        best = max(ok, key=lambda t: (sign * t["value"], -t["number"]))
        best = {k: best[k] for k in ("number", "params", "value", "values", "metrics")}
        if len(objectives) > 1:
            uniq = {}  # one trial per distinct configuration and per distinct objective vector
            for t in sorted(ok, key=lambda t: t["number"]):
                uniq.setdefault(tuple(t["values"]), t)
            pts = list(uniq.values())
            idx = pareto_front([t["values"] for t in pts], directions)
            pareto = sorted(({k: pts[i][k] for k in ("number", "params", "values", "metrics")} for i in idx),
                            key=lambda p: [(-1 if d == "maximize" else 1) * v
                                           for v, d in zip(p["values"], directions, strict=True)])
    return SearchResult(objectives=objectives, directions=directions, space=space, sampler=sampler, trials=trials,
                        baseline=baseline_entry, best=best, pareto=pareto, setup=_jsonable(objective.describe()),
                        study_name=study.study_name, storage=None if storage is None else str(storage),
                        wall_s=time.perf_counter() - t_start, evaluations=evaluations)
