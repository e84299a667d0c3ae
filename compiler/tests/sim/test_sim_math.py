"""metal:: math functions against numpy: one kernel computes them all, one test checks each."""
from __future__ import annotations

import numpy as np
import pytest
from triton_metal.sim import build_kernel

UNARY = {  # MSL expression of x: numpy reference
    "exp(x)": np.exp, "exp2(x)": np.exp2, "log(abs(x))": lambda x: np.log(np.abs(x)),
    "log2(abs(x))": lambda x: np.log2(np.abs(x)), "sin(x)": np.sin, "cos(x)": np.cos, "tan(x)": np.tan,
    "tanh(x)": np.tanh, "sqrt(abs(x))": lambda x: np.sqrt(np.abs(x)), "rsqrt(abs(x))": lambda x: 1 / np.sqrt(np.abs(x)),
    "floor(x)": np.floor, "ceil(x)": np.ceil, "trunc(x)": np.trunc, "rint(x)": np.rint,
    "round(x)": lambda x: np.sign(x) * np.floor(np.abs(x) + 0.5), "fabs(x)": np.abs, "sign(x)": np.sign,
    "fract(x)": lambda x: x - np.floor(x), "atan(x)": np.arctan, "sinh(x)": np.sinh, "cosh(x)": np.cosh,
    "precise::exp(x)": np.exp, "fast::log2(abs(x))": lambda x: np.log2(np.abs(x)),
    "float(half(x) * 2.0h)": lambda x: (x.astype(np.float16) * np.float16(2)).astype(np.float32),
    "pow(abs(x), 1.5f)": lambda x: np.abs(x) ** 1.5, "atan2(x, 0.75f)": lambda x: np.arctan2(x, 0.75),
    "fmod(x, 0.75f)": lambda x: np.fmod(x, 0.75), "copysign(2.0f, x)": lambda x: np.copysign(2.0, x),
    "fma(x, x, 1.0f)": lambda x: x * x + 1, "mix(x, 1.0f, 0.25f)": lambda x: x + (1 - x) * 0.25,
    "saturate(x)": lambda x: np.clip(x, 0, 1), "step(0.5f, x)": lambda x: (x >= 0.5).astype(np.float32),
}
NAN_RULES = {  # on x with NaNs mixed in
    "fmax(x, 0.5f)": lambda x: np.fmax(x, 0.5), "fmin(x, 0.5f)": lambda x: np.fmin(x, 0.5),
    "max(0.5f, x)": lambda x: np.fmax(0.5, x), "float(isnan(x))": lambda x: np.isnan(x).astype(np.float32),
    "float(isinf(x))": lambda x: np.isinf(x).astype(np.float32),
}
EXPRS = list(UNARY) + list(NAN_RULES)

X = np.array([-2.5, -1.5, -0.75, -0.5, -0.1, 0.1, 0.5, 0.75, 1.5, 2.5, 3.25, -3.75], np.float32)
X_NAN = np.array([np.nan, -np.inf, np.inf, 1.0, -1.0, 0.5, np.nan, 2.0, 0.0, -0.0, 0.25, 7.0], np.float32)


@pytest.fixture(scope="module")
def results():
    body = "\n".join(f"    out[{i} * n + tid] = {e};" for i, e in enumerate(EXPRS))
    src = f"""#include <metal_stdlib>
using namespace metal;
kernel void all_math(device const float* a [[buffer(0)]], device const float* b [[buffer(1)]],
                     device float* out [[buffer(2)]], uint tid [[thread_position_in_grid]],
                     uint n [[threads_per_grid]]) {{
    float x = a[tid];
{body.replace("out[" + str(len(UNARY)), "x = b[tid]; out[" + str(len(UNARY)), 1)}
}}
"""
    out = np.zeros((len(EXPRS), X.size), np.float32)
    build_kernel(src, "all_math").dispatch(grid=(1, 1, 1), threadgroup=(X.size, 1, 1), buffers={0: X, 1: X_NAN, 2: out})
    return dict(zip(EXPRS, out))


@pytest.mark.parametrize("expr", list(UNARY))
def test_math_function(results, expr):
    np.testing.assert_allclose(results[expr], UNARY[expr](X).astype(np.float32), rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("expr", list(NAN_RULES))
def test_nan_and_inf_rules(results, expr):
    np.testing.assert_array_equal(results[expr], NAN_RULES[expr](X_NAN).astype(np.float32))
