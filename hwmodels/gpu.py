"""A GPU as a roofline with measured efficiencies, per-kernel overheads and an energy model.

Time of one operator instance on one GPU::

    t_gpu = launches * floor[op_class(/dtype)] + smax_p(t_compute, t_memory)
    t_compute = work_flops / (peak[dtype] * efficiency)
    t_memory  = HBM reads / (bw * memory_eff) + L2 reads / (bw * l2_read_eff) + writes / (bw * write_eff)
                + min(HBM reads, writes) / (bw * rw_mix_eff)
    CUDA graphs: t = t_gpu + launches * graph_gap_s   (gap only where the graph mixes kernels)
    eager:       the host issues the step's kernels asynchronously, ``eager_launch_s`` each (rows
                 without GPU work may still cost host time: Python between kernels); the step takes
                 smax_q(sum of host time, sum of t_gpu) with q = ``eager_overlap_p``, spread over the
                 rows in proportion

``smax_p(a, b) = (a^p + b^p)^(1/p)`` is a smooth maximum: compute and memory overlap imperfectly
(``overlap_p``; 0 means the hard max of the plain roofline). Refinements, each off in the
datasheet profile (its zero value), each a mechanism rather than a per-shape number:

- GEMM tile padding: a GEMM of m rows costs at least ``gemm_min_rows`` rows of tensor-core work
  (the smallest tile the library launches), which is why skinny GEMMs turn compute-bound early;
  weight-only quantized GEMMs (``w4a16``...) run dequantizing kernels with a 16-row tile instead.
- Attention as FlashAttention-2 runs it (``attn_tile_rows`` = rows of a query tile, > 0 turns it on):
  prefill pays one tile of query rows past the causal diagonal, a fixed cost per thread block
  (``attn_cta_s``) and a tail of one block row (``attn_tail``); decode pads the query rows of each
  KV head (H / kv_heads of them) to a tile, splits the KV sequence over thread blocks when the
  (sequence, KV head) pairs fill less than 0.8 of the SMs (smaller tile ``attn_split_tile_rows``
  and one more kernel that combines the splits), and pays wave quantization otherwise. Every score
  also costs one exponential at ``attn_exp_rate`` per second (the special-function units), which
  is why small head dims reach fewer tensor-core FLOP/s.
- L2: elementwise operands whose whole footprint fits in L2 are read at ``l2_read_eff``.
- Mixed traffic: a kernel that streams reads and writes together (a copy, an elementwise op) pays
  for the bus turnarounds, ``min(reads, writes) / (bw * rw_mix_eff)`` (0: not modelled).

Collective rows cost the alpha-beta model of :mod:`hwmodels.collectives` on the scale-up or
scale-out link. Dynamic energy = work_flops * pJ/FLOP[dtype] + bytes * pJ/byte (HBM or L2), where
attention rows use ``pj_per_flop["attention"]`` when the profile has it (softmax and rescaling make
an attention FLOP dearer than a GEMM FLOP) and count their padded tiles; the
caller adds idle power over the step and caps average power at the limit.

The ``datasheet`` profile (all efficiencies 1, no overheads, hard max) is the honest roofline of the
spec sheet; a calibration profile (``hwmodels/data/profiles/<gpu>.json``, written by
``genz calibrate``) replaces these numbers with ones fitted to kernel measurements.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from hwmodels.collectives import COLLECTIVE_TIME
from hwmodels.gpu_attention import ACT_BYTES, NUMPY, SCALAR, attention_cost
from hwmodels.optable import OP_CLASSES, WIDE_FIELDS, OpCosts, OperatorTable
from hwmodels.spec import GPUSpec, LinkSpec, load_gpu, load_link

PROFILE_DIR = Path(__file__).parent / "data" / "profiles"
#: What a profile can stand on, in increasing order of trust (see :mod:`hwmodels.profiles`).
BASES = ("datasheet", "prior", "transferred", "measured")
#: Quantities a profile states an expected relative error for.
ERROR_QUANTITIES = ("ttft", "tpot", "energy", "kernels")
GEMM_CLASSES = ("gemm", "lm_head", "router")
L2_CLASSES = ("elementwise", "norm", "embedding", "moe_dispatch")
_DTYPE_BITS = {"fp32": 32.0, "tf32": 32.0, "bf16": 16.0, "fp16": 16.0, "fp8": 8.0, "int8": 8.0, "int4": 4.0, "fp4": 4.0}
#: Rows of tensor-core work a weight-only quantized GEMM, or one expert's share of a fused MoE GEMM,
#: pays at least (assumption: the dequantizing kernels engines use for low-bit weights, e.g. Marlin
#: (Frantar et al., 2024), tile 16 rows: one m16n8k16 MMA; vLLM's fused_moe pads each expert's tokens
#: to its BLOCK_SIZE_M, 16 in its small-batch configs), not the library GEMM tile the calibration measured.
WEIGHT_ONLY_MIN_ROWS = 16.0
#: Up to this many configurations, attention rows are costed one float at a time (numpy's per-call
#: overhead on a few elements exceeds the arithmetic); the values are the same either way.
SCALAR_COLUMNS = 4
#: Where attention's inputs (m, n, k, flops, bytes read and written, kernels) sit in a table's
#: ``stacked`` block (:data:`hwmodels.optable.WIDE_FIELDS`).
_ATTN_FIELDS = np.array([WIDE_FIELDS.index(f) for f in ("m", "n", "k", "flops", "bytes_read", "bytes_written",
                                                          "kernels")])[:, None]
#: Host time a data-dependent wait adds in eager mode beyond the launch that follows it
#: (assumption: the device-to-host copy of a small tensor and the stream synchronisation, ~10 us).
HOST_SYNC_S = 10e-6


@dataclass
class EfficiencyProfile:
    """Achieved fractions of datasheet peaks, fixed per-kernel costs (s) and kernel mechanisms.

    ``compute_eff``: dtype -> fraction of dense peak reached by large GEMMs (key ``default`` for
    the rest); ``attention_eff`` the same for attention (``attn_decode_eff`` for decode kernels, 0:
    the same); ``memory_eff`` / ``write_eff`` / ``l2_read_eff`` fractions of datasheet bandwidth for
    HBM reads, writes (0: as reads) and L2-resident reads (0: no L2 model); ``rw_mix_eff`` the
    turnaround cost of mixed read/write streams (0: none); ``floor_s``: op class, or
    ``class/dtype``, -> fixed seconds per kernel; ``graph_gap_s`` / ``eager_launch_s``: per-kernel
    cost inside a CUDA graph / host time per eagerly launched kernel; ``overlap_p``: smooth-max
    exponent (0: hard max); the ``gemm_*`` and ``attn_*`` fields are described in the module
    docstring. ``pj_per_flop`` / ``pj_per_byte`` override the spec's energy coefficients,
    ``idle_power_w`` the spec's idle power. ``source`` says where the numbers came from; ``extra``
    holds fit diagnostics.

    What the profile stands on: ``basis`` is ``measured`` (fitted on this GPU's own kernel runs),
    ``transferred`` (from a measured GPU of the same ``architecture``, named in ``transferred_from``,
    by the rules of :mod:`hwmodels.profiles`), ``prior`` (other architectures: published
    measurements of this GPU by a ratio rule, the rest transferred) or ``datasheet`` (every
    efficiency 1: the ideal roofline). ``sources`` maps a parameter (``compute_eff.bf16``,
    ``memory_eff``...) to where its number came from; ``expected_error`` maps a quantity (``ttft``,
    ``tpot``, ``energy``) to the relative error to expect of predictions on this profile (a
    fraction, from validation residuals of the basis; its source in ``sources["expected_error.<q>"]``).
    """

    name: str = "datasheet"
    compute_eff: dict = field(default_factory=dict)
    attention_eff: float = 1.0
    memory_eff: float = 1.0
    write_eff: float = 0.0
    l2_read_eff: float = 0.0
    rw_mix_eff: float = 0.0
    floor_s: dict = field(default_factory=dict)
    graph_gap_s: float = 0.0
    eager_launch_s: float = 0.0
    eager_overlap_p: float = 0.0
    overlap_p: float = 0.0
    gemm_min_rows: float = 0.0
    attn_tile_rows: float = 0.0
    attn_split_tile_rows: float = 0.0
    attn_cta_s: float = 0.0
    attn_tail: float = 0.0
    attn_decode_eff: float = 0.0
    attn_ctas_per_sm: float = 1.0
    attn_exp_rate: float = 0.0
    pj_per_flop: dict = field(default_factory=dict)
    pj_per_byte: dict = field(default_factory=dict)
    idle_power_w: float | None = None
    source: str = "datasheet roofline: every efficiency 1, no per-kernel overhead"
    extra: dict = field(default_factory=dict)
    basis: str = "datasheet"
    architecture: str = ""
    transferred_from: str = ""
    sources: dict = field(default_factory=dict)
    expected_error: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, where: str = "profile") -> EfficiencyProfile:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{where}: unknown fields {sorted(unknown)}; allowed: {sorted(known)}")
        data = dict(data)
        _check_types(cls, data, where)
        sources = dict(data.pop("sources", {}) or {})
        bands = {}
        for q, v in dict(data.pop("expected_error", {}) or {}).items():
            if isinstance(v, dict):
                if "value" not in v or "source" not in v:
                    raise ValueError(f"{where}: expected_error.{q} needs 'value' and 'source', got {sorted(v)}")
                sources[f"expected_error.{q}"] = str(v["source"])
                v = v["value"]
            if q not in ERROR_QUANTITIES or not isinstance(v, int | float) or not 0 < v < 10:
                raise ValueError(f"{where}: expected_error.{q} must name one of {', '.join(ERROR_QUANTITIES)} "
                                 f"with a fraction in (0, 10), got {v!r}")
            bands[q] = float(v)
        prof = cls(**data, sources=sources, expected_error=bands)
        if prof.basis not in BASES:
            raise ValueError(f"{where}: basis must be one of {', '.join(BASES)}, got {prof.basis!r}")
        for k, v in prof.compute_eff.items():
            if not 0 < float(v) <= 1.5:
                raise ValueError(f"{where}: compute_eff[{k}] must be in (0, 1.5], got {v}")
        for name in ("memory_eff", "attention_eff"):
            if not 0 < getattr(prof, name) <= 1.5:
                raise ValueError(f"{where}: {name} must be in (0, 1.5], got {getattr(prof, name)}")
        for name in ("write_eff", "l2_read_eff", "rw_mix_eff", "attn_decode_eff"):
            if not 0 <= getattr(prof, name) <= 5:
                raise ValueError(f"{where}: {name} must be in [0, 5] (0: not modelled), got {getattr(prof, name)}")
        for name in ("graph_gap_s", "eager_launch_s", "eager_overlap_p", "overlap_p", "gemm_min_rows",
                     "attn_tile_rows", "attn_split_tile_rows", "attn_cta_s", "attn_tail",
                     "attn_exp_rate"):
            if not getattr(prof, name) >= 0:
                raise ValueError(f"{where}: {name} must be >= 0, got {getattr(prof, name)}")
        for k, v in prof.floor_s.items():
            if k.split("/")[0] not in OP_CLASSES or not float(v) >= 0:
                raise ValueError(f"{where}: floor_s[{k!r}] must name an op class ({', '.join(OP_CLASSES)}), "
                                 f"optionally '/dtype', with seconds >= 0; got {v}")
        if prof.attn_ctas_per_sm <= 0:
            raise ValueError(f"{where}: attn_ctas_per_sm must be > 0, got {prof.attn_ctas_per_sm}")
        return prof

    @classmethod
    def load(cls, path: str | Path) -> EfficiencyProfile:
        p = Path(path)
        if not p.exists():
            raise ValueError(f"profile: file {p} does not exist")
        from hwmodels.spec import read_json

        data = read_json(p, "profile")
        if not isinstance(data, dict):
            raise ValueError(f"profile: {p} must hold a JSON object")
        return cls.from_dict(data, where=str(p))


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _check_types(cls, data: dict, where: str) -> None:
    """Each field of a profile file has the type its default has (numbers finite, tables of numbers)."""
    for name, f in cls.__dataclass_fields__.items():
        if name not in data:
            continue
        v = data[name]
        default = f.default_factory() if callable(f.default_factory) else f.default
        if name == "idle_power_w":
            if v is not None and not (_is_number(v) and v >= 0):
                raise ValueError(f"{where}: idle_power_w must be a number of watts >= 0 or null, got {v!r}")
        elif isinstance(default, str):
            if not isinstance(v, str):
                raise ValueError(f"{where}: {name} must be a text, got {v!r}")
        elif isinstance(default, float):
            if not _is_number(v):
                raise ValueError(f"{where}: {name} must be a finite number, got {v!r}")
        elif isinstance(default, dict):
            if not isinstance(v, dict) or not all(isinstance(k, str) for k in v):
                raise ValueError(f"{where}: {name} must be an object keyed by names, got {v!r}")
            if name in ("compute_eff", "floor_s", "pj_per_flop", "pj_per_byte"):
                bad = {k: x for k, x in v.items() if not (_is_number(x) and x >= 0)}
                if bad:
                    raise ValueError(f"{where}: {name} values must be finite numbers >= 0, got {bad}")
            elif name == "sources" and not all(isinstance(x, str) for x in v.values()):
                raise ValueError(f"{where}: sources must map each parameter to a text")


def smooth_max(a, b, p: float):
    """``(a^p + b^p)^(1/p)`` for arrays >= 0; the hard maximum when ``p`` is 0 or infinite."""
    if not p or math.isinf(p):
        return np.maximum(a, b)
    # (a/hi)^p + (b/hi)^p with hi = max(a, b) is 1 + (lo/hi)^p, term for term (x/x is exactly 1)
    hi = np.maximum(a, b)
    r = np.minimum(a, b)
    np.divide(r, hi, out=r, where=hi > 0)  # where hi is 0 so is r (a, b >= 0)
    r **= p
    r += 1.0
    r **= 1.0 / p
    r *= hi
    return r


@dataclass
class RowPrep:
    """The row-wise part of :meth:`GPU.cost`, per row (arrays of shape (R, 1) unless said): roofline
    ``rate`` (FLOP/s), ``is_attn``, GEMM rows (``is_gemm``) and their minimum tile rows
    (``rows_min``; None: no tile padding), ``attn`` (row, decode, paged, KV bytes, peak) per
    attention row, ``l2_rows`` (None: no L2 model), ``floor`` seconds per launch, ``not_coll``,
    ``colls`` (row, time function, group, link) per collective, ``pj_flop`` and the byte energies."""

    rate: np.ndarray
    is_attn: np.ndarray
    is_gemm: np.ndarray | None
    rows_min: np.ndarray | None  # (R, 1), 0 on rows that are not GEMMs
    attn: list
    l2_rows: np.ndarray | None
    floor: np.ndarray
    not_coll: np.ndarray
    colls: list
    pj_flop: np.ndarray
    pj_hbm: float
    pj_l2: float


class GPU:
    """Device model of one GPU (see the module docstring for the equations)."""

    def __init__(self, spec: GPUSpec, profile: EfficiencyProfile | None = None,
                 scale_up: LinkSpec | None = None, scale_out: LinkSpec | None = None):
        self.spec = spec
        self.profile = profile or EfficiencyProfile()
        self.name = spec.name
        self.scale_up = scale_up or (load_link(spec.scale_up_link) if spec.scale_up_link else None)
        self.scale_out = scale_out or (load_link(spec.scale_out_link) if spec.scale_out_link else None)

    # Device protocol ---------------------------------------------------------------
    @property
    def memory_bytes(self) -> float:
        return self.spec.memory_bytes

    @property
    def idle_power_w(self) -> float:
        p = self.profile.idle_power_w
        return float(p) if p is not None else self.spec.idle_power_w

    @property
    def power_limit_w(self) -> float:
        return self.spec.power_limit_w

    @property
    def price_per_hour_usd(self) -> float | None:
        return self.spec.price_per_hour_usd

    def check_precision(self, precision) -> None:
        """Raise ``ValueError`` naming the dtypes this GPU has when ``precision`` (a
        :class:`workloads.Precision`) computes in a dtype it lacks. 16-bit activations of a weight-only
        format (``w4a16``, ``int4``...) run in fp16 where there is no bf16, as engines do on Volta."""
        need, have = precision.compute_dtype, self.spec.peak_flops
        if need in have or (need == "bf16" and precision.name != "bf16" and "fp16" in have):
            return
        hint = {"bf16": "fp16", "fp16": "bf16", "fp8": "int8" if "int8" in have else "w8a16",
                "int8": "fp8" if "fp8" in have else "w8a16", "int4": "w4a16", "fp4": "w4a16"}.get(need, "fp16")
        raise ValueError(f"precision: {self.name} has no {need} compute ({precision.name} needs it); it supports "
                         f"{', '.join(d for d in have if d != 'tf32')}: try --precision {hint}")

    def peak(self, dtype: str) -> float:
        """Dense peak of ``dtype`` (FLOP/s); dtypes the GPU lacks fall back to the next wider one."""
        for d in _FALLBACK.get(dtype, (dtype,)):
            if d in self.spec.peak_flops:
                return self.spec.peak_flops[d]
        return self.spec.peak(dtype)

    def _eff_compute(self, dtype: str) -> float:
        ce = self.profile.compute_eff
        for d in _FALLBACK.get(dtype, (dtype,)):
            if d in ce:
                return float(ce[d])
        return float(ce.get("default", 1.0))

    def _pj_flop(self, dtype: str) -> float:
        table = {**self.spec.pj_per_flop, **self.profile.pj_per_flop}
        for d in _FALLBACK.get(dtype, (dtype,)):
            if d in table:
                return float(table[d])
        return float(table.get("bf16", 1.0))

    def _pj_byte(self, level: str = "hbm") -> float:
        if level in self.profile.pj_per_byte:
            return float(self.profile.pj_per_byte[level])
        if level in self.spec.pj_per_byte:
            return float(self.spec.pj_per_byte[level])
        return self._pj_byte("hbm") if level != "hbm" else 0.0

    def _floor(self, op_class: str, dtype: str) -> float:
        f = self.profile.floor_s
        for key in (f"{op_class}/{dtype}", op_class):
            if key in f:
                return float(f[key])
        if op_class in GEMM_CLASSES[1:]:
            return self._floor("gemm", dtype)
        if op_class in L2_CLASSES[1:]:
            return float(f.get("elementwise", 0.0))
        return 0.0

    # -------------------------------------------------------------------------------
    def prepare(self, table: OperatorTable) -> RowPrep:
        """What :meth:`cost` needs of ``table``'s row-wise fields (names, classes, dtypes, variants,
        weight bits, collective kinds and scopes); reusable for every table with the same rows."""
        p = self.profile
        dtypes, classes = table.dtype, table.op_class
        uniq = {d: (self.peak(d), self._eff_compute(d), self._pj_flop(d)) for d in set(dtypes.tolist())}
        peak = np.array([uniq[d][0] for d in dtypes])[:, None]
        eff = np.array([uniq[d][1] for d in dtypes])[:, None]
        pj_flop = np.array([uniq[d][2] for d in dtypes])[:, None]
        is_attn = classes == "attention"
        is_gemm = np.isin(classes, GEMM_CLASSES)
        rows_min = None
        if p.gemm_min_rows > 0 and is_gemm.any():
            # weight-only quantized GEMMs (stored weights narrower than the compute dtype) run
            # dequantizing kernels with their own, smaller row tile
            bits = np.array([_DTYPE_BITS.get(str(d), 16.0) for d in dtypes[is_gemm]])
            small = ((table.weight_bits[is_gemm] > 0) & (table.weight_bits[is_gemm] < bits)) | (
                table.variant[is_gemm] == "fused_moe")
            rows_min = np.zeros((len(classes), 1))
            rows_min[is_gemm, 0] = np.where(small, min(p.gemm_min_rows, WEIGHT_ONLY_MIN_ROWS), p.gemm_min_rows)
        attn = []
        if p.attn_tile_rows > 0:
            attn = [(int(i), "decode" in str(table.name[i]), table.variant[i] == "paged",
                     ACT_BYTES.get(str(dtypes[i]), 2.0), self.peak(dtypes[i])) for i in np.flatnonzero(is_attn)]
        colls = []
        for i in np.flatnonzero(classes == "collective"):
            link = self.scale_out if table.coll_scope[i] == "scale_out" else self.scale_up
            if link is None:
                raise ValueError(f"hardware {self.name}: no {table.coll_scope[i]} link for {table.name[i]}")
            colls.append((int(i), COLLECTIVE_TIME[table.coll_kind[i]], float(table.coll_group[i]), link))
        if "attention" in p.pj_per_flop:
            pj_flop = np.where(is_attn[:, None], float(p.pj_per_flop["attention"]), pj_flop)
        return RowPrep(
            rate=peak * np.where(is_attn[:, None], p.attention_eff, eff), is_attn=is_attn[:, None],
            is_gemm=is_gemm[:, None] if rows_min is not None else None, rows_min=rows_min, attn=attn,
            l2_rows=np.isin(classes, L2_CLASSES)[:, None] if p.l2_read_eff > 0 else None,
            floor=np.array([self._floor(c, d) for c, d in zip(classes, dtypes, strict=True)])[:, None],
            not_coll=(classes != "collective")[:, None], colls=colls, pj_flop=pj_flop,
            pj_hbm=self._pj_byte("hbm"), pj_l2=self._pj_byte("l2"))

    def cost(self, table: OperatorTable, *, cuda_graphs: bool = True, prep: RowPrep | None = None) -> OpCosts:
        """Per-row, per-configuration seconds and joules of one instance (see module docstring).
        ``prep``: :meth:`prepare` of a table with the same rows, to skip redoing it."""
        p, spec = self.profile, self.spec
        if prep is None:
            prep = self.prepare(table)
        nbytes = table.bytes_read + table.bytes_written
        launches = table.kernels * ((table.flops + nbytes) > 0)  # rows with work (both terms >= 0)
        flops_eff = table.flops.astype(float)
        if prep.rows_min is not None:  # GEMM rows with rows: FLOPs x max(m, tile rows) / m
            np.divide(table.flops * np.maximum(table.m, prep.rows_min), table.m, out=flops_eff,
                      where=prep.is_gemm & (table.m > 0))
        t_c = flops_eff / prep.rate
        wave = np.ones(t_c.shape)
        if prep.attn:
            self._attention(table, prep.attn, flops_eff, t_c, launches, wave)

        # memory: HBM reads, L2-resident reads (small elementwise footprints), writes
        bw = spec.memory_bandwidth
        l2_read = 0.0
        if prep.l2_rows is not None:
            l2_read = table.bytes_read * (prep.l2_rows & (nbytes <= spec.l2_bytes))
        hbm_read = table.bytes_read - l2_read
        t_m = hbm_read / (bw * p.memory_eff) + table.bytes_written / (bw * (p.write_eff or p.memory_eff))
        if prep.l2_rows is not None:
            t_m = t_m + l2_read / (bw * p.l2_read_eff)
        if p.rw_mix_eff > 0:  # HBM turnarounds when a kernel streams reads and writes at once
            t_m = t_m + np.minimum(hbm_read, table.bytes_written) / (bw * p.rw_mix_eff)
        floor = launches * prep.floor
        t_gpu = floor + smooth_max(t_c, t_m, p.overlap_p) * wave
        bound = (t_c < t_m).astype(np.int8)  # 0 compute, 1 memory
        for i, fn, group, link in prep.colls:
            t_gpu[i] = fn(table.coll_bytes[i], group, link.bandwidth, link.latency_s)
            bound[i] = 2
        if cuda_graphs:
            # the gap is paid when the graph switches between the kernels of several operators (a
            # model step), not by one operator repeated back to back (a microbenchmark, whose floor
            # already holds its launch cost)
            mixed = (launches > 0).sum(axis=0) > 1
            gap = launches * p.graph_gap_s * mixed
            overhead = floor + gap
            time = t_gpu + gap
        else:
            time, overhead = self._eager(table, t_gpu, floor)
        bound[(overhead > 0.5 * time) & prep.not_coll] = 3
        # tensor-core work spent: attention runs its padded tiles (with softmax, at its own pJ/FLOP
        # when the profile has an "attention" entry); GEMM padding is a time effect only
        work_flops = np.where(prep.is_attn, flops_eff, table.flops)
        energy = (work_flops * prep.pj_flop + (hbm_read + table.bytes_written) * prep.pj_hbm
                  + l2_read * prep.pj_l2) * 1e-12
        return OpCosts(time_s=time, energy_j=energy, bound=bound, overhead_s=overhead)

    def _attention(self, table: OperatorTable, rows: list, flops_eff, t_c, launches, wave) -> None:
        """FlashAttention-2 mechanisms (:mod:`hwmodels.gpu_attention`) for the attention ``rows``
        (arrays updated in place): whole rows at once, or one float at a time for a few columns."""
        p, sms = self.profile, float(self.spec.sm_count)
        fields = (table.m, table.n, table.k, table.flops, table.bytes_read, table.bytes_written, table.kernels)
        if t_c.shape[1] > SCALAR_COLUMNS:
            for i, decode, paged, kvb, peak in rows:
                fe, tc, extra, wv = attention_cost(NUMPY, p, sms, peak, decode, paged, kvb, *(a[i] for a in fields))
                flops_eff[i], t_c[i], wave[i] = fe, tc, wv
                launches[i] = launches[i] + extra
            return
        idx = [r[0] for r in rows]
        stacked = table.__dict__.get("stacked")  # the (field, row, column) block of a compiled table
        if stacked is not None:
            values = stacked[_ATTN_FIELDS, idx].tolist()  # one gather: fields as a column, rows as a row
        else:
            values = np.stack(fields)[:, idx].tolist()  # (field, attention row, column) as floats
        for j, (i, decode, paged, kvb, peak) in enumerate(rows):
            fe, tc, extra, wv = [], [], [], []
            for cell in zip(*(v[j] for v in values), strict=True):
                m, _, k, fl, rd, wr, _ = cell
                if not (m or k or fl or rd or wr):  # no work in this step: what the body gives, directly
                    r = (0.0, 0.0, 0, 1.0)
                else:
                    r = attention_cost(SCALAR, p, sms, peak, decode, paged, kvb, *cell)
                fe.append(r[0])
                tc.append(r[1])
                extra.append(r[2])
                wv.append(r[3])
            flops_eff[i], t_c[i], wave[i] = fe, tc, wv
            if any(extra):
                launches[i] = launches[i] + extra

    def _eager(self, table: OperatorTable, t_gpu: np.ndarray, floor: np.ndarray):
        """Step-level eager time: smax(host issue time, device time), shared out over the rows."""
        p = self.profile
        sync = (table.variant == "host_sync")[:, None]
        host = np.where(sync, 0.0, table.kernels * p.eager_launch_s)
        cnt = table.count[:, None]
        h_sum, g_sum = (host * cnt).sum(axis=0), (t_gpu * cnt).sum(axis=0)
        total = smooth_max(h_sum, g_sum, p.eager_overlap_p)
        host_bound = h_sum > g_sum
        scale = total / np.where(host_bound, np.maximum(h_sum, 1e-30), np.maximum(g_sum, 1e-30))
        time = np.where(host_bound, host, t_gpu) * scale
        # a host wait for the GPU cannot overlap: the queue drains, then the next launch starts cold
        time = np.where(sync, table.kernels * (p.eager_launch_s + HOST_SYNC_S), time)
        overhead = np.where(host_bound | sync, time, floor)
        return time, overhead


_FALLBACK = {
    "fp16": ("fp16", "bf16"),
    "bf16": ("bf16", "fp16"),
    "fp8": ("fp8", "int8", "fp16", "bf16"),
    "int8": ("int8", "fp8", "fp16", "bf16"),
    "int4": ("int4", "int8", "fp8", "fp16", "bf16"),
    "fp4": ("fp4", "fp8", "int8", "bf16"),
    "tf32": ("tf32", "fp32"),
    "fp32": ("fp32",),
}


def load_device(name: str, profile: str | Path | EfficiencyProfile | None = "auto") -> GPU:
    """A GPU device by hardware name.

    ``profile``: ``"auto"`` (the GPU's own profile: a user's from ``GENZ_PROFILE_PATH``, else the shipped
    measured, transferred or prior one; see :mod:`hwmodels.profiles`), ``"datasheet"`` (the ideal
    roofline), a profile name on that search path, a path to a profile JSON, or an
    :class:`EfficiencyProfile`.
    """
    from hwmodels.profiles import resolve_profile  # profiles builds on this module's EfficiencyProfile

    spec = load_gpu(name)
    return GPU(spec, resolve_profile(spec, profile))
