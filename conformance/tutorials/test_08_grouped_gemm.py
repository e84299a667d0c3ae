"""Our port of upstream tutorial 08 (grouped GEMM), checked against torch on the CPU.

One launch computes several independent GEMMs of different sizes: the host passes tables of
the A/B/C addresses, sizes and leading dimensions; a fixed number of programs (NUM_SM) walks
the tiles of all GEMMs round-robin. The tutorial walks them with a `while` loop per GEMM; our
port computes each program's first tile in a GEMM and uses a `for` loop with step NUM_SM
(the same assignment of tiles to programs).

Sizes: the tutorial checks four f16 GEMMs of 1024, 512, 256 and 128 (M = N = K). On the
simulator we check 256, 128, 64 and a ragged 100x70x40 to stay within CI time.
"""
import torch
import triton
import triton.language as tl


@triton.jit
def grouped_matmul_kernel(group_a_ptrs, group_b_ptrs, group_c_ptrs, group_gemm_sizes, g_lds, group_size,
                          NUM_SM: tl.constexpr, BLOCK_SIZE_M: tl.constexpr, BLOCK_SIZE_N: tl.constexpr,
                          BLOCK_SIZE_K: tl.constexpr):
    pid = tl.program_id(0)
    tiles_before = 0  # tiles of the GEMMs before g, in the global round-robin numbering
    for g in range(group_size):
        gm = tl.load(group_gemm_sizes + g * 3)
        gn = tl.load(group_gemm_sizes + g * 3 + 1)
        gk = tl.load(group_gemm_sizes + g * 3 + 2)
        num_m_tiles = tl.cdiv(gm, BLOCK_SIZE_M)
        num_n_tiles = tl.cdiv(gn, BLOCK_SIZE_N)
        num_tiles = num_m_tiles * num_n_tiles
        lda = tl.load(g_lds + g * 3)
        ldb = tl.load(g_lds + g * 3 + 1)
        ldc = tl.load(g_lds + g * 3 + 2)
        a_ptr = tl.load(group_a_ptrs + g).to(tl.pointer_type(tl.float16))
        b_ptr = tl.load(group_b_ptrs + g).to(tl.pointer_type(tl.float16))
        c_ptr = tl.load(group_c_ptrs + g).to(tl.pointer_type(tl.float16))
        # The global tile tiles_before + t belongs to program (tiles_before + t) % NUM_SM.
        first = ((pid - tiles_before) % NUM_SM + NUM_SM) % NUM_SM
        for tile in range(first, num_tiles, NUM_SM):
            tile_m = tile // num_n_tiles
            tile_n = tile % num_n_tiles
            offs_am = tile_m * BLOCK_SIZE_M + tl.arange(0, BLOCK_SIZE_M)
            offs_bn = tile_n * BLOCK_SIZE_N + tl.arange(0, BLOCK_SIZE_N)
            offs_k = tl.arange(0, BLOCK_SIZE_K)
            a_ptrs = a_ptr + offs_am[:, None] * lda + offs_k[None, :]
            b_ptrs = b_ptr + offs_k[:, None] * ldb + offs_bn[None, :]
            accumulator = tl.zeros((BLOCK_SIZE_M, BLOCK_SIZE_N), dtype=tl.float32)
            for kk in range(tl.cdiv(gk, BLOCK_SIZE_K)):
                k_left = gk - kk * BLOCK_SIZE_K
                a = tl.load(a_ptrs, mask=(offs_am[:, None] < gm) & (offs_k[None, :] < k_left), other=0.0)
                b = tl.load(b_ptrs, mask=(offs_k[:, None] < k_left) & (offs_bn[None, :] < gn), other=0.0)
                accumulator += tl.dot(a, b)
                a_ptrs += BLOCK_SIZE_K
                b_ptrs += BLOCK_SIZE_K * ldb
            c = accumulator.to(tl.float16)
            c_ptrs = c_ptr + ldc * offs_am[:, None] + offs_bn[None, :]
            tl.store(c_ptrs, c, mask=(offs_am[:, None] < gm) & (offs_bn[None, :] < gn))
        tiles_before += num_tiles


def group_gemm(group_a, group_b, num_sm=4):
    device = group_a[0].device
    a_addrs, b_addrs, c_addrs, sizes, lds, group_c = [], [], [], [], [], []
    for a, b in zip(group_a, group_b):
        M, K = a.shape
        _, N = b.shape
        c = torch.empty((M, N), device=device, dtype=a.dtype)
        group_c.append(c)
        a_addrs.append(a.data_ptr())
        b_addrs.append(b.data_ptr())
        c_addrs.append(c.data_ptr())
        sizes += [M, N, K]
        lds += [a.stride(0), b.stride(0), c.stride(0)]
    d_a = torch.tensor(a_addrs, device=device)
    d_b = torch.tensor(b_addrs, device=device)
    d_c = torch.tensor(c_addrs, device=device)
    d_sizes = torch.tensor(sizes, dtype=torch.int32, device=device)
    d_lds = torch.tensor(lds, dtype=torch.int32, device=device)
    grouped_matmul_kernel[(num_sm,)](d_a, d_b, d_c, d_sizes, d_lds, len(group_a), NUM_SM=num_sm,
                                     BLOCK_SIZE_M=64, BLOCK_SIZE_N=64, BLOCK_SIZE_K=32, num_warps=4)
    return group_c


def test_grouped_gemm(device, rng):
    shapes = [(256, 256, 256), (128, 128, 128), (64, 64, 64), (100, 70, 40)]
    group_a = [torch.randn(m, k, generator=rng).to(torch.float16) for m, n, k in shapes]
    group_b = [torch.randn(k, n, generator=rng).to(torch.float16) for m, n, k in shapes]
    outs = group_gemm([a.to(device) for a in group_a], [b.to(device) for b in group_b])
    for a, b, c in zip(group_a, group_b, outs):
        torch.testing.assert_close(c.cpu().float(), (a.float() @ b.float()).half().float(), rtol=1e-2, atol=1e-2)
