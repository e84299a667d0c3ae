"""A kernel's floating-point semantics, decided once and the same on every runtime (triton_metal/numerics.py):
fp fusion, the math mode, correctly rounded functions, and conversions that round as Triton says.

Kernels run on the device (the simulator in CI); references are numpy, exact where the operation is
correctly rounded (fma and rsqrt through float64 rounded to odd, conversions bit by bit)."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import triton
import triton.language as tl
from triton.language.extra import libdevice
from triton_metal import numerics
from triton_metal.compiler import MetalBackend

N = 256


@triton.jit
def mul_add_kernel(x_ptr, y_ptr, z_ptr, out_ptr, N: tl.constexpr):
    offs = tl.arange(0, N)
    x, y, z = tl.load(x_ptr + offs), tl.load(y_ptr + offs), tl.load(z_ptr + offs)
    tl.store(out_ptr + offs, x * y + z)
    tl.store(out_ptr + N + offs, z - x * y)


def _fma(a, b, c):
    """a * b + c rounded once to float32 (float64 rounded to odd, then to float32)."""
    a, b, c = (np.asarray(v, np.float64) for v in (a, b, c))
    p = a * b
    s = p + c
    e = (p - (s - (s - p))) + (c - (s - p))
    bits = s.view(np.int64)
    odd = np.where((e != 0) & ((bits & 1) == 0), bits + np.where((e > 0) == (s > 0), 1, -1), bits)
    return odd.view(np.float64).astype(np.float32)


def _mul_add_inputs():
    rng = np.random.default_rng(7)
    x = rng.standard_normal(N).astype(np.float32)
    y = rng.standard_normal(N).astype(np.float32)
    z = (-(x.astype(np.float64) * y) * (1 + rng.uniform(-1e-3, 1e-3, N))).astype(np.float32)  # cancels: fusion shows
    return x, y, z


def _run_mul_add(device, **options):
    x, y, z = _mul_add_inputs()
    out = torch.empty(2 * N, device=device)
    mul_add_kernel[(1,)](*(torch.from_numpy(a).to(device) for a in (x, y, z)), out, N=N, **options)
    return out.cpu().numpy().reshape(2, N), (x, y, z)


def test_fp_fusion_computes_a_times_b_plus_c_with_one_rounding(device):
    got, (x, y, z) = _run_mul_add(device, enable_fp_fusion=True)
    np.testing.assert_array_equal(got[0], _fma(x, y, z))
    np.testing.assert_array_equal(got[1], _fma(-x, y, z))
    assert (got[0] != x * y + z).sum() > N // 4  # the inputs do tell fused from unfused


def test_without_fp_fusion_the_product_is_rounded_before_the_add(device):
    got, (x, y, z) = _run_mul_add(device, enable_fp_fusion=False)
    np.testing.assert_array_equal(got[0], x * y + z)
    np.testing.assert_array_equal(got[1], z - x * y)


def test_fp_fusion_follows_tritons_default(monkeypatch):
    # Triton 3.9 fuses unless told otherwise (TRITON_DEFAULT_FP_FUSION, TRITON_FORCE_DISABLE_FP_FUSION), as its
    # CUDA backend resolves it in parse_options.
    backend = MetalBackend(triton.backends.compiler.GPUTarget("metal", "apple-m1", 32))
    monkeypatch.setenv("TRITON_DEFAULT_FP_FUSION", "1")
    assert backend.parse_options({}).enable_fp_fusion
    monkeypatch.setenv("TRITON_DEFAULT_FP_FUSION", "0")
    assert not backend.parse_options({}).enable_fp_fusion
    assert backend.parse_options({"enable_fp_fusion": True}).enable_fp_fusion


def test_the_msl_turns_implicit_contraction_off_and_writes_fma(compile_msl):
    sig = {"x_ptr": "*fp32", "y_ptr": "*fp32", "z_ptr": "*fp32", "out_ptr": "*fp32", "N": "constexpr"}
    fused, _ = compile_msl(mul_add_kernel, sig, {"N": N}, enable_fp_fusion=True)
    plain, _ = compile_msl(mul_add_kernel, sig, {"N": N}, enable_fp_fusion=False)
    for msl in (fused, plain):
        assert "#pragma STDC FP_CONTRACT OFF" in msl  # neither Apple's compiler nor g++ fuses on its own
    assert fused.count("= fma(") == 2 and "= fma(" not in plain


# ---- math mode: one decision, in the compile options ------------------------------------------------------

@triton.jit
def exp_kernel(x_ptr, out_ptr, N: tl.constexpr):
    offs = tl.arange(0, N)
    tl.store(out_ptr + offs, tl.exp(tl.load(x_ptr + offs)))


def test_fast_math_from_the_environment_is_a_compile_option(compile_msl, monkeypatch):
    sig = {"x_ptr": "*fp32", "out_ptr": "*fp32", "N": "constexpr"}
    monkeypatch.delenv("TRITON_METAL_FAST_MATH", raising=False)
    precise, precise_meta = compile_msl(exp_kernel, sig, {"N": N})
    monkeypatch.setenv("TRITON_METAL_FAST_MATH", "1")
    fast, fast_meta = compile_msl(exp_kernel, sig, {"N": N})
    assert "#pragma METAL fp math_mode(safe)" in precise and "precise::exp(" in precise
    assert "#pragma METAL fp math_mode(fast)" in fast and "fast::exp(" in fast
    assert fast_meta.fast_math and not precise_meta.fast_math  # in the options: in Triton's cache key
    assert numerics.MathMode.of_msl(fast).fast and not numerics.MathMode.of_msl(precise).fast


def test_the_option_wins_over_the_environment(compile_msl, monkeypatch):
    monkeypatch.setenv("TRITON_METAL_FAST_MATH", "1")
    msl, _ = compile_msl(exp_kernel, {"x_ptr": "*fp32", "out_ptr": "*fp32", "N": "constexpr"}, {"N": N},
                         fast_math=False)
    assert "#pragma METAL fp math_mode(safe)" in msl and "fast::" not in msl


@triton.jit
def named_functions_kernel(x_ptr, y_ptr, out_ptr, N: tl.constexpr):
    offs = tl.arange(0, N)
    x, y = tl.load(x_ptr + offs), tl.load(y_ptr + offs)
    tl.store(out_ptr + offs, tl.maximum(x, y) + tl.minimum(x, y) + x % y + tl.exp(x) + tl.clamp(x, y, 2.0))


@pytest.mark.parametrize("fast_math,variant", [(False, "precise::"), (True, "fast::")])
def test_functions_whose_variants_differ_are_called_by_name(compile_msl, fast_math, variant):
    # torch.mps.compile_shader and MLX compile with their own options, which choose the variant of an unnamed
    # call (fast::fmax's NaN result is undefined, fast::fmod is): named, the kernel computes as compiled.
    msl, _ = compile_msl(named_functions_kernel, {"x_ptr": "*fp32", "y_ptr": "*fp32", "out_ptr": "*fp32",
                                                  "N": "constexpr"}, {"N": 64}, fast_math=fast_math)
    code = re.sub(r"//[^\n]*", "", msl)  # not the kernel source lines quoted in comments
    for fn in ("fmax(", "fmin(", "fmod(", "exp("):
        calls = re.findall(rf"(\w+::)?\b{re.escape(fn)}", code)
        assert calls and all(prefix == variant for prefix in calls), (fn, calls)


# ---- correctly rounded functions ----------------------------------------------------------------------------

@triton.jit
def rsqrt_rn_kernel(x_ptr, out_ptr, N: tl.constexpr):
    offs = tl.arange(0, N)
    tl.store(out_ptr + offs, libdevice.rsqrt_rn(tl.load(x_ptr + offs)))


def test_rsqrt_rn_is_correctly_rounded(device):
    # 1 / sqrt(x) rounds twice and is one ulp off for about a third of these inputs; Metal's precise rsqrt is
    # correctly rounded (MSL Table 8.1), and so is the reference (float64, then once to float32).
    x = np.random.default_rng(3).uniform(0.5, 100.0, N).astype(np.float32)
    out = torch.empty(N, device=device)
    rsqrt_rn_kernel[(1,)](torch.from_numpy(x).to(device), out, N=N)
    want = (1.0 / np.sqrt(x.astype(np.float64))).astype(np.float32)
    assert (want != np.float32(1) / np.sqrt(x)).sum() > N // 8  # the inputs do tell the two apart
    np.testing.assert_array_equal(out.cpu().numpy(), want)


# ---- conversions that round as Triton says ----------------------------------------------------------------

@triton.jit
def narrow_kernel(x_ptr, half_ptr, bf16_ptr, half_rtz_ptr, bf16_rtz_ptr, N: tl.constexpr):
    offs = tl.arange(0, N)
    x = tl.load(x_ptr + offs)
    tl.store(half_ptr + offs, x.to(tl.float16))
    tl.store(bf16_ptr + offs, x.to(tl.bfloat16))
    tl.store(half_rtz_ptr + offs, x.to(tl.float16, fp_downcast_rounding="rtz"))
    tl.store(bf16_rtz_ptr + offs, x.to(tl.bfloat16, fp_downcast_rounding="rtz"))


def _narrowing_inputs():
    """float32 values across both formats' ranges: halfway cases, half subnormals, overflow, NaN, inf."""
    rng = np.random.default_rng(11)
    n = 4096
    x = (rng.standard_normal(n) * np.exp2(rng.uniform(-30, 20, n))).astype(np.float32)
    halves = rng.standard_normal(n // 4).astype(np.float16).astype(np.float32)
    x[: n // 4] = halves + np.float32(2.0 ** -11) * np.abs(halves)  # at or near half midpoints
    x[-8:] = [np.nan, np.inf, -np.inf, 65519.0, 65520.0, -70000.0, 2.0 ** -25, -3.0 * 2.0 ** -26]
    return x


def _toward_zero(x, nearest):
    """`nearest` (x rounded to nearest) moved one step toward zero where it rounded away from zero."""
    wide = nearest.astype(np.float64)
    away = np.isfinite(x) & (np.abs(wide) > np.abs(x.astype(np.float64)))
    stepped = np.nextafter(nearest, np.zeros_like(nearest))
    return np.where(away, stepped, nearest)


def _bf16(x):
    return torch.from_numpy(x).to(torch.bfloat16)


@pytest.mark.parametrize("fast_math", [False, True])
def test_narrowing_conversions_round_as_triton_says(device, fast_math):
    x = _narrowing_inputs()
    n = len(x)
    outs = [torch.empty(n, dtype=dt, device=device) for dt in (torch.float16, torch.bfloat16) * 2]
    narrow_kernel[(1,)](torch.from_numpy(x).to(device), *outs, N=n, fast_math=fast_math)
    half, bf16, half_rtz, bf16_rtz = (o.float().numpy() for o in outs)
    nan = np.isnan(x)
    assert np.isnan(half[nan]).all() and np.isnan(bf16[nan]).all() and np.isnan(half_rtz[nan]).all() \
        and np.isnan(bf16_rtz[nan]).all()
    with np.errstate(all="ignore"):
        want_half = x.astype(np.float16)
    x, want_half = x[~nan], want_half[~nan]

    def same_bits(got, want):  # float32 bit patterns: the signs of zeros too
        np.testing.assert_array_equal(got[~nan].view(np.uint32), np.asarray(want, np.float32).view(np.uint32))
    same_bits(half, want_half)
    same_bits(bf16, _bf16(x).float().numpy())  # torch rounds to nearest even
    rtz = _toward_zero(x, want_half)
    same_bits(half_rtz, np.where(np.isinf(want_half) & np.isfinite(x), np.copysign(np.float16(65504), x), rtz))
    same_bits(bf16_rtz, (x.view(np.uint32) & 0xFFFF0000).view(np.float32))  # the top 16 bits


def test_fast_math_writes_the_rounding_out(compile_msl):
    sig = {"x_ptr": "*fp32", "half_ptr": "*fp16", "bf16_ptr": "*bf16", "half_rtz_ptr": "*fp16", "bf16_rtz_ptr": "*bf16",
           "N": "constexpr"}
    precise, _ = compile_msl(narrow_kernel, sig, {"N": 64})
    fast, _ = compile_msl(narrow_kernel, sig, {"N": 64}, fast_math=True)
    # Apple's compiler was seen folding a (half) conversion away under fast math: integer code it cannot fold.
    assert "tm_half_rtne(" in fast and "tm_bfloat_rtne(" in fast
    assert "tm_half_rtne(" not in precise and "tm_half_rtz(" in precise and "tm_bfloat_rtz(" in precise
