"""tl.dot accumulators in simdgroup_matrix registers: register blocking, loop-carried fragments, barriers.

Results against torch on the CPU in float64; the generated MSL and the simulator's traffic counters
for what the change is for (no accumulator round trip through threadgroup memory per K step).
"""
import re

import pytest
import torch
import triton
import triton.language as tl
from triton_metal.codegen import barriers
from triton_metal.codegen.ops.lower_dot import blocking
from triton_metal.sim import count_traffic

_TL = {torch.float32: tl.float32, torch.float16: tl.float16}


@triton.jit
def matmul_kernel(a_ptr, b_ptr, c_ptr, M, N, K, stride_am, stride_ak, stride_bk, stride_bn, stride_cm, stride_cn,
                  BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, ACC: tl.constexpr):
    """Tutorial 03's K loop: masked operand tiles, the accumulator carried by the loop."""
    rm = tl.program_id(0) * BM + tl.arange(0, BM)
    rn = tl.program_id(1) * BN + tl.arange(0, BN)
    rk = tl.arange(0, BK)
    acc = tl.zeros((BM, BN), dtype=ACC)
    for k in range(tl.cdiv(K, BK)):
        kk = k * BK + rk
        a = tl.load(a_ptr + rm[:, None] * stride_am + kk[None, :] * stride_ak,
                    mask=(rm[:, None] < M) & (kk[None, :] < K), other=0.0)
        b = tl.load(b_ptr + kk[:, None] * stride_bk + rn[None, :] * stride_bn,
                    mask=(kk[:, None] < K) & (rn[None, :] < N), other=0.0)
        acc = tl.dot(a, b, acc, out_dtype=ACC)
    tl.store(c_ptr + rm[:, None] * stride_cm + rn[None, :] * stride_cn, acc,
             mask=(rm[:, None] < M) & (rn[None, :] < N))


def _inputs(shape_a, shape_b, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape_a, generator=g).to(dtype), torch.randn(*shape_b, generator=g).to(dtype)


def _matmul(a, b, out_dtype=torch.float32, block=(64, 64, 32), num_warps=4):
    (M, K), (_, N) = a.shape, b.shape
    c = torch.empty(M, N, dtype=out_dtype)
    bm, bn, bk = block
    kernel = matmul_kernel[(triton.cdiv(M, bm), triton.cdiv(N, bn))](
        a, b, c, M, N, K, a.stride(0), a.stride(1), b.stride(0), b.stride(1), c.stride(0), c.stride(1),
        BM=bm, BN=bn, BK=bk, ACC=_TL[out_dtype], num_warps=num_warps)
    msl = kernel.asm["msl"]
    return c, msl.decode() if isinstance(msl, bytes) else msl


def _reference(a, b):
    return a.double() @ b.double()


# ---- results ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype, tol", [(torch.float16, 1e-4), (torch.float32, 1e-4), (torch.bfloat16, 1e-4)])
def test_k_loop_with_masked_remainder(dtype, tol):
    # K = 77: two full 32-deep steps and a masked step of 13; M and N ragged too.
    a, b = _inputs((70, 77), (77, 90), dtype)
    c, msl = _matmul(a, b)
    assert "simdgroup_multiply_accumulate" in msl
    torch.testing.assert_close(c.double(), _reference(a, b), rtol=tol, atol=tol)


@pytest.mark.parametrize("block, num_warps", [
    ((64, 64, 32), 1), ((64, 64, 32), 2), ((64, 64, 32), 8),
    ((32, 64, 16), 4), ((128, 32, 16), 4), ((16, 16, 8), 4), ((8, 8, 8), 4), ((64, 16, 8), 2),
])
def test_tile_shapes_and_num_warps(block, num_warps):
    a, b = _inputs((100, 53), (53, 75), torch.float16, seed=1)
    c, msl = _matmul(a, b, block=block, num_warps=num_warps)
    assert "simdgroup_multiply_accumulate" in msl
    torch.testing.assert_close(c.double(), _reference(a, b), rtol=1e-4, atol=1e-4)


def test_f16_accumulator():
    # A half accumulator rounds every 8-deep step: tolerance of a few half ulps of |c| ~ 10.
    a, b = _inputs((64, 96), (96, 64), torch.float16, seed=2)
    c, msl = _matmul(a, b, out_dtype=torch.float16, block=(32, 32, 32))
    assert "simdgroup_matrix<half, 8, 8> tm_acc_frags" in msl
    torch.testing.assert_close(c.double(), _reference(a, b), rtol=2e-2, atol=5e-2)


@triton.jit
def matmul_bias_kernel(a_ptr, b_ptr, c_ptr, M: tl.constexpr, N: tl.constexpr, K: tl.constexpr, BK: tl.constexpr):
    """The loop's accumulator starts from loaded values (not a splat): it enters the fragments through
    threadgroup memory."""
    rm, rn, rk = tl.arange(0, M), tl.arange(0, N), tl.arange(0, BK)
    acc = tl.load(c_ptr + rm[:, None] * N + rn[None, :])
    for k in range(0, K, BK):
        a = tl.load(a_ptr + rm[:, None] * K + (k + rk)[None, :])
        b = tl.load(b_ptr + (k + rk)[:, None] * N + rn[None, :])
        acc = tl.dot(a, b, acc)
    tl.store(c_ptr + rm[:, None] * N + rn[None, :], acc)


def test_accumulator_initialised_from_registers():
    a, b = _inputs((32, 64), (64, 64), torch.float16, seed=3)
    c0 = torch.randn(32, 64, generator=torch.Generator().manual_seed(4))
    c = c0.clone()
    kernel = matmul_bias_kernel[(1,)](a, b, c, M=32, N=64, K=64, BK=16)
    assert "simdgroup_load(tm_acc_frags" in str(kernel.asm["msl"])
    torch.testing.assert_close(c.double(), c0.double() + _reference(a, b), rtol=1e-4, atol=1e-4)


@triton.jit
def two_accumulators_kernel(a_ptr, b_ptr, d_ptr, c_ptr, e_ptr, M: tl.constexpr, N: tl.constexpr, K: tl.constexpr,
                            BK: tl.constexpr):
    """Two loop-carried accumulators sharing the A operand (fused MoE's gate and up projections)."""
    rm, rn, rk = tl.arange(0, M), tl.arange(0, N), tl.arange(0, BK)
    acc_b = tl.zeros((M, N), dtype=tl.float32)
    acc_d = tl.zeros((M, N), dtype=tl.float32)
    for k in range(0, K, BK):
        a = tl.load(a_ptr + rm[:, None] * K + (k + rk)[None, :])
        acc_b = tl.dot(a, tl.load(b_ptr + (k + rk)[:, None] * N + rn[None, :]), acc_b)
        acc_d = tl.dot(a, tl.load(d_ptr + (k + rk)[:, None] * N + rn[None, :]), acc_d)
    tl.store(c_ptr + rm[:, None] * N + rn[None, :], acc_b)
    tl.store(e_ptr + rm[:, None] * N + rn[None, :], acc_d)


def test_two_accumulators_in_one_loop():
    a, b = _inputs((32, 64), (64, 32), torch.float16, seed=9)
    _, d = _inputs((1, 1), (64, 32), torch.float16, seed=10)
    c, e = torch.empty(32, 32), torch.empty(32, 32)
    kernel = two_accumulators_kernel[(1,)](a, b, d, c, e, M=32, N=32, K=64, BK=16)
    msl = kernel.asm["msl"].decode() if isinstance(kernel.asm["msl"], bytes) else kernel.asm["msl"]
    assert "simdgroup_store" not in "\n".join(_k_loop(msl)) and msl.count("simdgroup_store") == 2  # after the loop
    torch.testing.assert_close(c.double(), _reference(a, b), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(e.double(), _reference(a, d), rtol=1e-4, atol=1e-4)


@triton.jit
def rescaled_accumulator_kernel(a_ptr, b_ptr, c_ptr, M: tl.constexpr, N: tl.constexpr, K: tl.constexpr,
                                BK: tl.constexpr):
    """The accumulator is also read by an elementwise op in the loop (attention's rescale): it stays in
    the blocked layout between the dots."""
    rm, rn, rk = tl.arange(0, M), tl.arange(0, N), tl.arange(0, BK)
    acc = tl.zeros((M, N), dtype=tl.float32)
    for k in range(0, K, BK):
        a = tl.load(a_ptr + rm[:, None] * K + (k + rk)[None, :])
        b = tl.load(b_ptr + (k + rk)[:, None] * N + rn[None, :])
        acc = tl.dot(a, b, acc * 0.5)
    tl.store(c_ptr + rm[:, None] * N + rn[None, :], acc)


def test_accumulator_read_by_another_op_in_the_loop():
    a, b = _inputs((32, 32), (32, 32), torch.float16, seed=5)
    c = torch.empty(32, 32)
    kernel = rescaled_accumulator_kernel[(1,)](a, b, c, M=32, N=32, K=32, BK=8)
    assert "tm_acc_frags[" in str(kernel.asm["msl"])  # a register-blocked dot, not a carried accumulator
    ref = torch.zeros(32, 32, dtype=torch.float64)
    for k in range(0, 32, 8):
        ref = ref * 0.5 + a[:, k:k + 8].double() @ b[k:k + 8].double()
    torch.testing.assert_close(c.double(), ref, rtol=1e-4, atol=1e-4)


@triton.jit
def single_dot_kernel(a_ptr, b_ptr, c_ptr, M: tl.constexpr, N: tl.constexpr, K: tl.constexpr):
    rm, rn, rk = tl.arange(0, M), tl.arange(0, N), tl.arange(0, K)
    a = tl.load(a_ptr + rm[:, None] * K + rk[None, :])
    b = tl.load(b_ptr + rk[:, None] * N + rn[None, :])
    tl.store(c_ptr + rm[:, None] * N + rn[None, :], tl.dot(a, b))


@pytest.mark.parametrize("m, n, k, num_warps", [(8, 8, 8, 4), (16, 64, 16, 4), (64, 16, 32, 8), (32, 128, 8, 2)])
def test_dot_outside_a_loop_is_register_blocked(m, n, k, num_warps):
    a, b = _inputs((m, k), (k, n), torch.float32, seed=6)
    c = torch.empty(m, n)
    kernel = single_dot_kernel[(1,)](a, b, c, M=m, N=n, K=k, num_warps=num_warps)
    assert "simdgroup_multiply_accumulate" in str(kernel.asm["msl"])
    torch.testing.assert_close(c.double(), _reference(a, b), rtol=1e-5, atol=1e-5)


# ---- the blocking --------------------------------------------------------------------------------

@pytest.mark.parametrize("m, n, num_warps, grid, block", [
    (64, 64, 4, (2, 2), (4, 4)),    # square blocks: 8 fragment loads per 16 multiply-accumulates
    (64, 64, 8, (2, 4), (4, 2)),
    (128, 32, 4, (4, 1), (4, 4)),
    (8, 8, 4, (1, 1), (1, 1)),      # one tile: the other simdgroups own none
    (24, 40, 2, (1, 1), (3, 5)),    # 3 x 5 tiles divide by no 2-simdgroup grid
])
def test_blocking(m, n, num_warps, grid, block):
    blk = blocking(m, n, num_warps)
    assert ((blk.wm, blk.wn), (blk.tm, blk.tn)) == (grid, block)


# ---- the K loop's MSL and traffic ------------------------------------------------------------------

def _k_loop(msl: str) -> list:
    """The lines of the kernel's K loop (the `for (int k ...)` one), header and closing brace included."""
    lines = msl.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"\s*for \(int k\w* = ", line))
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = next(i for i in range(start + 1, len(lines)) if lines[i] == " " * indent + "}")
    return lines[start:end + 1]


def test_f16_256_matmul_k_loop_keeps_the_accumulator_in_registers():
    a, b = _inputs((256, 256), (256, 256), torch.float16, seed=7)
    c, msl = _matmul(a, b, block=(64, 64, 32), num_warps=4)
    torch.testing.assert_close(c.double(), _reference(a, b), rtol=1e-4, atol=1e-4)
    loop = "\n".join(_k_loop(msl))
    assert "simdgroup_multiply_accumulate(tm_acc_frags" in loop
    assert "simdgroup_store" not in loop  # no accumulator round trip through threadgroup memory
    assert "tm_dot_tile" not in loop


def test_f16_256_matmul_k_loop_has_two_barriers_per_step():
    # Staging the A and B tiles: one barrier before overwriting them, one after writing them.
    a, b = _inputs((256, 256), (256, 256), torch.float16, seed=7)
    _, msl = _matmul(a, b, block=(64, 64, 32), num_warps=4)
    loop = "\n".join(_k_loop(msl))
    assert loop.count("threadgroup_barrier") <= 2, loop


def test_f32_64x64x32_matmul_converts_the_accumulator_in_the_operand_buffers_bytes():
    # The accumulator leaves its fragments after the loop, when the A and B tiles (16 KiB) are dead:
    # its 16 KiB conversion tile reuses their bytes (it took 16 KiB more, the 32 KiB limit, before).
    a, b = _inputs((64, 64), (64, 64), torch.float32, seed=11)
    c, msl = _matmul(a, b, block=(64, 64, 32), num_warps=4)
    torch.testing.assert_close(c.double(), _reference(a, b), rtol=1e-5, atol=1e-5)
    assert int(re.search(r"(\d+) bytes of threadgroup memory", msl).group(1)) == 16384


# Today's (before register blocking) count for this launch: every K step stored the 64x64 f32
# accumulator to threadgroup memory, reloaded each 8x8 tile and the operand fragments per tile,
# and read the accumulator back: 12,845,056 bytes read for 256^3 FMAs.
BYTES_READ_PER_FMA_BEFORE = 12_845_056 / 256 ** 3  # 0.765625


def test_f16_256_matmul_threadgroup_bytes_read_per_fma():
    a, b = _inputs((256, 256), (256, 256), torch.float16, seed=8)
    with count_traffic() as traffic:
        c, _ = _matmul(a, b, block=(64, 64, 32), num_warps=4)
    torch.testing.assert_close(c.double(), _reference(a, b), rtol=1e-4, atol=1e-4)
    per_fma = sum(s.threadgroup_bytes_read for s in traffic.launches) / 256 ** 3
    # Per 8-deep K step a simdgroup (4x4 tiles) reads 4 A + 4 B half fragments (8 x 128 bytes) for
    # 16 x 512 FMAs: 0.125 bytes per FMA, plus the one conversion after the loop.
    assert per_fma <= BYTES_READ_PER_FMA_BEFORE / 4, per_fma


# ---- barrier coalescing ------------------------------------------------------------------------

B = barriers.BARRIER
NAMES = {"tm_a", "tm_b", "tm_t"}


def _lines(*texts):
    return [("    " * depth) + text for depth, text in texts]


def test_staging_two_operands_needs_two_barriers():
    body = _lines((2, B), (2, "for (uint tm_i = 0; tm_i < 4; ++tm_i) tm_a[tm_i] = x[tm_i];"), (2, B),
                  (2, "half y = *p;"), (2, B), (2, "tm_b[tm_lane] = y;"), (2, B),
                  (2, "simdgroup_load(f, &tm_a[0], 8);"), (2, "simdgroup_load(g, &tm_b[0], 8);"))
    assert [line.strip() for line in barriers.coalesce(body, NAMES)].count(B) == 2
    assert barriers.coalesce(body, NAMES)[0].strip() == B  # the barrier before overwriting stays


def test_a_read_between_barriers_keeps_them():
    body = _lines((1, B), (1, "tm_t[tm_lane] = x;"), (1, B), (1, "float y = tm_t[tm_lane ^ 1];"), (1, B),
                  (1, "tm_t[tm_lane] = y;"), (1, B), (1, "float z = tm_t[tm_lane ^ 2];"))
    assert barriers.coalesce(body, NAMES) == body


def test_a_write_never_read_afterwards_keeps_the_barrier():
    # The buffer written before the middle barrier is not read later: its bytes may be another's.
    body = _lines((1, B), (1, "tm_a[tm_lane] = x;"), (1, B), (1, "tm_b[tm_lane] = y;"), (1, B),
                  (1, "float z = tm_b[0];"))
    assert barriers.coalesce(body, NAMES) == body


def test_barriers_in_different_blocks_stay():
    body = _lines((1, B), (1, "if (c) {"), (2, B), (2, "tm_a[0] = x;"), (1, "}"), (1, B), (1, "float z = tm_a[0];"))
    assert barriers.coalesce(body, NAMES) == body


def test_a_loop_starting_with_a_barrier_gets_it_before_the_loop_and_at_the_end():
    loop = _lines((1, "for (int k = 0; k < n; ++k) {"), (2, "float x = *p;"), (2, B), (2, "tm_a[tm_lane] = x;"), (2, B),
                  (2, "float y = tm_a[0];"), (2, "@release0@"), (1, "}"))
    assert barriers.rotate_loop(loop, NAMES) == _lines(
        (1, B), (1, "for (int k = 0; k < n; ++k) {"), (2, "float x = *p;"), (2, "tm_a[tm_lane] = x;"), (2, B),
        (2, "float y = tm_a[0];"), (2, B), (2, "@release0@"), (1, "}"))


def test_a_loop_touching_threadgroup_memory_before_its_first_barrier_is_not_rotated():
    loop = _lines((1, "for (int k = 0; k < n; ++k) {"), (2, "float x = tm_a[0];"), (2, B), (2, "tm_a[tm_lane] = x;"),
                  (1, "}"))
    assert barriers.rotate_loop(loop, NAMES) == loop
