"""Operator tables compiled once per split: every value an affine function of the step's shape.

For a dense model, each number :func:`genz.operators.build_table` writes (FLOPs, bytes, GEMM
dimensions, kernels, collective bytes) is a constant plus a weighted sum of the seven
:class:`~genz.shapes.StepShape` fields, some of it present only when a field is positive (a
GEMM's weights are read only when it has rows; a kernel launches only when it has work). Running
the same code once on a *symbolic* shape records those coefficients; afterwards a table for any
shapes is one matrix product, instead of rebuilding ~15 rows of small arrays per call.

The compile is exact or refused: any operation that is not affine (a product of two shape
quantities, ``np.where`` or ``np.maximum`` on one, as MoE routing does) raises :class:`NotAffine`
and the caller keeps the plain path. :func:`compile_table` also checks the compiled table against
:func:`~genz.operators.build_table` on probe shapes before it is used.

>>> from workloads import load_model, Precision
>>> from genz.runtime import load_runtime
>>> from genz.shapes import prefill
>>> ct = compile_table(load_model("llama-3-8b"), Precision.parse("bf16"), load_runtime("vllm"))
>>> t = ct.table(features(prefill(2, 512)))
>>> int(t.flops[list(t.name).index("o_proj"), 0]) == 2 * 1024 * 4096 * 4096
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genz.operators import _Rows, build_table, fill_rows
from genz.runtime import Runtime
from genz.shapes import StepShape
from hwmodels.optable import OperatorTable
from workloads import Model, Precision

#: The shape fields a compiled table takes, in the order of :func:`features`' rows 1..7 (row 0 is 1).
FIELDS = tuple(StepShape.__dataclass_fields__)
_NF = len(FIELDS) + 1


class NotAffine(TypeError):
    """The table code did something with a shape quantity that is not affine."""


def _refuse(*_):
    raise NotAffine("not an affine use of a shape quantity")


class Affine:
    """``sum over gates g of coef[g] . (1, fields)``, each term counted only where gate ``g`` is open
    (``None``: always). Supports + - with numbers and affines, * and / by numbers, * by a gate, and
    ``> 0`` (a new gate); everything else raises :class:`NotAffine`."""

    __slots__ = ("terms",)
    __array_ufunc__ = None  # numpy defers to the reflected operators below

    def __init__(self, terms: dict):
        self.terms = terms

    @staticmethod
    def lift(x) -> Affine:
        if isinstance(x, Affine):
            return x
        if isinstance(x, Gate):
            return x * 1.0
        if isinstance(x, bool | int | float | np.integer | np.floating):
            c = np.zeros(_NF)
            c[0] = float(x)
            return Affine({None: c})
        raise NotAffine(f"cannot combine {type(x).__name__} with a shape quantity")

    def __add__(self, other):
        o = Affine.lift(other)
        terms = {g: c.copy() for g, c in self.terms.items()}
        for g, c in o.terms.items():
            terms[g] = terms[g] + c if g in terms else c.copy()
        return Affine(terms)

    __radd__ = __add__

    def __neg__(self):
        return Affine({g: -c for g, c in self.terms.items()})

    def __sub__(self, other):
        return self + (-Affine.lift(other))

    def __rsub__(self, other):
        return Affine.lift(other) + (-self)

    def _constant(self) -> float | None:
        """The value when it is an ungated constant, else None."""
        if set(self.terms) == {None} and not self.terms[None][1:].any():
            return float(self.terms[None][0])
        return None

    def __mul__(self, other):
        if isinstance(other, Gate):
            if any(g is not None and g != other.key for g in self.terms):
                raise NotAffine("a term under two gates")
            total = sum(self.terms.values())
            return Affine({other.key: total})
        if isinstance(other, Affine):
            c = other._constant()
            if c is None:
                c = self._constant()
                if c is None:
                    raise NotAffine("product of two shape quantities")
                return other * c
            other = c
        if isinstance(other, bool | int | float | np.integer | np.floating):
            return Affine({g: c * float(other) for g, c in self.terms.items()})
        raise NotAffine(f"cannot multiply a shape quantity by {type(other).__name__}")

    __rmul__ = __mul__

    def __truediv__(self, other):
        if isinstance(other, Affine):
            c = other._constant()
            if c is None:
                raise NotAffine("division by a shape quantity")
            other = c
        if isinstance(other, bool | int | float | np.integer | np.floating):
            return Affine({g: c / float(other) for g, c in self.terms.items()})
        raise NotAffine(f"cannot divide a shape quantity by {type(other).__name__}")

    def __gt__(self, other):
        if other != 0 or set(self.terms) != {None}:
            raise NotAffine("only an ungated quantity > 0 makes a gate")
        return Gate(tuple(self.terms[None].tolist()))

    __bool__ = __float__ = __int__ = __index__ = __array__ = __lt__ = __le__ = __ge__ = _refuse
    __rtruediv__ = __pow__ = __rpow__ = __floordiv__ = __mod__ = _refuse


class Gate:
    """An affine quantity's ``> 0``, open or closed per configuration."""

    __slots__ = ("key",)
    __array_ufunc__ = None

    def __init__(self, key: tuple):
        self.key = key

    def __mul__(self, other):
        if isinstance(other, Gate):
            if other.key != self.key:
                raise NotAffine("product of two gates")
            return self
        if isinstance(other, Affine):
            return other * self
        if isinstance(other, bool | int | float | np.integer | np.floating):
            c = np.zeros(_NF)
            c[0] = float(other)
            return Affine({self.key: c})
        raise NotAffine(f"cannot multiply a gate by {type(other).__name__}")

    __rmul__ = __mul__
    __bool__ = __float__ = __int__ = __index__ = __array__ = __add__ = __radd__ = __and__ = __rand__ = _refuse


class SymbolicShape:
    """A step shape whose fields are the symbols of :data:`FIELDS` (what :func:`fill_rows` reads)."""

    def __init__(self):
        for i, f in enumerate(FIELDS):
            c = np.zeros(_NF)
            c[i + 1] = 1.0
            setattr(self, f, Affine({None: c}))

    @property
    def tokens(self):
        return self.prefill_tokens + self.decode_seqs

    @property
    def seqs(self):
        return self.prefill_seqs + self.decode_seqs

    def scaled(self, factor):
        out = SymbolicShape()
        for f in FIELDS:
            setattr(out, f, getattr(self, f) / factor)
        return out

    def __len__(self) -> int:
        return 1


def features(shape: StepShape) -> np.ndarray:
    """The (8, N) matrix a compiled table multiplies: a row of ones, then the shape's fields."""
    return np.vstack([np.ones(len(shape))] + [getattr(shape, f) for f in FIELDS])


@dataclass
class CompiledTable:
    """An operator table as coefficients: ``static`` holds the row-wise arrays (names, classes,
    dtypes, counts...), ``gates`` (G, 8) the quantities whose sign opens a gate, ``coef`` (W * R,
    (G + 1) * 8) each wide value's coefficients per gate (gate 0: always open)."""

    static: dict
    gates: np.ndarray
    coef: np.ndarray
    rows: int

    def __post_init__(self) -> None:
        # only the (gate, feature) pairs some coefficient uses; gate 0 (1 > 0) is always open
        used = np.flatnonzero(np.abs(self.coef).sum(axis=0))
        self._gate_of, self._feature_of = used // _NF, used % _NF
        self._coef_used = np.ascontiguousarray(self.coef[:, used])
        one = np.zeros((1, _NF))
        one[0, 0] = 1.0
        self._all_gates = np.vstack([one, self.gates])

    def fixed_gates(self, nonzero: list[set[int]]) -> np.ndarray | None:
        """The coefficients for steps whose features are known to be positive exactly at the
        indices ``nonzero[c]`` (column ``c``; 0 is the constant): a matrix (W * R * C, 8 * C) that maps
        the columns' features, stacked, to the wide values in (W, R, C) order. None when a gate has
        a negative coefficient (its sign would depend on magnitudes, not on which features are zero)."""
        if (self.gates < 0).any():
            return None
        C = len(nonzero)
        full = self.coef.reshape(len(_Rows._WIDE) * self.rows, len(self.gates) + 1, _NF)
        out = np.zeros((full.shape[0], C, C * _NF))
        for c, nz in enumerate(nonzero):
            open_ = [True] + [bool(any(g[i] > 0 for i in nz)) for g in self.gates]
            out[:, c, c * _NF:(c + 1) * _NF] = full[:, open_, :].sum(axis=1)
        return out.reshape(-1, C * _NF)

    def table_from(self, wide: np.ndarray) -> OperatorTable:
        """An operator table whose per-configuration fields are ``wide`` (W, R, N)."""
        t = OperatorTable.__new__(OperatorTable)  # every field given: no __init__ checks to run
        t.__dict__.update(self.static)
        t.__dict__.update(zip(_Rows._WIDE, wide, strict=True))
        t.__dict__["stacked"] = wide  # not a field: lets a device read several fields in one gather
        return t

    def table(self, x: np.ndarray) -> OperatorTable:
        """The operator table of the shapes whose :func:`features` are ``x`` (8, N)."""
        open_ = (self._all_gates @ x) > 0.0
        return self.table_from((self._coef_used @ (open_[self._gate_of] * x[self._feature_of])).reshape(
            len(_Rows._WIDE), self.rows, x.shape[1]))


def _compile_rows(rows: _Rows) -> CompiledTable:
    """The compiled table of ``rows`` filled from a :class:`SymbolicShape` (values affine or numbers)."""
    c = rows.cols
    R = len(c["name"])
    values = {k: [Affine.lift(v) for v in c[k]] for k in _Rows._WIDE}
    gate_keys: list = []
    for vs in values.values():
        for v in vs:
            gate_keys += [g for g in v.terms if g is not None and g not in gate_keys]
    index = {g: i + 1 for i, g in enumerate(gate_keys)}
    coef = np.zeros((len(_Rows._WIDE), R, len(gate_keys) + 1, _NF))
    for w, k in enumerate(_Rows._WIDE):
        for r, v in enumerate(values[k]):
            for g, cv in v.terms.items():
                coef[w, r, index.get(g, 0)] += cv
    static = {
        "name": np.array(c["name"]), "op_class": np.array(c["op_class"]), "dtype": np.array(c["dtype"]),
        "count": np.array(c["count"]), "weight_bits": np.array(c["weight_bits"]),
        "coll_kind": np.array(c["coll_kind"]), "coll_scope": np.array(c["coll_scope"]),
        "coll_group": np.array([float(g) for g in c["coll_group"]]),
        "variant": np.array(c["variant"], dtype=object),
    }
    gates = np.array(gate_keys, dtype=float).reshape(len(gate_keys), _NF)
    return CompiledTable(static, gates, coef.reshape(len(_Rows._WIDE) * R, -1), R)


def _probe_shapes() -> StepShape:
    """Shapes the compiled table is checked on: prefill, decode, mixed, chunked, empty parts."""
    rng = np.random.default_rng(1)
    n = 8
    pt = rng.integers(1, 9000, n).astype(float)
    ps = np.maximum(1.0, np.floor(pt / rng.integers(1, 600, n)))
    ds = rng.integers(1, 300, n).astype(float)
    pt[[1, 5]] = ps[[1, 5]] = 0.0
    ds[[0, 6]] = 0.0
    kv = rng.uniform(1, 4000, n)
    return StepShape(pt, ps, pt * kv + pt * pt / 2.0, ps * kv + pt, ds, ds * rng.uniform(1, 9000, n), ps + ds)


def compile_table(model: Model, precision: Precision, runtime: Runtime, *, tp: int = 1, pp: int = 1, ep: int = 1,
                  gpus_per_node: int = 8) -> CompiledTable | None:
    """The compiled operator table of ``model`` under one split, or None when its table is not
    affine in the shape (MoE routing) or the compiled one disagrees with :func:`build_table` on
    probe shapes by more than 1e-12 relative."""
    rows = _Rows(1)  # its values are Affine symbols, not arrays
    try:
        fill_rows(rows, model, SymbolicShape(), precision, runtime, tp=tp, pp=pp, ep=ep,
                  gpus_per_node=gpus_per_node)
        ct = _compile_rows(rows)
    except (NotAffine, TypeError):  # a TypeError: numpy met a symbol where it wanted a number
        return None
    probe = _probe_shapes()
    ref = build_table(model, probe, precision, tp=tp, pp=pp, ep=ep, gpus_per_node=gpus_per_node, runtime=runtime)
    got = ct.table(features(probe))
    for f in OperatorTable.__dataclass_fields__:
        a, b = getattr(ref, f), getattr(got, f)
        if a.dtype.kind in "fi":
            if a.shape != b.shape or not np.allclose(b, a, rtol=1e-12, atol=0.0):
                return None
        elif a.tolist() != b.tolist():
            return None
    return ct
