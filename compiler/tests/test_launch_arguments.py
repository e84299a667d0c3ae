"""How launch arguments reach the kernel: scalars packed into one struct when a kernel has more
arguments than Metal's 31 buffer slots, and host tensor descriptors expanded as Triton expands them."""
import ctypes

import numpy as np
import pytest
import torch
import triton
import triton.language as tl
from triton.tools.tensor_descriptor import TensorDescriptor
from triton_metal.arguments import pack_scalar, pack_struct

C_TYPES = {"i1": ctypes.c_bool, "i8": ctypes.c_int8, "i16": ctypes.c_int16, "i32": ctypes.c_int32,
           "i64": ctypes.c_int64, "fp16": ctypes.c_uint16, "fp32": ctypes.c_float}


@pytest.mark.parametrize("types", [["i8", "i32", "i1", "i64", "i16"], ["fp16", "i8", "fp32"], ["i64", "i8"],
                                   ["i1"], ["i32", "i16", "i16", "i8", "i64"]])
def test_packed_scalars_match_the_c_struct_layout(types):
    values = {"i1": True, "i8": -5, "i16": 1234, "i32": -70000, "i64": 2**40 + 3, "fp16": 1.5, "fp32": 0.25}

    class Reference(ctypes.Structure):  # what a C (and Metal) compiler lays out for the same fields
        _fields_ = [(f"f{k}", C_TYPES[t]) for k, t in enumerate(types)]
    ref = Reference(*[np.float16(values[t]).view(np.uint16).item() if t == "fp16" else values[t] for t in types])
    packed = pack_struct([pack_scalar(values[t], t, f"f{k}") for k, t in enumerate(types)])
    assert packed == bytes(ref)


@triton.jit
def forty_scalars_kernel(out_ptr, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, b0, b1, b2, b3, b4, b5, b6, b7, b8, b9,
                         c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, d0, d1, d2, d3, d4, d5, d6, d7, d8, d9):
    tl.store(out_ptr + 0, a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9)
    tl.store(out_ptr + 1, b0 + b1 + b2 + b3 + b4 + b5 + b6 + b7 + b8 + b9)
    tl.store(out_ptr + 2, c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9)
    tl.store(out_ptr + 3, d0 * d1 + d2 * d3 + d4 * d5 + d6 * d7 + d8 * d9)


def test_a_kernel_with_more_arguments_than_buffer_slots(device):
    rng = np.random.default_rng(3)
    ints = [int(v) for v in rng.integers(-1000, 1000, 20)]
    big = [int(v) for v in rng.integers(2**33, 2**34, 10)]  # i64 arguments between i32 ones
    floats = [float(v) for v in rng.standard_normal(10).astype(np.float32)]
    out = torch.zeros(4, dtype=torch.float32, device=device)
    compiled = forty_scalars_kernel[(1,)](out, *ints[:10], *big, *floats, *ints[10:])
    assert b"tm_scalars" in compiled.asm["msl"]
    expected = [sum(ints[:10]), sum(big), np.float32(sum(np.float32(f) for f in floats)),
                sum(ints[10 + 2 * k] * ints[11 + 2 * k] for k in range(5))]
    np.testing.assert_allclose(out.cpu().numpy(), np.array(expected, dtype=np.float64).astype(np.float32), rtol=1e-6)


@triton.jit
def descriptor_copy_kernel(x_desc, out_ptr, M: tl.constexpr, N: tl.constexpr):
    tile = x_desc.load([tl.program_id(0) * M, 0])
    offs = (tl.program_id(0) * M + tl.arange(0, M))[:, None] * N + tl.arange(0, N)[None, :]
    tl.store(out_ptr + offs, tile * 2)


def test_a_host_tensor_descriptor_argument(device):
    x = torch.arange(32 * 16, dtype=torch.float32, device=device).reshape(32, 16)
    desc = TensorDescriptor.from_tensor(x, block_shape=[8, 16])
    out = torch.zeros_like(x)
    descriptor_copy_kernel[(4,)](desc, out, M=8, N=16)
    np.testing.assert_array_equal(out.cpu().numpy(), x.cpu().numpy() * 2)
