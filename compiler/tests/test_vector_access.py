"""Vectorised global loads and stores (codegen/vector_access.py): a thread's consecutive registers move
as one vector access when their pointers are consecutive, aligned and unmasked at run time, else one
by one. Each kernel result is checked against numpy; the mask edge, unaligned bases (x[1:]) and
strided tensors must take the scalar path and still be right."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import triton
import triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

DIVISIBLE = [["tt.divisibility", 16]]  # what Triton's launcher specialises an aligned pointer to


@triton.jit
def _copy(src, dst, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(dst + offs, tl.load(src + offs, mask=offs < n), mask=offs < n)


@triton.jit
def _add(x, y, out, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out + offs, tl.load(x + offs, mask=mask) + tl.load(y + offs, mask=mask), mask=mask)


@triton.jit
def _strided_copy(src, dst, n, stride, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(dst + offs, tl.load(src + offs * stride, mask=offs < n), mask=offs < n)


@triton.jit
def _load_other(src, dst, n, BLOCK: tl.constexpr):
    # Every element of dst is written: the masked-off ones with `other`.
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(dst + offs, tl.load(src + offs, mask=offs < n, other=-7.0))


@triton.jit
def _copy_2d(src, dst, rows, cols, stride_src, stride_dst, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    r = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)[:, None]
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)[None, :]
    mask = (r < rows) & (c < cols)
    tl.store(dst + r * stride_dst + c, tl.load(src + r * stride_src + c, mask=mask), mask=mask)


@triton.jit
def _column_sums(x, out, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    r = tl.arange(0, BLOCK_R)[:, None]
    c = tl.arange(0, BLOCK_C)
    tl.store(out + c, tl.sum(tl.load(x + r * BLOCK_C + c[None, :]), axis=0))


def _cpu(t):
    return t.cpu().numpy() if t.dtype != torch.bfloat16 else t.cpu().float().numpy()


def _random(n, dtype, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    if dtype.is_floating_point:
        return (torch.rand(n, generator=g) * 200 - 100).to(dtype).to(device)
    info = torch.iinfo(dtype)
    return torch.randint(max(info.min, -(1 << 40)), min(info.max, 1 << 40), (n,), generator=g, dtype=dtype).to(device)


# ---- the generated MSL ---------------------------------------------------------------------------

def _copy_msl(ty, block=1024):
    """The MSL of _copy with both pointers 16-byte aligned, as Triton's launcher specialises them."""
    src = ASTSource(_copy, {"src": f"*{ty}", "dst": f"*{ty}", "n": "i32", "BLOCK": "constexpr"}, {"BLOCK": block},
                    {(0,): DIVISIBLE, (1,): DIVISIBLE})
    return triton.compile(src, target=GPUTarget("metal", "apple-m1", 32)).asm["msl"].decode()


def test_a_contiguous_f32_load_is_one_float4_access():
    msl = _copy_msl("fp32")
    assert "if (tm_consecutive(" in msl  # the run-time check that picks the vector path
    assert "const float4 tm_vector = *(device float4*)" in msl


def test_a_contiguous_f32_store_is_one_float4_access():
    msl = _copy_msl("fp32")
    assert "*(device float4*)v_1[tm_i] = float4(v_3[tm_i], v_3[tm_i + 1], v_3[tm_i + 2], v_3[tm_i + 3]);" in msl


def test_int64_moves_as_long2():
    msl = _copy_msl("i64")
    assert "const long2 tm_vector = *(device long2*)" in msl


def test_the_vector_path_needs_an_aligned_first_pointer():
    msl = _copy_msl("fp32")
    assert "if (tm_consecutive(v_2 + tm_i, 4) && tm_aligned(v_2[tm_i], 16) && tm_all_set(v + tm_i, 4))" in msl
    assert "device packed_" not in msl


def test_bfloat_is_moved_as_ushort_vectors():
    # The same bits: Metal has bfloat2, the front-end model has not; ushort2 works on both.
    msl = _copy_msl("bf16", 256)
    assert "*(device ushort2*)" in msl and "as_type<bfloat>(" in msl


def test_eight_halves_are_one_16_byte_access():
    # MSL vectors stop at 4 components: 8 halves move as 4 words of 2.
    msl = _copy_msl("fp16", 4096)
    assert "const uint4 tm_vector = *(device uint4*)" in msl and "as_type<half2>(" in msl


def test_a_pointer_without_known_alignment_stays_scalar(compile_msl):
    # No tt.divisibility: Triton's layout gives each thread one element per run, nothing to group.
    msl, _ = compile_msl(_copy, {"src": "*fp32", "dst": "*fp32", "n": "i32", "BLOCK": "constexpr"}, {"BLOCK": 1024})
    assert "float4" not in msl


# ---- results ------------------------------------------------------------------------------------

@pytest.mark.parametrize("block", [256, 4096])  # 2 registers per thread; 8-32 (up to 16 bytes a vector)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.int8, torch.int64])
def test_copy_with_a_mask_edge(device, dtype, block):
    n = 5000 + 3  # not a multiple of the block: the last group of the last program is partly masked
    src = _random(n, dtype, device)
    dst = torch.zeros(n, dtype=dtype, device=device)
    _copy[(triton.cdiv(n, block),)](src, dst, n, BLOCK=block)
    np.testing.assert_array_equal(_cpu(dst), _cpu(src))


def test_vector_add_with_a_mask_edge(device):
    n = 4096 + 5
    x, y = _random(n, torch.float32, device, 1), _random(n, torch.float32, device, 2)
    out = torch.zeros(n, device=device)
    _add[(triton.cdiv(n, 1024),)](x, y, out, n, BLOCK=1024)
    np.testing.assert_array_equal(_cpu(out), _cpu(x) + _cpu(y))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_unaligned_bases_take_the_scalar_path(device, dtype):
    # x[1:] is 4 (2) bytes past an aligned address: no group's first pointer is vector-aligned.
    n = 777
    base, out_base = _random(n + 1, dtype, device, 3), torch.zeros(n + 1, dtype=dtype, device=device)
    src, dst = base[1:], out_base[1:]
    _copy[(triton.cdiv(n, 256),)](src, dst, n, BLOCK=256)
    expected = np.zeros(n + 1, _cpu(base).dtype)
    expected[1:] = _cpu(base)[1:]
    np.testing.assert_array_equal(_cpu(out_base), expected)


def test_strided_loads_take_the_scalar_path(device):
    n, stride = 600, 3
    src = _random(n * stride, torch.float32, device, 4)
    dst = torch.zeros(n, device=device)
    _strided_copy[(triton.cdiv(n, 256),)](src, dst, n, stride, BLOCK=256)
    np.testing.assert_array_equal(_cpu(dst), _cpu(src)[::stride])


def test_a_non_contiguous_tensor_copies_right(device):
    # A column of a row-major matrix: its elements are a row apart.
    m = _random(300 * 4, torch.float32, device, 5).reshape(300, 4)
    column = m[:, 1]
    dst = torch.zeros(300, device=device)
    _strided_copy[(triton.cdiv(300, 128),)](column, dst, 300, column.stride(0), BLOCK=128)
    np.testing.assert_array_equal(_cpu(dst), _cpu(m)[:, 1])


def test_masked_loads_give_other(device):
    n, block = 1000, 256
    src = _random(n, torch.float32, device, 6)
    dst = torch.zeros(triton.cdiv(n, block) * block, device=device)
    _load_other[(triton.cdiv(n, block),)](src, dst, n, BLOCK=block)
    expected = np.full(dst.numel(), -7.0, np.float32)
    expected[:n] = _cpu(src)
    np.testing.assert_array_equal(_cpu(dst), expected)


def test_masked_stores_leave_the_rest_alone(device):
    n, block = 1001, 256
    src = _random(2048, torch.float32, device, 7)
    dst = torch.full((2048,), 5.0, device=device)
    _copy[(triton.cdiv(n, block),)](src, dst, n, BLOCK=block)
    expected = np.full(2048, 5.0, np.float32)
    expected[:n] = _cpu(src)[:n]
    np.testing.assert_array_equal(_cpu(dst), expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_2d_tiles_with_edges(device, dtype):
    rows, cols = 45, 70  # neither a multiple of the tile; rows of 70 elements: only some are aligned
    src = _random(rows * cols, dtype, device, 8).reshape(rows, cols)
    dst = torch.zeros(rows, cols, dtype=dtype, device=device)
    grid = (triton.cdiv(rows, 16), triton.cdiv(cols, 32))
    _copy_2d[grid](src, dst, rows, cols, src.stride(0), dst.stride(0), BLOCK_R=16, BLOCK_C=32)
    np.testing.assert_array_equal(_cpu(dst), _cpu(src))


# ---- traffic (simulator counters) -----------------------------------------------------------------

def _traffic(launch):
    count_traffic = pytest.importorskip("triton_metal.sim").count_traffic
    launch()  # compile outside the counted region
    with count_traffic() as traffic:
        launch()
    assert len(traffic.launches) == 1
    return traffic.launches[0]


def test_vector_add_is_coalesced(device):
    n = 4096
    x, y = _random(n, torch.float32, device, 1), _random(n, torch.float32, device, 2)
    out = torch.zeros(n, device=device)
    stats = _traffic(lambda: _add[(n // 1024,)](x, y, out, n, BLOCK=1024))
    np.testing.assert_array_equal(_cpu(out), _cpu(x) + _cpu(y))
    assert (stats.global_bytes_read, stats.global_bytes_written) == (8 * n, 4 * n)
    assert stats.coalescing_efficiency >= 0.95  # scalar accesses 16 bytes apart: 0.25


def test_an_unaligned_operand_takes_the_scalar_path(device):
    # x[1:] starts 4 bytes past a 16-byte boundary, y and out do not: the layout gives each thread 4
    # consecutive elements; x's groups fail the alignment check and load one element per access.
    n = 4096
    base, y, out = _random(n + 1, torch.float32, device, 1), _random(n, torch.float32, device, 2), \
        torch.zeros(n, device=device)
    x = base[1:]
    stats = _traffic(lambda: _add[(n // 1024,)](x, y, out, n, BLOCK=1024))
    np.testing.assert_array_equal(_cpu(out), _cpu(x) + _cpu(y))
    assert stats.global_bytes_read == 8 * n
    assert stats.coalescing_efficiency == pytest.approx(0.5)  # x: 0.25 (scalar), y and out: 1.0


def test_a_reduced_tensor_is_stored_once_per_element(device):
    # A reduction's result stored as float4 groups: every column sum written once, none twice.
    x = _random(8 * 512, torch.float32, device, 10).reshape(8, 512)
    out = torch.zeros(512, device=device)
    stats = _traffic(lambda: _column_sums[(1,)](x, out, BLOCK_R=8, BLOCK_C=512))
    np.testing.assert_allclose(_cpu(out), _cpu(x).sum(axis=0), rtol=1e-6, atol=1e-5)
    assert stats.global_bytes_written == 512 * 4


def test_replicated_registers_are_stored_once(device):
    # 64 elements over 128 threads: each element is held twice, and written once.
    src = _random(64, torch.float32, device, 9)
    dst = torch.zeros(64, device=device)
    stats = _traffic(lambda: _copy[(1,)](src, dst, 64, BLOCK=64))
    np.testing.assert_array_equal(_cpu(dst), _cpu(src))
    assert stats.global_bytes_written == 64 * 4


# ---- the simulator's strict mode ------------------------------------------------------------------

MISALIGNED_FLOAT4 = """#include <metal_stdlib>
using namespace metal;
kernel void shifted(device float* x [[buffer(0)]], device float4* y [[buffer(1)]],
                    uint i [[thread_position_in_grid]]) {
    y[i] = *(device float4*)(x + 4 * i + %d);
}
"""


def _run_shifted(monkeypatch, shift):
    from triton_metal.sim import build_kernel
    monkeypatch.setenv("TRITON_METAL_SIM_STRICT", "1")
    x, y = np.arange(40, dtype=np.float32), np.zeros(32, np.float32)
    build_kernel(MISALIGNED_FLOAT4 % shift, "shifted").dispatch(grid=(1, 1, 1), threadgroup=(8, 1, 1),
                                                                buffers={0: x, 1: y})
    return x, y


def test_strict_mode_accepts_an_aligned_float4_access(monkeypatch):
    x, y = _run_shifted(monkeypatch, 4)
    np.testing.assert_array_equal(y, x[4:36])


def test_strict_mode_rejects_a_misaligned_float4_access(monkeypatch):
    # Metal requires a float4 access to be 16-byte aligned: 4 bytes past is undefined on the GPU.
    from triton_metal.sim import SimStrictError
    with pytest.raises(SimStrictError, match=r"misaligned load of 16 bytes at byte offset 4 of 'x' \[\[buffer\(0\)\]\]: "
                                             r"its type needs 16-byte alignment"):
        _run_shifted(monkeypatch, 1)


# ---- packed vectors in the simulator and the front-end model (MSL 2.2.3) ---------------------------

PACKED_COPY = """#include <metal_stdlib>
using namespace metal;
kernel void packed_copy(device float* x [[buffer(0)]], device float* y [[buffer(1)]],
                        uint i [[thread_position_in_grid]]) {
    const float4 v = float4(*(device packed_float4*)(x + 4 * i + 1));
    *(device packed_float4*)(y + 4 * i + 1) = v;
}
"""


def test_a_packed_float4_moves_16_element_aligned_bytes_as_one_access(monkeypatch):
    from triton_metal.sim import build_kernel, count_traffic
    monkeypatch.setenv("TRITON_METAL_SIM_STRICT", "1")  # packed_float4 needs 4-byte alignment only
    x, y = np.arange(33, dtype=np.float32), np.zeros(33, np.float32)
    kernel = build_kernel(PACKED_COPY, "packed_copy")
    with count_traffic() as traffic:
        kernel.dispatch(grid=(1, 1, 1), threadgroup=(8, 1, 1), buffers={0: x, 1: y})
    np.testing.assert_array_equal(y[1:], x[1:])
    stats = traffic.launches[0]
    load = next(s for s in stats.sites.values() if s.kind == "load")
    assert (load.accesses, load.bytes) == (8, 8 * 16)


def test_the_front_end_model_accepts_packed_vectors():
    from triton_metal.metal_check import check_msl
    assert [d.message for d in check_msl(PACKED_COPY, "packed_copy", "3.1") if d.severity == "error"] == []
