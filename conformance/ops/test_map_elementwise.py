"""tl.map_elementwise: a scalar function (with branches, several results, packed arguments) per element."""
import numpy as np
import pytest
import torch
import triton
import triton.language as tl


@triton.jit
def sign_of_difference(x, y):
    if x < y:
        return -1
    elif x == y:
        return 0
    else:
        return 1


@triton.jit
def compare_kernel(x_ptr, y_ptr, out_ptr, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    out = tl.map_elementwise(sign_of_difference, tl.load(x_ptr + offs), tl.load(y_ptr + offs))
    tl.store(out_ptr + offs, out)


@pytest.mark.parametrize("block", [32, 128, 1024])
def test_function_with_branches_per_element(block, device):
    rng = np.random.default_rng(block)
    x, y = (rng.integers(-4, 4, block).astype(np.int32) for _ in range(2))
    out = torch.zeros(block, dtype=torch.int32, device=device)
    compare_kernel[(1,)](torch.from_numpy(x).to(device), torch.from_numpy(y).to(device), out, BLOCK=block)
    np.testing.assert_array_equal(out.cpu().numpy(), np.sign(x.astype(np.int64) - y))


@triton.jit
def scaled_divmod(a, b):
    return a // b, a % b, a.to(tl.float32) * 0.5


@triton.jit
def divmod_kernel(a_ptr, b_ptr, q_ptr, r_ptr, h_ptr, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    q, r, h = tl.map_elementwise(scaled_divmod, tl.load(a_ptr + offs), tl.load(b_ptr + offs))
    tl.store(q_ptr + offs, q)
    tl.store(r_ptr + offs, r)
    tl.store(h_ptr + offs, h)


def test_several_results_of_different_types(device):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2**31, 512).astype(np.uint32)
    b = rng.integers(1, 1000, 512).astype(np.uint32)
    q, r = (torch.zeros(512, dtype=torch.uint32, device=device) for _ in range(2))
    h = torch.zeros(512, dtype=torch.float32, device=device)
    divmod_kernel[(1,)](torch.from_numpy(a).to(device), torch.from_numpy(b).to(device), q, r, h, BLOCK=512)
    np.testing.assert_array_equal(q.cpu().numpy(), a // b)
    np.testing.assert_array_equal(r.cpu().numpy(), a % b)
    np.testing.assert_array_equal(h.cpu().numpy(), a.astype(np.float32) * np.float32(0.5))


@triton.jit
def pairwise_max_min(a0, a1):
    return tl.maximum(a0, a1), tl.minimum(a0, a1)


@triton.jit
def packed_kernel(x_ptr, out_ptr, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    (ordered,) = tl.map_elementwise(pairwise_max_min, tl.load(x_ptr + offs), pack=2)
    tl.store(out_ptr + offs, ordered)


def test_pack_hands_consecutive_elements_to_one_call(device):
    # With pack=2 the function sees (x[2k], x[2k+1]) and returns the two elements of the result there.
    x = np.random.default_rng(1).standard_normal(512).astype(np.float32)
    out = torch.zeros(512, dtype=torch.float32, device=device)
    packed_kernel[(1,)](torch.from_numpy(x).to(device), out, BLOCK=512)
    pairs = x.reshape(-1, 2)
    np.testing.assert_array_equal(out.cpu().numpy(), np.stack([pairs.max(1), pairs.min(1)], 1).reshape(-1))
