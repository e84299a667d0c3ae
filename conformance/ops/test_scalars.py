"""One-element tensors becoming scalars (tt.unsplat): `.item()`, `if` on a 1-element tensor, split to scalars."""
import numpy as np
import pytest
import torch
import triton
import triton.language as tl


@triton.jit
def clamp_first_kernel(x_ptr, EXPLICIT: tl.constexpr):
    condition = tl.load(x_ptr + tl.arange(0, 1)) > 42  # a tensor of one element
    if EXPLICIT:
        condition = condition.item()
    if condition:
        tl.store(x_ptr, 42)


@pytest.mark.parametrize("explicit", [False, True])
@pytest.mark.parametrize("start", [41, 43])
def test_branch_on_a_one_element_tensor(start, explicit, device):
    x = torch.full((1,), start, dtype=torch.int32, device=device)
    clamp_first_kernel[(1,)](x, explicit, num_warps=1)
    assert x.item() == min(start, 42)


@triton.jit
def split_kernel(x_ptr, lo_ptr, hi_ptr):
    lo, hi = tl.split(tl.load(x_ptr + tl.arange(0, 2)))
    tl.store(lo_ptr, lo)
    tl.store(hi_ptr, hi)


def test_split_of_two_elements_gives_scalars(device):
    x = np.array([-7.5, 3.25], dtype=np.float32)
    lo, hi = (torch.zeros(1, device=device) for _ in range(2))
    split_kernel[(1,)](torch.from_numpy(x).to(device), lo, hi)
    assert (lo.item(), hi.item()) == (x[0], x[1])
