"""The stress suite's kernel mix: each case draws a random shape and variant, launches a kernel
and returns (result, CPU reference, tolerance). Variants (constexprs, num_warps) are few on purpose:
each is a separate compiled kernel, and workers should collide on the same ones."""
from __future__ import annotations

import random

import torch
import triton
import triton.language as tl


@triton.jit
def add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) + tl.load(y_ptr + offs, mask=mask), mask=mask)


@triton.jit
def affine_kernel(x_ptr, out_ptr, n, A: tl.constexpr, B: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) * A + B, mask=mask)


@triton.jit
def leaky_relu_f16_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, tl.where(x > 0, x, x * 0.125), mask=mask)


@triton.jit
def int_mix_kernel(a_ptr, b_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    a = tl.load(a_ptr + offs, mask=mask)
    b = tl.load(b_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, (a * 3 + b) % 7 + (a ^ b), mask=mask)


@triton.jit
def row_sum_kernel(x_ptr, out_ptr, cols, stride, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    offs = tl.arange(0, BLOCK)
    x = tl.load(x_ptr + row * stride + offs, mask=offs < cols, other=0.0)
    tl.store(out_ptr + row, tl.sum(x, axis=0))


@triton.jit
def softmax_kernel(x_ptr, out_ptr, cols, stride, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    offs = tl.arange(0, BLOCK)
    mask = offs < cols
    x = tl.load(x_ptr + row * stride + offs, mask=mask, other=-float("inf"))
    e = tl.exp(x - tl.max(x, axis=0))
    tl.store(out_ptr + row * stride + offs, e / tl.sum(e, axis=0), mask=mask)


def _gen(rng: random.Random) -> torch.Generator:
    return torch.Generator().manual_seed(rng.randrange(2**31))


def case_add(rng, device):
    n, block = rng.randrange(1, 5000), rng.choice((128, 256))
    g = _gen(rng)
    x, y = torch.randn(n, generator=g), torch.randn(n, generator=g)
    out = torch.empty(n, device=device)
    add_kernel[(triton.cdiv(n, block),)](x.to(device), y.to(device), out, n, BLOCK=block, num_warps=rng.choice((1, 4)))
    return out.cpu(), x + y, 0.0


def case_affine(rng, device):
    n, a, b = rng.randrange(1, 5000), rng.choice((0.5, 3.0)), rng.choice((-1.0, 2.0))
    x = torch.randn(n, generator=_gen(rng))
    out = torch.empty(n, device=device)
    affine_kernel[(triton.cdiv(n, 256),)](x.to(device), out, n, A=a, B=b, BLOCK=256)
    return out.cpu(), x * a + b, 1e-6


def case_leaky_relu_f16(rng, device):
    n = rng.randrange(1, 5000)
    x = torch.randn(n, generator=_gen(rng)).half()
    out = torch.empty(n, dtype=torch.float16, device=device)
    leaky_relu_f16_kernel[(triton.cdiv(n, 256),)](x.to(device), out, n, BLOCK=256)
    ref = torch.where(x > 0, x, x * 0.125)
    return out.cpu().float(), ref.float(), 1e-3


def case_int_mix(rng, device):
    n = rng.randrange(1, 5000)
    g = _gen(rng)
    a, b = torch.randint(0, 1000, (n,), generator=g, dtype=torch.int32), torch.randint(0, 1000, (n,), generator=g,
                                                                                          dtype=torch.int32)
    out = torch.empty(n, dtype=torch.int32, device=device)
    int_mix_kernel[(triton.cdiv(n, 256),)](a.to(device), b.to(device), out, n, BLOCK=256)
    return out.cpu(), (a * 3 + b) % 7 + (a ^ b), 0.0


def case_row_sum(rng, device):
    rows, block = rng.randrange(1, 64), rng.choice((128, 1024))
    cols = rng.randrange(1, block + 1)  # masked tail; two block sizes keep the number of kernels small
    x = torch.randn(rows, cols, generator=_gen(rng))
    out = torch.empty(rows, device=device)
    row_sum_kernel[(rows,)](x.to(device), out, cols, x.stride(0), BLOCK=block, num_warps=rng.choice((1, 4)))
    return out.cpu(), x.sum(dim=1), 1e-4 * cols ** 0.5


def case_softmax(rng, device):
    rows, block = rng.randrange(1, 64), rng.choice((128, 1024))
    cols = rng.randrange(1, block + 1)  # masked tail; two block sizes keep the number of kernels small
    x = torch.randn(rows, cols, generator=_gen(rng))
    out = torch.empty(rows, cols, device=device)
    softmax_kernel[(rows,)](x.to(device), out, cols, x.stride(0), BLOCK=block)
    return out.cpu(), torch.softmax(x, dim=1), 1e-5


CASES = {
    "add": case_add,
    "affine": case_affine,
    "leaky_relu_f16": case_leaky_relu_f16,
    "int_mix": case_int_mix,
    "row_sum": case_row_sum,
    "softmax": case_softmax,
}


def matches(result: torch.Tensor, reference: torch.Tensor, tolerance: float) -> bool:
    if result.shape != reference.shape:
        return False
    if tolerance == 0.0:
        return bool(torch.equal(result, reference.to(result.dtype)))
    return bool(torch.allclose(result, reference.to(result.dtype), rtol=tolerance, atol=tolerance))
