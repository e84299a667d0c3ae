"""The element types of the op table: Triton, torch and numpy spellings, and test inputs.

numpy has no bfloat16: bf16 values are held in float32 arrays whose values are exactly
representable in bf16 (rounded to nearest even, as torch does).
"""
from __future__ import annotations

import numpy as np
import torch

INTS = ("i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64")
SIGNED = ("i8", "i16", "i32", "i64")
FLOATS = ("f16", "bf16", "f32")
ALL = ("i1", *INTS, *FLOATS, "f64")

TORCH = {
    "i1": torch.bool, "i8": torch.int8, "i16": torch.int16, "i32": torch.int32, "i64": torch.int64,
    "u8": torch.uint8, "u16": torch.uint16, "u32": torch.uint32, "u64": torch.uint64,
    "f16": torch.float16, "bf16": torch.bfloat16, "f32": torch.float32, "f64": torch.float64,
}
NUMPY = {
    "i1": np.bool_, "i8": np.int8, "i16": np.int16, "i32": np.int32, "i64": np.int64,
    "u8": np.uint8, "u16": np.uint16, "u32": np.uint32, "u64": np.uint64,
    "f16": np.float16, "bf16": np.float32, "f32": np.float32, "f64": np.float64,
}
TL = {
    "i1": "tl.int1", "i8": "tl.int8", "i16": "tl.int16", "i32": "tl.int32", "i64": "tl.int64",
    "u8": "tl.uint8", "u16": "tl.uint16", "u32": "tl.uint32", "u64": "tl.uint64",
    "f16": "tl.float16", "bf16": "tl.bfloat16", "f32": "tl.float32", "f64": "tl.float64",
}
BITS = {"i1": 1, "i8": 8, "i16": 16, "i32": 32, "i64": 64, "u8": 8, "u16": 16, "u32": 32, "u64": 64,
        "f16": 16, "bf16": 16, "f32": 32, "f64": 64}
# Mantissa bits (without the implicit one): the size of an ulp.
MANTISSA = {"f16": 10, "bf16": 7, "f32": 23, "f64": 52}


def is_float(dtype: str) -> bool:
    return dtype in MANTISSA


def round_bf16(a) -> np.ndarray:
    """float32 values rounded to the nearest bf16 (ties to even), kept as float32."""
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(torch.bfloat16).float().numpy()


def to_repr(a, dtype: str) -> np.ndarray:
    """`a` converted to the numpy representation of `dtype` (bf16 rounded, held in float32)."""
    if dtype == "bf16":
        return round_bf16(np.asarray(a, dtype=np.float64).astype(np.float32))
    return np.asarray(a).astype(NUMPY[dtype])


def to_torch(a: np.ndarray, dtype: str, device) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(a.astype(NUMPY[dtype])))
    return t.to(TORCH[dtype]).to(device)


def from_torch(t: torch.Tensor, dtype: str) -> np.ndarray:
    t = t.cpu()
    return (t.float() if dtype == "bf16" else t).numpy()


def ulp(ref: np.ndarray, dtype: str) -> np.ndarray:
    """Size of one unit in the last place of `dtype` at each value of `ref`."""
    mag = np.abs(ref.astype(np.float64))
    min_exp = {"f16": -14, "bf16": -126, "f32": -126, "f64": -1022}[dtype]
    # At 0 (and among subnormals) the spacing of the subnormals: an ulp of 0 is not an ulp of 1.
    exp = np.where(mag > 0, np.floor(np.log2(np.where(mag > 0, mag, 1.0))), min_exp)
    return 2.0 ** (np.maximum(exp, min_exp) - MANTISSA[dtype])


# ---- inputs ------------------------------------------------------------------------------------
def _ints(rng, dtype, shape, lo=None, hi=None):
    info = np.iinfo(NUMPY[dtype])
    lo = info.min if lo is None else max(lo, info.min)
    hi = info.max if hi is None else min(hi, info.max)
    return rng.integers(lo, hi, size=shape, endpoint=True, dtype=np.int64 if dtype != "u64" else np.uint64) \
        .astype(NUMPY[dtype])


def _floats(rng, dtype, shape, lo, hi):
    return to_repr(rng.uniform(lo, hi, size=shape), dtype)


def _normal(rng, dtype, shape, scale=3.0):
    return to_repr(rng.standard_normal(shape) * scale, dtype)


def _with_specials(a, dtype, rng):
    """Some NaN and infinities among finite values (positions depend on the seed)."""
    a = a.copy()
    flat = a.reshape(-1)
    picks = rng.choice(flat.size, size=min(6, flat.size), replace=False)
    for p, v in zip(picks, (np.nan, np.inf, -np.inf, np.nan, 0.0, -0.0)):
        flat[p] = v
    return a


def make_input(domain: str, dtype: str, shape, rng, operand: int) -> np.ndarray:
    """Input `operand` (0 = x, 1 = y, 2 = z) for an op whose inputs lie in `domain`."""
    if dtype == "i1":
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    if not is_float(dtype):
        if domain == "divisor" and operand == 1:  # nonzero, and never MIN / -1
            a = _ints(rng, dtype, shape)
            a[a == 0] = 3
            if dtype in SIGNED:
                a[a == -1] = 7
            return a
        if domain == "shift" and operand == 1:
            return _ints(rng, dtype, shape, 0, BITS[dtype] - 1)
        if domain == "small":
            return _ints(rng, dtype, shape, -100 if dtype in SIGNED else 0, 100)
        if domain == "ties":
            return _ints(rng, dtype, shape, 0, 7)
        return _ints(rng, dtype, shape)
    if domain == "subnormal" or (domain == "subnormal_dividend" and operand != 1):
        from conformance.ops.apple_numerics import subnormal_inputs
        return subnormal_inputs(dtype, shape, rng)
    if domain == "subnormal_dividend":  # divisors of ordinary size: quotients of small normals are subnormal
        return to_repr(np.exp2(rng.uniform(-2, 2, size=shape)) * np.where(rng.random(shape) < 0.5, -1, 1), dtype)
    if domain == "half_subnormal":  # float32 values around the half subnormal range [2^-24, 2^-14)
        return to_repr(np.exp2(rng.uniform(-26, -13, size=shape)) * np.where(rng.random(shape) < 0.5, -1, 1), dtype)
    if domain == "pi":
        return _floats(rng, dtype, shape, -np.pi, np.pi)
    if domain == "pos":
        return _floats(rng, dtype, shape, 0.01, 20.0)
    if domain == "unit":
        return _floats(rng, dtype, shape, -1.0, 1.0)
    if domain == "trig":
        return _floats(rng, dtype, shape, -6.0, 6.0)
    if domain == "exp":
        return _floats(rng, dtype, shape, -8.0, 8.0)
    if domain == "special":
        return _with_specials(_normal(rng, dtype, shape), dtype, rng)
    if domain == "divisor" and operand == 1:
        a = _normal(rng, dtype, shape)
        a[np.abs(a) < 0.1] = 0.5
        return a
    if domain == "ties":
        return to_repr(np.round(rng.standard_normal(shape) * 2) / 2, dtype)
    if domain == "near1":
        return _floats(rng, dtype, shape, 0.9, 1.1)
    if domain == "cast":  # large values (beyond every integer range), NaN and infinities too
        a = rng.standard_normal(shape) * np.where(rng.random(shape) < 0.5, 50.0, 3e9)
        return _with_specials(to_repr(a, dtype), dtype, rng)
    return _normal(rng, dtype, shape)
