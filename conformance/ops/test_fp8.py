"""fp8 as a storage type, through real @triton.jit kernels: every code of every format up-converted, and
every half / bfloat value and a dense float sweep (ties, overflow, NaN, infinities, subnormals)
down-converted with both roundings, bit for bit.

References: torch's float8 dtypes for the up-conversions and in-range down-conversions (torch rounds
to nearest even), and `Ref`, an independent numpy model of the formats: decoding by the formula,
encoding by search over all finite codes (nearest, ties to the even code; or the largest not above,
toward zero), with the backend's rules beyond the finite range: saturate to the largest finite value
(Triton's CUDA lowering uses .satfinite; torch gives NaN or inf there instead), e5m2 keeps infinities,
NaN stays NaN, the FNUZ formats have no -0. float8e4b15 (``i8`` in Triton's IR) follows Triton's CUDA
conversion: see triton_metal/fp8e4b15.py; its reference is the format's formula, clamped to 1.75 and
rounded half away from zero.
"""
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import triton
import triton.language as tl


@dataclass(frozen=True)
class Ref:
    """A numpy model of one fp8 format."""
    exponent_bits: int
    mantissa_bits: int
    bias: int
    specials: str  # "ieee" (inf and NaNs at the top exponent), "fn" (S.1111.111 is NaN), "fnuz" (0x80 is NaN)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        codes = codes.astype(np.int64)
        sign = np.where(codes & 0x80, -1.0, 1.0)
        exponent = (codes >> self.mantissa_bits) & ((1 << self.exponent_bits) - 1)
        mantissa = codes & ((1 << self.mantissa_bits) - 1)
        scale = 2.0 ** (np.maximum(exponent, 1) - self.bias - self.mantissa_bits)
        value = sign * np.where(exponent == 0, mantissa, mantissa + (1 << self.mantissa_bits)) * scale
        top = exponent == (1 << self.exponent_bits) - 1
        if self.specials == "ieee":
            value = np.where(top & (mantissa == 0), sign * np.inf, np.where(top, np.nan, value))
        elif self.specials == "fn":
            value = np.where((codes & 0x7F) == 0x7F, np.nan, value)
        else:
            value = np.where(codes == 0x80, np.nan, value)
        return value

    @property
    def max_code(self) -> int:
        return {"ieee": (((1 << self.exponent_bits) - 1) << self.mantissa_bits) - 1, "fn": 0x7E,
                "fnuz": 0x7F}[self.specials]

    def encode(self, x: np.ndarray, rounding: str) -> np.ndarray:
        x = np.asarray(x, np.float64)
        grid = self.decode(np.arange(self.max_code + 1))  # finite non-negative values, increasing
        mag = np.abs(x)
        below = np.clip(np.searchsorted(grid, mag, side="right") - 1, 0, self.max_code)
        above = np.minimum(below + 1, self.max_code)
        if rounding == "rtne":
            d_low, d_high = mag - grid[below], grid[above] - mag
            up = (d_high < d_low) | ((d_high == d_low) & (below % 2 == 1))
            code = np.where(up & (above != below), above, below)
        else:
            code = below
        code = np.where(mag > grid[-1], self.max_code, code)
        if self.specials == "ieee":
            code = np.where(np.isinf(x), self.max_code + 1, code)
        negative = np.signbit(x)
        code = code | np.where(negative, 0x80, 0)
        if self.specials == "fnuz":
            code = np.where((code & 0x7F) == 0, 0, code)
        nan = {"ieee": 0x7E | np.where(negative, 0x80, 0), "fn": 0x7F | np.where(negative, 0x80, 0),
               "fnuz": 0x80}[self.specials]
        return np.where(np.isnan(x), nan, code).astype(np.uint8)


# tl dtype, torch dtype, reference model
FORMATS = {
    "float8e4nv": (tl.float8e4nv, torch.float8_e4m3fn, Ref(4, 3, 7, "fn")),
    "float8e5": (tl.float8e5, torch.float8_e5m2, Ref(5, 2, 15, "ieee")),
    "float8e4b8": (tl.float8e4b8, torch.float8_e4m3fnuz, Ref(4, 3, 8, "fnuz")),
    "float8e5b16": (tl.float8e5b16, torch.float8_e5m2fnuz, Ref(5, 2, 16, "fnuz")),
}
WIDE = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
BLOCK = 1024


@triton.jit
def convert_kernel(x_ptr, y_ptr, n, DST: tl.constexpr, ROUNDING: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    tl.store(y_ptr + offs, x.to(DST, fp_downcast_rounding=ROUNDING), mask=mask)


@triton.jit
def upcast_kernel(x_ptr, y_ptr, n, DST: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=mask).to(DST), mask=mask)


def fp8_codes(x: torch.Tensor, fmt: str) -> torch.Tensor:
    """`x` (float) converted by the kernel to format `fmt`: the codes, as uint8."""
    tl_dtype, _, _ = FORMATS[fmt]
    out = torch.empty(x.numel(), dtype=torch.uint8)
    return run_down(x, triton.reinterpret(out, tl_dtype), tl_dtype, out)


def run_down(x, out_arg, tl_dtype, out, rounding="rtne"):
    convert_kernel[(triton.cdiv(x.numel(), BLOCK),)](x, out_arg, x.numel(), DST=tl_dtype, ROUNDING=rounding,
                                                      BLOCK=BLOCK)
    return out


def float_sweep() -> np.ndarray:
    """Every float whose low 16 bits are 0, 1 or 0xFFFF: all exponents and signs, every fp8 tie (the
    dropped bits exactly half a unit: low bits 0) and the values on either side of it, infinities, NaNs,
    float subnormals."""
    high = np.arange(1 << 16, dtype=np.uint32) << 16
    bits = (high[:, None] | np.array([0, 1, 0xFFFF], dtype=np.uint32)[None, :]).ravel()
    return bits.view(np.float32)


def assert_codes_equal(got: np.ndarray, want: np.ndarray, inputs: np.ndarray) -> None:
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, (f"{bad.size} codes differ, e.g. input {inputs[bad[:4]].tolist()}: "
                           f"got {got[bad[:4]].tolist()}, want {want[bad[:4]].tolist()}")


# ---- the reference model, checked against torch where both define the result -----------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_reference_model_matches_torch(fmt):
    _, torch_dtype, ref = FORMATS[fmt]
    codes = torch.arange(256, dtype=torch.int32).to(torch.uint8)
    want = codes.view(torch_dtype).to(torch.float64).numpy()
    np.testing.assert_array_equal(ref.decode(codes.numpy()), want)
    x = float_sweep()
    finite = x[np.abs(x) <= np.abs(want[np.isfinite(want)]).max()]
    np.testing.assert_array_equal(ref.encode(finite, "rtne"),
                                  torch.from_numpy(finite).to(torch_dtype).view(torch.uint8).numpy())


# ---- fp8 -> float16 / bfloat16 / float32: all 256 codes, bit-exact ---------------------------------
@pytest.mark.parametrize("dst", WIDE)
@pytest.mark.parametrize("fmt", FORMATS)
def test_upcast_every_code(fmt, dst, device):
    _, torch_dtype, ref = FORMATS[fmt]
    codes = torch.arange(256, dtype=torch.int32).to(torch.uint8)
    out = torch.empty(256, dtype=WIDE[dst])
    upcast_kernel[(1,)](codes.view(torch_dtype), out, 256, DST=getattr(tl, dst), BLOCK=256)
    want = codes.view(torch_dtype).to(WIDE[dst])
    nan = want.isnan().numpy()
    np.testing.assert_array_equal(out.isnan().numpy(), nan)
    bits = torch.int32 if dst == "float32" else torch.int16
    np.testing.assert_array_equal(out.view(bits).numpy()[~nan], want.view(bits).numpy()[~nan])
    np.testing.assert_array_equal(out.to(torch.float64).numpy()[~nan], ref.decode(codes.numpy())[~nan])


# ---- float16 / bfloat16 / float32 -> fp8, both roundings ----------------------------------------------
@pytest.mark.parametrize("rounding", ["rtne", "rtz"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_downcast_every_half(fmt, rounding, device):
    tl_dtype, _, ref = FORMATS[fmt]
    x = torch.arange(1 << 16, dtype=torch.int32).to(torch.int16).view(torch.float16)
    out = torch.empty(x.numel(), dtype=torch.uint8)
    run_down(x, triton.reinterpret(out, tl_dtype), tl_dtype, out, rounding)
    assert_codes_equal(out.numpy(), ref.encode(x.double().numpy(), rounding), x.numpy())


@pytest.mark.parametrize("rounding", ["rtne", "rtz"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_downcast_every_bfloat(fmt, rounding, device):
    tl_dtype, _, ref = FORMATS[fmt]
    x = torch.arange(1 << 16, dtype=torch.int32).to(torch.int16).view(torch.bfloat16)
    out = torch.empty(x.numel(), dtype=torch.uint8)
    run_down(x, triton.reinterpret(out, tl_dtype), tl_dtype, out, rounding)
    assert_codes_equal(out.numpy(), ref.encode(x.double().numpy(), rounding), x.float().numpy())


@pytest.mark.parametrize("rounding", ["rtne", "rtz"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_downcast_float_sweep(fmt, rounding, device):
    tl_dtype, _, ref = FORMATS[fmt]
    x = float_sweep()
    out = torch.empty(x.size, dtype=torch.uint8)
    run_down(torch.from_numpy(x), triton.reinterpret(out, tl_dtype), tl_dtype, out, rounding)
    assert_codes_equal(out.numpy(), ref.encode(x.astype(np.float64), rounding), x)


def test_downcast_saturates_where_torch_does_not(device):
    # e4m3fn: 480 is beyond the largest finite value 448; torch gives NaN, the backend 448 (.satfinite)
    out = fp8_codes(torch.tensor([480.0, -1e30, float("inf")]), "float8e4nv")
    assert out.tolist() == [0x7E, 0xFE, 0x7E]


# ---- float8e4b15 (i8 in the IR: Triton's convert_custom_types hook) --------------------------------
def e4b15_decode(codes: np.ndarray) -> np.ndarray:
    codes = codes.astype(np.int64)
    exponent, mantissa = (codes >> 3) & 0xF, codes & 7
    value = np.where(exponent == 0, mantissa / 8 * 2.0 ** -14, (1 + mantissa / 8) * 2.0 ** (exponent - 15))
    return np.where(codes & 0x80, -value, value)


def e4b15_encode(half: np.ndarray) -> np.ndarray:
    grid = e4b15_decode(np.arange(0x7F))  # 0x00 .. 0x7E: up to 1.75, the clamp
    mag = np.minimum(np.nan_to_num(np.abs(half.astype(np.float64)), nan=1.75, posinf=1.75), 1.75)
    below = np.clip(np.searchsorted(grid, mag, side="right") - 1, 0, 0x7E)
    above = np.minimum(below + 1, 0x7E)
    code = np.where(grid[above] - mag <= mag - grid[below], above, below)  # ties away from zero
    return (code | np.where(np.signbit(half), 0x80, 0)).astype(np.uint8)


@pytest.mark.parametrize("dst", ["float16", "float32", "bfloat16"])
def test_e4b15_upcast_every_code(dst, device):
    codes = torch.arange(256, dtype=torch.int32).to(torch.uint8)
    out = torch.empty(256, dtype=WIDE[dst])
    upcast_kernel[(1,)](triton.reinterpret(codes, tl.float8e4b15), out, 256, DST=getattr(tl, dst), BLOCK=256)
    np.testing.assert_array_equal(out.to(torch.float64).numpy(), e4b15_decode(codes.numpy()))
    np.testing.assert_array_equal(np.signbit(out.float().numpy()), codes.numpy() >= 0x80)


def test_e4b15_downcast_every_half(device):
    x = torch.arange(1 << 16, dtype=torch.int32).to(torch.int16).view(torch.float16)
    out = torch.empty(x.numel(), dtype=torch.uint8)
    run_down(x, triton.reinterpret(out, tl.float8e4b15), tl.float8e4b15, out)
    assert_codes_equal(out.numpy(), e4b15_encode(x.numpy()), x.numpy())


def test_e4b15_downcast_float_goes_through_half_toward_zero(device):
    x = float_sweep()
    out = torch.empty(x.size, dtype=torch.uint8)
    run_down(torch.from_numpy(x), triton.reinterpret(out, tl.float8e4b15), tl.float8e4b15, out)
    half_rtz = torch.from_numpy(x).to(torch.float16)  # torch rounds to nearest: redo toward zero
    half = half_rtz.numpy().astype(np.float64)
    over = np.abs(half) > np.abs(x.astype(np.float64))
    half = np.where(over, np.nextafter(half.astype(np.float16), np.float16(0)).astype(np.float64), half)
    assert_codes_equal(out.numpy(), e4b15_encode(np.where(np.isnan(x), np.copysign(np.nan, x), half).astype(np.float16)), x)


def test_e4b15_from_another_fp8(device):
    # e5m2 -> float32 (exact) -> float16 (exact: every e5m2 value is a half) -> e4b15
    codes = torch.arange(256, dtype=torch.int32).to(torch.uint8)
    out = torch.empty(256, dtype=torch.uint8)
    upcast_kernel[(1,)](codes.view(torch.float8_e5m2), triton.reinterpret(out, tl.float8e4b15), 256,
                        DST=tl.float8e4b15, BLOCK=256)
    half = codes.view(torch.float8_e5m2).to(torch.float16).numpy()
    assert_codes_equal(out.numpy(), e4b15_encode(half), half)


# ---- storage ops ---------------------------------------------------------------------------------
@triton.jit
def bitcast_roundtrip_kernel(x_ptr, y_ptr, z_ptr, N: tl.constexpr):
    offs = tl.arange(0, N)
    x = tl.load(x_ptr + offs)  # uint8
    f = x.to(tl.float8e5, bitcast=True)
    tl.store(y_ptr + offs, f)
    tl.store(z_ptr + offs, f.to(tl.float32))


def test_bitcast_from_uint8_keeps_codes(device):
    codes = torch.arange(256, dtype=torch.int32).to(torch.uint8)
    y, z = torch.empty(256, dtype=torch.uint8), torch.empty(256)
    bitcast_roundtrip_kernel[(1,)](codes, triton.reinterpret(y, tl.float8e5), z, N=256)
    np.testing.assert_array_equal(y.numpy(), codes.numpy())
    np.testing.assert_array_equal(z.numpy(), codes.view(torch.float8_e5m2).float().numpy())


@triton.jit
def where_kernel(x_ptr, y_ptr, z_ptr, N: tl.constexpr):
    offs = tl.arange(0, N)
    x, y = tl.load(x_ptr + offs), tl.load(y_ptr + offs)
    tl.store(z_ptr + offs, tl.where(offs % 2 == 0, x, y))


def test_where_selects_codes(device):
    x, y = torch.arange(256, dtype=torch.int32).to(torch.uint8), torch.full((256,), 0x3C, dtype=torch.uint8)
    z = torch.empty(256, dtype=torch.uint8)
    where_kernel[(1,)](x.view(torch.float8_e4m3fn), y.view(torch.float8_e4m3fn), z.view(torch.float8_e4m3fn), N=256)
    np.testing.assert_array_equal(z.numpy(), np.where(np.arange(256) % 2 == 0, x.numpy(), y.numpy()))


@triton.jit
def constant_kernel(y_ptr, N: tl.constexpr, VALUE: tl.constexpr, DT: tl.constexpr):
    tl.store(y_ptr + tl.arange(0, N), tl.full((N,), VALUE, DT))


@pytest.mark.parametrize("value", [1.5, -0.1, 1000.0])
@pytest.mark.parametrize("fmt", ["float8e4nv", "float8e5"])
def test_constant_is_rounded_to_nearest(fmt, value, device):
    tl_dtype, _, ref = FORMATS[fmt]
    out = torch.empty(16, dtype=torch.uint8)
    constant_kernel[(1,)](triton.reinterpret(out, tl_dtype), N=16, VALUE=value, DT=tl_dtype)
    assert set(out.tolist()) == {int(ref.encode(np.array([value], np.float32).astype(np.float64), "rtne")[0])}


@triton.jit
def add_kernel(x_ptr, y_ptr, N: tl.constexpr):
    offs = tl.arange(0, N)
    x = tl.load(x_ptr + offs)
    tl.store(y_ptr + offs, x + x)


def test_fp8_arithmetic_is_refused(compile_refusal):
    message = compile_refusal(add_kernel, {"x_ptr": "*fp8e5", "y_ptr": "*fp8e5", "N": "constexpr"}, {"N": 32})
    assert "arith.addf on f8E5M2 values" in message
    assert "convert to float16 or float32 first" in message


@triton.jit
def abs_kernel(x_ptr, y_ptr, N: tl.constexpr):
    offs = tl.arange(0, N)
    tl.store(y_ptr + offs, tl.abs(tl.load(x_ptr + offs)))


@pytest.mark.parametrize("fmt", FORMATS)
def test_abs_every_code(fmt, device):
    # the sign bit cleared, except the FNUZ formats' NaN 0x80 (clearing it would make +0)
    tl_dtype, torch_dtype, ref = FORMATS[fmt]
    codes = torch.arange(256, dtype=torch.int32).to(torch.uint8)
    out = torch.empty(256, dtype=torch.uint8)
    abs_kernel[(1,)](codes.view(torch_dtype), triton.reinterpret(out, tl_dtype), N=256)
    np.testing.assert_array_equal(ref.decode(out.numpy()), np.abs(ref.decode(codes.numpy())))


# ---- fp8 operands of tl.dot: decoded to half (exact), accumulated in float ---------------------------
@triton.jit
def dot_kernel(a_ptr, b_ptr, c_ptr, M: tl.constexpr, N: tl.constexpr, K: tl.constexpr):
    m, n, k = tl.arange(0, M), tl.arange(0, N), tl.arange(0, K)
    a = tl.load(a_ptr + m[:, None] * K + k[None, :])
    b = tl.load(b_ptr + k[:, None] * N + n[None, :])
    tl.store(c_ptr + m[:, None] * N + n[None, :], tl.dot(a, b))


@triton.jit
def batched_dot_kernel(a_ptr, b_ptr, c_ptr, B: tl.constexpr, M: tl.constexpr, N: tl.constexpr, K: tl.constexpr):
    i, m, n, k = tl.arange(0, B), tl.arange(0, M), tl.arange(0, N), tl.arange(0, K)
    a = tl.load(a_ptr + i[:, None, None] * M * K + m[None, :, None] * K + k[None, None, :])
    b = tl.load(b_ptr + i[:, None, None] * K * N + k[None, :, None] * N + n[None, None, :])
    tl.store(c_ptr + i[:, None, None] * M * N + m[None, :, None] * N + n[None, None, :], tl.dot(a, b))


def finite_codes(ref_decode, shape, seed):
    """Random codes of finite values (NaN and infinities left out), and their values in float64."""
    codes = np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8)
    values = ref_decode(codes)
    codes = np.where(np.isfinite(values), codes, 0).astype(np.uint8)
    return codes, ref_decode(codes)


DOT_FORMATS = {**{name: (tl_dtype, ref.decode) for name, (tl_dtype, _, ref) in FORMATS.items()},
               "float8e4b15": (tl.float8e4b15, e4b15_decode)}


@pytest.mark.parametrize("fmt", DOT_FORMATS)
def test_dot_simdgroup_path(fmt, device):
    tl_dtype, decode = DOT_FORMATS[fmt]
    (a, av), (b, bv) = finite_codes(decode, (32, 64), 1), finite_codes(decode, (64, 16), 2)
    c = torch.empty(32, 16)
    kernel = dot_kernel[(1,)](triton.reinterpret(torch.from_numpy(a), tl_dtype),
                              triton.reinterpret(torch.from_numpy(b), tl_dtype), c, M=32, N=16, K=64)
    assert "simdgroup_multiply_accumulate" in kernel.asm["msl"].decode()
    ref = av @ bv  # float64: the float accumulation rounds each of 64 steps
    np.testing.assert_allclose(c.numpy(), ref, rtol=1e-5, atol=1e-5 * (np.abs(av) @ np.abs(bv)).max())


@pytest.mark.parametrize("fmt", ["float8e4nv", "float8e5"])
def test_dot_fma_path(fmt, device):
    tl_dtype, decode = DOT_FORMATS[fmt]
    (a, av), (b, bv) = finite_codes(decode, (2, 16, 32), 3), finite_codes(decode, (2, 32, 16), 4)
    c = torch.empty(2, 16, 16)
    batched_dot_kernel[(1,)](triton.reinterpret(torch.from_numpy(a), tl_dtype),
                             triton.reinterpret(torch.from_numpy(b), tl_dtype), c, B=2, M=16, N=16, K=32)
    ref = av @ bv
    np.testing.assert_allclose(c.numpy(), ref, rtol=1e-5, atol=1e-5 * (np.abs(av) @ np.abs(bv)).max())
