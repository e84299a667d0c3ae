"""What Apple GPUs compute, as the op table (table.py), the fuzz test and docs/compatibility.md state it.

Two kinds of source, kept apart because tests treat them differently:

- **The specification** (Metal Shading Language Specification, chapter 8 "Numerical Compliance"; the
  chapter is the same in versions 3.2, 4 and 4.1): the accuracy tables below (8.4, Tables 8.1 to 8.3),
  "denormalized single-precision, half-precision, or bfloat floating-point numbers passed as input to
  or produced as the output of [...] arithmetic operations may be flushed to zero" (8.1), the results a
  function may return when denormals are flushed (8.5: the unflushed result; that result flushed if
  subnormal; the result with subnormal operands flushed; that flushed if subnormal; the sign of a
  flushed zero undefined), and conversions: half and bfloat -> float are exact, float -> half keeps
  half subnormals, fast math does not change conversions (8.6).
- **Measurements and reports** of Apple GPUs: float and bfloat ``+ - * /`` flush subnormal operands and
  results to a zero of the operand's or result's sign, half ``+ - * /`` keep them, loads and stores
  keep every bit pattern, in every math mode (moderately-ai/tiler, docs/research/apple-targets/
  numerical-behaviour.md, findings 2, 3, 4, 15, 20, 21, 24: Apple M4 Max, macOS 26 and 27, Xcode 26.6,
  offline and runtime compilers); the hardware fma flushes float subnormals (triton-lang/triton-ext's
  AppleGPU backend needed a guarded software fma).

A test asserts a measured behaviour (the simulator models it: triton_metal/numerics.py). Where only the
specification speaks, and it allows several results, a test accepts each of them and asserts none in
particular, the IEEE one included.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from conformance.ops.dtypes import to_repr

CR = "correctly rounded"


@dataclass(frozen=True)
class Bound:
    """One entry of an accuracy table: the specification's words, and the error it allows in ulp of the
    result (None when the entry is a formula or a domain-limited absolute error)."""
    text: str
    ulps: float | None

    @property
    def tolerance_ulps(self) -> float:
        """Against a reference rounded once from float64: the bound plus that rounding (half an ulp).
        A correctly rounded result equals the reference (0.5 admits no other value), a 0 ulp one too."""
        if self.ulps is None:
            raise ValueError(f"'{self.text}' is not an ulp bound: derive the tolerance from the formula")
        return self.ulps if self.ulps in (0.0, 0.5) else self.ulps + 0.5


_ULPS = re.compile(r"<= ([0-9.]+) ulp")


def _table(entries: dict) -> dict:
    def bound(text):
        if text in (CR, "0 ulp"):
            return Bound(text, 0.5 if text == CR else 0.0)
        m = _ULPS.match(text)  # a bound stated for a domain keeps its condition in the text
        return Bound(text, float(m.group(1)) if m else None)
    return {name: bound(text) for name, text in entries.items()}


# Table 8.1: single precision, fast math disabled (what `metal::precise::` functions and safe mode give).
PRECISE_F32 = _table({
    "x + y": CR, "x - y": CR, "x * y": CR, "1.0 / x": CR, "x / y": CR,
    "acos": "<= 4 ulp", "acosh": "<= 4 ulp", "asin": "<= 4 ulp", "asinh": "<= 4 ulp", "atan": "<= 5 ulp",
    "atan2": "<= 6 ulp", "atanh": "<= 5 ulp", "ceil": CR, "copysign": "0 ulp", "cos": "<= 4 ulp",
    "cosh": "<= 4 ulp", "cospi": "<= 4 ulp", "exp": "<= 4 ulp", "exp2": "<= 4 ulp", "exp10": "<= 4 ulp",
    "fabs": "0 ulp", "fdim": CR, "floor": CR, "fma": CR, "fmax": "0 ulp", "fmin": "0 ulp", "fmod": "0 ulp",
    "fract": CR, "frexp": "0 ulp", "ilogb": "0 ulp", "ldexp": CR, "log": "<= 4 ulp", "log2": "<= 4 ulp",
    "log10": "<= 4 ulp", "modf": "0 ulp", "nextafter": "0 ulp", "pow": "<= 16 ulp", "powr": "<= 16 ulp",
    "rint": CR, "round": CR, "rsqrt": CR, "sin": "<= 4 ulp", "sincos": "<= 4 ulp", "sinh": "<= 4 ulp",
    "sinpi": "<= 4 ulp", "sqrt": CR, "tan": "<= 6 ulp", "tanpi": "<= 6 ulp", "tanh": "<= 5 ulp", "trunc": CR,
})

# Table 8.2: single precision with fast math (`metal::fast::` functions; the compilers' default).
FAST_F32 = _table({
    "x + y": CR, "x - y": CR, "x * y": CR,
    "1.0 / x": "<= 1 ulp for x in the domain of 2^-126 to 2^126",
    "x / y": "<= 2.5 ulp for y in the domain of 2^-126 to 2^126",
    "acos": "<= 5 ulp for x in the domain [-1, 1]", "acosh": "implemented as log(x + sqrt(x * x - 1.0))",
    "asin": "<= 5 ulp for x in the domain [-1, 1] and |x| >= 2^-125",
    "asinh": "implemented as log(x + sqrt(x * x + 1.0))", "atan": "<= 5 ulp",
    "atanh": "implemented as 0.5 * log((1.0 + x) / (1.0 - x))",
    "atan2": "implemented as atan(y / x) (+-pi when x < 0); undefined for x = 0 or y = 0",
    "cos": "absolute error <= 2^-13 for x in [-pi, pi], larger otherwise",
    "cosh": "implemented as 0.5 * (exp(x) + exp(-x))",
    "cospi": "absolute error <= 2^-13 for x in [-1, 1], larger otherwise",
    "exp": "<= 3 + floor(fabs(2 * x)) ulp", "exp2": "<= 3 + floor(fabs(2 * x)) ulp",
    "exp10": "implemented as exp2(x * log2(10))", "fmod": "undefined",
    "log": "absolute error <= 2^-21 for x in [0.5, 2], else <= 3 ulp for x > 0",
    "log2": "absolute error <= 2^-22 for x in [0.5, 2], else <= 2 ulp for x > 0",
    "log10": "implemented as log2(x) * log10(2)", "pow": "implemented as exp2(y * log2(x))",
    "powr": "implemented as exp2(y * log2(x))", "rsqrt": "<= 2 ulp",
    "sin": "absolute error <= 2^-13 for x in [-pi, pi], larger otherwise",
    "sinh": "implemented as 0.5 * (exp(x) - exp(-x))",
    "sinpi": "absolute error <= 2^-13 for x in [-1, 1], larger otherwise",
    "sqrt": "implemented as x * rsqrt(x) (special cases exact)", "tan": "implemented as sin(x) * (1.0 / cos(x))",
    "tanh": "implemented as (t - 1.0) / (t + 1.0), t = exp(2.0 * x)", "tanpi": "implemented as tan(x * pi)",
    "sincos": "as sin(x) and cos(x)",
    **{name: CR for name in ("ceil", "fdim", "floor", "fma", "fract", "ldexp", "rint", "round", "trunc")},
    **{name: "0 ulp" for name in ("copysign", "fabs", "fmax", "fmin", "frexp", "ilogb", "modf")},
})

# Table 8.3: half precision (Apple GPU family 4 and later).
HALF = _table({
    "x + y": CR, "x - y": CR, "x * y": CR, "1.0 / x": CR, "x / y": CR, "fma": CR, "sqrt": CR, "rsqrt": CR,
    "sincos": "as sin(x) and cos(x)",
    **{name: CR for name in ("ceil", "fdim", "floor", "fract", "ldexp", "rint", "round", "trunc")},
    **{name: "0 ulp" for name in ("copysign", "fabs", "fmax", "fmin", "fmod", "frexp", "ilogb", "modf", "nextafter")},
    **{name: "<= 1 ulp" for name in ("acos", "acosh", "asin", "asinh", "atan", "atanh", "atan2", "cos", "cosh",
                                     "cospi", "exp", "exp2", "exp10", "log", "log2", "log10", "sin", "sinh",
                                     "sinpi", "tan", "tanh", "tanpi")},
})

# Table 8.4 / 8.5: bfloat arithmetic, fast math off / on.
BFLOAT = {"x + y, x - y, x * y": Bound(CR, 0.5), "1.0 / x, x / y": Bound(CR, 0.5)}
BFLOAT_FAST = {"1.0 / x, x / y": Bound("<= 0.6 ulp for the divisor in the domain of 2^-126 to 2^126", 0.6)}


# ---- denormals --------------------------------------------------------------------------------------
TINY = {"f32": 2.0 ** -126, "bf16": 2.0 ** -126, "f16": 2.0 ** -14}  # the smallest normal of each type

# Measured on Apple GPUs: whose arithmetic flushes subnormal operands and results (to a zero of their sign).
ARITHMETIC_FLUSHES = {"f32": True, "bf16": True, "f16": False}
MEASURED = ("measured on Apple GPUs (M4 Max, every math mode): float and bfloat + - * / flush subnormal "
            "operands and results to a zero of the same sign; half arithmetic keeps them")


def is_subnormal(a, dtype: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return (a != 0) & (np.abs(a) < TINY[dtype])


def flush(a, dtype: str) -> np.ndarray:
    """Subnormal values of ``a`` replaced by a zero of their sign (what Apple's float arithmetic reads and
    writes in place of them)."""
    a = np.asarray(a)
    return np.where(is_subnormal(a, dtype), np.copysign(np.zeros_like(a), a), a).astype(a.dtype)


def subnormal_inputs(dtype: str, shape, rng) -> np.ndarray:
    """Inputs around the subnormal range of ``dtype``: subnormals of both signs (the smallest and largest
    among them), small normals whose products and quotients are subnormal, zeros and ordinary values."""
    n = int(np.prod(shape))
    tiny = TINY[dtype]
    mantissa = {"f32": 23, "bf16": 7, "f16": 10}[dtype]
    smallest = tiny * 2.0 ** -mantissa
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    kind = rng.integers(0, 4, n)
    sub = np.exp2(rng.uniform(np.log2(smallest), np.log2(tiny), n))  # subnormal magnitudes
    small = tiny * np.exp2(rng.uniform(0, 6, n))  # normals near the smallest
    ordinary = np.exp2(rng.uniform(-3, 3, n))
    a = sign * np.select([kind == 0, kind == 1, kind == 2], [sub, small, ordinary], 0.0)
    a[:4] = [smallest, -smallest, tiny - smallest, -(tiny - smallest)]  # the extremes of the subnormal range
    return to_repr(a, dtype).reshape(shape)


def fma_exact(a, b, c) -> np.ndarray:
    """a * b + c for float32 (or narrower) operands, as float64 rounded to odd: rounding that once more to
    any type of at most 51 significant bits gives the correctly rounded fma (the product is exact in
    float64; two-sum gives the error of the sum)."""
    a, b, c = (np.asarray(v, dtype=np.float64) for v in (a, b, c))
    with np.errstate(all="ignore"):
        p = a * b
        s = p + c
        t = s - p
        e = (p - (s - t)) + (c - t)
    bits = s.view(np.int64)
    fix = (e != 0) & np.isfinite(s) & ((bits & 1) == 0)
    step = np.where((e > 0) == (s > 0), 1, -1).astype(np.int64)
    return np.where(fix, bits + step, bits).view(np.float64)
