"""The torch (``mps``) path's arguments, on Linux: the real launcher and Metal runtime, against the fake
Metal API (fake_metal.py) and a fake ``torch.mps.compile_shader`` that binds arguments as PyTorch's
source says it does (fake_torch_mps.py) and runs the kernel on the simulator.

Each test reads back the exact bytes bound, decodes them as the kernel's C struct of scalars, and
compares the kernel's output with the same kernel run on the simulator through Triton (numpy as the
reference where the result is simple). Kernels with more arguments than Metal's 31 buffer slots take
their scalars in one struct (codegen ``packed``), e.g. every kernel with three host TensorDescriptors.
"""
from __future__ import annotations

import ctypes
import struct

import numpy as np
import pytest
import torch
import triton
import triton.language as tl
from fake_metal import FakeMetal
from fake_torch_mps import FakeTorchMPS
from triton.tools.tensor_descriptor import TensorDescriptor
from triton_metal.launcher import MetalLauncher
from triton_metal.runtime.metal_runtime import MetalRuntime, torch_bytes_argument

C_TYPES = {"i1": ctypes.c_bool, "i8": ctypes.c_int8, "i16": ctypes.c_int16, "i32": ctypes.c_int32,
           "i64": ctypes.c_int64, "u32": ctypes.c_uint32, "fp32": ctypes.c_float}


class LinuxTorchRuntime(MetalRuntime):
    """The Metal runtime with CPU tensors standing for mps ones (Linux has no mps device)."""

    def buffer_argument(self, value, arg_name):
        return value


@pytest.fixture
def torch_path(monkeypatch):
    fake = FakeTorchMPS()
    monkeypatch.setattr(torch.mps, "compile_shader", fake.compile_shader)
    return fake


def launch_through_torch_path(compiled, grid, args):
    """Launch `compiled` (a kernel Triton compiled for the simulator) with the launcher and runtime a
    Mac uses, through torch.mps.compile_shader (the fake one)."""
    runtime = LinuxTorchRuntime(metal=FakeMetal(), macos=(14, 5))
    launcher = MetalLauncher(compiled.src, compiled.metadata)
    launcher.runtime = runtime
    pipeline = runtime.compile(compiled.asm["msl"].decode(), compiled.metadata.name)
    launcher(*grid, None, pipeline, None, None, None, None, *args)


def packed_struct_slot(compiled) -> int:
    return sum(kind == "buffer" for _, kind, _ in compiled.metadata.arg_kinds)


def decode_struct(compiled, data: bytes) -> list:
    """The packed scalar arguments read back from `data` as the C struct the kernel declares."""
    fields = [(name, C_TYPES[ty]) for name, kind, ty in compiled.metadata.arg_kinds if kind == "packed scalar"]

    class Scalars(ctypes.Structure):
        _fields_ = fields
    assert len(data) >= ctypes.sizeof(Scalars)
    decoded = Scalars.from_buffer_copy(data[:ctypes.sizeof(Scalars)])
    return [getattr(decoded, name) for name, _ in fields]


# ---- a struct of 12 and of 16 bytes: 29 pointers and a few scalars ---------------------------------

@triton.jit
def many_pointers_kernel(ptrs, out_ptr, scalars_out_ptr, scalars, N: tl.constexpr):
    offs = tl.arange(0, N)
    acc = tl.zeros([N], dtype=tl.float32)
    for j in tl.static_range(len(ptrs)):
        acc += tl.load(ptrs[j] + offs)
    tl.store(out_ptr + offs, acc)
    for s in tl.static_range(len(scalars)):
        tl.store(scalars_out_ptr + s, scalars[s])


@pytest.mark.parametrize("scalars, struct_bytes", [
    ((-7, 123456, -2**31), 12),  # three i32: 12 bytes, which no dtype is as long as
    ((2**40 + 3, -5), 16),  # i64 then i32: 12 bytes of fields, padded to the i64's alignment
])
def test_a_struct_of_scalars_reaches_the_kernel_with_its_exact_bytes(torch_path, scalars, struct_bytes):
    rng = np.random.default_rng(0)
    xs = [torch.from_numpy(rng.standard_normal(16).astype(np.float32)) for _ in range(27)]
    out, scalars_out = torch.zeros(16), torch.zeros(len(scalars), dtype=torch.int64)
    compiled = many_pointers_kernel[(1,)](tuple(xs), out, scalars_out, scalars, N=16)  # the simulator, via Triton
    assert b"tm_scalars" in compiled.asm["msl"]
    out.zero_(), scalars_out.zero_()

    launch_through_torch_path(compiled, (1, 1, 1), (tuple(xs), out, scalars_out, scalars, 16))
    bound = torch_path.bindings()[packed_struct_slot(compiled)]
    assert len(bound) == struct_bytes + (-struct_bytes % 8)  # int64 words: the struct, zero-padded
    assert decode_struct(compiled, bound) == list(scalars)
    assert scalars_out.tolist() == list(scalars)
    np.testing.assert_allclose(out.numpy(), np.sum([x.numpy() for x in xs], axis=0), rtol=1e-5)


# ---- host tensor descriptors (2 + 4 x rank arguments each) ----------------------------------------

@triton.jit
def descriptor_copy_kernel(x_desc, out_ptr, M: tl.constexpr, N: tl.constexpr):
    tile = x_desc.load([tl.program_id(0) * M, 0])
    offs = (tl.program_id(0) * M + tl.arange(0, M))[:, None] * N + tl.arange(0, N)[None, :]
    tl.store(out_ptr + offs, tile * 2)


def descriptor_scalars(desc) -> list:
    """The scalar arguments a host descriptor expands to (Triton's order), as the kernel reads them."""
    return [*desc.shape, *desc.strides, desc.padding == "nan", desc.round_f32_to_tf32, *desc.shape, *desc.strides]


def test_a_host_tensor_descriptor_binds_each_scalar(torch_path):
    x = torch.arange(32 * 16, dtype=torch.float32).reshape(32, 16)
    desc = TensorDescriptor.from_tensor(x, block_shape=[8, 16])
    out = torch.zeros_like(x)
    compiled = descriptor_copy_kernel[(4,)](desc, out, M=8, N=16)
    out.zero_()

    launch_through_torch_path(compiled, (4, 1, 1), (desc, out, 8, 16))
    bound = torch_path.bindings()
    kinds = compiled.metadata.arg_kinds
    formats = {"i1": "<?", "i32": "<i", "i64": "<q"}
    scalars = [struct.unpack_from(formats[ty], bound[slot])[0] for slot, (_, kind, ty) in enumerate(kinds)
               if kind == "scalar"]
    assert scalars == descriptor_scalars(desc)
    np.testing.assert_array_equal(out.numpy(), x.numpy() * 2)


@triton.jit
def three_descriptors_kernel(a_desc, b_desc, c_desc, out_ptr, M: tl.constexpr, N: tl.constexpr):
    row = tl.program_id(0) * M
    total = a_desc.load([row, 0]) + 10 * b_desc.load([row, 0]) + 100 * c_desc.load([row, 0])
    offs = (row + tl.arange(0, M))[:, None] * N + tl.arange(0, N)[None, :]
    tl.store(out_ptr + offs, total)


def test_three_host_tensor_descriptors_get_their_scalars_in_one_struct(torch_path):
    xs = [torch.arange(32 * 16, dtype=torch.float32).reshape(32, 16) + k for k in range(3)]
    descs = [TensorDescriptor.from_tensor(x, block_shape=[8, 16]) for x in xs]
    out = torch.zeros_like(xs[0])
    compiled = three_descriptors_kernel[(4,)](*descs, out, M=8, N=16)  # 34 arguments
    assert b"tm_scalars" in compiled.asm["msl"]
    out.zero_()

    launch_through_torch_path(compiled, (4, 1, 1), (*descs, out, 8, 16))
    bound = torch_path.bindings()[packed_struct_slot(compiled)]
    assert len(bound) == 192  # per descriptor 4 i64, 2 bools, 2 i32 (at 36), 2 i64 (at 48): 64 bytes
    assert decode_struct(compiled, bound) == [v for d in descs for v in descriptor_scalars(d)]
    np.testing.assert_array_equal(out.numpy(), xs[0].numpy() + 10 * xs[1].numpy() + 100 * xs[2].numpy())


def test_bytes_become_little_endian_int64_words_zero_padded():
    data = struct.pack("<iii", -1, 2, 3)
    words = torch_bytes_argument(data)
    assert words == [struct.unpack("<q", struct.pack("<ii", -1, 2))[0], 3]
    assert struct.pack("<2q", *words) == data + bytes(4)
