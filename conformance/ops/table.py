"""The op table: every row is (op, dtypes, shapes, reference, tolerance).

A row's expression is Triton code over the inputs ``x``, ``y``, ``z`` (``{T}`` is the Triton type
of the input dtype, ``{axis}`` the axis of the variant); its reference is numpy over the same
inputs. Each (op, dtype) pair of the table either runs and matches the reference, or is refused
with the exact message of the refusal catalog (``triton_metal.refusals``) named in ``refused``.
``docs/compatibility.md`` is generated from this table and the catalog (see compatibility.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from conformance.ops import apple_numerics as apple
from conformance.ops.dtypes import ALL, BITS, FLOATS, INTS, NUMPY, SIGNED, TL, is_float, to_repr

FLOATS64 = (*FLOATS, "f64")
NUMERIC = (*INTS, *FLOATS64)


@dataclass(frozen=True)
class Tol:
    """|got - ref| <= ulps * ulp(ref) + eps_scale * eps(dtype) * max|input|; exact when both are 0."""
    ulps: float = 0
    eps_scale: float = 0
    atol: float = 0

    def describe(self) -> str:
        parts = []
        if self.ulps:
            parts.append(f"{self.ulps:g} ulp")
        if self.eps_scale:
            parts.append(f"{self.eps_scale:g}·eps·max|x|")
        if self.atol:
            parts.append(f"{self.atol:g} abs")
        return " + ".join(parts) or "exact"


EXACT = Tol()
ELEMENTWISE_1D = (((256,), None),)
REDUCE_VARIANTS = (((256,), 0), ((16, 32), 0), ((16, 32), 1), ((4, 8, 16), 0), ((4, 8, 16), 1), ((4, 8, 16), 2))
SCAN_VARIANTS = (((128,), 0), ((16, 32), 0), ((16, 32), 1), ((4, 8, 16), 2))


@dataclass(frozen=True, eq=False)  # hashed by identity: rows key caches
class Row:
    op: str  # name in the docs
    expr: str
    ref: object  # numpy (x, y, z, dtype, axis) -> array or tuple of arrays
    dtypes: tuple
    family: str  # the docs' section
    variants: tuple = ELEMENTWISE_1D  # (input shape, axis)
    domain: str = "any"
    out: object = "same"  # result dtype: "same", a dtype, a dict by input dtype, or a tuple of these
    tol: Tol = EXACT
    refused: dict = field(default_factory=dict)  # dtype -> (catalog key, message fields)
    note: str = ""
    # Where the MSL specification allows another result too (apple_numerics.py): numpy (x, y, z, dtype, axis)
    # -> that result, or None for the dtypes where only `ref` is right. Each element matches either.
    alt: object = None
    # A subnormal result may be flushed to zero (MSL spec 8.1, 8.5): any arithmetic's or function's. Not
    # a load, store or conversion's (8.6: conversions keep half subnormals).
    may_flush: bool = True

    @property
    def batch(self) -> str:
        """Rows of one batch and dtype run in one kernel (compiling is what costs time)."""
        return self.family if self.family in ("reduce", "scan", "shape") else "elementwise"

    def refusal(self, dtype):
        if dtype == "f64":  # refused at the first fp64 argument, before any op is lowered
            return ("fp64_argument", {"name": "x_ptr"})
        return self.refused.get(dtype)

    def out_dtypes(self, dtype) -> tuple:
        outs = self.out if isinstance(self.out, tuple) else (self.out,)
        return tuple(dtype if o == "same" else (o.get(dtype, dtype) if isinstance(o, dict) else o) for o in outs)

    def source(self, dtype, axis) -> str:
        return self.expr.replace("{T}", TL[dtype]).replace("{axis}", str(axis)).replace(
            "{IT}", TL[{8: "i8", 16: "i16", 32: "i32", 64: "i64"}.get(BITS[dtype], "i1")]).replace(
            "{UT}", TL[{8: "u8", 16: "u16", 32: "u32", 64: "u64"}.get(BITS[dtype], "i1")])


# ---- reference helpers ------------------------------------------------------------------------
def wide(a):
    """Float inputs as float64 (exact), so references round once, into the result type."""
    return a.astype(np.float64) if a.dtype.kind == "f" else a


def fl(fn):
    """A float reference computed in float64 and rounded once to the result type."""
    def ref(x, y, z, dtype, axis):
        with np.errstate(all="ignore"):
            return to_repr(fn(wide(x), wide(y), wide(z)), dtype)
    return ref


def same(fn):
    """A reference computed in the input type (integer ops wrap as on the GPU)."""
    def ref(x, y, z, dtype, axis):
        with np.errstate(all="ignore"):
            r = fn(x, y, z)
        return to_repr(r, dtype) if is_float(dtype) else np.asarray(r).astype(NUMPY[dtype])
    return ref


def pred(fn):
    def ref(x, y, z, dtype, axis):
        with np.errstate(all="ignore"):
            return np.asarray(fn(x, y, z)).astype(np.bool_)
    return ref


def wrap(values, dtype):
    """Python ints -> `dtype` with two's-complement wrap-around."""
    bits = BITS[dtype]
    flat = values.ravel().tolist() if isinstance(values, np.ndarray) else list(values)
    u = np.array([int(v) % (1 << bits) for v in flat], dtype=np.uint64)
    return u.astype({8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}[bits]).view(NUMPY[dtype])


def int_binary(fn):
    def ref(x, y, z, dtype, axis):
        return wrap([fn(int(a), int(b)) for a, b in zip(x.ravel(), y.ravel())], dtype).reshape(x.shape)
    return ref


def trunc_div(a, b):
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def trunc_rem(a, b):
    return a - trunc_div(a, b) * b


def umulhi(dtype):
    bits = BITS[dtype]
    return lambda a, b: ((a % (1 << bits)) * (b % (1 << bits))) >> bits


def cast_ref(target):
    """Triton's casts: ints wrap, floats round to nearest even, float -> int truncates toward zero and
    saturates (NaN -> 0, as PTX cvt.rzi.sat does on NVIDIA GPUs), anything -> bool is `!= 0`."""
    def ref(x, y, z, dtype, axis):
        if target == "i1":
            return x != 0
        if is_float(target):
            return to_repr(x.astype(np.float64), target)
        if is_float(dtype):
            info = np.iinfo(NUMPY[target])
            with np.errstate(all="ignore"):
                t = np.trunc(x.astype(np.float64))
            t = np.where(np.isnan(t), 0, np.clip(t, float(info.min), float(info.max)))
            return np.array([max(min(int(v), info.max), info.min) for v in t.ravel()], dtype=object) \
                .astype(NUMPY[target]).reshape(x.shape)
        if dtype == "i1":
            return x.astype(NUMPY[target])
        return wrap(x, target).reshape(x.shape)
    return ref


def bitcast_ref(kind):
    def ref(x, y, z, dtype, axis):
        bits = BITS[dtype]
        target = ("i" if kind == "int" else "u") + str(bits)
        if dtype == "bf16":  # the bits torch gives the kernel
            return torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(NUMPY[target])
        return x.view(NUMPY[target])
    return ref


def from_bits_ref(target):
    def ref(x, y, z, dtype, axis):
        if target == "bf16":
            return (x.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        return x.view(NUMPY[target])
    return ref


def _pi_times(a):
    """(pi * r, r) for r = a reduced exactly to [-1, 1] (pi * a rounded would miss the exact zeros)."""
    r = a - 2.0 * np.round(a / 2.0)
    return np.pi * r, r


def sinpi64(a):
    x, r = _pi_times(a)
    return np.where(r == np.trunc(r), np.copysign(0.0, a), np.sin(x))


def cospi64(a):
    x, r = _pi_times(a)
    return np.where(np.abs(r) == 0.5, 0.0, np.cos(x))


def erf64(a):
    from math import erf
    return np.vectorize(erf, otypes=[np.float64])(a)


def reduce_ref(fn, acc=None):
    def ref(x, y, z, dtype, axis):
        a = x.astype(acc) if acc else (wide(x) if is_float(dtype) else x)
        with np.errstate(all="ignore"):
            r = fn(a, axis)
        return to_repr(r, dtype) if is_float(dtype) else r
    return ref


def arg_ref(fn):
    return lambda x, y, z, dtype, axis: fn(x, axis=axis).astype(np.int32)


def scan_ref(fn, reverse=False, widen=False):
    def ref(x, y, z, dtype, axis):
        a = wide(x) if is_float(dtype) else x
        if reverse:
            a = np.flip(a, axis)
        with np.errstate(all="ignore"):
            r = fn(a, axis=axis, dtype=SUM_WIDEN_NP[dtype] if widen and dtype in SUM_WIDEN else a.dtype)
        if reverse:
            r = np.flip(r, axis)
        return to_repr(r, dtype) if is_float(dtype) else r
    return ref


# Triton sums narrow integers in 32 bits (tl.sum / tl.cumsum pick int32 or uint32).
SUM_WIDEN = {"i1": "i32", "i8": "i32", "i16": "i32", "u8": "u32", "u16": "u32"}
SUM_WIDEN_NP = {k: NUMPY[v] for k, v in SUM_WIDEN.items()}
NOT_BF16_WIDE_INT = {}

# Triton's tl.math functions accept float32 (and float64) only: half inputs are cast by the user.
MATH_DTYPES = ("f32", "f64")


def spec(name: str, table=apple.PRECISE_F32) -> Tol:
    """The MSL specification's bound for Metal's function `name` (Table 8.1 unless `table` says otherwise),
    plus the half ulp of the float64 reference's own rounding. Half and bfloat results are computed in
    float and rounded once more: the float bound, counted in their (larger) ulps, covers that."""
    return Tol(ulps=table[name].tolerance_ulps)


MATH_TOL = spec("exp")  # Metal's precise:: exp, exp2, log, log2, sin, cos: <= 4 ulp (MSL Table 8.1)
FLOAT_DTYPES_NOTE = "computed in float for half and bfloat"

ROWS: list[Row] = []


def add(*rows):
    ROWS.extend(rows)


# ---- elementwise arithmetic -------------------------------------------------------------------
add(
    Row("add (+)", "x + y", same(lambda x, y, z: x + y), (*INTS, *FLOATS64), "arith"),
    Row("sub (-)", "x - y", same(lambda x, y, z: x - y), (*INTS, *FLOATS64), "arith"),
    Row("mul (*)", "x * y", same(lambda x, y, z: x * y), (*INTS, *FLOATS64), "arith"),
    # numpy's bool + bool is logical or; Triton's i1 is a 1-bit integer that wraps mod 2.
    Row("add (+) i1", "x + y", same(lambda x, y, z: (x.astype(np.int8) + y.astype(np.int8)) % 2 == 1), ("i1",), "arith"),
    Row("sub (-) i1", "x - y", same(lambda x, y, z: (x.astype(np.int8) - y.astype(np.int8)) % 2 == 1), ("i1",), "arith"),
    Row("mul (*) i1", "x * y", same(lambda x, y, z: (x.astype(np.int8) * y.astype(np.int8)) % 2 == 1), ("i1",), "arith"),
    Row("neg (unary -)", "-x", same(lambda x, y, z: -x), (*SIGNED, *FLOATS64), "arith"),
    Row("div (/) float", "x / y", fl(lambda x, y, z: x / y), FLOATS64, "arith", domain="divisor", tol=spec("x / y"),
        note="correctly rounded (MSL Tables 8.1, 8.3, 8.4; f32: `precise::divide`)"),
    Row("floordiv (//) int", "x // y", None, INTS, "arith", domain="divisor",
        note="truncates toward zero (C semantics, as Triton); x // 0 is unspecified in Triton, x here"),
    Row("mod (%) int", "x % y", None, INTS, "arith", domain="divisor",
        note="sign of the dividend (C semantics, as Triton); x % 0 is unspecified in Triton, 0 here"),
    Row("mod (%) float", "x % y", fl(lambda x, y, z: np.fmod(x, y)), FLOATS64, "arith", domain="divisor",
        tol=spec("fmod"), note="fmod: exact (MSL Table 8.1: 0 ulp)"),
    Row("bitwise and (&)", "x & y", same(lambda x, y, z: x & y), ("i1", *INTS), "bitwise"),
    Row("bitwise or (|)", "x | y", same(lambda x, y, z: x | y), ("i1", *INTS), "bitwise"),
    Row("bitwise xor (^)", "x ^ y", same(lambda x, y, z: x ^ y), ("i1", *INTS), "bitwise"),
    Row("bitwise not (~)", "~x", same(lambda x, y, z: ~x), ("i1", *INTS), "bitwise"),
    Row("shift left (<<)", "x << y", same(lambda x, y, z: x << y), INTS, "bitwise", domain="shift",
        note="shift amounts must be < the bit width (larger ones are undefined, as in Triton)"),
    Row("shift right (>>)", "x >> y", same(lambda x, y, z: x >> y), INTS, "bitwise", domain="shift",
        note="arithmetic for signed, logical for unsigned types"),
    Row("tl.umulhi", "tl.umulhi(x, y)", None, ("i32", "u32", "i64", "u64"), "bitwise"),
    Row("tl.abs", "tl.abs(x)", same(lambda x, y, z: np.abs(x)), (*INTS, *FLOATS64), "arith"),
    Row("tl.maximum", "tl.maximum(x, y)", same(lambda x, y, z: np.fmax(x, y)), (*INTS, *FLOATS64), "minmax",
        domain="special", note="floats: NaN loses (propagate_nan=NONE, IEEE maxNum)"),
    Row("tl.minimum", "tl.minimum(x, y)", same(lambda x, y, z: np.fmin(x, y)), (*INTS, *FLOATS64), "minmax",
        domain="special", note="floats: NaN loses (propagate_nan=NONE)"),
    Row("tl.maximum propagate_nan=ALL", "tl.maximum(x, y, propagate_nan=tl.PropagateNan.ALL)",
        same(lambda x, y, z: np.maximum(x, y)), FLOATS64, "minmax", domain="special"),
    Row("tl.minimum propagate_nan=ALL", "tl.minimum(x, y, propagate_nan=tl.PropagateNan.ALL)",
        same(lambda x, y, z: np.minimum(x, y)), FLOATS64, "minmax", domain="special"),
    Row("tl.clamp", "tl.clamp(x, tl.minimum(y, z), tl.maximum(y, z))",
        same(lambda x, y, z: np.clip(x, np.minimum(y, z), np.maximum(y, z))), FLOATS64, "minmax"),
    Row("tl.where", "tl.where(x < y, y, z)", same(lambda x, y, z: np.where(x < y, y, z)), ALL, "select"),
)
for name, sym, fn in (("eq", "==", np.equal), ("ne", "!=", np.not_equal), ("lt", "<", np.less),
                      ("le", "<=", np.less_equal), ("gt", ">", np.greater), ("ge", ">=", np.greater_equal)):
    add(Row(f"compare {sym}", f"x {sym} y", pred(lambda x, y, z, fn=fn: fn(x, y)), ALL, "compare",
            domain="special", out="i1", note="floats: NaN compares unequal to everything (!= is true)"))

# ---- math -------------------------------------------------------------------------------------
for name, expr, fn, domain, tol in (
    ("tl.exp", "tl.exp(x)", np.exp, "exp", MATH_TOL),
    ("tl.exp2", "tl.exp2(x)", np.exp2, "exp", MATH_TOL),
    ("tl.log", "tl.log(x)", np.log, "pos", MATH_TOL),
    ("tl.log2", "tl.log2(x)", np.log2, "pos", MATH_TOL),
    ("tl.sin", "tl.sin(x)", np.sin, "trig", spec("sin")),
    ("tl.cos", "tl.cos(x)", np.cos, "trig", spec("cos")),
    ("tl.sqrt", "tl.sqrt(x)", np.sqrt, "pos", spec("sqrt")),
    ("tl.sqrt_rn", "tl.sqrt_rn(x)", np.sqrt, "pos", spec("sqrt")),
    ("tl.rsqrt", "tl.rsqrt(x)", lambda a: 1 / np.sqrt(a), "pos", spec("rsqrt")),
    ("tl.erf", "tl.erf(x)", erf64, "any", Tol(ulps=2, atol=3e-7)),
    ("tl.floor", "tl.floor(x)", np.floor, "any", EXACT),
    ("tl.ceil", "tl.ceil(x)", np.ceil, "any", EXACT),
    # Triton's 1 / (1 + exp(-x)): Metal's exp (4 ulp), then an add and a division rounding once each.
    ("tl.sigmoid", "tl.sigmoid(x)", lambda a: 1 / (1 + np.exp(-a)), "any", Tol(ulps=6)),
):
    dtypes = ("f32",) if name == "tl.sqrt_rn" else MATH_DTYPES
    add(Row(name, expr, fl(lambda x, y, z, fn=fn: fn(x)), dtypes, "math", domain=domain, tol=tol))
add(
    Row("tl.fma", "tl.fma(x, y, z)", fl(lambda x, y, z: x * y + z), FLOATS64, "math", tol=spec("fma"),
        note="one rounding (metal::fma)"),
    Row("tl.div_rn", "tl.div_rn(x, y)", fl(lambda x, y, z: x / y), ("f32",), "math", domain="divisor",
        tol=spec("x / y"), note="correctly rounded (`precise::divide`, MSL Table 8.1)"),
    Row("tl.fdiv", "tl.fdiv(x, y)", fl(lambda x, y, z: x / y), FLOATS64, "math", domain="divisor",
        tol=spec("x / y", apple.FAST_F32), note="the fast-math bound: 2.5 ulp (MSL Table 8.2)"),
)

# ---- casts ------------------------------------------------------------------------------------
for target in ("i1", *INTS, *FLOATS):
    tol = Tol(ulps=0.5) if is_float(target) else EXACT
    add(Row(f"cast .to({TL[target]})", f"x.to({TL[target]})", cast_ref(target), ALL, "cast", domain="cast",
            out=target, tol=tol))
add(
    Row("bitcast float -> int", "x.to({IT}, bitcast=True)", bitcast_ref("int"), FLOATS64, "bitcast",
        out={"f16": "i16", "bf16": "i16", "f32": "i32", "f64": "i64"}, domain="special"),
    Row("bitcast int -> uint", "x.to({UT}, bitcast=True)", bitcast_ref("uint"), SIGNED, "bitcast",
        out={"i8": "u8", "i16": "u16", "i32": "u32", "i64": "u64"}),
    Row("bitcast int16 -> bfloat16", "x.to(tl.bfloat16, bitcast=True)", from_bits_ref("bf16"), ("i16",), "bitcast",
        out="bf16", domain="small"),
    Row("bitcast int32 -> float32", "x.to(tl.float32, bitcast=True)", from_bits_ref("f32"), ("i32",), "bitcast",
        out="f32", domain="small"),
)

# ---- subnormal operands and results (apple_numerics.py) ------------------------------------------------
def _evaluate(fn, dtype, out, flush_operands: bool, x, y, z):
    """fn over float64 operands (flushed to a zero of their sign first when asked), rounded once to `out`
    and then flushed too when asked (a float result; booleans are what they are)."""
    f = (lambda a: apple.flush(a, dtype)) if flush_operands else (lambda a: a)
    with np.errstate(all="ignore"):
        r = np.asarray(fn(wide(f(x)), wide(f(y)), wide(f(z))))
    if r.dtype == np.bool_:
        return r
    r = to_repr(r, out)
    return apple.flush(r, out) if flush_operands else r


def apple_model(fn, out=None):
    """What the simulator computes, modelling Apple GPUs: float and bfloat arithmetic flushes subnormal
    operands and results, half arithmetic keeps them (apple_numerics.MEASURED)."""
    return lambda x, y, z, dtype, axis: _evaluate(fn, dtype, out or dtype, apple.ARITHMETIC_FLUSHES[dtype], x, y, z)


def spec_alternative(fn, measured: bool, out=None):
    """The other result the MSL specification allows (8.1, 8.5): the IEEE one for float and bfloat, unless
    Apple GPUs were measured to flush there (`measured`); the flushed one for half, which the specification
    lets flush although it was measured to keep subnormals (so no test asserts the IEEE result for it)."""
    def alt(x, y, z, dtype, axis):
        flushes = apple.ARITHMETIC_FLUSHES[dtype]
        if flushes and measured:
            return None
        return _evaluate(fn, dtype, out or dtype, not flushes, x, y, z)
    return alt


def subnormal_row(op, expr, fn, dtypes, measured, note, out=None, domain="subnormal"):
    return Row(op, expr, apple_model(fn, out), dtypes, "denormals", domain=domain, out=out or "same",
               tol=EXACT if out == "i1" else Tol(ulps=0.5), alt=spec_alternative(fn, measured, out), note=note)


MEASURED_NOTE = "measured: f32 and bf16 flush operands and results, f16 keeps them (either accepted for f16)"
OPEN_NOTE = "not measured: the flushed or the IEEE result (MSL 8.5), either accepted"
add(
    subnormal_row("add (+) subnormal", "x + y", lambda x, y, z: x + y, FLOATS, True, MEASURED_NOTE),
    subnormal_row("sub (-) subnormal", "x - y", lambda x, y, z: x - y, FLOATS, True, MEASURED_NOTE),
    subnormal_row("mul (*) subnormal", "x * y", lambda x, y, z: x * y, FLOATS, True, MEASURED_NOTE),
    subnormal_row("div (/) subnormal dividend", "x / y", lambda x, y, z: x / y, FLOATS, True, MEASURED_NOTE,
                  domain="subnormal_dividend"),
    subnormal_row("tl.fma subnormal", "tl.fma(x, y, z)", apple.fma_exact, FLOATS, True,
                  "reported: Apple's hardware fma flushes f32 subnormals (bf16: a float fma); f16: either"),
    subnormal_row("tl.sqrt subnormal", "tl.sqrt(x)", lambda x, y, z: np.sqrt(x), ("f32",), False, OPEN_NOTE),
    subnormal_row("tl.maximum subnormal", "tl.maximum(x, y)", lambda x, y, z: np.fmax(x, y), FLOATS, False,
                  OPEN_NOTE),
    subnormal_row("compare < subnormal", "x < y", lambda x, y, z: x < y, FLOATS, False, OPEN_NOTE, out="i1"),
    Row("copy (load, store) subnormal", "x", lambda x, y, z, dtype, axis: x, FLOATS, "denormals",
        domain="subnormal", may_flush=False, note="measured: loads and stores keep every bit pattern"),
    Row("cast .to(tl.float32) subnormal", "x.to(tl.float32)", cast_ref("f32"), ("f16", "bf16"), "denormals",
        domain="subnormal", out="f32", may_flush=False, note="exact (MSL 8.6: half and bfloat -> float are lossless)"),
    Row("cast .to(tl.float16) to subnormal halves", "x.to(tl.float16)", cast_ref("f16"), ("f32",), "denormals",
        domain="half_subnormal", out="f16", tol=Tol(ulps=0.5), may_flush=False,
        note="to nearest even; half subnormals are kept (MSL 8.6)"),
)

# ---- refused everywhere ---------------------------------------------------------------------------
add(
    Row("tl.inline_asm_elementwise", 'tl.inline_asm_elementwise("mov.b32 $0, $1;", "=r,r", [x], dtype=tl.int32, '
        'is_pure=True, pack=1)', None, ("i32",), "bitwise", refused={"i32": ("inline_asm", {})}),
)

# ---- libdevice (triton.language.extra.libdevice -> triton_metal.libdevice) ---------------------------
# float32 functions; float16/bfloat16 are computed in float32 and rounded once (fp64: refused).
# Tolerances: MATH_TOL for Metal's precise:: functions; our own helpers (Metal has no such function)
# get the bound measured over the table's inputs on the simulator, rounded up (see test_libdevice.py).
def mp_ref(name):
    """A float reference from mpmath (arbitrary precision) at the float64 inputs."""
    import mpmath

    def fn(a):
        f = getattr(mpmath, name)

        def one(v):
            if np.isnan(v):
                return np.nan
            try:
                return float(f(mpmath.mpf(float(v))))
            except (ValueError, ZeroDivisionError):
                return np.nan
        return np.vectorize(one, otypes=[np.float64])(a)
    return fn


def erfcx64(a):
    import mpmath
    return np.vectorize(lambda v: float(mpmath.exp(mpmath.mpf(float(v)) ** 2) * mpmath.erfc(float(v))),
                        otypes=[np.float64])(a)


def normcdfinv64(a):
    import mpmath
    return np.vectorize(lambda v: float(-mpmath.sqrt(2) * mpmath.erfinv(1 - 2 * mpmath.mpf(float(v))))
                        if 0 < v < 1 else np.nan, otypes=[np.float64])(a)


def float_to_int_ref(rounding, target):
    """libdevice float2int_*: round as `rounding`, then saturate (NaN -> 0), as CUDA."""
    def ref(x, y, z, dtype, axis):
        info = np.iinfo(NUMPY[target])
        with np.errstate(all="ignore"):
            r = rounding(x.astype(np.float64))
        r = np.where(np.isnan(r), 0, np.clip(r, float(info.min), float(info.max)))
        return np.array([max(min(int(v), info.max), info.min) for v in r.ravel()], dtype=object) \
            .astype(NUMPY[target]).reshape(x.shape)
    return ref


def ilogb_ref(x, y, z, dtype, axis):
    def one(v):
        if np.isnan(v) or v == 0:
            return -2**31
        if np.isinf(v):
            return 2**31 - 1
        return math.frexp(float(v))[1] - 1
    return np.vectorize(one, otypes=[np.int32])(x)


def nextafter_ref(x, y, z, dtype, axis):
    """The next value of the argument's own type; bfloat16 (held in float32) steps the top 16 bits."""
    if dtype != "bf16":
        return np.nextafter(x, y)
    step = np.where((y > x) == (x > 0), 1 << 16, -(1 << 16)).astype(np.int64)
    bits = (x.view(np.uint32).astype(np.int64) + step).astype(np.uint32).view(np.float32)
    tiny = np.copysign(np.float32(2.0 ** -133), y)  # the smallest bfloat16 subnormal
    out = np.where(x == 0, tiny, bits)
    out = np.where(x == y, y, out)
    return np.where(np.isnan(x) | np.isnan(y), np.nan, out).astype(np.float32)


def int_unary(fn, target=None):
    def ref(x, y, z, dtype, axis):
        return wrap([fn(int(a), BITS[dtype]) for a in x.ravel()], target or dtype).reshape(x.shape)
    return ref


def int_nary(fn):
    def ref(x, y, z, dtype, axis):
        return wrap([fn(int(a), int(b), int(c)) for a, b, c in zip(x.ravel(), y.ravel(), z.ravel())],
                    dtype).reshape(x.shape)
    return ref


def sext24(v):
    v &= 0xffffff
    return v - (1 << 24) if v & 0x800000 else v


def byte_perm(x, y, s):
    v = ((y % 2**32) << 32) | (x % 2**32)
    return sum(((v >> (8 * ((s >> (4 * n)) & 7))) & 0xff) << (8 * n) for n in range(4))


def signed(v, bits):
    v %= 1 << bits
    return v - (1 << bits) if v >> (bits - 1) else v


# Metal's own functions (precise::, libdevice_msl.py) get the MSL specification's bound (spec()).
for name, fn, domain, tol in (
    ("exp", np.exp, "exp", spec("exp")), ("exp2", np.exp2, "exp", spec("exp2")),
    ("exp10", lambda a: 10.0 ** a, "exp", spec("exp10")),
    ("expm1", np.expm1, "unit", Tol(ulps=3)), ("log", np.log, "pos", spec("log")), ("log2", np.log2, "pos", spec("log2")),
    ("log10", np.log10, "pos", spec("log10")), ("log1p", np.log1p, "unit", Tol(ulps=3)),
    ("sin", np.sin, "trig", spec("sin")), ("cos", np.cos, "trig", spec("cos")),
    ("tan", np.tan, "trig", spec("tan")), ("asin", np.arcsin, "unit", spec("asin")),
    ("acos", np.arccos, "unit", spec("acos")), ("atan", np.arctan, "any", spec("atan")),
    ("sinh", np.sinh, "exp", spec("sinh")), ("cosh", np.cosh, "exp", spec("cosh")), ("tanh", np.tanh, "any", spec("tanh")),
    ("asinh", np.arcsinh, "any", spec("asinh")), ("acosh", np.arccosh, "pos", spec("acosh")),
    ("atanh", np.arctanh, "unit", spec("atanh")),
    ("sinpi", sinpi64, "unit", spec("sinpi")),
    ("cospi", cospi64, "unit", spec("cospi")),
    ("erf", erf64, "any", Tol(ulps=2, atol=3e-7)), ("erfc", mp_ref("erfc"), "any", Tol(ulps=8)),
    ("erfcx", erfcx64, "any", Tol(ulps=6)), ("erfinv", mp_ref("erfinv"), "unit", Tol(ulps=6)),
    ("normcdf", mp_ref("ncdf"), "any", Tol(ulps=8)),
    ("sqrt", np.sqrt, "pos", spec("sqrt")), ("sqrt_rn", np.sqrt, "pos", spec("sqrt")),
    ("rsqrt", lambda a: 1 / np.sqrt(a), "pos", spec("rsqrt")), ("rsqrt_rn", lambda a: 1 / np.sqrt(a), "pos", spec("rsqrt")),
    ("rcp_rn", lambda a: 1 / a, "divisor", spec("1.0 / x")), ("cbrt", np.cbrt, "any", Tol(ulps=2)),
    ("rcbrt", lambda a: 1 / np.cbrt(a), "any", Tol(ulps=3)),
    ("floor", np.floor, "special", EXACT), ("ceil", np.ceil, "special", EXACT), ("trunc", np.trunc, "special", EXACT),
    ("round", lambda a: np.trunc(a + np.copysign(0.5, a)), "ties", EXACT), ("rint", np.rint, "ties", EXACT),
    ("nearbyint", np.rint, "ties", EXACT), ("abs", np.abs, "special", EXACT),
    ("saturatef", lambda a: np.where(np.isnan(a), 0.0, np.clip(a, 0.0, 1.0)), "special", EXACT),
    ("logb", lambda a: np.where(a == 0, -np.inf, np.floor(np.log2(np.abs(a)))), "special", EXACT),
):
    add(Row(f"libdevice.{name}", f"libdevice.{name}(x)", fl(lambda x, y, z, fn=fn: fn(x)), FLOATS64, "math",
            domain=domain, tol=tol, note=FLOAT_DTYPES_NOTE))
for name, fn, domain, tol in (
    ("atan2", np.arctan2, "any", spec("atan2")), ("pow", np.power, "pos", spec("pow")),
    ("hypot", np.hypot, "any", Tol(ulps=2)), ("rhypot", lambda a, b: 1 / np.hypot(a, b), "any", Tol(ulps=3)),
    ("fmod", np.fmod, "divisor", spec("fmod")),
    ("remainder", np.vectorize(lambda a, b: math.remainder(a, b) if b != 0 and np.isfinite(a) else np.nan,
                               otypes=[np.float64]), "divisor", EXACT),
    ("fmin", np.fmin, "special", spec("fmin")), ("fmax", np.fmax, "special", spec("fmax")), ("fdim", lambda a, b: np.where(
        a > b, a - b, np.where(np.isnan(a) | np.isnan(b), np.nan, 0.0)), "any", spec("fdim")),
    ("copysign", np.copysign, "any", spec("copysign")), ("div_rn", lambda a, b: a / b, "divisor", spec("x / y")),
    ("add_rn", lambda a, b: a + b, "any", Tol(ulps=0.5)), ("sub_rn", lambda a, b: a - b, "any", Tol(ulps=0.5)),
    ("mul_rn", lambda a, b: a * b, "any", Tol(ulps=0.5)),
):
    add(Row(f"libdevice.{name}", f"libdevice.{name}(x, y)", fl(lambda x, y, z, fn=fn: fn(x, y)), FLOATS64, "math",
            domain=domain, tol=tol, note=FLOAT_DTYPES_NOTE))
add(
    Row("libdevice.pow (x, int32)", "libdevice.pow(x, 3)", fl(lambda x, y, z: x ** 3), FLOATS64, "math",
        tol=spec("pow"), note="powi; " + FLOAT_DTYPES_NOTE),
    Row("libdevice.fma", "libdevice.fma(x, y, z)", fl(lambda x, y, z: x * y + z), FLOATS64, "math",
        tol=spec("fma"), note="one rounding"),
    Row("libdevice.norm3d", "libdevice.norm3d(x, y, z)", fl(lambda x, y, z: np.sqrt(x * x + y * y + z * z)),
        FLOATS64, "math", tol=Tol(ulps=2)),
    Row("libdevice.rnorm4d", "libdevice.rnorm4d(x, y, z, x)", fl(lambda x, y, z: 1 / np.sqrt(2 * x * x + y * y + z * z)),
        FLOATS64, "math", tol=Tol(ulps=3)),
    Row("libdevice.fma_rn", "libdevice.fma_rn(x, y, z)", fl(lambda x, y, z: x * y + z), FLOATS64, "math",
        tol=spec("fma")),
    Row("libdevice.norm4d", "libdevice.norm4d(x, y, z, y)", fl(lambda x, y, z: np.sqrt(x * x + 2 * y * y + z * z)),
        FLOATS64, "math", tol=Tol(ulps=2)),
    Row("libdevice.rnorm3d", "libdevice.rnorm3d(x, y, z)", fl(lambda x, y, z: 1 / np.sqrt(x * x + y * y + z * z)),
        FLOATS64, "math", tol=Tol(ulps=3)),
    Row("libdevice.scalbn", "libdevice.scalbn(x, (y * 16).to(tl.int32))",
        lambda x, y, z, dtype, axis: to_repr(np.ldexp(wide(x), (y.astype(np.float64) * 16).astype(np.int32)), dtype),
        FLOATS64, "math", tol=Tol(ulps=0.5)),
    Row("libdevice.uint_as_float", "libdevice.uint_as_float(x)", from_bits_ref("f32"), ("u32",), "bitcast",
        out="f32"),
    Row("libdevice.erfcinv", "libdevice.erfcinv(tl.abs(x) * 2)", fl(lambda x, y, z: mp_ref("erfinv")(1 - 2 * np.abs(x))),
        FLOATS64, "math", domain="unit", tol=Tol(ulps=6), note="inputs in (0, 2)"),
    Row("libdevice.normcdfinv", "libdevice.normcdfinv(tl.abs(x))", fl(lambda x, y, z: normcdfinv64(np.abs(x))),
        FLOATS64, "math", domain="unit", tol=Tol(ulps=6), note="inputs in (0, 1)"),
    Row("libdevice.ldexp", "libdevice.ldexp(x, (y * 16).to(tl.int32))",
        lambda x, y, z, dtype, axis: to_repr(np.ldexp(wide(x), (y.astype(np.float64) * 16).astype(np.int32)), dtype),
        FLOATS64, "math", tol=Tol(ulps=0.5)),
    Row("libdevice.nextafter", "libdevice.nextafter(x, y)", nextafter_ref,
        FLOATS64, "math", domain="special", note="in the argument's own type (its own spacing)"),
    Row("libdevice.isnan", "libdevice.isnan(x)", pred(lambda x, y, z: np.isnan(x)), FLOATS64, "math",
        domain="special", out="i1"),
    Row("libdevice.isinf", "libdevice.isinf(x)", pred(lambda x, y, z: np.isinf(x)), FLOATS64, "math",
        domain="special", out="i1"),
    Row("libdevice.finitef", "libdevice.finitef(x)", pred(lambda x, y, z: np.isfinite(x)), FLOATS, "math",
        domain="special", out="i1"),
    Row("libdevice.signbit", "libdevice.signbit(x)", lambda x, y, z, d, a: np.signbit(x).astype(np.int32), FLOATS64,
        "math", out="i32", note="NaN signs and -0.0: test_libdevice.py (torch does not keep a bfloat16 NaN's sign)"),
    Row("libdevice.ilogb", "libdevice.ilogb(x)", ilogb_ref, FLOATS64, "math", domain="special", out="i32",
        note="ilogb(0) = ilogb(NaN) = INT_MIN, ilogb(inf) = INT_MAX (as CUDA)"),
    Row("libdevice.llrint", "libdevice.llrint(x)", float_to_int_ref(np.rint, "i64"), FLOATS64, "cast",
        domain="cast", out="i64", note="saturates, NaN -> 0"),
    Row("libdevice.llround", "libdevice.llround(x)", float_to_int_ref(lambda a: np.trunc(a + np.copysign(0.5, a)), "i64"),
        FLOATS64, "cast", domain="cast", out="i64", note="halfway cases away from zero; saturates"),
    Row("libdevice.int2float_rn", "libdevice.int2float_rn(x)", lambda x, y, z, d, a: x.astype(np.float32), ("i32",),
        "cast", out="f32"),
    Row("libdevice.uint2float_rn", "libdevice.uint2float_rn(x)", lambda x, y, z, d, a: x.astype(np.float32),
        ("u32",), "cast", out="f32"),
    Row("libdevice.ll2float_rn", "libdevice.ll2float_rn(x)", lambda x, y, z, d, a: x.astype(np.float32), ("i64",),
        "cast", out="f32"),
    Row("libdevice.ull2float_rn", "libdevice.ull2float_rn(x)", lambda x, y, z, d, a: x.astype(np.float32),
        ("u64",), "cast", out="f32"),
    Row("libdevice.int_as_float", "libdevice.int_as_float(x)", from_bits_ref("f32"), ("i32",), "bitcast", out="f32"),
    Row("libdevice.float_as_int", "libdevice.float_as_int(x)", bitcast_ref("int"), ("f32",), "bitcast", out="i32",
        domain="special"),
    Row("libdevice.float_as_uint", "libdevice.float_as_uint(x)", bitcast_ref("uint"), ("f32",), "bitcast",
        out="u32", domain="special"),
)
for mode, rounding in (("rn", np.rint), ("rz", np.trunc), ("rd", np.floor), ("ru", np.ceil)):
    for kind, target in (("int", "i32"), ("uint", "u32"), ("ll", "i64"), ("ull", "u64")):
        add(Row(f"libdevice.float2{kind}_{mode}", f"libdevice.float2{kind}_{mode}(x)",
                float_to_int_ref(rounding, target), FLOATS, "cast", domain="cast", out=target,
                note="saturates, NaN -> 0 (as CUDA)"))
# metal::fast:: functions, on domains where MSL Table 8.2 bounds them. Where the table gives a formula
# ("implemented as"), the note says what bound it implies there (derived, not the specification's number).
for name, fn, domain, tol, bound in (
    ("fast_sinf", np.sin, "pi", Tol(ulps=0.5, atol=2**-13), "absolute error <= 2^-13 on [-pi, pi]"),
    ("fast_cosf", np.cos, "pi", Tol(ulps=0.5, atol=2**-13), "absolute error <= 2^-13 on [-pi, pi]"),
    ("fast_tanf", np.tan, "unit", Tol(ulps=1, atol=2**-10),
     "sin(x) * (1 / cos(x)): 2^-13 errors over cos(x) >= 0.54 on [-1, 1] (derived)"),
    ("fast_tanhf", np.tanh, "unit", Tol(ulps=3, atol=2**-17),
     "(t - 1) / (t + 1), t = exp(2x) within 7 ulp on [-1, 1] (derived)"),
    ("fast_expf", np.exp, "unit", Tol(ulps=5.5), "<= 3 + floor(|2x|) ulp: 5 on [-1, 1]"),
    ("fast_exp10f", lambda a: 10.0 ** a, "unit", Tol(ulps=12),
     "exp2(x * log2(10)): exp2's 9 ulp and the product's rounding on [-1, 1] (derived)"),
    ("fast_logf", np.log, "pos", Tol(ulps=3.5, atol=2**-21), "<= 3 ulp, absolute 2^-21 on [0.5, 2]"),
    ("fast_log2f", np.log2, "pos", Tol(ulps=2.5, atol=2**-22), "<= 2 ulp, absolute 2^-22 on [0.5, 2]"),
    ("fast_log10f", np.log10, "pos", Tol(ulps=3.5, atol=2**-23), "log2(x) * log10(2) (derived)"),
):
    add(Row(f"libdevice.{name}", f"libdevice.{name}(x)", fl(lambda x, y, z, fn=fn: fn(x)), FLOATS, "math",
            domain=domain, tol=tol, note=f"metal::fast:: (MSL Table 8.2: {bound})"))
add(
    Row("libdevice.fast_dividef", "libdevice.fast_dividef(x, y)", fl(lambda x, y, z: x / y), FLOATS, "math",
        domain="divisor", tol=spec("x / y", apple.FAST_F32), note="metal::fast::divide (MSL Table 8.2: <= 2.5 ulp)"),
    Row("libdevice.fast_powf", "libdevice.fast_powf(x, y)", fl(lambda x, y, z: np.power(x, y)), FLOATS, "math",
        domain="near1", tol=Tol(ulps=6), note="metal::fast::pow (MSL Table 8.2: exp2(y * log2(x)); within 5 ulp "
        "on [0.9, 1.1], derived)"),
)
# Integer functions (CUDA's signatures: int32/int64, and uint32/uint64 where CUDA has them).
add(
    Row("libdevice.abs int", "libdevice.abs(x)", int_unary(lambda v, b: abs(signed(v, b))), ("i32", "i64"), "bitwise",
        note="abs(MIN) == MIN, as CUDA"),
    Row("libdevice.clz", "libdevice.clz(x)", int_unary(lambda v, b: b - (v % 2**b).bit_length(), "i32"),
        ("i32", "i64"), "bitwise", out="i32"),
    Row("libdevice.popc", "libdevice.popc(x)", int_unary(lambda v, b: (v % 2**b).bit_count(), "i32"),
        ("i32", "i64"), "bitwise", out="i32"),
    Row("libdevice.ffs", "libdevice.ffs(x)", int_unary(lambda v, b: ((v % 2**b) & -(v % 2**b)).bit_length(), "i32"),
        ("i32", "i64"), "bitwise", out="i32"),
    Row("libdevice.brev", "libdevice.brev(x)", int_unary(lambda v, b: int(f"{v % 2**b:0{b}b}"[::-1], 2)),
        ("i32", "i64"), "bitwise"),
    Row("libdevice.mulhi", "libdevice.mulhi(x, y)", None, ("i32", "u32", "i64", "u64"), "bitwise"),
    Row("libdevice.mul24", "libdevice.mul24(x, y)", None, ("i32", "u32"), "bitwise"),
    Row("libdevice.hadd", "libdevice.hadd(x, y)", None, ("i32", "u32"), "bitwise", note="(x + y) >> 1 without overflow"),
    Row("libdevice.rhadd", "libdevice.rhadd(x, y)", None, ("i32", "u32"), "bitwise",
        note="(x + y + 1) >> 1 without overflow"),
    Row("libdevice.sad", "libdevice.sad(x, y, z.to(tl.uint32, bitcast=True))",
        int_nary(lambda a, b, c: abs(a - b) + (c % 2**32)), ("i32", "u32"), "bitwise", note="|x - y| + z"),
    Row("libdevice.byte_perm", "libdevice.byte_perm(x, y, z)", int_nary(byte_perm), ("i32",), "bitwise"),
)
# Refused: directed rounding modes, functions not implemented.
add(*[Row(f"libdevice.{name}", f"libdevice.{name}({args})", None, ("f32",), "math",
          refused={"f32": (key, {"name": name})}) for name, args, key in (
    ("div_rz", "x, y", "libdevice_rounding_mode"), ("sqrt_ru", "x", "libdevice_rounding_mode"),
    ("fma_rd", "x, y, z", "libdevice_rounding_mode"), ("j0", "x", "libdevice_missing"),
    ("lgamma", "x", "libdevice_missing"))])


# ---- reductions and scans --------------------------------------------------------------------
SUM_TOL = Tol(eps_scale=64)
add(
    Row("tl.sum", "tl.sum(x, axis={axis})", None, ("i1", *INTS, *FLOATS64), "reduce", REDUCE_VARIANTS,
        domain="small", out=SUM_WIDEN, tol=SUM_TOL),
    Row("tl.max", "tl.max(x, axis={axis})", reduce_ref(np.max), (*INTS, *FLOATS64), "reduce", REDUCE_VARIANTS),
    Row("tl.min", "tl.min(x, axis={axis})", reduce_ref(np.min), (*INTS, *FLOATS64), "reduce", REDUCE_VARIANTS),
    Row("tl.argmax", "tl.argmax(x, axis={axis})", arg_ref(np.argmax), (*INTS, *FLOATS64), "reduce", REDUCE_VARIANTS,
        domain="ties", out="i32", note="ties: the lowest index, as Triton"),
    Row("tl.argmin", "tl.argmin(x, axis={axis})", arg_ref(np.argmin), (*INTS, *FLOATS64), "reduce", REDUCE_VARIANTS,
        domain="ties", out="i32", note="ties: the lowest index, as Triton"),
    Row("tl.xor_sum", "tl.xor_sum(x, axis={axis})", reduce_ref(np.bitwise_xor.reduce), INTS, "reduce",
        REDUCE_VARIANTS),
    Row("tl.reduce (tuple combine)", "tl.reduce((x, y), {axis}, _sum_and_max)",
        lambda x, y, z, dtype, axis: (to_repr(wide(x).sum(axis), dtype) if is_float(dtype) else x.sum(axis, dtype=x.dtype),
                                      y.max(axis)), (*INTS, *FLOATS64), "reduce", REDUCE_VARIANTS, domain="small",
        out=("same", "same"), tol=SUM_TOL),
    Row("tl.cumsum", "tl.cumsum(x, axis={axis})", scan_ref(np.cumsum, widen=True), (*INTS, *FLOATS64), "scan", SCAN_VARIANTS,
        domain="small", out=SUM_WIDEN, tol=SUM_TOL),
    Row("tl.cumprod", "tl.cumprod(x, axis={axis})", scan_ref(np.cumprod), (*INTS, *FLOATS64), "scan", SCAN_VARIANTS,
        domain="near1", tol=Tol(eps_scale=64, ulps=8)),
    Row("tl.associative_scan reverse", "tl.associative_scan(x, {axis}, _add, reverse=True)",
        scan_ref(np.cumsum, reverse=True), (*INTS, *FLOATS64), "scan", SCAN_VARIANTS, domain="small", tol=SUM_TOL),
)

# ---- shape ops ---------------------------------------------------------------------------------
SHAPE_DTYPES = ALL
add(
    Row("tl.join", "tl.join(x, y)", lambda x, y, z, d, a: np.stack([x, y], -1), SHAPE_DTYPES, "shape",
        (((256,), None), ((16, 32), None))),
    Row("tl.split", "tl.split(tl.reshape(x, (128, 2)))", lambda x, y, z, d, a: (x[0::2], x[1::2]), SHAPE_DTYPES,
        "shape", out=("same", "same")),
    Row("tl.reshape", "tl.reshape(x, (8, 32))", lambda x, y, z, d, a: x.reshape(8, 32), SHAPE_DTYPES, "shape",
        (((256,), None), ((16, 16), None), ((4, 8, 8), None))),
    Row("tl.view", "x.view(32, 8)", lambda x, y, z, d, a: x.reshape(32, 8), SHAPE_DTYPES, "shape",
        note="row-major, like reshape (Triton allows any order)"),
    Row("tl.ravel", "tl.ravel(x)", lambda x, y, z, d, a: x.reshape(-1), SHAPE_DTYPES, "shape", (((16, 16), None),)),
    Row("tl.trans", "tl.trans(x)", lambda x, y, z, d, a: x.T, SHAPE_DTYPES, "shape", (((16, 32), None),)),
    Row("tl.permute", "tl.permute(x, (2, 0, 1))", lambda x, y, z, d, a: np.transpose(x, (2, 0, 1)), SHAPE_DTYPES,
        "shape", (((4, 8, 16), None),)),
    Row("tl.broadcast_to", "tl.broadcast_to(x[None, :], (4, 256))",
        lambda x, y, z, d, a: np.broadcast_to(x[None, :], (4, 256)), SHAPE_DTYPES, "shape"),
    Row("tl.expand_dims", "tl.expand_dims(x, 1)", lambda x, y, z, d, a: x[:, None], SHAPE_DTYPES, "shape"),
    Row("tl.cat", "tl.cat(x, y, can_reorder=True)", lambda x, y, z, d, a: np.concatenate([x, y]), SHAPE_DTYPES,
        "shape", note="concatenated in order (Triton allows any order with can_reorder=True)"),
    Row("tl.interleave", "tl.interleave(x, y)", lambda x, y, z, d, a: np.stack([x, y], -1).reshape(-1),
        SHAPE_DTYPES, "shape"),
    Row("tl.flip", "tl.flip(x, 0)", lambda x, y, z, d, a: np.flip(x, 0), (*INTS, *FLOATS64), "shape"),
    Row("tl.sort", "tl.sort(x)", lambda x, y, z, d, a: np.sort(x), (*INTS, *FLOATS64), "shape"),
    Row("tl.sort descending", "tl.sort(x, descending=True)", lambda x, y, z, d, a: np.sort(x)[::-1],
        (*INTS, *FLOATS64), "shape"),
    Row("tl.gather", "tl.gather(x, y.to(tl.int32) & 255, 0)", lambda x, y, z, d, a: x[y.astype(np.int64) & 255],
        INTS, "shape"),
    Row("tl.histogram", "tl.histogram(x.to(tl.int32) & 31, 32)",
        lambda x, y, z, d, a: np.bincount(x.astype(np.int64) & 31, minlength=32).astype(np.int32), INTS, "shape",
        out="i32"),
    Row("tl.histogram masked", "tl.histogram(x.to(tl.int32) & 31, 32, mask=(y & 1) == 0)",
        lambda x, y, z, d, a: np.bincount(x.astype(np.int64)[(y & 1) == 0] & 31, minlength=32).astype(np.int32),
        INTS, "shape", out="i32"),
)

HELPERS = '''
@triton.jit
def _sum_and_max(a0, a1, b0, b1):
    return a0 + b0, tl.maximum(a1, b1)


@triton.jit
def _add(a, b):
    return a + b

'''


LIBDEVICE_INT_BINARY = {
    "libdevice.mulhi": lambda dtype: lambda a, b: (a * b) >> BITS[dtype],
    "libdevice.mul24": lambda dtype: (lambda a, b: sext24(a) * sext24(b)) if dtype in SIGNED
    else (lambda a, b: (a & 0xffffff) * (b & 0xffffff)),
    "libdevice.hadd": lambda dtype: lambda a, b: (a + b) >> 1,
    "libdevice.rhadd": lambda dtype: lambda a, b: (a + b + 1) >> 1,
}


def _fill_integer_references():
    """Rows whose reference needs the dtype (Python-int arithmetic with wrap-around)."""
    for i, row in enumerate(ROWS):
        if row.op == "floordiv (//) int":
            ROWS[i] = _with_ref(row, int_binary(trunc_div))
        elif row.op == "mod (%) int":
            ROWS[i] = _with_ref(row, int_binary(trunc_rem))
        elif row.op == "tl.umulhi":
            ROWS[i] = _with_ref(row, lambda x, y, z, dtype, axis: int_binary(umulhi(dtype))(x, y, z, dtype, axis))
        elif row.op in LIBDEVICE_INT_BINARY:
            ROWS[i] = _with_ref(row, lambda x, y, z, dtype, axis, op=row.op: int_binary(
                LIBDEVICE_INT_BINARY[op](dtype))(x, y, z, dtype, axis))
        elif row.op == "tl.sum":
            ROWS[i] = _with_ref(row, lambda x, y, z, dtype, axis: reduce_ref(
                np.sum, SUM_WIDEN_NP.get(dtype))(x, y, z, dtype, axis))


def _with_ref(row, ref):
    from dataclasses import replace
    return replace(row, ref=ref)


_fill_integer_references()
