"""The Metal runtime on a real Apple GPU (self-hosted runner only; skipped without a Metal device).

Written without access to Apple hardware: these tests have not yet been run (see the README)."""
from __future__ import annotations

import struct

import numpy as np
import pytest
import torch
import triton
import triton.language as tl
from triton_metal.errors import MetalCompileError

pytestmark = pytest.mark.apple_gpu


@triton.jit
def add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) + tl.load(y_ptr + offs, mask=mask), mask=mask)


@pytest.fixture
def runtime():
    from triton_metal.runtime.metal_runtime import MetalRuntime
    return MetalRuntime()


def test_triton_launch_with_mps_tensors_is_ordered_with_torch_ops():
    x = torch.rand(10_000, device="mps")
    y = torch.rand(10_000, device="mps")
    out = torch.empty_like(x)
    add_kernel[(triton.cdiv(x.numel(), 1024),)](x, y, out, x.numel(), BLOCK=1024)
    doubled = out * 2  # a torch op on PyTorch's stream reads the kernel's result without a sync
    torch.testing.assert_close(doubled.cpu(), (x.cpu() + y.cpu()) * 2)


def test_mps_tensor_views_are_bound_at_their_storage_offset():
    base = torch.arange(64, dtype=torch.float32, device="mps")
    out = torch.zeros(32, device="mps")
    add_kernel[(1,)](base[32:], base[:32], out, 32, BLOCK=32)
    torch.testing.assert_close(out.cpu(), torch.arange(32.0) * 2 + 32)


def test_numpy_arrays_through_shared_buffers(runtime, compile_msl):
    msl, metadata = compile_msl(add_kernel, {"x_ptr": "*fp32", "y_ptr": "*fp32", "out_ptr": "*fp32", "n": "i32",
                                             "BLOCK": "constexpr"}, {"BLOCK": 256}, num_warps=8)
    x = runtime.empty(1000, np.float32)
    x[:] = np.arange(1000)
    y = np.ones(1000, np.float32)  # staged
    out = runtime.empty(1000, np.float32)
    runtime.launch(runtime.compile(msl, metadata.name), (4, 1, 1), (256, 1, 1),
                   {0: x, 1: y, 2: out, 3: struct.pack("<i", 1000)})
    runtime.synchronize()
    np.testing.assert_array_equal(out, np.arange(1000, dtype=np.float32) + 1)


def test_apples_compiler_log_reaches_the_error(runtime, tmp_path, monkeypatch):
    monkeypatch.setenv("TRITON_METAL_SHADER_DUMP_DIR", str(tmp_path))
    with pytest.raises(MetalCompileError, match="Metal shader compilation failed for kernel 'k': .*undeclared"):
        runtime.compile("#include <metal_stdlib>\nkernel void k(device float* x [[buffer(0)]]) { x[0] = nope; }\n", "k")
    assert len(list(tmp_path.glob("k-*.metal"))) == 1
