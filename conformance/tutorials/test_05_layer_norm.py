"""Our port of upstream tutorial 05 (layer norm, forward and backward), checked against torch on the CPU.

Forward: one program per row, mean and variance by looping over the row in BLOCK_SIZE chunks.
Backward: dx per row, plus partial dW/dB rows accumulated by GROUP_SIZE_M groups of programs
under a spin lock (tl.atomic_cas / tl.atomic_xchg), then a second kernel sums the partials.

Sizes: the tutorial checks M=1151, N=8192 in f16. On the simulator we check M=151, N=1024
(f16 and f32) and a ragged N=1000 to stay within CI time; the kernels are the same.
"""
import pytest
import torch
import triton
import triton.language as tl


@triton.jit
def layer_norm_fwd_kernel(X, Y, W, B, Mean, Rstd, stride, N, eps, BLOCK_SIZE: tl.constexpr):
    row = tl.program_id(0)
    Y += row * stride
    X += row * stride
    sums = tl.zeros([BLOCK_SIZE], dtype=tl.float32)
    for off in range(0, N, BLOCK_SIZE):
        cols = off + tl.arange(0, BLOCK_SIZE)
        sums += tl.load(X + cols, mask=cols < N, other=0.).to(tl.float32)
    mean = tl.sum(sums, axis=0) / N
    squares = tl.zeros([BLOCK_SIZE], dtype=tl.float32)
    for off in range(0, N, BLOCK_SIZE):
        cols = off + tl.arange(0, BLOCK_SIZE)
        x = tl.load(X + cols, mask=cols < N, other=0.).to(tl.float32)
        x = tl.where(cols < N, x - mean, 0.)
        squares += x * x
    rstd = 1 / tl.sqrt(tl.sum(squares, axis=0) / N + eps)
    tl.store(Mean + row, mean)
    tl.store(Rstd + row, rstd)
    for off in range(0, N, BLOCK_SIZE):
        cols = off + tl.arange(0, BLOCK_SIZE)
        mask = cols < N
        w = tl.load(W + cols, mask=mask)
        b = tl.load(B + cols, mask=mask)
        x = tl.load(X + cols, mask=mask, other=0.).to(tl.float32)
        y = (x - mean) * rstd * w + b
        tl.store(Y + cols, y, mask=mask)


@triton.jit
def layer_norm_bwd_dx_kernel(DX, DY, DW, DB, X, W, Mean, Rstd, Lock, stride, N, GROUP_SIZE_M: tl.constexpr,
                             BLOCK_SIZE_N: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK_SIZE_N)
    mask = cols < N
    X += row * stride
    DY += row * stride
    DX += row * stride
    # Rows share GROUP_SIZE_M partial dW/dB buffers; a lock per buffer, then a "written once" count.
    lock_id = row % GROUP_SIZE_M
    Lock += lock_id
    Count = Lock + GROUP_SIZE_M
    DW = DW + lock_id * N + cols
    DB = DB + lock_id * N + cols
    x = tl.load(X + cols, mask=mask, other=0).to(tl.float32)
    dy = tl.load(DY + cols, mask=mask, other=0).to(tl.float32)
    w = tl.load(W + cols, mask=mask).to(tl.float32)
    mean = tl.load(Mean + row)
    rstd = tl.load(Rstd + row)
    xhat = tl.where(mask, (x - mean) * rstd, 0.)
    wdy = tl.where(mask, w * dy, 0.)
    c1 = tl.sum(xhat * wdy, axis=0) / N
    c2 = tl.sum(wdy, axis=0) / N
    dx = (wdy - (xhat * c1 + c2)) * rstd
    tl.store(DX + cols, dx, mask=mask)
    partial_dw = (dy * xhat).to(w.dtype)
    partial_db = dy.to(w.dtype)
    while tl.atomic_cas(Lock, 0, 1) == 1:
        pass
    count = tl.load(Count)
    if count == 0:  # the first program of the group initialises the buffer
        tl.atomic_xchg(Count, 1)
    else:
        partial_dw += tl.load(DW, mask=mask)
        partial_db += tl.load(DB, mask=mask)
    tl.store(DW, partial_dw, mask=mask)
    tl.store(DB, partial_db, mask=mask)
    tl.debug_barrier()
    tl.atomic_xchg(Lock, 0)


@triton.jit
def layer_norm_bwd_dwdb_kernel(DW, DB, FINAL_DW, FINAL_DB, M, N, BLOCK_SIZE_M: tl.constexpr,
                               BLOCK_SIZE_N: tl.constexpr):
    pid = tl.program_id(0)
    cols = pid * BLOCK_SIZE_N + tl.arange(0, BLOCK_SIZE_N)
    dw = tl.zeros((BLOCK_SIZE_M, BLOCK_SIZE_N), dtype=tl.float32)
    db = tl.zeros((BLOCK_SIZE_M, BLOCK_SIZE_N), dtype=tl.float32)
    for i in range(0, M, BLOCK_SIZE_M):
        rows = i + tl.arange(0, BLOCK_SIZE_M)
        mask = (rows[:, None] < M) & (cols[None, :] < N)
        offs = rows[:, None] * N + cols[None, :]
        dw += tl.load(DW + offs, mask=mask, other=0.)
        db += tl.load(DB + offs, mask=mask, other=0.)
    tl.store(FINAL_DW + cols, tl.sum(dw, axis=0), mask=cols < N)
    tl.store(FINAL_DB + cols, tl.sum(db, axis=0), mask=cols < N)


def layer_norm_forward(x, w, b, eps):
    M, N = x.shape
    y = torch.empty_like(x)
    mean = torch.empty(M, dtype=torch.float32, device=x.device)
    rstd = torch.empty(M, dtype=torch.float32, device=x.device)
    block = min(1024, triton.next_power_of_2(N))
    num_warps = min(max(block // 256, 1), 8)
    layer_norm_fwd_kernel[(M,)](x, y, w, b, mean, rstd, x.stride(0), N, eps, BLOCK_SIZE=block, num_warps=num_warps)
    return y, mean, rstd


def layer_norm_backward(dy, x, w, mean, rstd):
    M, N = x.shape
    group_size_m = 64 if N <= 8192 else 32 if N <= 4096 else 16
    block_n = triton.next_power_of_2(N)
    num_warps = min(max(block_n // 256, 1), 8)
    locks = torch.zeros(2 * group_size_m, dtype=torch.int32, device=x.device)
    partial_dw = torch.zeros((group_size_m, N), dtype=x.dtype, device=x.device)
    partial_db = torch.zeros((group_size_m, N), dtype=x.dtype, device=x.device)
    dx = torch.empty_like(dy)
    layer_norm_bwd_dx_kernel[(M,)](dx, dy, partial_dw, partial_db, x, w, mean, rstd, locks, x.stride(0), N,
                                   GROUP_SIZE_M=group_size_m, BLOCK_SIZE_N=block_n, num_warps=num_warps)
    dw = torch.empty(N, dtype=w.dtype, device=w.device)
    db = torch.empty(N, dtype=w.dtype, device=w.device)
    layer_norm_bwd_dwdb_kernel[(triton.cdiv(N, 128),)](partial_dw, partial_db, dw, db, min(group_size_m, M), N,
                                                        BLOCK_SIZE_M=32, BLOCK_SIZE_N=128)
    return dx, dw, db


def _inputs(M, N, dtype, rng):
    x = (-2.3 + 0.5 * torch.randn(M, N, generator=rng)).to(dtype)
    w = torch.rand(N, generator=rng).to(dtype)
    b = torch.rand(N, generator=rng).to(dtype)
    dy = (0.1 * torch.randn(M, N, generator=rng)).to(dtype)
    return x, w, b, dy


@pytest.mark.parametrize("M, N, dtype, tol", [(151, 1024, torch.float16, 1e-2), (151, 1024, torch.float32, 1e-5),
                                              (37, 1000, torch.float32, 1e-5)])
def test_layer_norm_forward(M, N, dtype, tol, device, rng):
    x, w, b, _ = _inputs(M, N, dtype, rng)
    y, _, _ = layer_norm_forward(x.to(device), w.to(device), b.to(device), 1e-5)
    ref = torch.nn.functional.layer_norm(x.float(), (N,), w.float(), b.float(), 1e-5).to(dtype)
    torch.testing.assert_close(y.cpu(), ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("M, N, dtype, tol", [(151, 1024, torch.float16, 2e-2), (151, 1024, torch.float32, 1e-4),
                                              (37, 1000, torch.float32, 1e-4)])
def test_layer_norm_backward(M, N, dtype, tol, device, rng):
    x, w, b, dy = _inputs(M, N, dtype, rng)
    xd, wd = x.to(device), w.to(device)
    _, mean, rstd = layer_norm_forward(xd, wd, b.to(device), 1e-5)
    dx, dw, db = layer_norm_backward(dy.to(device), xd, wd, mean, rstd)
    xr, wr, br = (t.float().requires_grad_(True) for t in (x, w, b))
    torch.nn.functional.layer_norm(xr, (N,), wr, br, 1e-5).backward(dy.float())
    torch.testing.assert_close(dx.cpu().float(), xr.grad, rtol=tol, atol=tol)
    # dW and dB sum over all M rows (in the partial buffers' precision for f16).
    torch.testing.assert_close(dw.cpu().float(), wr.grad, rtol=tol * 5, atol=tol * 5 * M ** 0.5)
    torch.testing.assert_close(db.cpu().float(), br.grad, rtol=tol * 5, atol=tol * 5 * M ** 0.5)
