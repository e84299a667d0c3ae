"""The op table: every row is (op, dtypes, shapes, reference, tolerance).

A row's expression is Triton code over the inputs ``x``, ``y``, ``z`` (``{T}`` is the Triton type
of the input dtype, ``{axis}`` the axis of the variant); its reference is numpy over the same
inputs. Each (op, dtype) pair of the table either runs and matches the reference, or is refused
with the exact message of the refusal catalog (``triton_metal.refusals``) named in ``refused``.
``docs/compatibility.md`` is generated from this table and the catalog (see compatibility.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ops.dtypes import ALL, BITS, FLOATS, INTS, NUMPY, SIGNED, TL, is_float, to_repr

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
MATH_TOL = Tol(ulps=4)  # Metal's precise:: functions: <= 4 ulp in float (MSL spec), one rounding more in half
FLOAT_DTYPES_NOTE = "computed in float for half and bfloat"

ROWS: list[Row] = []


def add(*rows):
    ROWS.extend(rows)


# ---- elementwise arithmetic -------------------------------------------------------------------
add(
    Row("add (+)", "x + y", same(lambda x, y, z: x + y), (*INTS, *FLOATS64), "arith"),
    Row("sub (-)", "x - y", same(lambda x, y, z: x - y), (*INTS, *FLOATS64), "arith"),
    Row("mul (*)", "x * y", same(lambda x, y, z: x * y), (*INTS, *FLOATS64), "arith"),
    Row("neg (unary -)", "-x", same(lambda x, y, z: -x), (*SIGNED, *FLOATS64), "arith"),
    Row("div (/) float", "x / y", fl(lambda x, y, z: x / y), FLOATS64, "arith", domain="divisor", tol=Tol(ulps=1),
        note="f32: correctly rounded in precise mode (Metal's `/`)"),
    Row("floordiv (//) int", "x // y", None, INTS, "arith", domain="divisor",
        note="truncates toward zero (C semantics, as Triton); x // 0 is unspecified in Triton, x here"),
    Row("mod (%) int", "x % y", None, INTS, "arith", domain="divisor",
        note="sign of the dividend (C semantics, as Triton); x % 0 is unspecified in Triton, 0 here"),
    Row("mod (%) float", "x % y", fl(lambda x, y, z: np.fmod(x, y)), FLOATS64, "arith", domain="divisor", tol=Tol(ulps=1)),
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
    ("tl.sin", "tl.sin(x)", np.sin, "trig", Tol(ulps=4, eps_scale=2)),
    ("tl.cos", "tl.cos(x)", np.cos, "trig", Tol(ulps=4, eps_scale=2)),
    ("tl.sqrt", "tl.sqrt(x)", np.sqrt, "pos", Tol(ulps=1)),
    ("tl.sqrt_rn", "tl.sqrt_rn(x)", np.sqrt, "pos", Tol(ulps=0.5)),
    ("tl.rsqrt", "tl.rsqrt(x)", lambda a: 1 / np.sqrt(a), "pos", Tol(ulps=2)),
    ("tl.erf", "tl.erf(x)", erf64, "any", Tol(ulps=2, atol=3e-7)),
    ("tl.floor", "tl.floor(x)", np.floor, "any", EXACT),
    ("tl.ceil", "tl.ceil(x)", np.ceil, "any", EXACT),
    ("tl.sigmoid", "tl.sigmoid(x)", lambda a: 1 / (1 + np.exp(-a)), "any", Tol(ulps=6)),
):
    dtypes = ("f32",) if name == "tl.sqrt_rn" else MATH_DTYPES
    add(Row(name, expr, fl(lambda x, y, z, fn=fn: fn(x)), dtypes, "math", domain=domain, tol=tol))
add(
    Row("tl.fma", "tl.fma(x, y, z)", fl(lambda x, y, z: x * y + z), FLOATS64, "math", tol=Tol(ulps=0.5),
        note="one rounding (metal::fma)"),
    Row("tl.div_rn", "tl.div_rn(x, y)", fl(lambda x, y, z: x / y), ("f32",), "math", domain="divisor",
        tol=Tol(ulps=0.5), note="correctly rounded"),
    Row("tl.fdiv", "tl.fdiv(x, y)", fl(lambda x, y, z: x / y), FLOATS64, "math", domain="divisor",
        tol=Tol(ulps=2.5), note="fast division: 2.5 ulp"),
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

# ---- refused everywhere ---------------------------------------------------------------------------
add(
    Row("tl.inline_asm_elementwise", 'tl.inline_asm_elementwise("mov.b32 $0, $1;", "=r,r", [x], dtype=tl.int32, '
        'is_pure=True, pack=1)', None, ("i32",), "bitwise", refused={"i32": ("inline_asm", {})}),
)

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
)

HELPERS = '''
@triton.jit
def _sum_and_max(a0, a1, b0, b1):
    return a0 + b0, tl.maximum(a1, b1)


@triton.jit
def _add(a, b):
    return a + b

'''


def _fill_integer_references():
    """Rows whose reference needs the dtype (Python-int arithmetic with wrap-around)."""
    for i, row in enumerate(ROWS):
        if row.op == "floordiv (//) int":
            ROWS[i] = _with_ref(row, int_binary(trunc_div))
        elif row.op == "mod (%) int":
            ROWS[i] = _with_ref(row, int_binary(trunc_rem))
        elif row.op == "tl.umulhi":
            ROWS[i] = _with_ref(row, lambda x, y, z, dtype, axis: int_binary(umulhi(dtype))(x, y, z, dtype, axis))
        elif row.op == "tl.sum":
            ROWS[i] = _with_ref(row, lambda x, y, z, dtype, axis: reduce_ref(
                np.sum, SUM_WIDEN_NP.get(dtype))(x, y, z, dtype, axis))


def _with_ref(row, ref):
    from dataclasses import replace
    return replace(row, ref=ref)


_fill_integer_references()
