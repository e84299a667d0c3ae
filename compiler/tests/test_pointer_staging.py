"""A tensor of pointers that changes layout is staged through threadgroup memory: the scratch pointer
is `device float* threadgroup*` (Apple's clang rejects `threadgroup device float**`, where both
address spaces would qualify `float`). Found by the Metal front-end check on upstream test_core's
test_indirect_store; the simulator's g++ had accepted the wrong spelling."""
from __future__ import annotations

import numpy as np
import torch
import triton
import triton.language as tl


@triton.jit
def _indirect_store(x_ptr, out_ptr, idx_ptr, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    ptrs = out_ptr + tl.load(idx_ptr + offs)
    # The transposes move the pointers (and values) between layouts: a layout conversion of pointers.
    ptrs = tl.reshape(tl.permute(tl.reshape(ptrs, (16, BLOCK // 16)), (1, 0)), (BLOCK,))
    x = tl.reshape(tl.permute(tl.reshape(tl.load(x_ptr + offs), (16, BLOCK // 16)), (1, 0)), (BLOCK,))
    tl.store(ptrs, x)


def test_a_staged_tensor_of_pointers_is_spelled_for_apple(compile_msl):
    msl, _ = compile_msl(_indirect_store, {"x_ptr": "*fp32", "out_ptr": "*fp32", "idx_ptr": "*i32"}, {"BLOCK": 512})
    assert "device float* threadgroup*" in msl
    assert "threadgroup device float*" not in msl


def test_a_staged_tensor_of_pointers_stores_through_them(device):
    x = torch.arange(512, dtype=torch.float32, device=device)
    idx = np.random.default_rng(0).permutation(512).astype(np.int32)
    out = torch.zeros(512, device=device)
    _indirect_store[(1,)](x, out, torch.from_numpy(idx).to(device), BLOCK=512)
    expected = np.zeros(512, np.float32)
    expected[idx] = np.arange(512, dtype=np.float32)
    np.testing.assert_array_equal(out.cpu().numpy(), expected)
