"""tl.dot_scaled: each operand dequantised (e2m1 nibbles low first along K, e4m3 / e5m2 codes, bf16 / fp16
values; e8m0 scales 2^(s - 127), one per 32 K elements, [M, K/32] for the lhs and [N, K/32] for the rhs),
then a float dot. Reference: numpy, dequantise then matmul in float64."""
import numpy as np
import pytest
import torch
import triton
import triton.language as tl

from conformance.ops.test_fp8 import FORMATS

E2M1 = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6])


def unpack_e2m1(packed: np.ndarray, axis: int) -> np.ndarray:
    """Two values per byte along `axis`, the low nibble first."""
    packed = np.moveaxis(packed, axis, -1)
    values = np.stack([E2M1[packed & 0xF], E2M1[packed >> 4]], axis=-1).reshape(*packed.shape[:-1], -1)
    return np.moveaxis(values, -1, axis)


def dequantise(raw: np.ndarray, fmt: str, k_axis: int) -> np.ndarray:
    if fmt == "e2m1":
        return unpack_e2m1(raw, k_axis)
    if fmt in ("e4m3", "e5m2"):
        return FORMATS["float8e4nv" if fmt == "e4m3" else "float8e5"][2].decode(raw)
    return raw.astype(np.float64)


def e8m0(scale: np.ndarray) -> np.ndarray:
    return np.where(scale == 255, np.nan, 2.0 ** (scale.astype(np.float64) - 127))


@triton.jit
def dot_scaled_kernel(a_ptr, a_scale_ptr, b_ptr, b_scale_ptr, out_ptr, M: tl.constexpr, N: tl.constexpr,
                      K: tl.constexpr, TYPE_A: tl.constexpr, TYPE_B: tl.constexpr):
    KA: tl.constexpr = K // 2 if TYPE_A == "e2m1" else K
    KB: tl.constexpr = K // 2 if TYPE_B == "e2m1" else K
    a = tl.load(a_ptr + tl.arange(0, M)[:, None] * KA + tl.arange(0, KA)[None, :])
    b = tl.load(b_ptr + tl.arange(0, KB)[:, None] * N + tl.arange(0, N)[None, :])
    a_scale = None
    b_scale = None
    if a_scale_ptr is not None:
        a_scale = tl.load(a_scale_ptr + tl.arange(0, M)[:, None] * (K // 32) + tl.arange(0, K // 32)[None, :])
    if b_scale_ptr is not None:
        b_scale = tl.load(b_scale_ptr + tl.arange(0, N)[:, None] * (K // 32) + tl.arange(0, K // 32)[None, :])
    c = tl.dot_scaled(a, a_scale, TYPE_A, b, b_scale, TYPE_B)
    tl.store(out_ptr + tl.arange(0, M)[:, None] * N + tl.arange(0, N)[None, :], c)


def operand(fmt, shape, rng):
    """(tensor to pass, its raw numpy values) of an operand; fp8 codes without NaN / infinities."""
    if fmt in ("bf16", "fp16"):
        t = torch.from_numpy(rng.standard_normal(shape).astype(np.float32)).to(
            torch.bfloat16 if fmt == "bf16" else torch.float16)
        return t, t.double().numpy()
    raw = rng.integers(0, 256, shape).astype(np.uint8)
    if fmt in ("e4m3", "e5m2"):
        mask = 0x7F if fmt == "e4m3" else 0x7C
        raw = np.where(raw & mask == mask, raw & 0x83, raw).astype(np.uint8)  # NaN / inf codes -> small values
    return torch.from_numpy(raw), raw


def run(lhs, rhs, lhs_scaled, rhs_scaled, m=32, n=32, k=64, seed=0):
    rng = np.random.default_rng(seed)
    a, a_raw = operand(lhs, (m, k // 2 if lhs == "e2m1" else k), rng)
    b, b_raw = operand(rhs, (k // 2 if rhs == "e2m1" else k, n), rng)
    a_scale = rng.integers(118, 136, (m, k // 32)).astype(np.uint8) if lhs_scaled else None
    b_scale = rng.integers(118, 136, (n, k // 32)).astype(np.uint8) if rhs_scaled else None
    out = torch.empty(m, n)
    dot_scaled_kernel[(1,)](a, None if a_scale is None else torch.from_numpy(a_scale), b,
                            None if b_scale is None else torch.from_numpy(b_scale), out, M=m, N=n, K=k,
                            TYPE_A=lhs, TYPE_B=rhs)
    av, bv = dequantise(a_raw, lhs, 1), dequantise(b_raw, rhs, 0)
    if a_scale is not None:
        av = av * np.repeat(e8m0(a_scale), 32, axis=1)
    if b_scale is not None:
        bv = bv * np.repeat(e8m0(b_scale), 32, axis=1).T
    return out.numpy(), av @ bv, np.abs(av) @ np.abs(bv)


def assert_float_dot(got, want, magnitude):
    # float32 accumulation of exact products: within K float roundings of the sum of magnitudes
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 * magnitude.max())


@pytest.mark.parametrize("lhs", ["e2m1", "e4m3", "e5m2"])
@pytest.mark.parametrize("rhs", ["bf16", "fp16", "e4m3"])
def test_scaled_lhs(lhs, rhs, device):
    assert_float_dot(*run(lhs, rhs, True, False))


@pytest.mark.parametrize("rhs", ["e2m1", "e4m3", "e5m2"])
def test_scaled_rhs(rhs, device):
    assert_float_dot(*run("bf16", rhs, False, True))


def test_both_scaled_e2m1(device):
    assert_float_dot(*run("e2m1", "e2m1", True, True))


def test_large_tiles_fit_threadgroup_memory(device):
    # 128x128x128 with float tiles would need 128 KiB; K chunks keep them within Apple's 32 KiB
    assert_float_dot(*run("e4m3", "bf16", True, False, m=128, n=128, k=128))


def test_e2m1_nibble_order(device):
    # byte 0x71 along K: the low nibble (0x1 = 0.5) is K index 0, the high one (0x7 = 6) K index 1
    a = torch.full((16, 32), 0x71, dtype=torch.uint8)
    b = torch.zeros(64, 16, dtype=torch.bfloat16)
    b[0, :] = 1
    out = torch.empty(16, 16)
    dot_scaled_kernel[(1,)](a, torch.full((16, 2), 127, dtype=torch.uint8), b, None, out, M=16, N=16, K=64,
                            TYPE_A="e2m1", TYPE_B="bf16")
    assert (out == 0.5).all()


def test_scale_255_is_nan(device):
    a = torch.full((16, 64), 0x38, dtype=torch.uint8)  # e4m3 1.0
    b = torch.ones(64, 16, dtype=torch.bfloat16)
    scale = torch.full((16, 2), 127, dtype=torch.uint8)
    scale[3, 1] = 255
    out = torch.empty(16, 16)
    dot_scaled_kernel[(1,)](a, scale, b, None, out, M=16, N=16, K=64, TYPE_A="e4m3", TYPE_B="bf16")
    assert out[3].isnan().all() and (out[torch.arange(16) != 3] == 64).all()
