"""FlightLLM on an FPGA board as a :class:`~hwmodels.device.Device`.

Per operator instance (rows of an :class:`~hwmodels.optable.OperatorTable`), with ``R_mv``,
``R_mm`` the vector/matrix engines' sustained MACs/s and ``B`` the HBM stream bandwidth
(peak x channel efficiency: within channels with always-on-chip decode, across channels without):

- **weight GEMM** (``gemm``, ``lm_head``, ``router`` rows with weights), ``m`` tokens,
  ``n x k`` weights kept at density ``d`` and ``b`` bits::

      bytes   = stored_weight_bytes(n k, d, b) (+ int8 activations m (k + n) across channels when
                they leave the chip: prefill, or decode without always-on-chip decode)
      MV      = m x ceil(n / mv_width) mv_width x k x d_c / R_mv        (decode, m = 1)
      MM      = ceil(m / mm_rows) mm_rows x n x k x d_c / R_mm        (prefill; for 1 < m < mm_rows
                                                                        the cheaper of MV and MM)
      t       = max(bytes / B, compute)                                (weights double-buffered)

  ``d_c = d`` with the sparse DSP chain, 1 without (and then weights are stored dense).
- **decode attention** over a cache of ``L`` tokens per sequence (rounded up to the 16-token
  bucket with length-adaptive compilation), ``H`` heads of ``h`` dims::

      t = (kv_reads - 1) x kv / B + max(kv / B, MV slots / R_mv) + softmax
      MV slots = H (h x ceil(L / mv_width) mv_width + L x ceil(h / mv_width) mv_width)

  (K^T is an MV over L outputs, V an MV over h outputs padded to ``mv_width``; the artifact
  reads the cache twice, once to append the new key/value).
- **prefill attention**: max(bytes / B, MACs / R_mm) + softmax; softmax = scores x 2 passes on
  the special-function unit (SFU).
- **norms and elementwise**: FLOPs / (``sfu_flops_per_lane_cycle`` x SFU lane-cycles/s); without
  always-on-chip decode their bytes also cross HBM. Rows without FLOPs (KV write, embedding,
  sampling) stream their bytes.

**Always-on-chip decode** keeps a decode step's activations on chip: what must fit is the
working set :meth:`FlightLLM.decode_onchip_bytes` (the largest GEMM's input and output activations,
double-buffered, plus one head's attention scores over the cache and the new token's K/V fragment),
within ``onchip_activation_share`` of the board's SRAM (the rest buffers weights and KV tiles). A
configuration whose working set does not fit falls back to off-chip decode (activations through
HBM, streams across channels); the off-chip traffic that remains with the scheme is the weights and
the KV cache.

Energy: board power over the time (dynamic part: board - idle power; genz adds idle power).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hwmodels.flightllm.mechanisms import (
    bucket,
    chain_compute_fraction,
    check_weight_bits,
    parse_sparsity,
    stored_weight_bytes,
)
from hwmodels.flightllm.spec import FPGASpec, Mechanisms, load_fpga_spec, load_mechanisms
from hwmodels.optable import OpCosts, OperatorTable

_WEIGHT_CLASSES = ("gemm", "lm_head", "router")


@dataclass(frozen=True)
class FlightLLMOptions:
    """Mechanism switches (all on by default: the paper's design) and the model's compression.

    ``sparsity``: ``"default"`` (the paper's LLaMA2-7B: q and k at 0.7 density), ``None`` (dense),
    an ``"N:M"`` pattern or a density for every GEMM, or a dict row name -> pattern or density.
    """

    sparse_dsp_chain: bool = True
    mixed_precision: bool = True
    always_on_chip_decode: bool = True
    length_adaptive: bool = True
    sparsity: object = "default"
    _density: dict = field(default_factory=dict, init=False, compare=False, repr=False)

    def density_map(self, mech: Mechanisms) -> dict:
        """Row name (or ``"*"`` for every GEMM row) -> kept fraction; validates patterns."""
        s = self.sparsity
        if s is None:
            return {}
        if isinstance(s, str) and s == "default":
            s = dict(mech.default_density)
        if isinstance(s, dict):
            return {str(k): parse_sparsity(v, mech) for k, v in s.items()}
        return {"*": parse_sparsity(s, mech)}


class FlightLLM:
    """Device model of FlightLLM on one board (see the module docstring for the equations)."""

    #: The board runs its own compiled instruction stream: a GPU serving engine's kernel choices and
    #: per-iteration CPU time do not apply to it.
    runs_own_program = True

    def __init__(self, spec: FPGASpec, options: FlightLLMOptions | None = None, mech: Mechanisms | None = None):
        self.spec = spec
        self.options = options or FlightLLMOptions()
        self.mech = mech or load_mechanisms()
        self.name = spec.name
        self._density = self.options.density_map(self.mech)

    # Device protocol ---------------------------------------------------------------------------
    @property
    def memory_bytes(self) -> float:
        """HBM capacity (weights and KV cache stream from HBM; DDR is not costed)."""
        return self.spec.hbm_bytes

    @property
    def idle_power_w(self) -> float:
        return self.spec.idle_power_w

    @property
    def power_limit_w(self) -> float:
        return self.spec.power_limit_w

    price_per_hour_usd = None

    # Helpers -------------------------------------------------------------------------------------
    def density(self, row_name: str, op_class: str) -> float:
        """Kept fraction of a row's weights (1 without the sparse DSP chain)."""
        if not self.options.sparse_dsp_chain:
            return 1.0
        if row_name in self._density:
            return self._density[row_name]
        return self._density.get("*", 1.0) if op_class == "gemm" else 1.0

    def weight_bits(self, bits: float) -> float:
        """Stored width of a row's weights: mixed precision, or INT8 without it."""
        w = check_weight_bits(bits, self.mech)
        return w if self.options.mixed_precision else float(max(self.mech.weight_bits))

    def stream_bandwidth(self, decode: bool = True, onchip=None):
        """HBM bytes/s of weight and KV streams: within channels, unless a decode step runs
        off-chip (the scheme off, or ``onchip`` false: its working set does not fit)."""
        s = self.spec
        if not decode:
            return s.hbm_bandwidth * s.hbm_same_channel_eff
        on = self.options.always_on_chip_decode if onchip is None else onchip
        return s.hbm_bandwidth * np.where(on, s.hbm_same_channel_eff, s.hbm_cross_channel_eff)

    def decode_onchip_bytes(self, table: OperatorTable) -> np.ndarray:
        """On-chip bytes a decode step's activations need (N,): see the module docstring."""
        gem = np.isin(table.op_class, _WEIGHT_CLASSES) & (table.weight_bits > 0)
        acts = np.where(gem[:, None], table.m * (table.n + table.k), 0.0).max(axis=0, initial=0.0)
        att = (table.op_class == "attention")
        kv_len = np.where(att[:, None], table.k / np.maximum(table.m, 1e-12), 0.0).max(axis=0, initial=0.0)
        hd = 128.0
        scores = 2.0 * kv_len * table.m.max(axis=0, initial=1.0)
        fragment = 2.0 * hd * table.m.max(axis=0, initial=1.0)
        return 2.0 * acts + scores + fragment

    def onchip_decode(self, table: OperatorTable) -> np.ndarray:
        """Whether each configuration's decode runs with activations on chip (N,)."""
        if not self.options.always_on_chip_decode:
            return np.zeros(table.configs, dtype=bool)
        return self.decode_onchip_bytes(table) <= self.spec.onchip_bytes * self.mech.onchip_activation_share

    def describe(self) -> str:
        """What this device runs, for titles of answers."""
        o = self.options
        on = [n for n, v in (("sparse DSP chain", o.sparse_dsp_chain), ("mixed precision", o.mixed_precision),
                             ("always-on-chip decode", o.always_on_chip_decode),
                             ("length-adaptive compilation", o.length_adaptive)) if v]
        return f"FlightLLM compiled instructions on {self.spec.name} ({', '.join(on) or 'no mechanisms'})"

    def hbm_bytes(self, table: OperatorTable) -> np.ndarray:
        """Bytes each row instance streams from or to HBM, as this device stores them (R, N)."""
        return self._costs(table)[2]

    # Cost ----------------------------------------------------------------------------------------
    def cost(self, table: OperatorTable, *, cuda_graphs: bool = True) -> OpCosts:
        """Per-row, per-configuration seconds and joules of one instance (see module docstring)."""
        time, bound, _ = self._costs(table)
        energy = time * (self.spec.board_power_w - self.spec.idle_power_w)
        return OpCosts(time_s=time, energy_j=energy, bound=bound, overhead_s=np.zeros_like(time))

    def _costs(self, table: OperatorTable):
        s, m_ = self.spec, self.mech
        R, N = table.flops.shape
        time = np.zeros((R, N))
        bound = np.zeros((R, N), dtype=np.int8)
        nbytes = np.zeros((R, N))
        r_mv, r_mm, sfu = s.mv_macs_per_s(), s.mm_macs_per_s(), s.sfu_lane_cycles_per_s()
        b_cross = s.hbm_bandwidth * s.hbm_cross_channel_eff
        on = self.onchip_decode(table)
        for i in range(R):
            cls, name = str(table.op_class[i]), str(table.name[i])
            m, n, k = table.m[i], table.n[i], table.k[i]
            flops, rd, wr = table.flops[i], table.bytes_read[i], table.bytes_written[i]
            if cls == "collective":
                raise ValueError("parallelism: FlightLLM models one board; tp, pp and ep must be 1 "
                                 f"(got a {table.coll_kind[i]} row)")
            if cls in _WEIGHT_CLASSES and table.weight_bits[i] > 0:
                t, b, by = self._gemm(name, cls, table.weight_bits[i], m, n, k, r_mv, r_mm, b_cross, on)
            elif cls == "attention":
                t, b, by = self._attention(name, m, n, k, flops, rd, wr, r_mv, r_mm, sfu, on)
            elif np.any(flops > 0):
                t = flops / m_.sfu_flops_per_lane_cycle / sfu
                by = np.where(on, 0.0, rd + wr)
                t = t + by / b_cross
                b = np.zeros(N, dtype=np.int8)
            else:
                by = rd + wr
                t = by / self.stream_bandwidth(decode=False)
                b = np.ones(N, dtype=np.int8)
            time[i], bound[i], nbytes[i] = t, b, by
        return time, bound, nbytes

    def _gemm(self, name, cls, wbits, m, n, k, r_mv, r_mm, b_cross, on):
        s, o = self.spec, self.options
        d = self.density(name, cls)
        bits = self.weight_bits(float(wbits))
        active = m > 0
        w_bytes = stored_weight_bytes(n * k, d, bits, self.mech) * active
        dc = chain_compute_fraction(d, o.sparse_dsp_chain)
        n_pad = np.ceil(n / s.mv_width) * s.mv_width
        t_mv = m * n_pad * k * dc / r_mv
        t_mm = np.ceil(m / s.mm_rows) * s.mm_rows * n * k * dc / r_mm
        decode = m <= 1
        t_c = np.where(decode, t_mv, np.minimum(t_mv, t_mm))
        offchip = ~decode | ~on
        act = np.where(offchip, m * (n + k), 0.0)
        bw = np.where(decode, self.stream_bandwidth(True, on), self.stream_bandwidth(decode=False))
        t_l = w_bytes / bw + act / b_cross
        return np.maximum(t_l, t_c), np.where(t_c >= t_l, 0, 1).astype(np.int8), w_bytes + act

    def _attention(self, name, m, n, k, flops, rd, wr, r_mv, r_mm, sfu, on):
        s, m_, o = self.spec, self.mech, self.options
        safe_m = np.maximum(m, 1e-12)
        heads = np.maximum(n, 1e-12)
        hd = np.where(wr > 0, wr / (2.0 * safe_m * heads), 128.0)  # genz writes outputs in 16 bits
        q_bytes = m * heads * hd * 2.0
        if name.endswith("decode"):
            L = k / safe_m
            Lp = bucket(L, m_.decode_bucket) if o.length_adaptive else L
            kv = np.maximum(rd - q_bytes, 0.0) * np.where(L > 0, Lp / np.maximum(L, 1e-12), 0.0)
            slots = m * heads * (hd * np.ceil(Lp / s.mv_width) * s.mv_width + Lp * np.ceil(hd / s.mv_width) * s.mv_width)
            t_mv = slots / r_mv
            bw = self.stream_bandwidth(True, on)
            t_kv = kv / bw
            t_sm = m * heads * Lp * m_.norm_passes / sfu
            t = (m_.kv_cache_reads - 1) * t_kv + np.maximum(t_kv, t_mv) + t_sm
            return t, np.where(t_mv >= t_kv, 0, 1).astype(np.int8), m_.kv_cache_reads * kv
        t_mm = flops / 2.0 / r_mm
        scores = flops / (4.0 * np.maximum(hd, 1.0))
        t_sm = scores * m_.norm_passes / sfu
        by = rd + wr
        t_l = by / self.stream_bandwidth(decode=False)
        return np.maximum(t_l, t_mm) + t_sm, np.where(t_mm >= t_l, 0, 1).astype(np.int8), by

    # Length-adaptive compilation -----------------------------------------------------------------
    def decode_bucket(self, kv_length):
        """KV length a decode step's program is compiled for (rounded up to the bucket, or exact)."""
        return bucket(kv_length, self.mech.decode_bucket) if self.options.length_adaptive else np.asarray(kv_length)


def load_fpga(name: str, options: FlightLLMOptions | None = None, **switches) -> FlightLLM:
    """FlightLLM on a shipped board (``u280``, ``vhk158``) with optional switches, e.g.
    ``load_fpga("u280", always_on_chip_decode=False)``. Unknown switches raise ``ValueError``."""
    known = set(FlightLLMOptions.__dataclass_fields__) - {"_density"}
    bad = set(switches) - known
    if bad:
        raise ValueError(f"flightllm: unknown switches {sorted(bad)}; known: {sorted(known)}")
    if options is not None and switches:
        raise ValueError("flightllm: give either options or switches, not both")
    opts = options or FlightLLMOptions(**switches)
    return FlightLLM(load_fpga_spec(name), opts)
