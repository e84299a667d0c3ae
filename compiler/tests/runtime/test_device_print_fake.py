"""tl.device_print through the Metal runtime (recorded fake, kernels run on the simulator)."""
from __future__ import annotations

import struct

import numpy as np
import pytest
import triton
import triton.language as tl
from fake_metal import FakeMetal
from triton_metal.device_print import DevicePrintBuffer, device_print_sites
from triton_metal.runtime.metal_runtime import MetalRuntime


@triton.jit
def scaled_print_kernel(x_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs, mask=offs < n, other=0.0)
    tl.device_print("y", x * 2)


def test_metal_runtime_binds_the_diagnostics_buffer_last_and_prints_it(compile_msl, capsys):
    msl, metadata = compile_msl(scaled_print_kernel, {"x_ptr": "*fp32", "n": "i32", "BLOCK": "constexpr"},
                                {"BLOCK": 16}, num_warps=1)
    fake = FakeMetal()
    rt = MetalRuntime(metal=fake, macos=(14, 5))
    x = rt.empty(32, np.float32)
    x[:] = np.linspace(-3, 5, 32, dtype=np.float32)
    diagnostics = DevicePrintBuffer(metadata.name, device_print_sites(metadata), rt)
    buffers = {0: rt.buffer_argument(x, "x_ptr"), 1: struct.pack("<i", 32)}
    buffers[2] = diagnostics.bind(buffers)
    rt.launch(rt.compile(msl, metadata.name), (2, 1, 1), (metadata.threadgroup_size, 1, 1), buffers)
    diagnostics.report()
    assert [c["index"] for c in fake.find("setBuffer")] == [0, 2]  # shared arrays: no staging copies
    assert capsys.readouterr().out.splitlines() == [
        f"pid ({i // 16}, 0, 0) idx ({i % 16:2d}) y: {'%f' % (2 * float(v))}" for i, v in enumerate(x)]


@triton.jit
def print_and_store_kernel(out_ptr):
    offs = tl.arange(0, 4)
    tl.device_print("offs", offs)
    tl.store(out_ptr + offs, offs.to(tl.float32))


class _MlxWithoutKernels:
    """Just enough of mlx.core for MLXRuntime and run() to reach compilation."""

    class array:
        pass

    class metal:
        @staticmethod
        def is_available():
            return True

        @staticmethod
        def device_info():
            return {"device_name": "Apple M2"}


def test_mlx_run_refuses_kernels_that_print_with_the_runtime_to_use():
    from triton_metal.errors import MetalError
    from triton_metal.runtime.mlx_runtime import MLXRuntime, Output, run
    runtime = MLXRuntime(mx=_MlxWithoutKernels)
    with pytest.raises(MetalError, match="kernel 'print_and_store_kernel' uses tl.device_print/tl.device_assert, "
                                         "whose diagnostics buffer mlx_runtime.run cannot read back: launch it "
                                         r"through Triton with TRITON_METAL_DEVICE=metal \(or sim\)"):
        run(print_and_store_kernel, (1,), Output((4,), "float32"), outputs=("out_ptr",), runtime=runtime)
