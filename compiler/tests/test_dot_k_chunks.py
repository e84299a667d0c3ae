"""tl.dot whose operand tiles exceed Apple's 32 KiB of threadgroup memory: staged from registers in K chunks.

When a kernel's threadgroup buffers do not fit, codegen plans it again with the buffers only tt.dot
reads taking no bytes (threadgroup_arena, stream_dot_operands): the dot writes its operands' registers
into the scratch K chunk by K chunk. Results against torch on the CPU in float64; the MSL for which
plan was taken (kernels that fit keep their whole-operand code).
"""
import re

import pytest
import torch
import triton
import triton.language as tl
from triton_metal.abi import MAX_THREADGROUP_MEMORY

_TL = {torch.float32: tl.float32, torch.float16: tl.float16, torch.int32: tl.int32}


@triton.jit
def dot_kernel(x_ptr, y_ptr, z_ptr, sxm, sxk, syk, syn,
               M: tl.constexpr, N: tl.constexpr, K: tl.constexpr, OUT: tl.constexpr):
    """One tile: z = x @ y (test_core's test_dot without epilogue); strides make col-major operands."""
    m, n, k = tl.arange(0, M), tl.arange(0, N), tl.arange(0, K)
    x = tl.load(x_ptr + m[:, None] * sxm + k[None, :] * sxk)
    y = tl.load(y_ptr + k[:, None] * syk + n[None, :] * syn)
    tl.store(z_ptr + m[:, None] * N + n[None, :], tl.dot(x, y, out_dtype=OUT))


@triton.jit
def dot_add_kernel(x_ptr, y_ptr, w_ptr, z_ptr, M: tl.constexpr, N: tl.constexpr, K: tl.constexpr):
    """z = x @ y + w (test_dot's add-matrix epilogue): the accumulator enters the dot from registers."""
    m, n, k = tl.arange(0, M), tl.arange(0, N), tl.arange(0, K)
    x = tl.load(x_ptr + m[:, None] * K + k[None, :])
    y = tl.load(y_ptr + k[:, None] * N + n[None, :])
    w = tl.load(w_ptr + m[:, None] * N + n[None, :])
    tl.store(z_ptr + m[:, None] * N + n[None, :], tl.dot(x, y, w))


@triton.jit
def matmul_kernel(a_ptr, b_ptr, c_ptr, M, N, K, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    """A K loop whose accumulator is loop-carried (simdgroup_matrix fragments across the loop)."""
    rm = tl.program_id(0) * BM + tl.arange(0, BM)
    rn = tl.program_id(1) * BN + tl.arange(0, BN)
    rk = tl.arange(0, BK)
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    for k in range(tl.cdiv(K, BK)):
        kk = k * BK + rk
        a = tl.load(a_ptr + rm[:, None] * K + kk[None, :], mask=(rm[:, None] < M) & (kk[None, :] < K), other=0.0)
        b = tl.load(b_ptr + kk[:, None] * N + rn[None, :], mask=(kk[:, None] < K) & (rn[None, :] < N), other=0.0)
        acc = tl.dot(a, b, acc)
    tl.store(c_ptr + rm[:, None] * N + rn[None, :], acc, mask=(rm[:, None] < M) & (rn[None, :] < N))


@triton.jit
def batched_dot_kernel(x_ptr, y_ptr, z_ptr, B: tl.constexpr, M: tl.constexpr, N: tl.constexpr, K: tl.constexpr):
    """A 3-D dot (test_dot3d / test_dot_multidim): the FMA path."""
    b, m, n, k = tl.arange(0, B), tl.arange(0, M), tl.arange(0, N), tl.arange(0, K)
    x = tl.load(x_ptr + b[:, None, None] * M * K + m[None, :, None] * K + k[None, None, :])
    y = tl.load(y_ptr + b[:, None, None] * K * N + k[None, :, None] * N + n[None, None, :])
    tl.store(z_ptr + b[:, None, None] * M * N + m[None, :, None] * N + n[None, None, :], tl.dot(x, y))


def _msl(kernel) -> str:
    msl = kernel.asm["msl"]
    return msl.decode() if isinstance(msl, bytes) else msl


def _arena_bytes(msl: str) -> int:
    m = re.search(r"(\d+) bytes of threadgroup memory", msl)
    return int(m.group(1)) if m else 0


def _chunk(msl: str) -> int | None:
    m = re.search(r"operands staged in K chunks of (\d+)", msl)
    return int(m.group(1)) if m else None


def _randn(*shape, dtype=torch.float32, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


def _dot(x, y, out=torch.float32, num_warps=4):
    (M, K), (_, N) = x.shape, y.shape
    z = torch.empty(M, N, dtype=out)
    kernel = dot_kernel[(1,)](x, y, z, x.stride(0), x.stride(1), y.stride(0), y.stride(1),
                              M=M, N=N, K=K, OUT=_TL[out], num_warps=num_warps)
    return z, _msl(kernel)


# ---- the test_core shapes that needed 40 to 96 KiB ---------------------------------------------------

@pytest.mark.parametrize("M, N, K, num_warps, whole", [
    (32, 128, 64, 4, 40960),   # f32: 8 KiB + 32 KiB operands; simdgroup path, chunks beside the result tile
    (32, 128, 64, 2, 40960),
    (128, 128, 64, 4, 65536),  # f32: the 64 KiB result tile does not fit either: converted in bands of rows
    (64, 128, 128, 4, 98304),
])
def test_f32_dot_over_32_kib(M, N, K, num_warps, whole):
    x, y = _randn(M, K), _randn(K, N, seed=1)
    z, msl = _dot(x, y, num_warps=num_warps)
    torch.testing.assert_close(z.double(), x.double() @ y.double(), rtol=1e-5, atol=1e-4)
    assert whole > MAX_THREADGROUP_MEMORY
    assert _chunk(msl) is not None and _chunk(msl) < K
    assert 0 < _arena_bytes(msl) <= MAX_THREADGROUP_MEMORY


@pytest.mark.parametrize("col_a, col_b", [(False, True), (True, False), (True, True)])
def test_col_major_operands(col_a, col_b):
    M, N, K = 32, 128, 64
    x, y = _randn(M, K), _randn(K, N, seed=1)
    x = x.t().contiguous().t() if col_a else x
    y = y.t().contiguous().t() if col_b else y
    z, msl = _dot(x, y)
    assert _chunk(msl) is not None
    torch.testing.assert_close(z.double(), x.double() @ y.double(), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("out", [torch.float32, torch.float16])
def test_f16_dot_over_32_kib(out):
    # 64x128 and 128x128 halves: 16 + 32 KiB.
    x, y = _randn(64, 128, dtype=torch.float16), _randn(128, 128, dtype=torch.float16, seed=1)
    z, msl = _dot(x, y, out=out)
    assert _chunk(msl) is not None
    # A half accumulator sums in half (simdgroup_matrix<half>): about sqrt(K) roundings of 2^-11 relative.
    tol = (1e-2, 1e-1) if out == torch.float16 else (1e-4, 1e-4)
    torch.testing.assert_close(z.double(), x.double() @ y.double(), rtol=tol[0], atol=tol[1])


def test_int8_dot_over_32_kib():
    # 256x128 and 128x128 bytes (48 KiB), int32 accumulation on the FMA path.
    g = torch.Generator().manual_seed(3)
    x = torch.randint(-128, 128, (256, 128), generator=g, dtype=torch.int8)
    y = torch.randint(-128, 128, (128, 128), generator=g, dtype=torch.int8)
    z, msl = _dot(x, y, out=torch.int32)
    assert _chunk(msl) is not None
    assert torch.equal(z, (x.long() @ y.long()).int())


@triton.jit
def fp8_dot_kernel(x_ptr, y_ptr, z_ptr, M: tl.constexpr, N: tl.constexpr, K: tl.constexpr):
    m, n, k = tl.arange(0, M), tl.arange(0, N), tl.arange(0, K)
    x = tl.load(x_ptr + m[:, None] * K + k[None, :]).to(tl.float8e5, bitcast=True)
    y = tl.load(y_ptr + k[:, None] * N + n[None, :]).to(tl.float8e5, bitcast=True)
    tl.store(z_ptr + m[:, None] * N + n[None, :], tl.dot(x, y))


def test_fp8_e5m2_dot_over_32_kib():
    # 128x128 and 128x256 codes: 48 KiB as bytes already.
    x = _randn(128, 128).to(torch.float8_e5m2)
    y = _randn(128, 256, seed=1).to(torch.float8_e5m2)
    z = torch.empty(128, 256)
    kernel = fp8_dot_kernel[(1,)](x.view(torch.uint8), y.view(torch.uint8), z, M=128, N=256, K=128, num_warps=8)
    assert _chunk(_msl(kernel)) is not None
    # fp8 values are exact in half and their products exact in float: only the f32 sum rounds.
    torch.testing.assert_close(z.double(), x.double() @ y.double(), rtol=1e-5, atol=1e-3)


def test_accumulator_from_registers():
    # 64x64x64 f32 plus a 64x64 addend: 16 + 16 KiB operands and the 16 KiB result tile.
    x, y, w = _randn(64, 64), _randn(64, 64, seed=1), _randn(64, 64, seed=2)
    z = torch.empty(64, 64)
    kernel = dot_add_kernel[(1,)](x, y, w, z, M=64, N=64, K=64)
    assert _arena_bytes(_msl(kernel)) <= MAX_THREADGROUP_MEMORY
    torch.testing.assert_close(z.double(), x.double() @ y.double() + w.double(), rtol=1e-5, atol=1e-4)


def test_loop_carried_accumulator_with_chunked_operands():
    # 64x64 and 64x128 f32 tiles per K step (48 KiB whole); the 64x128 accumulator stays in fragments.
    M, N, K = 100, 200, 300
    a, b = _randn(M, K), _randn(K, N, seed=1)
    c = torch.empty(M, N)
    kernel = matmul_kernel[(triton.cdiv(M, 64), triton.cdiv(N, 128))](a, b, c, M, N, K, BM=64, BN=128, BK=64)
    msl = _msl(kernel)
    assert "across the loop" in msl and _chunk(msl) is not None
    torch.testing.assert_close(c.double(), a.double() @ b.double(), rtol=1e-5, atol=1e-3)


def test_batched_dot_over_32_kib():
    # Two 64x64x64 f32 products: 32 + 32 KiB of operands.
    x, y = _randn(2, 64, 64), _randn(2, 64, 64, seed=1)
    z = torch.empty(2, 64, 64)
    kernel = batched_dot_kernel[(1,)](x, y, z, B=2, M=64, N=64, K=64)
    assert _chunk(_msl(kernel)) is not None
    torch.testing.assert_close(z.double(), x.double() @ y.double(), rtol=1e-5, atol=1e-4)


# ---- kernels that fit keep whole operands --------------------------------------------------------------

def test_fitting_dot_reads_whole_operands():
    x, y = _randn(32, 64), _randn(64, 64, seed=1)
    z, msl = _dot(x, y)
    assert _chunk(msl) is None and "_smem" in msl  # the local_alloc buffers, read in place
    torch.testing.assert_close(z.double(), x.double() @ y.double(), rtol=1e-5, atol=1e-4)


@triton.jit
def fp8_matmul_kernel(a_ptr, b_ptr, c_ptr, M: tl.constexpr, N: tl.constexpr, K: tl.constexpr, BK: tl.constexpr):
    """test_dot_max_num_imprecise_acc's shape: fp8 tiles in a K loop, a 128x256 float accumulator (too large
    for the result's round trip: the FMA path, which stages the fp8 codes and decodes them as it multiplies)."""
    m, n, k = tl.arange(0, M), tl.arange(0, N), tl.arange(0, BK)
    acc = tl.zeros((M, N), dtype=tl.float32)
    for k0 in range(0, K, BK):
        a = tl.load(a_ptr + m[:, None] * K + (k0 + k)[None, :]).to(tl.float8e4nv, bitcast=True)
        b = tl.load(b_ptr + (k0 + k)[:, None] * N + n[None, :]).to(tl.float8e4nv, bitcast=True)
        acc = tl.dot(a, b, acc)
    tl.store(c_ptr + m[:, None] * N + n[None, :], acc)


def test_fp8_operands_on_the_fma_path():
    x = _randn(128, 256).to(torch.float8_e4m3fn)
    y = _randn(256, 256, seed=1).to(torch.float8_e4m3fn)
    z = torch.empty(128, 256)
    kernel = fp8_matmul_kernel[(1,)](x.view(torch.uint8), y.view(torch.uint8), z, M=128, N=256, K=256, BK=128,
                                     num_warps=8)
    assert _chunk(_msl(kernel)) is not None
    torch.testing.assert_close(z.double(), x.double() @ y.double(), rtol=1e-5, atol=1e-3)


def test_a_128x128_accumulator_stays_in_fragments_across_the_loop():
    # Tutorial 03's 128x128x128 f16 config: operands in K chunks, the 64 KiB float accumulator carried as
    # fragments and converted once after the loop, a band of rows at a time.
    M, N, K = 128, 256, 256
    a, b = _randn(M, K, dtype=torch.float16), _randn(K, N, dtype=torch.float16, seed=1)
    c = torch.empty(M, N)
    kernel = matmul_kernel[(1, 2)](a, b, c, M, N, K, BM=128, BN=128, BK=128)
    msl = _msl(kernel)
    assert "across the loop" in msl and _chunk(msl) is not None and "rows per round" in msl
    torch.testing.assert_close(c.double(), a.double() @ b.double(), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("M, N, K", [(128, 128, 64), (64, 128, 128)])
def test_result_tile_in_bands_of_rows(M, N, K):
    # The f32 result tile (64 / 32 KiB) does not fit beside the operand chunks: converted in rounds.
    x, y = _randn(M, K), _randn(K, N, seed=1)
    z, msl = _dot(x, y)
    assert "simdgroup_multiply_accumulate" in msl and "rows at a time" in msl
    torch.testing.assert_close(z.double(), x.double() @ y.double(), rtol=1e-5, atol=1e-4)


def test_accumulator_from_registers_in_bands():
    # A 128x128 f32 addend enters the fragments a band at a time (and the result leaves them so).
    x, y, w = _randn(128, 64), _randn(64, 128, seed=1), _randn(128, 128, seed=2)
    z = torch.empty(128, 128)
    kernel = dot_add_kernel[(1,)](x, y, w, z, M=128, N=128, K=64)
    assert "rows at a time" in _msl(kernel)
    torch.testing.assert_close(z.double(), x.double() @ y.double() + w.double(), rtol=1e-5, atol=1e-4)


@triton.jit
def shared_operand_kernel(a_ptr, b_ptr, d_ptr, c_ptr, e_ptr, M: tl.constexpr, N: tl.constexpr, K: tl.constexpr):
    """One operand read by two dots (its local_alloc streamed to both)."""
    m, n, k = tl.arange(0, M), tl.arange(0, N), tl.arange(0, K)
    a = tl.load(a_ptr + m[:, None] * K + k[None, :])
    b = tl.load(b_ptr + k[:, None] * N + n[None, :])
    d = tl.load(d_ptr + k[:, None] * N + n[None, :])
    tl.store(c_ptr + m[:, None] * N + n[None, :], tl.dot(a, b))
    tl.store(e_ptr + m[:, None] * N + n[None, :], tl.dot(a, d))


def test_one_operand_of_two_dots():
    a, b, d = _randn(64, 128), _randn(128, 64, seed=1), _randn(128, 64, seed=2)
    c, e = torch.empty(64, 64), torch.empty(64, 64)
    kernel = shared_operand_kernel[(1,)](a, b, d, c, e, M=64, N=64, K=128)
    assert _chunk(_msl(kernel)) is not None
    torch.testing.assert_close(c.double(), a.double() @ b.double(), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(e.double(), a.double() @ d.double(), rtol=1e-5, atol=1e-4)


def test_bf16_operands_staged_as_float_in_chunks():
    # bf16 tiles are staged as float for simdgroup_matrix (exact): 64x128 and 128x128 floats.
    x, y = _randn(64, 128, dtype=torch.bfloat16), _randn(128, 128, dtype=torch.bfloat16, seed=1)
    z, msl = _dot(x, y)
    assert _chunk(msl) is not None and "simdgroup_multiply_accumulate" in msl
    torch.testing.assert_close(z.double(), x.double() @ y.double(), rtol=1e-5, atol=1e-4)


@triton.jit
def attention_like_kernel(q_ptr, k_ptr, o_ptr, L, D: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr):
    """q loaded once before the loop, read by a dot in every iteration (attention's q @ k^T)."""
    m, n, d = tl.arange(0, BM), tl.arange(0, BN), tl.arange(0, D)
    q = tl.load(q_ptr + m[:, None] * D + d[None, :])
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    for start in range(0, L, BN):
        k = tl.load(k_ptr + (start + n)[None, :] * D + d[:, None])  # k^T tile, D x BN
        acc += tl.dot(q, k)
    tl.store(o_ptr + m[:, None] * BN + n[None, :], acc)


def test_loop_invariant_operand_staged_in_every_iteration():
    # q 64x128 f32 (32 KiB) for the whole loop and 128x64 k^T tiles (32 KiB): q is staged from its
    # registers in each iteration, in K chunks.
    q, k = _randn(64, 128), _randn(256, 128, seed=1)
    o = torch.empty(64, 64)
    kernel = attention_like_kernel[(1,)](q, k, o, 256, D=128, BM=64, BN=64)
    assert _chunk(_msl(kernel)) is not None
    ref = sum(q.double() @ k[s:s + 64].double().T for s in range(0, 256, 64))
    torch.testing.assert_close(o.double(), ref, rtol=1e-5, atol=1e-3)


@triton.jit
def loaded_accumulator_kernel(a_ptr, b_ptr, c_ptr, M: tl.constexpr, N: tl.constexpr, K: tl.constexpr,
                              BK: tl.constexpr):
    """A loop-carried accumulator that starts from loaded registers (c += a @ b over K)."""
    m, n, k = tl.arange(0, M), tl.arange(0, N), tl.arange(0, BK)
    acc = tl.load(c_ptr + m[:, None] * N + n[None, :])
    for k0 in range(0, K, BK):
        a = tl.load(a_ptr + m[:, None] * K + (k0 + k)[None, :])
        b = tl.load(b_ptr + (k0 + k)[:, None] * N + n[None, :])
        acc = tl.dot(a, b, acc)
    tl.store(c_ptr + m[:, None] * N + n[None, :], acc)


def test_carried_accumulator_entering_and_leaving_in_bands():
    # 128x128 f32 accumulator (64 KiB) from registers: into the fragments before the loop and out after it
    # a band of rows per round; f16 operand tiles of 32 KiB each in K chunks.
    a, b = _randn(128, 256, dtype=torch.float16), _randn(256, 128, dtype=torch.float16, seed=1)
    c0 = _randn(128, 128, seed=2)
    c = c0.clone()
    kernel = loaded_accumulator_kernel[(1,)](a, b, c, M=128, N=128, K=256, BK=128)
    msl = _msl(kernel)
    assert "across the loop" in msl and msl.count("rows per round") == 2
    torch.testing.assert_close(c.double(), c0.double() + a.double() @ b.double(), rtol=1e-4, atol=1e-3)
