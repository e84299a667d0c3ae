"""The simulator computes as Apple GPUs do (triton_metal/numerics.py): float subnormals flushed by
arithmetic, half ones kept, the math mode and contraction setting the MSL states.

References are numpy, with the flush written out where Apple flushes (measured on Apple GPUs: float
``+ - * /`` flush subnormal operands and results to a zero of the same sign; half arithmetic and
loads/stores keep them; see docs/compatibility.md, "Numerics on Apple GPUs")."""
from __future__ import annotations

import numpy as np
import pytest
from triton_metal.numerics import MathMode

ARITH = """
kernel void arith(device float* x [[buffer(0)]], device float* y [[buffer(1)]], device float* out [[buffer(2)]],
                  uint i [[thread_position_in_grid]]) {
    out[4 * i + 0] = x[i] * y[i];
    out[4 * i + 1] = x[i] + y[i];
    out[4 * i + 2] = x[i] / y[i];
    out[4 * i + 3] = x[i];  // a load and a store: no arithmetic
}
"""
TINY = np.float32(2.0 ** -126)  # the smallest normal float
# subnormal operands (+ and -), normal operands with subnormal products and quotients, and ordinary ones
X = np.array([2.0 ** -127, -2.0 ** -127, 2.0 ** -149, 2.0 ** -126, -2.0 ** -125, 1.5, 3.0, -2.0 ** -130], np.float32)
Y = np.array([2.0, 2.0, 4.0, 0.5, 0.125, 2.0 ** -127, 1.0, 1.0], np.float32)


def _flush(a):
    a = np.asarray(a, dtype=np.float32)
    return np.where((a != 0) & (np.abs(a) < TINY), np.copysign(np.float32(0), a), a).astype(np.float32)


def _run_arith(run_msl):
    out = np.full(4 * len(X), np.nan, np.float32)
    run_msl(ARITH, "arith", (1, 1, 1), (len(X), 1, 1), {0: X.ctypes.data, 1: Y.ctypes.data, 2: out.ctypes.data})
    return out.reshape(-1, 4)


def _bits(a):
    return np.asarray(a, np.float32).view(np.uint32)


def test_float_arithmetic_flushes_subnormal_operands_and_results_keeping_the_sign(run_msl):
    got = _run_arith(run_msl)
    x, y = _flush(X), _flush(Y)
    with np.errstate(all="ignore"):
        want = np.stack([_flush(x * y), _flush(x + y), _flush(x / y)], axis=1)
    np.testing.assert_array_equal(_bits(got[:, :3]), _bits(want))  # bit patterns: the zeros' signs too


def test_loads_and_stores_keep_subnormals(run_msl):
    np.testing.assert_array_equal(_bits(_run_arith(run_msl)[:, 3]), _bits(X))


def test_ieee_denormals_on_request(run_msl, monkeypatch):
    monkeypatch.setenv("TRITON_METAL_SIM_DENORMALS", "ieee")
    got = _run_arith(run_msl)
    with np.errstate(all="ignore"):
        want = np.stack([X * Y, X + Y, X / Y], axis=1)
    np.testing.assert_array_equal(_bits(got[:, :3]), _bits(want))


def test_an_unknown_denormal_model_is_refused(run_msl, monkeypatch):
    monkeypatch.setenv("TRITON_METAL_SIM_DENORMALS", "gpu")
    with pytest.raises(ValueError, match="TRITON_METAL_SIM_DENORMALS='gpu': use one of apple, ieee"):
        _run_arith(run_msl)


def test_the_callers_floating_point_mode_is_restored_after_a_launch(run_msl):
    # The calling thread runs simulated threads too; numpy and torch must keep gradual underflow afterwards.
    _run_arith(run_msl)
    a = np.array([2.0 ** -127], np.float32)
    assert (a * np.float32(2.0))[0] == TINY and (a / np.float32(2.0))[0] == np.float32(2.0 ** -128)


def test_half_arithmetic_keeps_subnormals(run_msl):
    src = """
kernel void halves(device half* x [[buffer(0)]], device half* out [[buffer(1)]], uint i [[thread_position_in_grid]]) {
    out[2 * i] = x[i] * half(2.0h);
    out[2 * i + 1] = x[i] * half(0.5h);
}
"""
    x = np.array([2.0 ** -16, -2.0 ** -20, 2.0 ** -14, 2.0 ** -24], np.float16)
    out = np.zeros(2 * len(x), np.float16)
    run_msl(src, "halves", (1, 1, 1), (len(x), 1, 1), {0: x.ctypes.data, 1: out.ctypes.data})
    np.testing.assert_array_equal(out.reshape(-1, 2), np.stack([x * np.float16(2), x * np.float16(0.5)], axis=1))


def _reassociation(run_msl, mode: str):
    # (1 + 2^-24) + 2^-24 is 1 added in order (each add a tie to even) and 1 + 2^-23 regrouped: what Apple's
    # GPUs return in safe and in relaxed/fast math (moderately-ai/tiler numerical-behaviour.md, finding 17).
    src = f"""
#pragma METAL fp math_mode({mode})
#pragma STDC FP_CONTRACT OFF
kernel void regroup(device float* x [[buffer(0)]], uint i [[thread_position_in_grid]]) {{
    const float c = 5.9604645e-08f;
    x[i] = (x[i] + c) + c;
}}
"""
    x = np.ones(1, np.float32)
    kernel = run_msl(src, "regroup", (1, 1, 1), (1, 1, 1), {0: x.ctypes.data})
    return x[0], kernel.math_mode


def test_safe_math_adds_in_the_written_order(run_msl):
    value, mode = _reassociation(run_msl, "safe")
    assert mode == MathMode(fast=False, contract="off") and value == np.float32(1.0)


def test_fast_math_reaches_the_simulator_and_lets_it_reassociate(run_msl):
    value, mode = _reassociation(run_msl, "fast")
    assert mode == MathMode(fast=True, contract="off") and value == np.nextafter(np.float32(1), np.float32(2))


@pytest.mark.parametrize("text,mode", [
    ("#pragma METAL fp math_mode(fast)\n#pragma STDC FP_CONTRACT OFF\n", MathMode(True, "off")),
    ("#pragma METAL fp contract(fast)\n", MathMode(False, "fast")),
    ("", MathMode(False, "on")),  # no pragmas (MSL written by hand): Apple's safe mode contracts in a statement
    ("#pragma METAL fp math_mode(fast)\n", MathMode(True, "fast")),
])
def test_the_msl_states_the_math_mode_the_simulator_compiles_with(text, mode):
    assert MathMode.of_msl("#include <metal_stdlib>\n" + text + "kernel void k() {}\n") == mode


def test_generated_pragmas_read_back_as_the_same_mode():
    for mode in (MathMode(False), MathMode(True)):
        assert MathMode.of_msl("\n".join(mode.pragmas())) == mode
