"""The simulator's `bfloat` is no more permissive than Apple's compiler (MSL 3.1).

MSL 3.1 converts bfloat implicitly to float only ("neither float nor half can be implicitly
converted to bfloat", the specification as quoted in MLX's bf16_math.h) and declares no bfloat
overload of the math, relational or simd functions. MSL that relies on either must fail to build
here, with a message that says what to write instead; the explicit spelling builds and computes
the same values as torch on the CPU.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from triton_metal.sim import SimCompileError


def _bits(t: torch.Tensor) -> np.ndarray:
    """A bfloat16 tensor as the uint16 array a `device bfloat*` buffer holds."""
    return t.contiguous().view(torch.int16).numpy().view(np.uint16).copy()


def _bfloat(bits: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(bits.view(np.int16).copy()).view(torch.bfloat16)


def _kernel(statement: str) -> str:
    """A kernel that computes `r` (a bfloat) from `a[i]` and `b[i]` with `statement`."""
    return f"""
kernel void k(device const bfloat* a [[buffer(0)]], device const bfloat* b [[buffer(1)]],
              device bfloat* out [[buffer(2)]], uint i [[thread_position_in_grid]]) {{
    bfloat x = a[i], y = b[i];
    {statement}
    out[i] = r;
}}
"""


def _run(run_msl, statement, a, b):
    out = np.zeros(a.numel(), np.uint16)
    run_msl(_kernel(statement), "k", (1, 1, 1), (a.numel(), 1, 1), {0: _bits(a), 1: _bits(b), 2: out})
    return _bfloat(out)


A = torch.tensor([1.5, -2.25, 0.0, float("nan"), 3.0, -0.5, float("inf"), 7.0], dtype=torch.bfloat16)
B = torch.tensor([0.75, 4.0, -1.0, 2.0, float("nan"), -0.5, 1.0, -3.0], dtype=torch.bfloat16)


# ---- what Apple's compiler rejects does not build ------------------------------------------------
@pytest.mark.parametrize("statement, message", [
    ("bfloat r = float(x) * 2.0f;", r"conversion from .float. to non-scalar type .bfloat."),
    ("bfloat r = half(1.0h);", r"conversion from .half.* to non-scalar type .bfloat."),
    ("bfloat r = x; r += 1.0f;", r"no match for .operator\+=."),
])
def test_implicit_conversion_to_bfloat_does_not_build(run_msl, statement, message):
    with pytest.raises(SimCompileError, match=message):
        _run(run_msl, statement, A, B)


@pytest.mark.parametrize("statement", ["half h = x; bfloat r = bfloat(h);", "int n = x; bfloat r = bfloat(n);"])
def test_implicit_conversion_from_bfloat_other_than_to_float_does_not_build(run_msl, statement):
    with pytest.raises(SimCompileError, match=r"cannot convert .bfloat. to"):
        _run(run_msl, statement, A, B)


@pytest.mark.parametrize("statement", ["bfloat r = bfloat(x * 2);", "bfloat r = bfloat(x + half(1.0h));"])
def test_bfloat_with_integer_or_half_operand_does_not_build(run_msl, statement):
    with pytest.raises(SimCompileError, match="no implicit conversion between bfloat and half, integer or double"):
        _run(run_msl, statement, A, B)


@pytest.mark.parametrize("function", ["fmax(x, y)", "fmin(x, y)", "fabs(x)", "abs(x)", "fma(x, y, x)",
                                      "fmod(x, y)", "floor(x)", "ceil(x)", "precise::exp(x)", "sqrt(x)",
                                      "clamp(x, y, y)", "select(x, y, true)", "isnan(x) ? x : y"])
def test_math_function_on_bfloat_does_not_build(run_msl, function):
    name = function.split("(")[0].removeprefix("precise::")
    with pytest.raises(SimCompileError, match=f"MSL 3.1 has no bfloat overload of {name}: pass float"):
        _run(run_msl, f"bfloat r = bfloat({function});", A, B)


@pytest.mark.parametrize("collective", ["simd_shuffle_xor(x, 1)", "simd_sum(x)", "simd_max(x)",
                                        "simd_broadcast(x, 0)", "simd_prefix_inclusive_sum(x)"])
def test_simd_function_on_bfloat_does_not_build(run_msl, collective):
    with pytest.raises(SimCompileError, match="MSL 3.1 has no bfloat overload of the simd_. functions"):
        _run(run_msl, f"bfloat r = {collective};", A, B)


def test_bfloat_atomic_does_not_build(run_msl):
    with pytest.raises(SimCompileError, match=re.escape("Metal's atomic types are atomic<int>, <uint>, <bool>, <float> and <ulong>")):
        _run(run_msl, "device atomic<bfloat>* p = (device atomic<bfloat>*)out; "
             "bfloat r = atomic_load_explicit(p, memory_order_relaxed);", A, B)


# ---- the explicit spelling builds and computes what torch computes --------------------------------
def test_operators_on_bfloat_round_once_per_operation(run_msl):
    r = _run(run_msl, "bfloat r = x * y + x;", A, B)
    torch.testing.assert_close(r, A * B + A, rtol=0, atol=0, equal_nan=True)


def test_bfloat_with_float_operand_is_float(run_msl):
    r = _run(run_msl, "bfloat r = bfloat(x * 0.1f + y);", A, B)
    torch.testing.assert_close(r, (A.float() * 0.1 + B.float()).bfloat16(), rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("function, reference", [
    ("fmax(float(x), float(y))", torch.fmax), ("fmin(float(x), float(y))", torch.fmin),
    ("fabs(float(x))", lambda a, b: a.abs()), ("fmod(float(x), float(y))", torch.fmod),
    ("floor(float(x))", lambda a, b: a.floor()), ("ceil(float(x))", lambda a, b: a.ceil()),
    ("fma(float(x), float(y), float(x))", lambda a, b: a * b + a),
    ("precise::exp(float(x))", lambda a, b: a.exp()),
])
def test_math_function_through_float(run_msl, function, reference):
    r = _run(run_msl, f"bfloat r = bfloat({function});", A, B)
    torch.testing.assert_close(r, reference(A.float(), B.float()).bfloat16(), rtol=0, atol=0, equal_nan=True)


def test_simd_shuffle_xor_through_float_is_exact(run_msl):
    a = torch.arange(32, dtype=torch.float32).mul(1.5).sub(20).bfloat16()
    r = _run(run_msl, "bfloat r = bfloat(simd_shuffle_xor(float(x), 5));", a, a)
    torch.testing.assert_close(r, a[torch.arange(32) ^ 5], rtol=0, atol=0)
