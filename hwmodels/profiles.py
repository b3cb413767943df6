"""Which efficiency profile a GPU runs on, and what that profile stands on.

Every shipped GPU has a profile; none runs at datasheet efficiency 1 unless asked for
(``profile="datasheet"``). A profile's **basis**, in increasing order of trust:

- ``measured``: fitted by ``genz calibrate`` on the GPU's own kernel runs (the H200 today); the file
  is a whole :class:`~hwmodels.gpu.EfficiencyProfile`.
- ``transferred``: built from the profile of a measured GPU of the same architecture by the rules of
  :func:`transfer` (H100, H20, GH200, H800 from the H200). The file is a recipe: ``transfer_from``,
  ``expected_error``, optional public ``checks``.
- ``prior``: other architectures. The transfer rules give a starting point (each such number named
  an assumption), then every parameter a public measurement of the target informs is set by the
  ratio rule of :func:`apply_published`.

Lookup: a name (a GPU name for ``"auto"``, or a profile name given by the user) is searched as
``<dir>/<name>.json`` in the directories of the ``GENZ_PROFILE_PATH`` environment variable (``os.pathsep``
separated; a user's ``genz calibrate --out`` lands there) and then in ``hwmodels/data/profiles``, so a
user's own calibration of a GPU wins over anything shipped, and a user's recalibrated source GPU
feeds every profile transferred from it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from hwmodels.gpu import BASES, ERROR_QUANTITIES, PROFILE_DIR, EfficiencyProfile
from hwmodels.spec import GPUSpec, load_gpu, read_json

ENV_VAR = "GENZ_PROFILE_PATH"
#: Fractions of a datasheet peak: kept when transferring within an architecture.
FRACTIONS = ("attention_eff", "attn_decode_eff", "memory_eff", "write_eff", "l2_read_eff", "rw_mix_eff")
#: Kernel geometry and overlap shapes: properties of the kernels an architecture runs, kept.
GEOMETRY = ("gemm_min_rows", "attn_tile_rows", "attn_split_tile_rows", "attn_ctas_per_sm", "attn_tail",
            "overlap_p", "eager_overlap_p")
#: Fixed costs in seconds (launch, graph gap, host issue): host- and driver-side, kept.
SECONDS = ("graph_gap_s", "eager_launch_s")
#: Published figures a prior may carry, and the profile fields each one scales.
PUBLISHED_KINDS = {
    "gemm_best_eff": ("compute_eff",),
    "hbm_bw_eff": ("memory_eff", "write_eff", "rw_mix_eff"),
    "attention_fwd_eff": ("attention_eff", "attn_decode_eff"),
    "idle_power_w": ("idle_power_w",),
    "launch_s": ("floor_s",),
    "graph_gap_s": ("graph_gap_s",),
}
#: Dtypes a measured profile may lack, and the measured dtype whose figure stands in for each.
_NEAREST_DTYPE = {"fp4": "fp8", "int4": "int8", "fp16": "bf16", "bf16": "fp16", "fp8": "bf16", "int8": "bf16",
                  "tf32": "bf16", "fp32": "tf32"}


@dataclass(frozen=True)
class ProfileRecipe:
    """A transferred or prior profile as its file states it (see the module docstring)."""

    name: str
    basis: str
    architecture: str
    transfer_from: str
    published: dict = field(default_factory=dict)
    expected_error: dict = field(default_factory=dict)
    checks: tuple = ()
    source: str = ""
    path: str = ""


def search_path() -> list[Path]:
    """User profile directories (``GENZ_PROFILE_PATH``), then the shipped one."""
    user = [Path(p).expanduser() for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p.strip()]
    return [*user, PROFILE_DIR]


def find_profile_file(name: str) -> Path | None:
    """The first ``<dir>/<name>.json`` on :func:`search_path`, or ``None``."""
    for d in search_path():
        p = d / f"{name}.json"
        if p.is_file():
            return p
    return None


def _read(path: Path) -> dict:
    data = read_json(path, "profile")
    if not isinstance(data, dict):
        raise ValueError(f"profile: {path} must hold a JSON object")
    return data


def parse_recipe(data: dict, where: str) -> ProfileRecipe:
    """Check a transferred/prior profile file and return it as a :class:`ProfileRecipe`."""
    allowed = {"name", "basis", "architecture", "transfer_from", "published", "expected_error", "checks", "source"}
    unknown = set(data) - allowed
    if unknown:
        raise ValueError(f"{where}: unknown fields {sorted(unknown)}; allowed: {sorted(allowed)}")
    basis = data.get("basis")
    if basis not in ("transferred", "prior"):
        raise ValueError(f"{where}: a profile with 'transfer_from' has basis 'transferred' or 'prior', got {basis!r}")
    for key in ("name", "transfer_from", "architecture"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ValueError(f"{where}: '{key}' must be a non-empty string")
    published = data.get("published", {}) or {}
    if basis == "transferred" and published:
        raise ValueError(f"{where}: a transferred profile carries no 'published' figures (those make a prior)")
    for key, entry in published.items():
        kind = key.split(".")[0]
        if kind not in PUBLISHED_KINDS:
            raise ValueError(f"{where}: published.{key}: unknown figure; allowed: {', '.join(PUBLISHED_KINDS)}")
        if not isinstance(entry, dict) or "value" not in entry or "source" not in entry:
            raise ValueError(f"{where}: published.{key} needs 'value' and 'source'")
        v = entry["value"]
        if not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"{where}: published.{key}.value must be a finite number > 0, got {v!r}")
        if kind not in ("idle_power_w", "launch_s", "graph_gap_s"):
            ref = entry.get("reference")
            if not isinstance(ref, int | float) or not math.isfinite(ref) or ref <= 0 or "reference_source" not in entry:
                raise ValueError(f"{where}: published.{key} needs 'reference' (the same benchmark on the measured "
                                 "GPU, a number > 0) and 'reference_source'")
    bands = {}
    for q, entry in (data.get("expected_error", {}) or {}).items():
        if q not in ERROR_QUANTITIES or not isinstance(entry, dict) or not isinstance(entry.get("value"), int | float) \
                or not 0 < entry["value"] < 10 or "source" not in entry:
            raise ValueError(f"{where}: expected_error.{q} must name one of {', '.join(ERROR_QUANTITIES)} with "
                             "{'value': fraction in (0, 10), 'source': text}")
        bands[q] = entry
    checks = data.get("checks", []) or []
    if not isinstance(checks, list) or not all(isinstance(c, dict) and "kind" in c and "source" in c for c in checks):
        raise ValueError(f"{where}: 'checks' must be a list of objects with 'kind' and 'source'")
    return ProfileRecipe(name=data["name"], basis=basis, architecture=data["architecture"],
                         transfer_from=data["transfer_from"], published=dict(published), expected_error=bands,
                         checks=tuple(checks), source=str(data.get("source", "")), path=where)


def transfer(prof: EfficiencyProfile, src: GPUSpec, dst: GPUSpec, *, name: str | None = None) -> EfficiencyProfile:
    """``prof`` (fitted on ``src``) carried to ``dst`` by these rules, each recorded in ``sources``:

    - fractions of a datasheet peak (``compute_eff``, ``attention_eff``, ``memory_eff``, ``write_eff``,
      ``l2_read_eff``, ``rw_mix_eff``, ``attn_decode_eff``) are kept: the datasheet peaks already carry
      the clock, SM count and memory width, and the same SMs and memory controllers reach the same
      fraction of them (the MAMF table measures H100 and H200 at the same 80.3 % of bf16 peak);
    - kernel geometry and overlap shapes (``gemm_min_rows``, ``attn_*tile*``, ``attn_tail``,
      ``overlap_p``...) are kept: the same libraries launch the same tiles on the same architecture;
    - fixed costs in seconds (``floor_s``, ``graph_gap_s``, ``eager_launch_s``) are kept: launch and
      host-issue latency live in the driver and the host, not in the SM count;
    - ``attn_cta_s``, a per-thread-block cost in cycles of one SM, scales with src clock / dst clock;
    - ``attn_exp_rate``, exponentials per second of the whole GPU (special-function units per SM x
      SMs x clock), scales with (SMs x clock) of dst over src;
    - energy per FLOP and per byte are kept (same process and memory technology class: assumption);
      idle power scales with the power limit (assumption: idle draw follows the board's power class);
      across architectures (another process node) none of the three is carried: the target's spec
      file's values stand.

    Assumption when ``src`` and ``dst`` differ in architecture (the start of a prior): the same rules,
    with every carried number marked as crossing architectures in ``sources``.
    """
    same = bool(src.architecture) and src.architecture == dst.architecture
    why = (f"transferred from {src.name} ({src.architecture or 'unknown architecture'})" if same else
           f"assumption: carried from {src.name} ({src.architecture or '?'}) to {dst.architecture or '?'} "
           "across architectures, no public figure of this GPU")
    sources: dict[str, str] = {}

    def note(key: str, rule: str) -> None:
        sources[key] = f"{why}: {rule}"

    for d in prof.compute_eff:
        note(f"compute_eff.{d}", "fraction of datasheet peak kept")
    for f in FRACTIONS:
        note(f, "fraction of datasheet bandwidth/peak kept")
    for f in (*GEOMETRY, *SECONDS):
        note(f, "kernel geometry / fixed seconds kept")
    for k in prof.floor_s:
        note(f"floor_s.{k}", "fixed seconds per kernel kept")
    clock = src.clock_hz / dst.clock_hz
    sm_clock = (dst.sm_count * dst.clock_hz) / (src.sm_count * src.clock_hz)
    note("attn_cta_s", f"cycles per thread block kept: x clock ratio {clock:.3f}")
    note("attn_exp_rate", f"special-function units x SMs x clock: x {sm_clock:.3f}")
    idle, pj_flop, pj_byte = None, {}, {}
    if same:
        pj_flop, pj_byte = dict(prof.pj_per_flop), dict(prof.pj_per_byte)
        for d in pj_flop:
            note(f"pj_per_flop.{d}", "energy per FLOP kept (assumption: same process class)")
        for lvl in pj_byte:
            note(f"pj_per_byte.{lvl}", "energy per byte kept (assumption: same memory technology class)")
        if prof.idle_power_w is not None:
            idle = prof.idle_power_w * dst.power_limit_w / src.power_limit_w
            note("idle_power_w", f"x power limit ratio {dst.power_limit_w:g} / {src.power_limit_w:g} W (assumption)")
    else:
        for key in ("pj_per_flop", "pj_per_byte", "idle_power_w"):
            sources[key] = (f"{dst.name} spec file (another architecture and process than {src.name}: energy "
                            "coefficients and idle power are not carried across)")
    return replace(
        prof, name=name or f"{dst.name}-from-{src.name}", compute_eff=dict(prof.compute_eff),
        floor_s=dict(prof.floor_s), attn_cta_s=prof.attn_cta_s * clock, attn_exp_rate=prof.attn_exp_rate * sm_clock,
        pj_per_flop=pj_flop, pj_per_byte=pj_byte, idle_power_w=idle,
        basis="transferred" if same else "prior", architecture=dst.architecture, transferred_from=src.name,
        sources={**sources, **{k: v for k, v in prof.sources.items() if k.startswith("expected_error.")}},
        expected_error={}, extra={"transferred_from": {"profile": prof.name, "source": prof.source}},
        source=f"{why} by the rules of hwmodels.profiles.transfer")


def apply_published(prof: EfficiencyProfile, published: dict, ref: EfficiencyProfile) -> EfficiencyProfile:
    """The ratio rule of a prior: each parameter a published figure informs becomes
    ``ref_param x published / reference``, where ``reference`` is the same benchmark on the measured GPU
    that ``ref`` was fitted on, so the model-to-benchmark relation measured there carries over.

    - ``gemm_best_eff.<dtype>`` -> ``compute_eff[dtype]`` (a dtype the measured profile lacks uses the
      nearest it has: fp4 -> fp8, int4 -> int8, ...); dtypes of the target without a published figure
      get the bf16 ratio (assumption: efficiency relative to bf16 as on the measured GPU);
    - ``hbm_bw_eff`` -> ``memory_eff``, ``write_eff`` and ``rw_mix_eff`` (one ratio for the bus);
    - ``attention_fwd_eff.<dtype>`` -> ``attention_eff`` and ``attn_decode_eff``;
    - ``idle_power_w`` and ``graph_gap_s`` are taken as published; ``launch_s`` scales every
      ``floor_s`` by published / the measured profile's bf16 GEMM floor.
    Efficiencies are capped at 1 (a published figure above its reference does not make a kernel beat
    the datasheet).
    """
    p = replace(prof, compute_eff=dict(prof.compute_eff), floor_s=dict(prof.floor_s), sources=dict(prof.sources))
    ratios: dict[str, float] = {}
    for key, e in published.items():
        kind, _, dtype = key.partition(".")
        src = f"published: {e['source']}"
        if "reference" in e:
            src += f"; reference {e['reference']:g}: {e.get('reference_source', '')}"
        if kind == "gemm_best_eff":
            d = dtype or "bf16"
            base_d = d if d in ref.compute_eff else _NEAREST_DTYPE.get(d, "bf16")
            r = float(e["value"]) / float(e["reference"])
            ratios[d] = r
            p.compute_eff[d] = min(1.0, float(ref.compute_eff.get(base_d, ref.compute_eff.get("bf16", 1.0))) * r)
            p.sources[f"compute_eff.{d}"] = f"{src} (ratio rule on {ref.name} compute_eff.{base_d})"
        elif kind == "hbm_bw_eff":
            r = float(e["value"]) / float(e["reference"])
            for f in ("memory_eff", "write_eff", "rw_mix_eff"):
                v = getattr(ref, f)
                if v:
                    p = replace(p, **{f: min(1.0, v * r) if f != "rw_mix_eff" else v * r})
                    p.sources[f] = f"{src} (ratio rule on {ref.name} {f})"
        elif kind == "attention_fwd_eff":
            r = float(e["value"]) / float(e["reference"])
            for f in ("attention_eff", "attn_decode_eff"):
                v = getattr(ref, f)
                if v:
                    p = replace(p, **{f: min(1.0, v * r)})
                    p.sources[f] = f"{src} (ratio rule on {ref.name} {f})"
        elif kind == "idle_power_w":
            p = replace(p, idle_power_w=float(e["value"]))
            p.sources["idle_power_w"] = src
        elif kind == "graph_gap_s":
            p = replace(p, graph_gap_s=float(e["value"]))
            p.sources["graph_gap_s"] = src
        elif kind == "launch_s":
            base = float(ref.floor_s.get("gemm/bf16", ref.floor_s.get("gemm", 0.0)) or 0.0)
            if base > 0:
                scale = float(e["value"]) / base
                p.floor_s = {k: v * scale for k, v in p.floor_s.items()}
                for k in p.floor_s:
                    p.sources[f"floor_s.{k}"] = f"{src} (x {scale:.3f} on {ref.name} floors)"
    if "bf16" in ratios:
        for d in list(p.compute_eff):
            if d not in ratios and d != "default":
                p.compute_eff[d] = min(1.0, p.compute_eff[d] * ratios["bf16"])
                p.sources[f"compute_eff.{d}"] = (f"assumption: no published {d} figure; {ref.name} compute_eff.{d} "
                                                 f"x the bf16 ratio {ratios['bf16']:.3f}")
    return p


def _measured_root(name: str, seen: tuple[str, ...] = ()) -> EfficiencyProfile:
    """The profile named by a recipe's ``transfer_from`` (itself resolved, so chains work)."""
    if name in seen:
        raise ValueError(f"profile: transfer_from cycle {' -> '.join((*seen, name))}")
    spec = load_gpu(name)
    return _resolve(spec.name, "auto", (*seen, name))


def _from_recipe(r: ProfileRecipe, spec: GPUSpec, seen: tuple[str, ...]) -> EfficiencyProfile:
    src_spec = load_gpu(r.transfer_from)
    src = _measured_root(src_spec.name, seen)
    if src.basis not in ("measured", "transferred"):
        raise ValueError(f"{r.path}: transfer_from {src_spec.name} has basis {src.basis!r}; transfer from a "
                         "measured (or transferred) profile")
    if r.basis == "transferred" and src_spec.architecture != spec.architecture:
        raise ValueError(f"{r.path}: basis 'transferred' needs the same architecture, but {src_spec.name} is "
                         f"{src_spec.architecture!r} and {spec.name} is {spec.architecture!r}; use basis 'prior'")
    p = transfer(src, src_spec, spec, name=r.name)
    if r.published:
        p = apply_published(p, r.published, src)
    bands = {q: float(e["value"]) for q, e in r.expected_error.items()}
    sources = {k: v for k, v in p.sources.items() if not k.startswith("expected_error.")}
    sources.update({f"expected_error.{q}": str(e["source"]) for q, e in r.expected_error.items()})
    return replace(p, basis=r.basis, architecture=r.architecture, expected_error=bands, sources=sources,
                   source=r.source or p.source, extra={**p.extra, "checks": list(r.checks), "recipe": r.path})


def load_profile_file(path: str | Path, spec: GPUSpec | None = None) -> EfficiencyProfile:
    """A profile file of any basis: a whole profile, or a transferred/prior recipe for ``spec``."""
    p = Path(path)
    data = _read(p)
    if "transfer_from" in data:
        recipe = parse_recipe(data, str(p))
        if spec is None:
            raise ValueError(f"profile: {p} is a {recipe.basis} recipe; it needs the GPU it is for")
        return _from_recipe(recipe, spec, (spec.name,))
    return EfficiencyProfile.from_dict(data, where=str(p))


def recipe_for(name: str) -> ProfileRecipe | None:
    """The recipe file found for ``name`` on the search path, if that file is a recipe."""
    path = find_profile_file(name)
    if path is None:
        return None
    data = _read(path)
    return parse_recipe(data, str(path)) if "transfer_from" in data else None


def resolve_profile(spec: GPUSpec, profile: str | Path | EfficiencyProfile | None = "auto") -> EfficiencyProfile:
    """The profile a GPU runs on: ``"auto"`` (the user's or shipped profile for this GPU), ``"datasheet"``,
    a profile name on the search path, a JSON path, or an :class:`EfficiencyProfile` itself."""
    if isinstance(profile, EfficiencyProfile):
        return profile
    key = "auto" if profile is None else str(profile)
    if not key.strip():
        raise ValueError("profile: empty name; use auto, datasheet, a profile name or a JSON file")
    return _resolve(spec.name, key, (spec.name,))


def _resolve(gpu: str, key: str, seen: tuple[str, ...]) -> EfficiencyProfile:
    return _resolve_cached(gpu, key, seen, os.environ.get(ENV_VAR, ""))


@lru_cache(maxsize=256)
def _resolve_cached(gpu: str, key: str, seen: tuple[str, ...], env: str) -> EfficiencyProfile:
    spec = load_gpu(gpu)
    if key == "datasheet":
        return EfficiencyProfile()
    if key == "auto":
        path = find_profile_file(spec.name)
        if path is None:
            return EfficiencyProfile(source="datasheet roofline: no profile found for this GPU on "
                                            f"{ENV_VAR} or in the shipped profiles")
    else:
        path = Path(key) if key.endswith(".json") else find_profile_file(key)
        if path is None or not path.is_file():
            where = ", ".join(str(d) for d in search_path())
            raise ValueError(f"profile: no profile {key!r} (looked for a JSON file, and for {key}.json in {where}); "
                             "use auto, datasheet, a profile name or a JSON file")
    data = _read(path)
    if "transfer_from" in data:
        return _from_recipe(parse_recipe(data, str(path)), spec, seen)
    prof = EfficiencyProfile.from_dict(data, where=str(path))
    if prof.basis == "datasheet" and key == "auto" and data.get("basis") is None:
        prof = replace(prof, basis="measured")  # a calibration written before profiles said their basis
    return prof


def basis_line(prof: EfficiencyProfile) -> str:
    """One line for a terminal: what the answer stands on and the error to expect."""
    if prof.basis == "measured":
        head = f"basis: measured ({prof.name})"
    elif prof.basis == "transferred":
        head = f"basis: transferred from {prof.transferred_from} ({prof.architecture or 'same architecture'})"
    elif prof.basis == "prior":
        head = f"basis: prior from public measurements ({prof.architecture or 'other architecture'})"
    else:
        return "basis: datasheet roofline (every efficiency 1): a lower bound on time, no error band"
    labels = (("tpot", "decode"), ("ttft", "prefill"), ("energy", "energy"))
    bands = [f"~{100 * prof.expected_error[q]:.0f} % {label}" for q, label in labels if q in prof.expected_error]
    return head + ("; expected error " + ", ".join(bands) if bands else "; expected error not stated")


__all__ = ["BASES", "ENV_VAR", "ProfileRecipe", "apply_published", "basis_line", "find_profile_file",
           "load_profile_file", "parse_recipe", "recipe_for", "resolve_profile", "search_path", "transfer"]
