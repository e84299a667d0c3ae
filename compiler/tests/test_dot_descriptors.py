"""Tensor descriptors (bounds-checked tile loads and stores), reshapes, and the removed block pointers."""
import pytest
import torch
import triton
import triton.language as tl


@triton.jit
def scale_tiles_kernel(x_ptr, y_ptr, M, N, BM: tl.constexpr, BN: tl.constexpr):
    dx = tl.make_tensor_descriptor(x_ptr, [M, N], [N, 1], [BM, BN])
    dy = tl.make_tensor_descriptor(y_ptr, [M, N], [N, 1], [BM, BN])
    for j in range(0, N, BN):
        dy.store([tl.program_id(0) * BM, j], dx.load([tl.program_id(0) * BM, j]) * 2)


def test_descriptor_load_store_are_bounds_checked(device):
    # 37 x 50 is not a multiple of the 16 x 16 tiles: loads past the edge read 0, stores are dropped.
    x = torch.randn(37, 50)
    y = torch.full((37 + 1, 50), -7.0)  # one guard row after the tensor the descriptor describes
    scale_tiles_kernel[(triton.cdiv(37, 16),)](x.to(device), y, 37, 50, BM=16, BN=16)
    torch.testing.assert_close(y[:37], 2 * x)
    assert (y[37] == -7.0).all()


@triton.jit
def descriptor_matmul_kernel(a_ptr, b_ptr, c_ptr, M, N, K, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    da = tl.make_tensor_descriptor(a_ptr, [M, K], [K, 1], [BM, BK])
    db = tl.make_tensor_descriptor(b_ptr, [K, N], [N, 1], [BK, BN])
    dc = tl.make_tensor_descriptor(c_ptr, [M, N], [N, 1], [BM, BN])
    m0, n0 = tl.program_id(0) * BM, tl.program_id(1) * BN
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    for k in range(0, K, BK):
        acc = tl.dot(da.load([m0, k]), db.load([k, n0]), acc)
    dc.store([m0, n0], acc)


def test_matmul_through_descriptors_with_ragged_edges(device):
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(50, 40, generator=g).half(), torch.randn(40, 70, generator=g).half()
    c = torch.zeros(50, 70)
    descriptor_matmul_kernel[(triton.cdiv(50, 32), triton.cdiv(70, 32))](a.to(device), b.to(device), c, 50, 70, 40,
                                                                          BM=32, BN=32, BK=16)
    torch.testing.assert_close(c, a.float() @ b.float(), rtol=1e-4, atol=1e-4)


@triton.jit
def reshape_kernel(x_ptr, y_ptr, M: tl.constexpr, N: tl.constexpr):
    x = tl.load(x_ptr + tl.arange(0, M)[:, None] * N + tl.arange(0, N)[None, :])
    flat = tl.reshape(x, (M * N,))
    tl.store(y_ptr + tl.arange(0, M * N), flat + tl.arange(0, M * N).to(tl.float32))


def test_reshape_2d_to_1d_keeps_row_major_order(device):
    x = torch.randn(8, 16)
    y = torch.empty(128)
    reshape_kernel[(1,)](x.to(device), y, M=8, N=16)
    torch.testing.assert_close(y, x.flatten() + torch.arange(128.0))


@triton.jit
def block_ptr_kernel(x_ptr, M, N):
    p = tl.make_block_ptr(x_ptr, (M, N), (N, 1), (0, 0), (16, 16), (1, 0))
    tl.store(p, tl.load(p, boundary_check=(0, 1)) * 2, boundary_check=(0, 1))


def test_block_pointers_are_refused_by_triton_3_9(device):
    with pytest.raises(Exception, match="Block pointers have been removed"):
        block_ptr_kernel[(1,)](torch.zeros(4, 4, device=device), 4, 4)
