"""tl.dot: the simdgroup_matrix path, the FMA path, precisions and dtypes, against torch on the CPU."""
import pytest
import torch
import triton
import triton.language as tl


@triton.jit
def matmul_kernel(a_ptr, b_ptr, c_ptr, M, N, K, stride_am, stride_ak, stride_bk, stride_bn, stride_cm, stride_cn,
                  BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, ACC: tl.constexpr,
                  PRECISION: tl.constexpr):
    rm = tl.program_id(0) * BM + tl.arange(0, BM)
    rn = tl.program_id(1) * BN + tl.arange(0, BN)
    rk = tl.arange(0, BK)
    acc = tl.zeros((BM, BN), dtype=ACC)
    for k in range(0, K, BK):
        a = tl.load(a_ptr + rm[:, None] * stride_am + (k + rk)[None, :] * stride_ak,
                    mask=(rm[:, None] < M) & ((k + rk)[None, :] < K), other=0)
        b = tl.load(b_ptr + (k + rk)[:, None] * stride_bk + rn[None, :] * stride_bn,
                    mask=((k + rk)[:, None] < K) & (rn[None, :] < N), other=0)
        acc = tl.dot(a, b, acc, input_precision=PRECISION, out_dtype=ACC)
    tl.store(c_ptr + rm[:, None] * stride_cm + rn[None, :] * stride_cn, acc,
             mask=(rm[:, None] < M) & (rn[None, :] < N))


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(0)


_TL = {torch.float32: tl.float32, torch.float16: tl.float16, torch.int32: tl.int32}


def matmul(a, b, out_dtype, block=(32, 32, 16), precision="ieee", num_warps=4):
    (M, K), (_, N) = a.shape, b.shape
    c = torch.empty(M, N, dtype=out_dtype, device=a.device)
    bm, bn, bk = block
    kernel = matmul_kernel[(triton.cdiv(M, bm), triton.cdiv(N, bn))](
        a, b, c, M, N, K, a.stride(0), a.stride(1), b.stride(0), b.stride(1), c.stride(0), c.stride(1),
        BM=bm, BN=bn, BK=bk, ACC=_TL[out_dtype], PRECISION=precision, num_warps=num_warps)
    return c, kernel.asm["msl"].decode() if isinstance(kernel.asm["msl"], bytes) else kernel.asm["msl"]


def _inputs(rng, shape_a, shape_b, dtype):
    if dtype == torch.int8:
        return (torch.randint(-128, 128, shape_a, generator=rng, dtype=torch.int8),
                torch.randint(-128, 128, shape_b, generator=rng, dtype=torch.int8))
    return torch.randn(*shape_a, generator=rng).to(dtype), torch.randn(*shape_b, generator=rng).to(dtype)


def test_64x64x32_f16_dot_uses_simdgroup_matrix(compile_msl):
    sig = {"a_ptr": "*fp16", "b_ptr": "*fp16", "c_ptr": "*fp32", "M": "i32", "N": "i32", "K": "i32",
           "stride_am": "i32", "stride_ak": "i32", "stride_bk": "i32", "stride_bn": "i32", "stride_cm": "i32",
           "stride_cn": "i32", "BM": "constexpr", "BN": "constexpr", "BK": "constexpr", "ACC": "constexpr",
           "PRECISION": "constexpr"}
    msl, meta = compile_msl(matmul_kernel, sig, {"BM": 64, "BN": 64, "BK": 32, "ACC": tl.float32,
                                                 "PRECISION": "ieee"})
    assert "simdgroup_multiply_accumulate" in msl
    assert "simdgroup_matrix<half, 8, 8>" in msl  # f16 fragments, float accumulator
    assert meta.shared <= 32 * 1024


@pytest.mark.parametrize("dtype, out_dtype, tol", [
    (torch.float32, torch.float32, 1e-4),
    (torch.float16, torch.float32, 1e-4),
    (torch.bfloat16, torch.float32, 1e-4),
    (torch.float16, torch.float16, 3e-2),
])
def test_simdgroup_path_dtypes(dtype, out_dtype, tol, device, rng):
    a, b = _inputs(rng, (70, 48), (48, 40), dtype)  # ragged M and N: masked loads and stores
    c, msl = matmul(a.to(device), b.to(device), out_dtype)
    assert "simdgroup_multiply_accumulate" in msl
    ref = (a.double() @ b.double()).to(out_dtype)
    torch.testing.assert_close(c.cpu().float(), ref.float(), rtol=tol, atol=tol)


def test_int8_dot_accumulates_in_int32_on_the_fma_path(device, rng):
    a, b = _inputs(rng, (33, 64), (64, 20), torch.int8)
    c, msl = matmul(a.to(device), b.to(device), torch.int32)
    assert "simdgroup_multiply_accumulate" not in msl
    torch.testing.assert_close(c.cpu(), (a.int() @ b.int()), rtol=0, atol=0)


def test_shape_without_8x8_tiles_takes_the_fma_path(device, rng):
    a, b = _inputs(rng, (20, 12), (12, 36), torch.float32)
    c, msl = matmul(a.to(device), b.to(device), torch.float32, block=(16, 16, 4))  # K tile of 4
    assert "simdgroup_multiply_accumulate" not in msl and "fma(" in msl
    torch.testing.assert_close(c.cpu(), a @ b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("precision", ["ieee", "tf32", "tf32x3", "bf16x3", "bf16x6"])
def test_reduced_precisions_compute_ieee_f32(precision, device, rng):
    # Apple GPUs have no TF32: every precision gives full f32 products (TF32 would be ~1e-3 off, the
    # bf16x3 and bf16x6 emulations a little).
    a, b = _inputs(rng, (32, 64), (64, 32), torch.float32)
    c, _ = matmul(a.to(device), b.to(device), torch.float32, precision=precision)
    torch.testing.assert_close(c.cpu(), (a.double() @ b.double()).float(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("num_warps", [1, 2, 8])
def test_simdgroup_path_num_warps(num_warps, device, rng):
    a, b = _inputs(rng, (64, 32), (32, 64), torch.float16)
    c, _ = matmul(a.to(device), b.to(device), torch.float32, block=(64, 64, 32), num_warps=num_warps)
    torch.testing.assert_close(c.cpu(), a.float() @ b.float(), rtol=1e-4, atol=1e-4)


@triton.jit
def dot_transposed_kernel(a_ptr, bt_ptr, c_ptr, M: tl.constexpr, N: tl.constexpr, K: tl.constexpr):
    rm, rn, rk = tl.arange(0, M), tl.arange(0, N), tl.arange(0, K)
    a = tl.load(a_ptr + rm[:, None] * K + rk[None, :])
    bt = tl.load(bt_ptr + rn[:, None] * K + rk[None, :])  # B stored N x K
    tl.store(c_ptr + rm[:, None] * N + rn[None, :], tl.dot(a, tl.trans(bt)))


def test_dot_with_transposed_operand(device, rng):
    a, bt = _inputs(rng, (32, 16), (64, 16), torch.float16)
    c = torch.empty(32, 64, device=device)
    dot_transposed_kernel[(1,)](a.to(device), bt.to(device), c, M=32, N=64, K=16)
    torch.testing.assert_close(c.cpu(), a.float() @ bt.float().T, rtol=1e-4, atol=1e-4)


@triton.jit
def batched_dot_kernel(a_ptr, b_ptr, c_ptr, B: tl.constexpr, M: tl.constexpr, N: tl.constexpr, K: tl.constexpr):
    rb, rm, rn, rk = tl.arange(0, B), tl.arange(0, M), tl.arange(0, N), tl.arange(0, K)
    a = tl.load(a_ptr + rb[:, None, None] * M * K + rm[None, :, None] * K + rk[None, None, :])
    b = tl.load(b_ptr + rb[:, None, None] * K * N + rk[None, :, None] * N + rn[None, None, :])
    tl.store(c_ptr + rb[:, None, None] * M * N + rm[None, :, None] * N + rn[None, None, :], tl.dot(a, b))


def test_batched_3d_dot(device, rng):
    a, b = _inputs(rng, (2, 16, 16), (2, 16, 32), torch.float32)
    c = torch.empty(2, 16, 32, device=device)
    batched_dot_kernel[(1,)](a.to(device), b.to(device), c, B=2, M=16, N=32, K=16)
    torch.testing.assert_close(c.cpu(), torch.bmm(a, b), rtol=1e-5, atol=1e-5)


def test_oversized_tiles_stage_their_operands_in_k_chunks(device, rng):
    # 128x64 and 64x128 f32 tiles (2 x 32 KiB) do not fit Apple's 32 KiB whole: the dot stages them from
    # registers in K chunks (test_dot_k_chunks.py); threadgroup memory too small is now an error only when
    # that does not fit either.
    a, b = _inputs(rng, (128, 128), (128, 128), torch.float32)
    c, msl = matmul(a.to(device), b.to(device), torch.float32, block=(128, 128, 64))
    assert "operands staged in K chunks" in msl
    torch.testing.assert_close(c.cpu(), a @ b, rtol=1e-4, atol=1e-4)


@triton.jit
def single_dot_kernel(a_ptr, b_ptr, c_ptr, M: tl.constexpr, N: tl.constexpr, K: tl.constexpr,
                      ACC: tl.constexpr):
    rm, rn, rk = tl.arange(0, M), tl.arange(0, N), tl.arange(0, K)
    a = tl.load(a_ptr + rm[:, None] * K + rk[None, :])
    b = tl.load(b_ptr + rk[:, None] * N + rn[None, :])
    tl.store(c_ptr + rm[:, None] * N + rn[None, :], tl.dot(a, b, out_dtype=ACC))


def test_a_result_tile_beyond_threadgroup_memory_goes_through_it_in_bands(device, rng):
    # 128x256 f32 results (128 KiB) cannot go through threadgroup memory whole, as the simdgroup_matrix
    # path converts them: they go a band of rows per round (the operands, 8 + 16 KiB, stay whole).
    a, b = _inputs(rng, (128, 32), (32, 256), torch.float16)
    c = torch.empty(128, 256, device=device)
    kernel = single_dot_kernel[(1,)](a.to(device), b.to(device), c, M=128, N=256, K=32, ACC=tl.float32,
                                     num_warps=8)
    msl = str(kernel.asm["msl"])
    assert "simdgroup_multiply_accumulate" in msl and "rows at a time" in msl
    torch.testing.assert_close(c.cpu(), (a.double() @ b.double()).float(), rtol=1e-4, atol=1e-4)

