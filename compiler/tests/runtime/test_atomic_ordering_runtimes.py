"""Kernels whose atomics order memory across programs (device-scope fences, coherent(device) buffers:
Metal 3.2) reach each runtime as Metal 3.2 code: the Metal runtime compiles with MTLLanguageVersion3_2
on macOS 15, and the MLX wrapper keeps the coherent buffers."""
from __future__ import annotations

import numpy as np
import pytest
import triton
import triton.language as tl
from fake_metal import FakeMetal
from triton_metal.runtime.metal_runtime import MetalRuntime


@triton.jit
def locked_add_kernel(lock_ptr, total_ptr, x_ptr):
    while tl.atomic_cas(lock_ptr, 0, 1) == 1:
        pass
    tl.store(total_ptr, tl.load(total_ptr) + tl.load(x_ptr + tl.program_id(0)))
    tl.atomic_xchg(lock_ptr, 0)


SIGNATURE = {"lock_ptr": "*i32", "total_ptr": "*i32", "x_ptr": "*i32"}


@pytest.fixture
def locked_add(compile_msl):
    return compile_msl(locked_add_kernel, SIGNATURE, msl_version="3.2", num_warps=1)


@pytest.mark.parametrize("macos,version", [((15, 0), "MTLLanguageVersion3_2"), ((26, 1), "MTLLanguageVersion3_2"),
                                           ((14, 5), "MTLLanguageVersion3_1")])
def test_metal_runtime_compiles_with_the_version_of_the_macos(macos, version, locked_add):
    fake = FakeMetal()
    MetalRuntime(metal=fake, macos=macos).compile(locked_add[0], locked_add[1].name)
    (library,) = fake.find("newLibraryWithSource")
    assert library["language_version"] == getattr(fake, version)


def test_mlx_wrapper_keeps_coherent_buffers_and_the_lock_works(locked_add):
    pytest.importorskip("mlx.core", reason="mlx is an optional dependency (pip install 'mlx[cpu]' on Linux)")
    from mlx_emulation import wrapped_kernel
    from triton_metal.runtime.mlx_runtime import split_kernel
    from triton_metal.sim import build_kernel
    msl, metadata = locked_add
    kernel = split_kernel(msl, metadata.name)
    assert [p.type for p in kernel.params if p.attribute == "buffer"] == ["coherent(device) device int*"] * 3
    programs = 50
    lock, total, x = np.zeros(1, np.int32), np.zeros(1, np.int32), np.arange(programs, dtype=np.int32)
    source, buffers = wrapped_kernel(kernel, {0: lock, 1: total, 2: x}, output_slots=(0, 1))
    assert "coherent(device) device int* lock_ptr = (coherent(device) device int*)" in source
    build_kernel(source, "custom_kernel_wrapped").dispatch((programs, 1, 1), (metadata.threadgroup_size, 1, 1),
                                                          buffers)
    assert (lock[0], total[0]) == (0, x.sum())
