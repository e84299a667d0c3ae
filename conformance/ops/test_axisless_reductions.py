"""Reductions without an axis (tl.sum(x), tl.max(x), tl.reduce((x, i), None, f)) on blocks of 32768, against numpy.

Triton reshapes the block to 1-D with `allow_reorder` first; when the loaded block's layout (4 or 8
elements per thread for vector loads) differs from the reduction's, that reshape keeps every thread's
registers instead of moving the block through threadgroup memory (128 KiB at 32768 f32: refused before).
Liger-Kernel's cross entropy does this at blocks up to 32768 with 32 simdgroups; so do these tests.
"""
import numpy as np
import pytest
import torch
import triton
import triton.language as tl

BLOCK = 32768
N = 32000  # a vocabulary: the masked tail is filled with 0
NUM_WARPS = 32


@triton.jit
def axisless_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr, OP: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs, mask=offs < n, other=0)
    if OP == "sum":
        r = tl.sum(x)
    elif OP == "max":
        r = tl.max(x)
    else:
        r = tl.min(x)
    tl.store(out_ptr, r)


@triton.jit
def axis0_sum_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    tl.store(out_ptr, tl.sum(tl.load(x_ptr + offs, mask=offs < n, other=0), axis=0))


def _block(dtype):
    """N values of `dtype` in a float64 numpy array; bf16/f16 as small integers, so any summation order
    is exact and the reference needs no tolerance."""
    rng = np.random.default_rng(7)
    if dtype == torch.float32:
        return rng.standard_normal(N)
    return rng.integers(-3, 4, N).astype(np.float64)


REFERENCE = {"sum": np.sum, "max": np.max, "min": np.min}


@pytest.mark.parametrize("op", ["sum", "max", "min"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.int32])
def test_axisless_reduction_of_32768_matches_numpy(op, dtype, device):
    values = _block(dtype)
    x = torch.tensor(values, dtype=dtype)
    out = torch.zeros(1, dtype=dtype).to(device)
    axisless_kernel[(1,)](x.to(device), out, N, BLOCK=BLOCK, OP=op, num_warps=NUM_WARPS)
    padded = np.concatenate([x.double().numpy(), np.zeros(BLOCK - N)])  # the masked tail loads 0
    expected = REFERENCE[op](padded)
    got = out.cpu().double().item()
    if dtype == torch.float32 and op == "sum":
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-3)  # f32 rounding, in any order
    else:
        assert got == expected


def test_axisless_sum_needs_no_more_threadgroup_memory_than_axis_0(device):
    x = torch.tensor(_block(torch.float32), dtype=torch.float32).to(device)
    out = torch.zeros(1).to(device)
    axisless = axisless_kernel[(1,)](x, out, N, BLOCK=BLOCK, OP="sum", num_warps=NUM_WARPS)
    axis0 = axis0_sum_kernel[(1,)](x, out, N, BLOCK=BLOCK, num_warps=NUM_WARPS)
    assert axisless.metadata.shared <= axis0.metadata.shared <= 1024


@triton.jit
def axisless_2d_kernel(x_ptr, out_ptr, M: tl.constexpr, N: tl.constexpr, OP: tl.constexpr):
    rm = tl.arange(0, M)
    rn = tl.arange(0, N)
    x = tl.load(x_ptr + rm[:, None] * N + rn[None, :])
    tl.store(out_ptr, tl.sum(x) if OP == "sum" else tl.max(x))


@pytest.mark.parametrize("op", ["sum", "max"])
def test_axisless_reduction_of_2d_block_matches_numpy(op, device):
    values = np.random.default_rng(3).standard_normal((64, 512)).astype(np.float32)
    out = torch.zeros(1).to(device)
    compiled = axisless_2d_kernel[(1,)](torch.from_numpy(values).to(device), out, M=64, N=512, OP=op)
    expected = REFERENCE[op](values.astype(np.float64))
    np.testing.assert_allclose(out.cpu().item(), expected, rtol=1e-5, atol=1e-3)
    assert compiled.metadata.shared <= 1024


@triton.jit
def _max_and_index(a, ia, b, ib):
    take_a = (a > b) | ((a == b) & (ia < ib))
    return tl.where(take_a, a, b), tl.where(take_a, ia, ib)


@triton.jit
def axisless_argmax_kernel(x_ptr, value_ptr, index_ptr, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs, mask=offs < n, other=float("-inf"))
    # Each operand is reshaped on its own, the loaded block from a 4-per-thread layout and the index
    # from another: their elements must still be paired.
    value, index = tl.reduce((x, tl.arange(0, BLOCK)), None, _max_and_index)
    tl.store(value_ptr, value)
    tl.store(index_ptr, index)


def test_axisless_reduction_of_two_tensors_keeps_their_elements_paired(device):
    values = np.random.default_rng(5).permutation(N).astype(np.float32)  # distinct values
    value = torch.zeros(1).to(device)
    index = torch.zeros(1, dtype=torch.int32).to(device)
    axisless_argmax_kernel[(1,)](torch.from_numpy(values).to(device), value, index, N, BLOCK=BLOCK,
                                 num_warps=NUM_WARPS)
    assert (value.cpu().item(), index.cpu().item()) == (values.max(), values.argmax())
