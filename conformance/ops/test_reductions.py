"""Reductions and layout changes on 2-D blocks, against numpy.

The first slice of the op table: enough to cover every path of the reduction lowering
(registers, simd shuffles, threadgroup memory across simdgroups) and layout conversions.
"""
import numpy as np
import pytest
import torch
import triton
import triton.language as tl


@triton.jit
def reduce_2d_kernel(x_ptr, out_ptr, M: tl.constexpr, N: tl.constexpr, AXIS: tl.constexpr, OP: tl.constexpr):
    rm = tl.arange(0, M)
    rn = tl.arange(0, N)
    x = tl.load(x_ptr + rm[:, None] * N + rn[None, :])
    if OP == "sum":
        r = tl.sum(x, axis=AXIS)
    elif OP == "max":
        r = tl.max(x, axis=AXIS)
    else:
        r = tl.min(x, axis=AXIS)
    out = rn if AXIS == 0 else rm
    tl.store(out_ptr + out, r)


NUMPY = {"sum": np.sum, "max": np.max, "min": np.min}


@pytest.mark.parametrize("op", ["sum", "max", "min"])
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("shape,num_warps", [((16, 64), 4), ((64, 16), 4), ((32, 128), 8), ((8, 8), 1), ((128, 4), 2)])
def test_reduce_2d(op, axis, shape, num_warps, device):
    m, n = shape
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    out = torch.empty(n if axis == 0 else m)
    xt = torch.from_numpy(x).to(device)
    out = out.to(device)
    reduce_2d_kernel[(1,)](xt, out, M=m, N=n, AXIS=axis, OP=op, num_warps=num_warps)
    np.testing.assert_allclose(out.cpu().numpy(), NUMPY[op](x, axis=axis), rtol=1e-5, atol=1e-5)


@triton.jit
def transpose_kernel(x_ptr, out_ptr, M: tl.constexpr, N: tl.constexpr):
    rm = tl.arange(0, M)
    rn = tl.arange(0, N)
    x = tl.load(x_ptr + rm[:, None] * N + rn[None, :])
    # Storing column-major makes Triton pick a different layout for the store: a layout conversion.
    tl.store(out_ptr + rn[None, :] * M + rm[:, None], x)


@pytest.mark.parametrize("shape", [(16, 32), (64, 64), (8, 128)])
def test_transposed_store(shape, device):
    m, n = shape
    x = np.arange(m * n, dtype=np.float32).reshape(m, n)
    out = torch.empty(n * m, device=device)
    transpose_kernel[(1,)](torch.from_numpy(x).to(device), out, M=m, N=n)
    np.testing.assert_array_equal(out.cpu().numpy().reshape(n, m), x.T)


@triton.jit
def row_mean_kernel(x_ptr, out_ptr, n_cols, stride, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    for start in range(0, n_cols, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        acc += tl.load(x_ptr + row * stride + cols, mask=cols < n_cols, other=0.0)
    tl.store(out_ptr + row, tl.sum(acc, axis=0) / n_cols)


def test_loop_carried_accumulator(device):
    x = np.random.default_rng(1).standard_normal((9, 1000)).astype(np.float32)
    out = torch.empty(9, device=device)
    row_mean_kernel[(9,)](torch.from_numpy(x).to(device), out, 1000, 1000, BLOCK=128)
    np.testing.assert_allclose(out.cpu().numpy(), x.mean(axis=1), rtol=1e-5, atol=1e-6)
