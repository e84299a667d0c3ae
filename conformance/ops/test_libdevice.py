"""triton.language.extra.libdevice on the Metal backend (triton_metal.libdevice), beyond the op table:
accuracy sweeps of our own MSL helpers over wide ranges, special values, the upstream tutorial's
usage, and the refusals. References: numpy/math in float64, mpmath (arbitrary precision)."""
import math
import re

import mpmath
import numpy as np
import pytest
import torch
import triton
import triton.language as tl
from triton.language.extra import libdevice
from triton.language.extra.cuda import libdevice as cuda_libdevice


@triton.jit
def unary_kernel(x_ptr, out_ptr, n, FN: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, FN(x), mask=mask)


@triton.jit
def binary_kernel(x_ptr, y_ptr, out_ptr, n, FN: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, FN(tl.load(x_ptr + offs, mask=mask), tl.load(y_ptr + offs, mask=mask)), mask=mask)


@triton.jit
def _expm1(x):
    return libdevice.expm1(x)


@triton.jit
def _log1p(x):
    return libdevice.log1p(x)


@triton.jit
def _cbrt(x):
    return libdevice.cbrt(x)


@triton.jit
def _erfc(x):
    return libdevice.erfc(x)


@triton.jit
def _erfcx(x):
    return libdevice.erfcx(x)


@triton.jit
def _erfinv(x):
    return libdevice.erfinv(x)


@triton.jit
def _erfcinv(x):
    return libdevice.erfcinv(x)


@triton.jit
def _normcdf(x):
    return libdevice.normcdf(x)


@triton.jit
def _normcdfinv(x):
    return libdevice.normcdfinv(x)


@triton.jit
def _ilogb(x):
    return libdevice.ilogb(x)


@triton.jit
def _logb(x):
    return libdevice.logb(x)


@triton.jit
def _signbit(x):
    return libdevice.signbit(x)


@triton.jit
def _saturatef(x):
    return libdevice.saturatef(x)


@triton.jit
def _brev(x):
    return libdevice.brev(x)


@triton.jit
def _hypot(x, y):
    return libdevice.hypot(x, y)


@triton.jit
def _remainder(x, y):
    return libdevice.remainder(x, y)


@triton.jit
def _nextafter(x, y):
    return libdevice.nextafter(x, y)


@triton.jit
def _ldexp(x, n):
    return libdevice.ldexp(x, n)


@triton.jit
def _copysign(x, y):
    return libdevice.copysign(x, y)


def run(fn, *inputs, out_dtype=None, device="cpu"):
    """fn over numpy inputs on the device; returns numpy."""
    tensors = [torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in inputs]
    n = len(inputs[0])
    out = torch.empty(n, dtype=out_dtype or tensors[0].dtype, device=device)
    kernel = unary_kernel if len(inputs) == 1 else binary_kernel
    kernel[(triton.cdiv(n, 1024),)](*tensors, out, n, FN=fn, BLOCK=1024)
    return out.cpu().numpy()


def ulp_error(got, ref):
    """|got - ref| in units of the float32 spacing at ref (subnormal spacing below FLT_MIN). A subnormal
    result returned as zero is no error: Apple GPUs flush subnormal float results (MSL spec 8.5)."""
    spacing = np.maximum(np.spacing(np.abs(ref.astype(np.float32))).astype(np.float64), 2.0 ** -149)
    flushed = (got == 0) & (np.abs(ref) < 2.0 ** -126)
    return np.where(flushed, 0.0, np.abs(got.astype(np.float64) - ref) / spacing)


def flushed(a):
    """float32 subnormals replaced by a zero of their sign: an operand as Apple's arithmetic reads it."""
    a = np.asarray(a, dtype=np.float32)
    return np.where(np.abs(a) < np.float32(2.0 ** -126), np.copysign(np.float32(0), a), a).astype(np.float32)


def mp(fn):
    def ref(a):
        with mpmath.workdps(40):
            return np.array([float(fn(mpmath.mpf(float(v)))) for v in a])
    return ref


def log_uniform(rng, lo, hi, n):
    return np.exp(rng.uniform(np.log(lo), np.log(hi), n))


rng = np.random.default_rng(2024)
# (helper, inputs, float64 reference, max ulp). The bounds are what the simulator measures over these
# inputs (max in parentheses), rounded up: the helpers are ours, Metal has no such function.
SWEEPS = {
    "expm1": (_expm1, np.concatenate([rng.uniform(-1e-3, 1e-3, 700), rng.uniform(-20, 20, 700),
                                      rng.uniform(-1, 1, 700)]), mp(mpmath.expm1), 3),  # (1.9)
    "log1p": (_log1p, np.concatenate([rng.uniform(-1e-3, 1e-3, 700), rng.uniform(-0.999, 5, 700),
                                      log_uniform(rng, 1e-9, 1e17, 700)]), mp(mpmath.log1p), 3),  # (2.0)
    "cbrt": (_cbrt, np.concatenate([log_uniform(rng, 1e-35, 1e35, 1000) * rng.choice([-1, 1], 1000),
                                    rng.uniform(-10, 10, 1000)]), np.cbrt, 2),  # (0.7)
    "erfc": (_erfc, rng.uniform(-5, 10, 2000), mp(mpmath.erfc), 8),  # (5.3)
    "erfcx": (_erfcx, rng.uniform(-9, 100, 2000),
              mp(lambda v: mpmath.exp(v * v) * mpmath.erfc(v)), 6),  # (3.9)
    "erfinv": (_erfinv, np.concatenate([rng.uniform(-1, 1, 1400), 1 - log_uniform(rng, 1e-7, 0.3, 600)]),
               mp(mpmath.erfinv), 6),  # (3.3)
    "erfcinv": (_erfcinv, np.concatenate([rng.uniform(0.001, 1.999, 1000), log_uniform(rng, 1e-37, 0.1, 1000)]),
                mp(lambda v: mpmath.erfinv(1 - v)), 6),  # (3.3)
    "normcdf": (_normcdf, rng.uniform(-13, 8, 2000), mp(mpmath.ncdf), 8),  # (5.0)
    "normcdfinv": (_normcdfinv, np.concatenate([rng.uniform(0.001, 0.999, 1000), log_uniform(rng, 1e-37, 0.1, 1000)]),
                   mp(lambda v: -mpmath.sqrt(2) * mpmath.erfinv(1 - 2 * v)), 6),  # (3.9)
}


@pytest.mark.parametrize("name", SWEEPS)
def test_helper_accuracy_over_wide_ranges(name, device):
    fn, x, ref, max_ulps = SWEEPS[name]
    x = x.astype(np.float32)
    got = run(fn, x, device=device)
    err = ulp_error(got, ref(x.astype(np.float64)))
    worst = int(np.argmax(err))
    assert err.max() <= max_ulps, f"libdevice.{name}({x[worst]!r}) = {got[worst]!r}: {err.max():.2f} ulp"


def test_hypot_does_not_overflow_or_underflow(device):
    x = (log_uniform(rng, 1e-38, 1e38, 2000) * rng.choice([-1, 1], 2000)).astype(np.float32)
    y = (x * rng.uniform(0.01, 2, 2000)).astype(np.float32)
    got = run(_hypot, x, y, device=device)
    err = ulp_error(got, np.hypot(x.astype(np.float64), y.astype(np.float64)))
    # A subnormal y may be read as 0 (MSL spec 8.5; Apple GPUs flush it): then hypot(x, 0) is as good.
    err_flushed = ulp_error(got, np.hypot(flushed(x).astype(np.float64), flushed(y).astype(np.float64)))
    assert np.minimum(err, err_flushed).max() <= 2  # (0.8 measured)


SPECIAL_F32 = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.5, 2.0 ** -149, -(2.0 ** -130), 3.0e38,
                        1.17549435e-38], dtype=np.float32)


def test_ilogb_and_logb_special_values(device):
    int_min, int_max = -2**31, 2**31 - 1
    expected = [int_min, int_min, int_max, int_max, int_min, 0, 0, -149, -130, 127, -126]
    assert run(_ilogb, SPECIAL_F32, out_dtype=torch.int32, device=device).tolist() == expected
    logb = run(_logb, SPECIAL_F32, device=device)
    want = [-np.inf, -np.inf, np.inf, np.inf, np.nan, 0, 0, -149, -130, 127, -126]
    np.testing.assert_array_equal(logb, np.array(want, dtype=np.float32))


def test_signbit_copysign_and_saturatef_special_values(device):
    assert run(_signbit, SPECIAL_F32, out_dtype=torch.int32, device=device).tolist() == \
        np.signbit(SPECIAL_F32).astype(int).tolist()
    y = np.array([-1, 1, -0.0, 1, -1, -0.0, 1, -1, 1, -1, np.inf], dtype=np.float32)
    got = run(_copysign, SPECIAL_F32, y, device=device)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(np.copysign(SPECIAL_F32, y)))
    sat = run(_saturatef, SPECIAL_F32, device=device)
    want = np.where(np.isnan(SPECIAL_F32), 0, np.clip(SPECIAL_F32, 0, 1)).astype(np.float32)
    # saturatef compares: a subnormal operand may compare as 0 (MSL spec 8.5), so 0 is right for it too.
    assert ((sat == want) | ((sat == 0) & (flushed(SPECIAL_F32) == 0))).all(), (sat, want)


def test_nextafter_edges(device):
    tiny = np.float32(2.0 ** -149)
    x = np.array([0.0, -0.0, 0.0, tiny, 1.0, 1.0, -1.0, 3.4028235e38, np.inf, np.nan, 2.0], dtype=np.float32)
    y = np.array([1.0, -1.0, -0.0, 0.0, 2.0, 0.0, -2.0, np.inf, 0.0, 1.0, np.nan], dtype=np.float32)
    got = run(_nextafter, x, y, device=device)
    want = np.nextafter(x, y)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


def test_remainder_rounds_the_quotient_to_even(device):
    x = np.array([5.5, 4.5, -5.5, 7.0, 1e30, 3.0, np.inf, 3.0, -0.0], dtype=np.float32)
    y = np.array([1.0, 1.0, 1.0, 2.0, 3.0, np.inf, 1.0, 0.0, 1.0], dtype=np.float32)
    got = run(_remainder, x, y, device=device)
    want = [math.remainder(a, b) if b != 0 and math.isfinite(a) else math.nan
            for a, b in zip(x.astype(float), y.astype(float))]
    np.testing.assert_array_equal(got, np.array(want, dtype=np.float32))
    assert np.signbit(got[-1])


def test_ldexp_extreme_exponents(device):
    x = np.array([1.0, 1.5, 3.0e38, 1.0, 1.5, 1e-30, 2.0 ** -149, 1.0, -1.0], dtype=np.float32)
    n = np.array([127, -149, -300, 128, -150, 200, 300, -2**31, 2**31 - 1], dtype=np.int32)
    got = run(_ldexp, x, n, device=device)

    def ldexp(values):
        return np.array([np.float32(math.ldexp(float(a), int(max(min(k, 400), -400)))) for a, k in zip(values, n)],
                        dtype=np.float32)
    # Exact, except that a subnormal operand may be read as 0 and a subnormal result returned as 0 (MSL spec
    # 8.5; Apple GPUs flush both).
    ieee, flush = ldexp(x), flushed(ldexp(flushed(x)))
    assert ((got == ieee) | (got == flush) | ((got == 0) & (flushed(ieee) == 0))).all(), (got, ieee, flush)


def test_erfinv_at_the_ends_of_its_domain(device):
    x = np.array([1.0, -1.0, 1.5, np.nan, 0.0, -0.0], dtype=np.float32)
    got = run(_erfinv, x, device=device)
    np.testing.assert_array_equal(got, np.array([np.inf, -np.inf, np.nan, np.nan, 0.0, -0.0], dtype=np.float32))
    y = np.array([0.0, 2.0, -0.5, 2.5, 1.0], dtype=np.float32)
    np.testing.assert_array_equal(run(_erfcinv, y, device=device),
                                  np.array([np.inf, -np.inf, np.nan, np.nan, 0.0], dtype=np.float32))


def test_brev_reverses_the_bits(device):
    x = np.random.default_rng(5).integers(-2**63, 2**63 - 1, 256, dtype=np.int64)
    want = [int(f"{v % 2**64:064b}"[::-1], 2) for v in x.tolist()]
    got = run(_brev, x, device=device).view(np.uint64).tolist()
    assert got == want


# ---- upstream tutorial 07 (extern functions), as users write it ------------------------------------
@triton.jit
def asin_kernel(x_ptr, y_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    pid = tl.program_id(axis=0)
    offsets = pid * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    x = tl.load(x_ptr + offsets, mask=mask)
    x = libdevice.asin(x)
    tl.store(y_ptr + offsets, x, mask=mask)


def test_tutorial_07_asin(device):
    torch.manual_seed(0)
    x = torch.rand(98432, device=device)
    out = torch.zeros_like(x)
    asin_kernel[(triton.cdiv(x.numel(), 1024),)](x, out, x.numel(), BLOCK_SIZE=1024)
    ref = torch.asin(x.cpu().double())
    err = ulp_error(out.cpu().numpy(), ref.numpy())
    assert err.max() <= 4  # Metal's precise::asin


@triton.jit
def attribute_chain_kernel(x_ptr, y_ptr, N: tl.constexpr):
    # test_core.py's spelling: tl.extra.libdevice.<fn>
    offs = tl.arange(0, N)
    tl.store(y_ptr + offs, tl.extra.libdevice.rint(tl.load(x_ptr + offs)))


def test_tl_extra_libdevice_attribute_chain(device):
    x = torch.tensor([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.7, -3.7])
    y = torch.empty(8, device=device)
    attribute_chain_kernel[(1,)](x.to(device), y, N=8)
    assert y.cpu().tolist() == np.rint(x.numpy()).tolist()


@triton.jit
def half_and_scalar_kernel(x_ptr, s_ptr, y_ptr, z_ptr, N: tl.constexpr):
    offs = tl.arange(0, N)
    x = tl.load(x_ptr + offs)  # float16: computed in float32, rounded back to float16
    tl.store(y_ptr + offs, libdevice.pow(x, 2.0) + libdevice.expm1(x))
    tl.store(z_ptr, libdevice.cbrt(tl.load(s_ptr)))  # a scalar call


def test_float16_inputs_and_scalar_calls(device):
    x = torch.linspace(-2, 2, 64, dtype=torch.float16)
    y = torch.empty(64, dtype=torch.float16, device=device)
    z = torch.empty(1, device=device)
    half_and_scalar_kernel[(1,)](x.to(device), torch.tensor([-27.0], device=device), y, z, N=64)
    xd = x.double()
    ref = (xd ** 2).half().double() + torch.expm1(xd).half().double()  # each call rounds to half
    torch.testing.assert_close(y.cpu().double(), ref.half().double(), rtol=2e-3, atol=2e-3)
    assert z.cpu().item() == -3.0


# ---- what the frontend and compiler refuse -----------------------------------------------------
@triton.jit
def cuda_asin_kernel(x_ptr, y_ptr, N: tl.constexpr):
    offs = tl.arange(0, N)
    tl.store(y_ptr + offs, cuda_libdevice.asin(tl.load(x_ptr + offs)))


def test_cuda_libdevice_symbol_is_refused_by_name(compile_refusal):
    msg = compile_refusal(cuda_asin_kernel, {"x_ptr": "*fp32", "y_ptr": "*fp32", "N": "constexpr"}, {"N": 16})
    from triton_metal.refusals import refusal
    assert msg == refusal("extern_elementwise").message(symbol="__nv_asinf")


@triton.jit
def directed_rounding_kernel(x_ptr, y_ptr, N: tl.constexpr):
    offs = tl.arange(0, N)
    x = tl.load(x_ptr + offs)
    tl.store(y_ptr + offs, libdevice.div_rz(x, x + 1))


@triton.jit
def bessel_kernel(x_ptr, y_ptr, N: tl.constexpr):
    offs = tl.arange(0, N)
    tl.store(y_ptr + offs, libdevice.j0(tl.load(x_ptr + offs)))


@triton.jit
def fp64_kernel(x_ptr, y_ptr, N: tl.constexpr):
    offs = tl.arange(0, N)
    x = tl.load(x_ptr + offs)
    tl.store(y_ptr + offs, libdevice.int2double_rn(x).to(tl.float32))


@pytest.mark.parametrize("kernel,key,fields", [
    (directed_rounding_kernel, "libdevice_rounding_mode", {"name": "div_rz"}),
    (bessel_kernel, "libdevice_missing", {"name": "j0"}),
    (fp64_kernel, "fp64", {}),
], ids=["rounding-mode", "missing", "fp64"])
def test_refusals(compile_refusal, kernel, key, fields):
    from triton_metal.refusals import refusal
    pointee = "i32" if kernel is fp64_kernel else "fp32"
    msg = compile_refusal(kernel, {"x_ptr": f"*{pointee}", "y_ptr": "*fp32", "N": "constexpr"}, {"N": 16})
    assert msg == refusal(key).message(**fields)


@triton.jit
def int_argument_kernel(x_ptr, y_ptr, N: tl.constexpr):
    offs = tl.arange(0, N)
    tl.store(y_ptr + offs, libdevice.sin(tl.load(x_ptr + offs)))


def test_wrong_argument_type_names_the_accepted_ones():
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    src = ASTSource(int_argument_kernel, {"x_ptr": "*i32", "y_ptr": "*fp32", "N": "constexpr"}, {"N": 16})
    with pytest.raises(Exception, match=re.escape("libdevice.sin does not take (int32) on the Metal backend; "
                                                  "it takes (fp32); (fp64)")):
        triton.compile(src, target=GPUTarget("metal", "apple-m1", 32))


def test_every_frontend_libdevice_name_is_defined():
    # The code generator resolves every global of a kernel's module through the module map, so a
    # missing name would break kernels that merely import it.
    import triton.language.extra.libdevice as frontend
    import triton_metal.libdevice as ours
    names = [n for n, v in vars(frontend).items() if callable(v) and not n.startswith("_")]
    assert len(names) > 150
    assert [n for n in names if not hasattr(ours, n)] == []


def test_libdevice_names_its_precision_whatever_fast_math_says():
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    src = ASTSource(asin_kernel, {"x_ptr": "*fp32", "y_ptr": "*fp32", "n_elements": "i32", "BLOCK_SIZE": "constexpr"},
                    {"BLOCK_SIZE": 128})
    msl = triton.compile(src, target=GPUTarget("metal", "apple-m1", 32), options={"fast_math": True}).asm["msl"]
    assert "precise::asin(" in msl.decode()


def test_every_symbol_without_fp64_has_msl():
    from triton_metal.codegen.libdevice_msl import TEMPLATES
    from triton_metal.codegen.msl_helpers import HELPERS
    from triton_metal.libdevice import SIGNATURES
    f64 = tl.float64
    symbols = {symbol for signatures in SIGNATURES.values() for args, (symbol, ret) in signatures.items()
               if f64 not in args and ret != f64}
    assert sorted(symbols - set(TEMPLATES)) == []
    assert all(h in HELPERS for _, helpers in TEMPLATES.values() for h in helpers)
