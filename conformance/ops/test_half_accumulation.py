"""16-bit float accumulations that run serially on this backend carry a float running value and round
once per output: a half/bfloat cumsum and the FMA path of tl.dot with a half accumulator. Rounding at
every step (what a literal serial lowering does) drifts past 1% on long axes; references are numpy in
float32, rounded to the 16-bit type at the end."""
import numpy as np
import pytest
import torch
import triton
import triton.language as tl


@triton.jit
def cumsum_kernel(x_ptr, out_ptr, N: tl.constexpr):
    offs = tl.arange(0, N)
    tl.store(out_ptr + offs, tl.cumsum(tl.load(x_ptr + offs), axis=0))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_long_16bit_cumsum_stays_within_one_percent(dtype, device):
    x = torch.from_numpy(np.random.default_rng(0).uniform(0.5, 1.5, 1024).astype(np.float32)).to(dtype)
    out = torch.empty_like(x, device=device)
    cumsum_kernel[(1,)](x.to(device), out, N=1024)
    ref = np.cumsum(x.float().numpy())
    np.testing.assert_allclose(out.cpu().float().numpy(), ref, rtol=1e-2)


@triton.jit
def batched_dot_kernel(a_ptr, b_ptr, c_ptr, B: tl.constexpr, M: tl.constexpr, N: tl.constexpr, K: tl.constexpr):
    b_i, m_i, n_i, k_i = tl.arange(0, B), tl.arange(0, M), tl.arange(0, N), tl.arange(0, K)
    a = tl.load(a_ptr + b_i[:, None, None] * M * K + m_i[None, :, None] * K + k_i[None, None, :])
    b = tl.load(b_ptr + b_i[:, None, None] * K * N + k_i[None, :, None] * N + n_i[None, None, :])
    c = tl.dot(a, b, out_dtype=tl.float16)  # batched: the FMA path
    tl.store(c_ptr + b_i[:, None, None] * M * N + m_i[None, :, None] * N + n_i[None, None, :], c)


def test_half_accumulator_dot_rounds_once(device):
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 1, (2, 16, 64)).astype(np.float16)
    b = rng.uniform(0, 1, (2, 64, 16)).astype(np.float16)
    c = torch.empty(2, 16, 16, dtype=torch.float16, device=device)
    batched_dot_kernel[(1,)](torch.from_numpy(a).to(device), torch.from_numpy(b).to(device), c, B=2, M=16, N=16, K=64)
    ref = (a.astype(np.float32) @ b.astype(np.float32)).astype(np.float16)
    np.testing.assert_allclose(c.cpu().numpy().astype(np.float32), ref.astype(np.float32), rtol=2e-3)
