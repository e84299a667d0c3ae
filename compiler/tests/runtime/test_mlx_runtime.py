"""The MLX runtime. On Linux: wrapping our MSL the way mx.fast.metal_kernel needs it, and scalar
arguments (mlx[cpu] has no Metal back end, so mx.fast.metal_kernel itself cannot run here). The
wrapped kernel is also run on the Metal simulator inside a signature written as MLX writes it
(our re-implementation of ``write_signature`` in mlx/backend/metal/custom_kernel.cpp, read, not
run against MLX; mlx_emulation.py). Tests marked apple_gpu run the real thing on the self-hosted runner."""
from __future__ import annotations

import struct

import numpy as np
import pytest
import triton
import triton.language as tl
from mlx_emulation import mlx_signature
from triton_metal.errors import MetalError, MLXNotFoundError
from triton_metal.runtime.mlx_runtime import (
    MLX_ATTRIBUTE_TYPES,
    input_name,
    mlx_body,
    output_name,
    split_kernel,
)

mx = pytest.importorskip("mlx.core", reason="mlx is an optional dependency (pip install 'mlx[cpu]' on Linux)")


@triton.jit
def axpy_kernel(x_ptr, y_ptr, out_ptr, n, alpha, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, alpha * x + tl.load(y_ptr + offs, mask=mask), mask=mask)


SIGNATURE = {"x_ptr": "*fp32", "y_ptr": "*fp32", "out_ptr": "*fp32", "n": "i32", "alpha": "fp32", "BLOCK": "constexpr"}


@pytest.fixture
def axpy(compile_msl):
    return compile_msl(axpy_kernel, SIGNATURE, {"BLOCK": 64}, num_warps=2)


def test_split_kernel_reads_parameters_header_and_body(axpy):
    msl, metadata = axpy
    kernel = split_kernel(msl, metadata.name)
    buffers = [(p.name, p.type, p.slot) for p in kernel.params if p.attribute == "buffer"]
    assert [b[2] for b in buffers] == [0, 1, 2, 3, 4]
    assert [b[1] for b in buffers] == ["device float*"] * 3 + ["constant int&", "constant float&"]
    assert "#include <metal_stdlib>" in kernel.header and "kernel void" not in kernel.header
    assert "[[buffer(" not in kernel.body
    assert {p.attribute for p in kernel.params if p.attribute != "buffer"} <= set(MLX_ATTRIBUTE_TYPES)


def test_body_rebinds_our_names_to_mlx_inputs_outputs_and_attributes(axpy):
    msl, metadata = axpy
    body = mlx_body(split_kernel(msl, metadata.name), output_slots=(2,))
    x, _, out, n = (p.name for p in split_kernel(msl, metadata.name).params[:4])
    assert f"    device float* {x} = (device float*)mlx_in0;" in body
    assert f"    device float* {out} = (device float*)mlx_out2;" in body
    assert f"    const int {n} = *(const constant int*)&mlx_in3;" in body
    assert "= threadgroup_position_in_grid;" in body


def test_a_kernel_not_in_the_msl_is_a_clear_error(axpy):
    with pytest.raises(MetalError, match="no 'kernel void other\\("):
        split_kernel(axpy[0], "other")


def test_wrapped_kernel_computes_axpy_on_the_simulator(axpy):
    from triton_metal.sim import build_kernel
    msl, metadata = axpy
    kernel = split_kernel(msl, metadata.name)
    body = mlx_body(kernel, output_slots=(2,))
    n, alpha = 200, 1.5
    source = kernel.header + mlx_signature(
        "custom_kernel_axpy", [(input_name(0), "float", False, n), (input_name(1), "float", False, n),
                               (input_name(3), "int", True, 1), (input_name(4), "float", True, 1)],
        [(output_name(2), "float")], body)
    x = np.linspace(-1, 1, n, dtype=np.float32)
    y = np.arange(n, dtype=np.float32)
    out = np.zeros(n, dtype=np.float32)
    build_kernel(source, "custom_kernel_axpy").dispatch(
        (4, 1, 1), (metadata.threadgroup_size, 1, 1),
        {0: x.ctypes.data, 1: y.ctypes.data, 2: struct.pack("<i", n), 3: struct.pack("<f", alpha), 4: out.ctypes.data})
    np.testing.assert_allclose(out, alpha * x + y, rtol=1e-6)


@pytest.mark.parametrize("data, dtype, expected", [
    (struct.pack("<i", -5), "int32", -5), (struct.pack("<f", 0.25), "float32", 0.25),
    (struct.pack("<e", -2.0), "float16", -2.0), (b"\xc0\x3f", "bfloat16", 1.5)])
def test_scalar_arguments_become_0d_arrays_with_the_same_bytes(data, dtype, expected):
    from triton_metal.runtime.mlx_runtime import scalar_array
    a = scalar_array(mx, data, getattr(mx, dtype))
    assert a.ndim == 0 and a.dtype == getattr(mx, dtype) and a.item() == expected


def test_mlx_without_metal_is_a_clear_error():
    from triton_metal.runtime.mlx_runtime import MLXRuntime
    if mx.metal.is_available():
        pytest.skip("this machine has MLX's Metal back end")
    with pytest.raises(MLXNotFoundError, match="TRITON_METAL_DEVICE=sim"):
        MLXRuntime()


def test_run_binds_arguments_by_the_signature_record_and_computes_axpy():
    # mx.fast.metal_kernel emulated (mlx_emulation.EmulatedMetalKernel: MLX's signature around our body,
    # run on the simulator): scalars arrive as 0-d arrays of the kernel's record types, outputs come back.
    from mlx_emulation import MlxWithMetal
    from triton_metal.runtime.mlx_runtime import MLXRuntime, Output, run
    fake_mx = MlxWithMetal(mx)
    n, alpha = 200, 1.5
    x = np.linspace(-1, 1, n, dtype=np.float32)
    y = np.arange(n, dtype=np.float32)
    (out,) = run(axpy_kernel, (triton.cdiv(n, 64),), mx.array(x), mx.array(y), Output((n,), mx.float32), n, alpha,
                 outputs=("out_ptr",), runtime=MLXRuntime(mx=fake_mx), BLOCK=64)
    np.testing.assert_allclose(np.array(out), alpha * x + y, rtol=1e-6)
    (kernel,) = fake_mx.kernels
    assert kernel.input_names == [input_name(0), input_name(1), input_name(3), input_name(4)]
    assert kernel.calls == [[("float32", 1), ("float32", 1), ("int32", 0), ("float32", 0)]]


@pytest.mark.apple_gpu
def test_mlx_results_equal_numpy_and_the_torch_path():
    import torch
    from triton_metal.runtime.mlx_runtime import Output, run
    n, alpha = 1000, 0.5
    x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    y = np.random.default_rng(1).standard_normal(n).astype(np.float32)
    (out,) = run(axpy_kernel, (triton.cdiv(n, 256),), mx.array(x), mx.array(y), Output((n,), mx.float32), n, alpha,
                 outputs=("out_ptr",), BLOCK=256)
    np.testing.assert_allclose(np.array(out), alpha * x + y, rtol=1e-6)
    tx, ty = torch.from_numpy(x).to("mps"), torch.from_numpy(y).to("mps")
    tout = torch.empty_like(tx)
    axpy_kernel[(triton.cdiv(n, 256),)](tx, ty, tout, n, alpha, BLOCK=256)
    np.testing.assert_array_equal(np.array(out), tout.cpu().numpy())
