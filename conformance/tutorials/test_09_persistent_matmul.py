"""Our port of upstream tutorial 09 (persistent matmul, the non-TMA kernel), checked against torch on the CPU.

A fixed number of programs (one per GPU core: NUM_SMS) loops over the output tiles in grouped
order; each tile runs the usual K loop of tl.dot. The TMA and warp-specialized variants of the
tutorial are NVIDIA-specific and not ported.

Sizes: the tutorial validates 32x32x32 and benchmarks up to 8192; we check 32x32x32, 256x256x256
and a ragged 100x70x50 in f16, and 128x96x64 in f32, on the simulator.
"""
import pytest
import torch
import triton
import triton.language as tl


def num_sms(device):
    props = triton.runtime.driver.active.utils.get_device_properties(getattr(torch.device(device), "index", None))
    return props["multiprocessor_count"]


@triton.jit
def _compute_pid(tile_id, num_pid_in_group, num_pid_m, GROUP_SIZE_M: tl.constexpr):
    group_id = tile_id // num_pid_in_group
    first_pid_m = group_id * GROUP_SIZE_M
    group_size_m = min(num_pid_m - first_pid_m, GROUP_SIZE_M)
    pid_m = first_pid_m + (tile_id % group_size_m)
    pid_n = (tile_id % num_pid_in_group) // group_size_m
    return pid_m, pid_n


@triton.jit
def matmul_kernel_persistent(a_ptr, b_ptr, c_ptr, M, N, K, stride_am, stride_ak, stride_bk, stride_bn, stride_cm,
                             stride_cn, BLOCK_SIZE_M: tl.constexpr, BLOCK_SIZE_N: tl.constexpr,
                             BLOCK_SIZE_K: tl.constexpr, GROUP_SIZE_M: tl.constexpr, NUM_SMS: tl.constexpr):
    start_pid = tl.program_id(axis=0)
    num_pid_m = tl.cdiv(M, BLOCK_SIZE_M)
    num_pid_n = tl.cdiv(N, BLOCK_SIZE_N)
    k_tiles = tl.cdiv(K, BLOCK_SIZE_K)
    num_tiles = num_pid_m * num_pid_n
    num_pid_in_group = GROUP_SIZE_M * num_pid_n
    offs_k_for_mask = tl.arange(0, BLOCK_SIZE_K)
    for tile_id in tl.range(start_pid, num_tiles, NUM_SMS, flatten=True):
        pid_m, pid_n = _compute_pid(tile_id, num_pid_in_group, num_pid_m, GROUP_SIZE_M)
        start_m = pid_m * BLOCK_SIZE_M
        start_n = pid_n * BLOCK_SIZE_N
        offs_am = start_m + tl.arange(0, BLOCK_SIZE_M)
        offs_bn = start_n + tl.arange(0, BLOCK_SIZE_N)
        offs_am = tl.where(offs_am < M, offs_am, 0)
        offs_bn = tl.where(offs_bn < N, offs_bn, 0)
        accumulator = tl.zeros((BLOCK_SIZE_M, BLOCK_SIZE_N), dtype=tl.float32)
        for ki in range(k_tiles):
            offs_k = ki * BLOCK_SIZE_K + tl.arange(0, BLOCK_SIZE_K)
            a_ptrs = a_ptr + (offs_am[:, None] * stride_am + offs_k[None, :] * stride_ak)
            b_ptrs = b_ptr + (offs_k[:, None] * stride_bk + offs_bn[None, :] * stride_bn)
            a = tl.load(a_ptrs, mask=offs_k_for_mask[None, :] < K - ki * BLOCK_SIZE_K, other=0.0)
            b = tl.load(b_ptrs, mask=offs_k_for_mask[:, None] < K - ki * BLOCK_SIZE_K, other=0.0)
            accumulator = tl.dot(a, b, accumulator)
        offs_cm = start_m + tl.arange(0, BLOCK_SIZE_M)
        offs_cn = start_n + tl.arange(0, BLOCK_SIZE_N)
        c_ptrs = c_ptr + stride_cm * offs_cm[:, None] + stride_cn * offs_cn[None, :]
        c_mask = (offs_cm[:, None] < M) & (offs_cn[None, :] < N)
        tl.store(c_ptrs, accumulator.to(c_ptr.dtype.element_ty), mask=c_mask)


def matmul_persistent(a, b, block=(64, 64, 32), group_size_m=8):
    M, K = a.shape
    _, N = b.shape
    c = torch.empty((M, N), device=a.device, dtype=a.dtype)
    sms = num_sms(a.device)
    bm, bn, bk = block
    grid = (min(sms, triton.cdiv(M, bm) * triton.cdiv(N, bn)),)
    matmul_kernel_persistent[grid](a, b, c, M, N, K, a.stride(0), a.stride(1), b.stride(0), b.stride(1),
                                   c.stride(0), c.stride(1), BLOCK_SIZE_M=bm, BLOCK_SIZE_N=bn, BLOCK_SIZE_K=bk,
                                   GROUP_SIZE_M=group_size_m, NUM_SMS=sms, num_warps=4)
    return c


@pytest.mark.parametrize("M, N, K, dtype, tol", [
    (32, 32, 32, torch.float16, 1e-2),
    (256, 256, 256, torch.float16, 1e-2),
    (100, 70, 50, torch.float16, 1e-2),
    (128, 96, 64, torch.float32, 1e-4),
])
def test_persistent_matmul(M, N, K, dtype, tol, device, rng):
    a = torch.randn(M, K, generator=rng).to(dtype)
    b = torch.randn(K, N, generator=rng).to(dtype)
    block = (64, 64, 32) if dtype == torch.float16 else (32, 32, 32)
    c = matmul_persistent(a.to(device), b.to(device), block=block)
    torch.testing.assert_close(c.cpu().float(), (a.float() @ b.float()).to(dtype).float(), rtol=tol, atol=tol)


def test_fewer_programs_than_tiles(device, rng):
    # A grid smaller than the tile count: every program loops over several tiles.
    assert num_sms(device) < (256 // 32) ** 2
    a = torch.randn(256, 64, generator=rng).to(torch.float16)
    b = torch.randn(64, 256, generator=rng).to(torch.float16)
    c = matmul_persistent(a.to(device), b.to(device), block=(32, 32, 32))
    torch.testing.assert_close(c.cpu().float(), (a.float() @ b.float()).half().float(), rtol=1e-2, atol=1e-2)
