"""Scenario files: a serving what-if as YAML or TOML, checked field by field, built on the engine.

A file (or the dict ``genz simulate`` builds from its flags) names the replica's model, hardware and
parallelism, the scheduler, the workload, the SLO and, optionally, a prefill pool. Every field is
optional; :data:`DEFAULTS` holds what is assumed. Errors name the field (``scheduler.max_num_seqs:
must be an integer >= 1, got 0``); unknown keys are listed with the allowed ones.

>>> spec = resolve({"model": "llama-3-8b", "hardware": "h100-sxm",
...                 "workload": {"use_case": "chatbot", "rate_per_s": 2, "requests": 20}})
>>> spec["slo"], spec["workload"]["prompt"]
({'ttft_s': 0.5, 'tpot_s': 0.05}, {'dist': 'fixed', 'tokens': 2048})
>>> sc = build_scenario(spec)
>>> sc.replicas, type(sc.cost).__name__
(1, 'EngineStepCost')

Schema (YAML; TOML uses the same keys as tables)::

    name: chatbot-on-h100            # free text
    model: llama-3-8b                # preset or config.json path
    hardware: h100-sxm               # genz list hardware
    precision: bf16
    tp: 1                            # tensor-, pipeline-, expert-parallel sizes of one replica
    pp: 1
    ep: 1
    runtime: vllm                    # vllm | sglang | trt-llm | plain-pytorch | hf-transformers
    cuda_graphs: true
    replicas: 2
    router: round_robin              # round_robin | least_outstanding_tokens
    seed: 0
    scheduler:                       # defaults: the policy's config (genz/serving/config.py)
      kind: continuous               # a registered policy: continuous | static | ...
      max_num_seqs: 256              # continuous only
      max_num_batched_tokens: 8192   # continuous only
      chunked_prefill: true          # continuous only
      watermark: 0.01                # continuous only
      batch_size: 8                  # static only
      pad_to_longest: true           # static only
      block_size: 16
      gpu_memory_utilization: 0.9
    workload:
      use_case: chatbot              # lengths and SLO defaults (genz use cases)
      rate_per_s: 4                  # mean arrival rate
      requests: 1000
      arrival: poisson               # poisson | gamma | fixed
      cv: 1.0                        # gamma only
      prompt: 2048                   # int, "lognormal:MEAN:SIGMA", "uniform:LOW:HIGH",
      output: 128                    #   "empirical:FILE[:COLUMN]" or {dist: lognormal, mean: .., sigma: ..}
      length_sigma: 0.0              # log-normal spread around the use case's lengths
      trace: trace.csv               # instead of generating (relative to the file); requests = first N
      shared_prefix_tokens: 0        # a system prompt of this many tokens prepended to a share of the
      shared_prefix_fraction: 1.0    #   prompts (the prefix a prefix cache reuses: scheduler knob
      prefix_groups: 1               #   enable_prefix_caching); groups: distinct system prompts
      turns: 1                       # conversations of N turns, each resending its history (rate: conversations/s)
      concurrency: null              # N closed-loop clients (benchmark tools' --max-concurrency): arrival
      think_time_s: 0                #   times are ignored, each client sends its next request after the last
    slo: {ttft_s: 0.5, tpot_s: 0.05} # default: the use case's; one alone leaves the other unbounded
    disaggregation:                  # Splitwise: a prefill pool ships KV caches to the replicas above
      prefill_replicas: 1
      hardware: h100-sxm             # model, precision, tp, pp, ep, runtime default to the replica's
      link: ib-ndr400                # a link name, or {bandwidth_bytes_per_s: .., latency_s: ..};
                                     #   default: the prefill hardware's scale-out link
      link_count: 8                  # parallel links per prefill replica; default tp x pp (a NIC per GPU)
      overlap: true                  # stream KV layer by layer during the last prefill iteration
      router: round_robin
      scheduler: {max_num_batched_tokens: 2048}   # prefill pool's continuous scheduler (overrides)
    memo: {prefill_bucket: 2, context_bucket: 256}
    placement: {file: place.json, method: ilp}   # MoE: a genz place result; the replicas' EP all-to-all
                                     #   then moves that placement's intra-/inter-node volumes (ExFlow scheme)
    saturation: {growth_fraction: 0.1, min_arrivals: 100, max_sim_time_s: null, max_queue: null, stop: true}
    window_s: null
    layout: deepseek-v3-pd.yaml      # MoE: an genz predict --layout file instead of the engine keys; each
                                     #   replica is one of its pools (genz/serving/layout_scenario.py)
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import tomllib
from pathlib import Path

from genz.serving.build import build_scenario, fit_problem
from genz.serving.config import MAX_REQUESTS, MIN_RATE_PER_S, Scenario
from genz.serving.registry import ROUTERS, SCHEDULERS, scheduler_config, scheduler_knobs

__all__ = ["DEFAULTS", "build_scenario", "fit_problem", "load_file", "load_scenario", "merge", "resolve"]

_ENGINE_KEYS = ("model", "hardware", "precision", "tp", "pp", "ep", "runtime", "cuda_graphs")
_GENERATED = ("rate_per_s", "arrival", "cv", "prompt", "output", "length_sigma", "turns")
ARRIVALS = ("poisson", "gamma", "fixed")

DEFAULTS: dict = {
    "name": "",
    "model": "llama-3-8b",
    "hardware": "h200",
    "precision": "bf16",
    "tp": 1, "pp": 1, "ep": 1,
    "runtime": "vllm",
    "cuda_graphs": True,
    "replicas": 1,
    "router": "round_robin",
    "seed": 0,
    "scheduler": {"kind": "continuous"},  # each policy's knob defaults live in its config dataclass
    "workload": {"use_case": None, "concurrency": None, "think_time_s": 0.0,
                 "rate_per_s": 4.0, "requests": 1000, "arrival": "poisson", "cv": 1.0,
                 "prompt": None, "output": None, "length_sigma": 0.0, "trace": None},
    "slo": None,
    "disaggregation": None,
    "memo": {"prefill_bucket": 2, "context_bucket": 256},
    "saturation": {"growth_fraction": 0.1, "min_arrivals": 100, "max_sim_time_s": None, "max_queue": None,
                   "stop": True},
    "window_s": None,
    "placement": None,
    "layout": None,
}
"""Assumed values. The engine's defaults are those of ``genz predict``; the scheduler's are vLLM's
(see :mod:`genz.serving.config`); with no workload given, the GenZ chatbot use case at 4 requests/s
(assumption: a light load for one replica of an 8B model) for 1000 requests. The memo's prefill
bucket is 2 tokens, not MemoConfig's 16: measured on llama-3-8b / H100 (benchmarks/bench_serving.py
--check-error), 16 lets a compute-bound prefill chunk's time be off by up to 0.76 %, 2 by 0.28 %."""

_DISAGG_KEYS = ("prefill_replicas", "link", "link_count", "overlap", "router", "scheduler") + _ENGINE_KEYS
_TOP_KEYS = tuple(DEFAULTS)
_PREFIX = ("shared_prefix_tokens", "shared_prefix_fraction", "prefix_groups")
_SECTIONS = {"workload": ("use_case", "requests", "trace", "concurrency", "think_time_s") + _PREFIX + _GENERATED,
             "slo": ("ttft_s", "tpot_s"),
             "disaggregation": _DISAGG_KEYS,
             "memo": tuple(DEFAULTS["memo"]),
             "placement": ("file", "method"),
             "saturation": tuple(DEFAULTS["saturation"])}


# --------------------------------------------------------------------------- reading and merging
def load_file(path: str | Path) -> dict:
    """The raw mapping of a ``.yaml``/``.yml`` or ``.toml`` scenario file."""
    p = Path(path)
    if not p.exists():
        raise ValueError(f"scenario: file {p} does not exist")
    suffix = p.suffix.lower()
    text = p.read_text()
    if suffix in (".yaml", ".yml"):
        from workloads.yamlfile import load_yaml

        data = load_yaml(text, f"scenario: {p}")
    elif suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"scenario: {p} is not valid TOML: {exc}") from None
    else:
        raise ValueError(f"scenario: {p} must end in .yaml, .yml or .toml")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"scenario: {p} must hold a mapping of fields at the top, got {type(data).__name__}")
    return data


def merge(base: dict, overlay: dict) -> dict:
    """``base`` updated by ``overlay`` (sections merged key by key; ``None`` in ``overlay`` removes a
    section). Neither input is modified."""
    out = copy.deepcopy(base)
    for k, v in overlay.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


# --------------------------------------------------------------------------- field checks
def _fail(field: str, msg: str):
    raise ValueError(f"{field}: {msg}")


def _check_keys(where: str, data, allowed) -> None:
    if not isinstance(data, dict):
        _fail(where or "scenario", f"must be a mapping, got {type(data).__name__}")
    unknown = [k for k in data if k not in allowed]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(str(k), list(allowed), n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        place = f"in {where}" if where else "at the top level"
        raise ValueError(f"{where or 'scenario'}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(hints)} "
                         f"{place}; allowed: {', '.join(allowed)}")


_INT_MAX = 2**53  # beyond, a YAML number is no longer an exact integer (and numpy would overflow)


def _int(field: str, v, lo: int = 1) -> int:
    if isinstance(v, float) and v.is_integer() and abs(v) <= _INT_MAX:
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int) or v < lo or v > _INT_MAX:
        _fail(field, f"must be an integer >= {lo}" + (f" and <= 2**53, got {v!r}" if isinstance(v, int) and
                                                       not isinstance(v, bool) and v > _INT_MAX else f", got {v!r}"))
    return v


def _num(field: str, v, lo: float = 0.0, lo_open: bool = True, hi: float | None = None) -> float:
    ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    ok = ok and (v > lo if lo_open else v >= lo) and (hi is None or v <= hi)
    if not ok:
        rng = f"{'>' if lo_open else '>='} {lo:g}" + (f" and <= {hi:g}" if hi is not None else "")
        _fail(field, f"must be a finite number {rng}, got {v!r}")
    return float(v)


def _bool(field: str, v) -> bool:
    if not isinstance(v, bool):
        _fail(field, f"must be true or false, got {v!r}")
    return v


def _choice(field: str, v, allowed) -> str:
    if v not in allowed:
        _fail(field, f"must be one of {', '.join(allowed)}, got {v!r}")
    return v


def _str(field: str, v) -> str:
    if not isinstance(v, str) or not v.strip():
        _fail(field, f"must be a non-empty string, got {v!r}")
    return v.strip()


def _path(field: str, v, base_dir: Path | None) -> str:
    p = Path(_str(field, v))
    if not p.is_absolute() and base_dir is not None:
        p = base_dir / p
    if not p.exists():
        _fail(field, f"file {p} does not exist")
    return str(p)


# --------------------------------------------------------------------------- length distributions
_DISTS = {"fixed": ("tokens",), "uniform": ("low", "high"), "lognormal": ("mean", "sigma", "max_tokens"),
          "empirical": ("file", "column")}


def _parse_length(field: str, v, base_dir: Path | None) -> dict:
    """A length distribution as ``{dist: ..., ...}`` from an int, a ``KIND:ARG:ARG`` string or a mapping."""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, int) and not isinstance(v, bool):
        return {"dist": "fixed", "tokens": _int(field, v)}
    if isinstance(v, str):
        parts = v.strip().split(":")
        kind = parts[0].strip().lower()
        if kind.isdigit() and len(parts) == 1:
            return {"dist": "fixed", "tokens": _int(field, int(kind))}
        if kind not in _DISTS:
            _fail(field, f"must be an integer or one of fixed:N, uniform:LOW:HIGH, lognormal:MEAN[:SIGMA[:MAX]], "
                         f"empirical:FILE[:COLUMN], got {v!r}")
        args = parts[1:]
        names = _DISTS[kind]
        if not args or len(args) > len(names):
            _fail(field, f"{kind} takes {':'.join(n.upper() for n in names)}, got {v!r}")
        if kind == "empirical":
            d = {"dist": kind, "file": args[0]} | ({"column": args[1]} if len(args) > 1 else {})
        else:
            try:
                d = {"dist": kind} | {n: float(a) for n, a in zip(names, args, strict=False)}
            except ValueError:
                _fail(field, f"{kind} arguments must be numbers, got {v!r}")
        v = d
    if not isinstance(v, dict):
        _fail(field, f"must be an integer, a string such as lognormal:1000:0.5, or a mapping with 'dist', got {v!r}")
    kind = v.get("dist")
    _choice(f"{field}.dist", kind, tuple(_DISTS))
    _check_keys(field, v, ("dist",) + _DISTS[kind])
    if kind == "fixed":
        return {"dist": kind, "tokens": _int(f"{field}.tokens", v.get("tokens"))}
    if kind == "uniform":
        lo = _int(f"{field}.low", v.get("low"))
        return {"dist": kind, "low": lo, "high": _int(f"{field}.high", v.get("high"), lo)}
    if kind == "lognormal":
        out = {"dist": kind, "mean": _num(f"{field}.mean", v.get("mean"), 1.0, lo_open=False),
               "sigma": _num(f"{field}.sigma", v.get("sigma", 0.5), 0.0, lo_open=False)}
        if v.get("max_tokens") is not None:
            out["max_tokens"] = _int(f"{field}.max_tokens", v["max_tokens"])
        return out
    out = {"dist": kind, "file": _path(f"{field}.file", v.get("file"), base_dir)}
    if v.get("column") is not None:
        out["column"] = _str(f"{field}.column", v["column"])
    return out


# --------------------------------------------------------------------------- resolve
def _engine(where: str, raw: dict, base: dict) -> dict:
    out = {}
    for k in _ENGINE_KEYS:
        v = raw.get(k, base[k])
        f = f"{where}{k}"
        if k in ("tp", "pp", "ep"):
            out[k] = _int(f, v)
        elif k == "cuda_graphs":
            out[k] = _bool(f, v)
        else:
            out[k] = _str(f, v)
    return out


def scheduler_keys() -> tuple[str, ...]:
    """Keys a ``scheduler`` section may hold: ``kind`` and every registered policy's knobs."""
    keys = ["kind"]
    for kind in SCHEDULERS:
        keys += [k for k in scheduler_knobs(kind) if k not in keys]
    return tuple(keys)


def _coerce(cfg_cls, name: str, v):
    """Integral floats become ints for int knobs (YAML and TOML write 256.0 as well as 256)."""
    f = {x.name: x for x in dataclasses.fields(cfg_cls)}.get(name)
    if f is not None and "int" in str(f.type) and "float" not in str(f.type) and isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _scheduler(where: str, raw: dict, base: dict, prefill_pool: bool = False) -> dict:
    """A scheduler section: ``kind`` (a registered policy) and its knobs, defaults from the policy's
    config (or from ``base``, a resolved section of the same kind), checked by the config."""
    _check_keys(where.rstrip("."), raw, scheduler_keys())
    kinds = tuple(k for k, p in SCHEDULERS.items() if p.prefill_pool or not prefill_pool)
    kind = _choice(f"{where}kind", raw.get("kind", base.get("kind", "continuous")), kinds)
    allowed = scheduler_knobs(kind)
    wrong = [k for k in raw if k != "kind" and k not in allowed]
    if wrong:
        _fail(f"{where}{wrong[0]}", f"not a knob of the {kind} scheduler (it takes {', '.join(allowed)})")
    inherited = {k: v for k, v in base.items() if k in allowed} if base.get("kind") == kind else {}
    cfg_cls = SCHEDULERS[kind].config
    knobs = {**inherited, **{k: _coerce(cfg_cls, k, v) for k, v in raw.items() if k != "kind"}}
    cfg = scheduler_config(kind, where, **knobs)
    return {"kind": kind, **dataclasses.asdict(cfg)}


def _workload(raw: dict, base_dir: Path | None) -> dict:
    from workloads.usecases import get_use_case

    _check_keys("workload", raw, _SECTIONS["workload"])
    d = DEFAULTS["workload"]
    out: dict = {"use_case": None}
    out["concurrency"] = None if raw.get("concurrency") is None else _int("workload.concurrency", raw["concurrency"])
    out["think_time_s"] = _num("workload.think_time_s", raw.get("think_time_s", 0.0), 0.0, lo_open=False)
    if raw.get("think_time_s") and out["concurrency"] is None and not raw.get("turns", 1) > 1:
        _fail("workload.think_time_s", "only applies to closed-loop clients (workload.concurrency) and to "
                                       "conversations (workload.turns > 1)")
    out["shared_prefix_tokens"] = (0 if raw.get("shared_prefix_tokens") is None
                                   else _int("workload.shared_prefix_tokens", raw["shared_prefix_tokens"]))
    out["shared_prefix_fraction"] = _num("workload.shared_prefix_fraction", raw.get("shared_prefix_fraction", 1.0),
                                         0.0, lo_open=False, hi=1.0)
    out["prefix_groups"] = _int("workload.prefix_groups", raw.get("prefix_groups", 1))
    given = [k for k in _PREFIX[1:] if raw.get(k) is not None]
    if given and not out["shared_prefix_tokens"]:
        _fail(f"workload.{given[0]}", "only applies with workload.shared_prefix_tokens (the shared prompt's length)")
    uc = None
    if raw.get("use_case") is not None:
        uc = get_use_case(_str("workload.use_case", raw["use_case"]))
        out["use_case"] = uc.name
    if raw.get("trace") is not None:
        given = [k for k in _GENERATED if raw.get(k) is not None]
        if given:
            _fail(f"workload.{given[0]}", "give either workload.trace or a generated workload (rate_per_s, "
                  "arrival, prompt, output...), not both")
        out["trace"] = _path("workload.trace", raw["trace"], base_dir)
        out["requests"] = None if raw.get("requests") is None else _int("workload.requests", raw["requests"])
        return out
    out["requests"] = _int("workload.requests", raw.get("requests", d["requests"]))
    out["rate_per_s"] = _num("workload.rate_per_s", raw.get("rate_per_s", d["rate_per_s"]), MIN_RATE_PER_S,
                             lo_open=False)
    out["arrival"] = _choice("workload.arrival", raw.get("arrival", d["arrival"]), ARRIVALS)
    out["cv"] = _num("workload.cv", raw.get("cv", d["cv"]))
    if out["arrival"] != "gamma" and raw.get("cv") is not None and out["cv"] != 1.0:
        _fail("workload.cv", f"only applies to arrival: gamma (arrival is {out['arrival']})")
    sigma = _num("workload.length_sigma", raw.get("length_sigma", d["length_sigma"]), 0.0, lo_open=False)
    out["length_sigma"] = sigma
    out["turns"] = _int("workload.turns", raw.get("turns", 1))
    if uc is None and (raw.get("prompt") is None or raw.get("output") is None):
        uc = get_use_case("chatbot")  # the default lengths; its SLO only when no length was given
        if raw.get("prompt") is None and raw.get("output") is None:
            out["use_case"] = uc.name
    for key, uc_tokens in (("prompt", uc.prompt_tokens if uc else 0), ("output", uc.output_tokens if uc else 0)):
        if raw.get(key) is not None:
            out[key] = _parse_length(f"workload.{key}", raw[key], base_dir)
        elif sigma > 0:
            out[key] = {"dist": "lognormal", "mean": float(uc_tokens), "sigma": sigma}
        else:
            out[key] = {"dist": "fixed", "tokens": uc_tokens}
    return out


def _link(raw) -> dict:
    from hwmodels.spec import load_link

    if isinstance(raw, str):
        spec = load_link(raw)
        return {"name": spec.name, "bandwidth_bytes_per_s": spec.bandwidth, "latency_s": spec.latency_s}
    _check_keys("disaggregation.link", raw, ("name", "bandwidth_bytes_per_s", "latency_s"))
    return {"name": str(raw.get("name", "custom")),
            "bandwidth_bytes_per_s": _num("disaggregation.link.bandwidth_bytes_per_s", raw.get("bandwidth_bytes_per_s")),
            "latency_s": _num("disaggregation.link.latency_s", raw.get("latency_s", 0.0), 0.0, lo_open=False)}


def _scale_out_link(hardware: str) -> str:
    """The link a prefill replica ships KV caches over by default: the scale-out NIC named in its
    hardware's data file (its scale-up link when it names none)."""
    from hwmodels.device import scale_out_link
    from hwmodels.registry import load_device

    link = scale_out_link(load_device(hardware))
    if link is None:
        _fail("disaggregation.link", f"{hardware} names no scale-out link in its data file; give one "
                                     "(a link name from hwmodels/data/links, or {bandwidth_bytes_per_s, latency_s})")
    return link.name


def resolve(raw: dict, base_dir: str | Path | None = None, max_requests: int = MAX_REQUESTS) -> dict:
    """Check a scenario mapping and fill in the defaults; returns the complete, normalized mapping
    (the ``inputs`` of ``genz simulate --json``). Paths are resolved against ``base_dir``."""
    base = Path(base_dir) if base_dir is not None else None
    _check_keys("", raw, _TOP_KEYS)
    lay = None
    if raw.get("layout") is not None:  # an MoE cluster layout: each replica is one of its pools
        from genz.serving.layout_scenario import resolve_layout

        lay = resolve_layout(raw, base)
    out: dict = {"name": str(raw.get("name") or "")}
    out.update(lay["engine"] if lay else _engine("", raw, DEFAULTS))
    out["replicas"] = _int("replicas", raw.get("replicas", DEFAULTS["replicas"]))
    out["router"] = _choice("router", raw.get("router", DEFAULTS["router"]), tuple(ROUTERS))
    out["seed"] = _int("seed", raw.get("seed", DEFAULTS["seed"]), 0)
    out["scheduler"] = _scheduler("scheduler.", raw.get("scheduler") or {}, lay["scheduler"] if lay else DEFAULTS["scheduler"])
    out["workload"] = _workload(raw.get("workload") or {}, base)
    n = out["workload"].get("requests")
    if n is not None and n > max_requests:
        _fail("workload.requests", f"{n:,} requests is above the limit of {max_requests:,} per run (a run of "
              "100,000 takes seconds to a minute); raise it with --max-requests if you mean it")
    slo = raw.get("slo")
    if slo is not None:
        _check_keys("slo", slo, _SECTIONS["slo"])
        if slo.get("ttft_s") is None and slo.get("tpot_s") is None:
            _fail("slo", "give ttft_s, tpot_s or both (seconds)")
    uc_name = out["workload"]["use_case"]
    if slo is None and uc_name is not None:
        from workloads.usecases import get_use_case

        uc = get_use_case(uc_name)
        out["slo"] = {"ttft_s": uc.ttft_slo_s, "tpot_s": uc.tpot_slo_s}
    elif slo is not None:
        out["slo"] = {k: (math.inf if slo.get(k) is None else _num(f"slo.{k}", slo[k])) for k in ("ttft_s", "tpot_s")}
    else:
        out["slo"] = None
    dis = raw.get("disaggregation")
    if lay is not None and lay["link"] is not None:
        out["disaggregation"] = _layout_pools(dis or {}, out, lay)
    elif dis is not None:
        _check_keys("disaggregation", dis, _SECTIONS["disaggregation"])
        if not SCHEDULERS[out["scheduler"]["kind"]].prefill_pool:
            pools = ", ".join(k for k, p in SCHEDULERS.items() if p.prefill_pool)
            _fail("scheduler.kind", f"must be one of {pools} when disaggregation is set")
        d = {"prefill_replicas": _int("disaggregation.prefill_replicas", dis.get("prefill_replicas", 1))}
        d.update(_engine("disaggregation.", dis, out))
        d["link"] = _link(dis.get("link") or _scale_out_link(d["hardware"]))
        # one NIC per GPU (DGX-style): each prefill GPU ships its own shard of the KV cache
        d["link_count"] = _int("disaggregation.link_count", dis.get("link_count", d["tp"] * d["pp"]))
        d["overlap"] = _bool("disaggregation.overlap", dis.get("overlap", True))
        d["router"] = _choice("disaggregation.router", dis.get("router", "round_robin"), tuple(ROUTERS))
        d["scheduler"] = _scheduler("disaggregation.scheduler.", dis.get("scheduler") or {}, out["scheduler"],
                                    prefill_pool=True)
        out["disaggregation"] = d
    else:
        out["disaggregation"] = None
    memo = raw.get("memo") or {}
    _check_keys("memo", memo, _SECTIONS["memo"])
    out["memo"] = {k: _int(f"memo.{k}", memo.get(k, v)) for k, v in DEFAULTS["memo"].items()}
    sat = raw.get("saturation") or {}
    _check_keys("saturation", sat, _SECTIONS["saturation"])
    ds = DEFAULTS["saturation"]
    out["saturation"] = {
        "growth_fraction": _num("saturation.growth_fraction", sat.get("growth_fraction", ds["growth_fraction"]), 0, hi=1),
        "min_arrivals": _int("saturation.min_arrivals", sat.get("min_arrivals", ds["min_arrivals"])),
        "max_sim_time_s": None if sat.get("max_sim_time_s") is None else _num("saturation.max_sim_time_s",
                                                                               sat["max_sim_time_s"]),
        "max_queue": None if sat.get("max_queue") is None else _int("saturation.max_queue", sat["max_queue"]),
        "stop": _bool("saturation.stop", sat.get("stop", ds["stop"])),
    }
    out["window_s"] = None if raw.get("window_s") is None else _num("window_s", raw["window_s"])
    out["placement"] = _placement(raw.get("placement"), out, base)
    out["layout"] = {"file": lay["file"], "role": "decode"} if lay else None
    return out


def _layout_pools(dis: dict, out: dict, lay: dict) -> dict:
    """The disaggregation section of a layout with a prefill pool (see :mod:`genz.serving.layout_scenario`)."""
    if not SCHEDULERS[out["scheduler"]["kind"]].prefill_pool:
        pools = ", ".join(k for k, p in SCHEDULERS.items() if p.prefill_pool)
        _fail("scheduler.kind", f"must be one of {pools}: the layout's prefill pool makes the run disaggregated")
    d = {"prefill_replicas": _int("disaggregation.prefill_replicas", dis.get("prefill_replicas", 1))}
    d.update({k: out[k] for k in _ENGINE_KEYS})
    d["link"] = lay["link"]
    d["link_count"] = 1  # the link is already every prefill GPU's NICs together
    d["overlap"] = _bool("disaggregation.overlap", dis.get("overlap", True))
    d["router"] = _choice("disaggregation.router", dis.get("router", "round_robin"), tuple(ROUTERS))
    d["scheduler"] = _scheduler("disaggregation.scheduler.", dis.get("scheduler") or {}, lay["prefill_scheduler"],
                                prefill_pool=True)
    d["layout"] = {"file": lay["file"], "role": "prefill"}
    return d


def _placement(raw, engine: dict, base_dir: Path | None) -> dict | None:
    """The ``placement`` section: a ``genz place`` results file and the method to use, checked
    against the replica's model (experts per layer) and ``ep`` (GPUs of the placement)."""
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = {"file": raw}
    if not isinstance(raw, dict):
        _fail("placement", f"must be a mapping {{file, method}} or a file name, got {raw!r}")
    _check_keys("placement", raw, _SECTIONS["placement"])
    from genz.ep_traffic import PLACEMENT_METHODS, load_placement_traffic
    from workloads import load_model

    path = _path("placement.file", raw.get("file"), base_dir)
    method = _choice("placement.method", raw.get("method", "ilp"), PLACEMENT_METHODS)
    try:
        traffic, head = load_placement_traffic(path, method)
    except ValueError as exc:
        _fail("placement.file", str(exc).removeprefix("placement: "))
    model = load_model(engine["model"])
    if not model.is_moe:
        _fail("placement", f"{model.name} has no experts to place")
    if head.get("experts") not in (None, model.experts):
        _fail("placement.file", f"{path} places {head['experts']} experts per layer; {model.name} has {model.experts}")
    if traffic.gpus != engine["ep"]:
        _fail("placement.file", f"{path} places experts on {traffic.gpus} GPUs ({traffic.nodes} x "
                                f"{traffic.gpus_per_node}); the replica runs ep={engine['ep']} (set ep to match)")
    return {"file": path, "method": method}


def load_scenario(path: str | Path | None = None, overrides: dict | None = None) -> tuple[Scenario, dict]:
    """Read ``path`` (YAML or TOML; ``None`` for defaults only), apply ``overrides`` (same keys), check
    and build. Returns the scenario and the resolved mapping."""
    raw = load_file(path) if path is not None else {}
    if overrides:
        raw = merge(raw, overrides)
    spec = resolve(raw, Path(path).parent if path is not None else None)
    return build_scenario(spec), spec
