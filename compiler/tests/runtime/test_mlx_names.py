"""Names a user can write cannot collide with Metal's or MLX's (issue 15, item 4).

mx.fast.metal_kernel adds a parameter for every Metal attribute whose name occurs in the body, by
substring, comments included (mlx_emulation.py), and names its inputs mlx_in<slot> (plus
`<input>_shape`/`_strides`/`_ndim` when the body mentions them). Kernels whose arguments, variables,
noinline function, comments and own name are spelled after attributes, MLX's names and MSL/C++
reserved words run on the simulator, directly and wrapped exactly as MLX would wrap them, against numpy.
No MLX is needed: the wrapping is emulated from MLX's source.
"""
from __future__ import annotations

import re
import struct

import numpy as np
import pytest
import torch
import triton
import triton.language as tl
from mlx_emulation import parameter_names, wrapped_kernel
from triton_metal.codegen import BUILTINS
from triton_metal.codegen.msl_words import MLX_ATTRIBUTES, RESERVED_WORDS
from triton_metal.runtime.mlx_runtime import split_kernel


@triton.jit(noinline=True)
def grid_origin_twice(threads_per_simdgroup):
    return threads_per_simdgroup * 2


@triton.jit
def thread_position_in_grid(thread_position_in_grid, grid_size, n, thread_execution_width, BLOCK: tl.constexpr):
    # threads_per_grid, dispatch_threads_per_threadgroup: MLX finds attribute names in comments too
    threadgroup_position_in_grid = tl.arange(0, BLOCK)
    simdgroup_index_in_threadgroup = threadgroup_position_in_grid < n
    mlx_in0_shape = tl.load(thread_position_in_grid + threadgroup_position_in_grid,
                            mask=simdgroup_index_in_threadgroup, other=0.0)
    threads_per_threadgroup = grid_origin_twice(thread_execution_width)
    quadgroup_index_in_threadgroup = tl.max(mlx_in0_shape, axis=0)
    tl.store(grid_size + threadgroup_position_in_grid, mlx_in0_shape * threads_per_threadgroup +
             quadgroup_index_in_threadgroup, mask=simdgroup_index_in_threadgroup)


def attribute_names_reference(x, width):
    return x * (2 * width) + x.max()


@triton.jit
def vertex(fragment, std, metal, n, explicit, BLOCK: tl.constexpr):
    ushort = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    NAN = ushort < n
    float4 = tl.load(fragment + ushort, mask=NAN)
    half2 = tl.load(std + ushort, mask=NAN)
    kernel = float4 * explicit + half2
    tl.store(metal + ushort, kernel, mask=NAN)


RESERVED_KERNEL_NAMES = ["vertex", "fragment", "std", "metal", "explicit", "ushort", "NAN", "float4", "half2",
                         "kernel"]


def code_of(msl: str) -> str:
    """`msl` without comments, preprocessor lines and `using namespace`."""
    lines = (line.split("//", 1)[0] for line in msl.splitlines())
    return "\n".join(line for line in lines if not line.lstrip().startswith(("#", "using ")))


def declared_names(msl: str) -> set:
    """The names the MSL declares: parameters and locals (`T name`, `T name[N]`, `T* name`, `T& name`)."""
    code = code_of(msl)
    return set(re.findall(r"[\w>][*&]?\s+[*&]?(\w+)\s*(?:\[\d+\]\s*)?(?:\[\[|[=;,)])", code))


def test_a_kernel_named_after_attributes_runs(device):
    n, width = 200, 3
    x = torch.rand(n, device=device)
    out = torch.zeros(n, device=device)
    compiled = thread_position_in_grid[(1,)](x, out, n, width, BLOCK=256)
    np.testing.assert_allclose(out.cpu().numpy(), attribute_names_reference(x.cpu().numpy(), width), rtol=1e-6)
    assert not any(a in compiled.metadata.name for a in MLX_ATTRIBUTES)


def test_mlx_would_declare_only_the_attributes_our_builtins_read(compile_msl):
    msl, metadata = compile_msl(thread_position_in_grid, {"thread_position_in_grid": "*fp32", "grid_size": "*fp32",
                                                         "n": "i32", "thread_execution_width": "i32",
                                                         "BLOCK": "constexpr"}, {"BLOCK": 256})
    body = split_kernel(msl, metadata.name).body
    builtins = {re.search(r"\[\[(\w+)\]\]", b).group(1) for b in BUILTINS}
    assert {a for a in MLX_ATTRIBUTES if a in body} == set()  # our own body: none at all
    assert "mlx_in" not in body and "mlx_out" not in body
    assert builtins <= set(MLX_ATTRIBUTES)


def test_the_mlx_wrapped_kernel_has_no_duplicate_names_and_computes_the_reference(compile_msl):
    from triton_metal.sim import build_kernel
    msl, metadata = compile_msl(thread_position_in_grid, {"thread_position_in_grid": "*fp32", "grid_size": "*fp32",
                                                         "n": "i32", "thread_execution_width": "i32",
                                                         "BLOCK": "constexpr"}, {"BLOCK": 256})
    n, width = 200, 3
    x = np.random.default_rng(0).random(n, dtype=np.float32)
    out = np.zeros(n, dtype=np.float32)
    kernel = split_kernel(msl, metadata.name)
    source, buffers = wrapped_kernel(kernel, {0: x, 1: out, 2: struct.pack("<i", n), 3: struct.pack("<i", width)},
                                     output_slots=(1,))
    names = parameter_names(source[len(kernel.header):])
    assert len(names) == len(set(names))
    builtins = {re.search(r"\[\[(\w+)\]\]", b).group(1) for b in BUILTINS}
    assert {a for a in MLX_ATTRIBUTES if a in names} == builtins  # MLX declares exactly what mlx_body binds
    assert not set(names) & declared_names(kernel.body)
    build_kernel(source, "custom_kernel_wrapped").dispatch((1, 1, 1), (metadata.threadgroup_size, 1, 1), buffers)
    np.testing.assert_allclose(out, attribute_names_reference(x, width), rtol=1e-6)


def test_reserved_words_as_names_run_and_are_never_declared(device):
    n = 300
    a, b = torch.rand(n, device=device), torch.rand(n, device=device)
    out = torch.zeros(n, device=device)
    compiled = vertex[(triton.cdiv(n, 128),)](a, b, out, n, 2.5, BLOCK=128)
    np.testing.assert_allclose(out.cpu().numpy(), a.cpu().numpy() * 2.5 + b.cpu().numpy(), rtol=1e-6)
    msl = compiled.asm["msl"].decode()
    assert compiled.metadata.name not in RESERVED_WORDS
    assert not declared_names(msl) & RESERVED_WORDS
    assert not declared_names(msl) & set(RESERVED_KERNEL_NAMES)


@pytest.mark.parametrize("word", ["vertex", "fragment", "kernel", "std", "metal", "thread_position_in_grid"])
def test_kernel_names(word):
    from triton_metal.codegen import msl_kernel_name
    name = msl_kernel_name(word)
    assert name not in RESERVED_WORDS and not any(a in name for a in MLX_ATTRIBUTES)
    assert re.fullmatch(r"[A-Za-z]\w*", name)
