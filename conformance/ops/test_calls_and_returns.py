"""@triton.jit(noinline=True) calls (MSL functions) and early returns (branch graphs rebuilt as
nested ifs), each against numpy."""
import numpy as np
import pytest
import torch
import triton
import triton.language as tl

RNG = np.random.default_rng(7)


def _tensor(a, device):
    return torch.from_numpy(np.ascontiguousarray(a)).to(device)


# ---- noinline functions ---------------------------------------------------------------------

@triton.jit(noinline=True)
def affine(x, k):
    return x * k + 1


@triton.jit
def scalar_call_kernel(x_ptr, out_ptr):
    tl.store(out_ptr, affine(tl.load(x_ptr), 3.0))


def test_noinline_returns_a_scalar(device):
    x = np.array([2.5], np.float32)
    out = torch.zeros(1, device=device)
    scalar_call_kernel[(1,)](_tensor(x, device), out)
    assert out.cpu().numpy()[0] == x[0] * np.float32(3) + 1


@triton.jit(noinline=True)
def load_block(ptr, N: tl.constexpr):
    return tl.load(ptr + tl.arange(0, N))


@triton.jit
def tensor_call_kernel(x_ptr, y_ptr, out_ptr, N: tl.constexpr):
    x = load_block(x_ptr, N)
    y = load_block(y_ptr, N)  # the same function, emitted once, called twice
    tl.store(out_ptr + tl.arange(0, N), x * y)


def test_noinline_returns_a_tensor(device):
    x, y = RNG.standard_normal((2, 256)).astype(np.float32)
    out = torch.empty(256, device=device)
    tensor_call_kernel[(1,)](_tensor(x, device), _tensor(y, device), out, N=256, num_warps=4)
    np.testing.assert_array_equal(out.cpu().numpy(), x * y)


@triton.jit(noinline=True)
def divmod_(a, b):
    return a // b, a % b, a * b


@triton.jit
def multi_value_kernel(ab_ptr, out_ptr):
    q, r, p = divmod_(tl.load(ab_ptr), tl.load(ab_ptr + 1))
    tl.store(out_ptr, q)
    tl.store(out_ptr + 1, r)
    tl.store(out_ptr + 2, p)


def test_noinline_returns_several_values(device):
    out = torch.zeros(3, dtype=torch.int32, device=device)
    multi_value_kernel[(1,)](torch.tensor([47, 5], dtype=torch.int32, device=device), out)
    assert out.cpu().tolist() == [47 // 5, 47 % 5, 47 * 5]


@triton.jit(noinline=True)
def plus_one(x):
    return x + 1


@triton.jit(noinline=True)
def twice_plus_one(x):
    return plus_one(x) * 2


@triton.jit(noinline=True)
def nested(x, out_ptr, N: tl.constexpr):
    offs = tl.arange(0, N)
    tl.store(out_ptr + offs, offs * twice_plus_one(x) + plus_one(x))


@triton.jit
def nested_call_kernel(x_ptr, out_ptr, N: tl.constexpr):
    nested(tl.load(x_ptr + tl.program_id(0)), out_ptr + tl.program_id(0) * N, N)


def test_nested_noinline_calls(device):
    x = np.array([3, -4, 10], np.int32)
    out = torch.zeros(3 * 32, dtype=torch.int32, device=device)
    nested_call_kernel[(3,)](_tensor(x, device), out, N=32)
    offs = np.arange(32, dtype=np.int32)
    ref = np.concatenate([offs * ((v + 1) * 2) + (v + 1) for v in x])
    np.testing.assert_array_equal(out.cpu().numpy(), ref)


@triton.jit(noinline=True)
def scaled_row(ptr, i, N: tl.constexpr):
    return tl.load(ptr + i * N + tl.arange(0, N)) * (i + 1)


@triton.jit
def call_in_loop_kernel(x_ptr, out_ptr, rows, N: tl.constexpr):
    acc = tl.zeros([N], tl.float32)
    for i in range(rows):
        acc += scaled_row(x_ptr, i, N)
    tl.store(out_ptr + tl.arange(0, N), acc)


def test_noinline_call_in_a_loop(device):
    x = RNG.standard_normal((5, 64)).astype(np.float32)
    out = torch.empty(64, device=device)
    call_in_loop_kernel[(1,)](_tensor(x, device), out, 5, N=64)
    ref = sum(x[i] * np.float32(i + 1) for i in range(5))
    np.testing.assert_allclose(out.cpu().numpy(), ref, rtol=1e-5, atol=1e-5)


@triton.jit(noinline=True)
def row_stats(ptr, M: tl.constexpr, N: tl.constexpr):
    # reductions across simdgroups: threadgroup scratch memory and barriers inside the function
    x = tl.load(ptr + tl.arange(0, M)[:, None] * N + tl.arange(0, N)[None, :])
    return tl.max(tl.sum(x, axis=1), axis=0), tl.sum(x, axis=0)


@triton.jit
def reduction_call_kernel(x_ptr, out_ptr, M: tl.constexpr, N: tl.constexpr):
    best, col_sums = row_stats(x_ptr, M, N)
    tl.store(out_ptr + tl.arange(0, N), col_sums)
    tl.store(out_ptr + N, best)


def test_noinline_function_with_reductions(device):
    x = RNG.standard_normal((32, 64)).astype(np.float32)
    out = torch.empty(65, device=device)
    reduction_call_kernel[(1,)](_tensor(x, device), out, M=32, N=64, num_warps=4)
    got = out.cpu().numpy()
    np.testing.assert_allclose(got[:64], x.sum(axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[64], x.sum(axis=1).max(), rtol=1e-5)


@triton.jit(noinline=True)
def matmul_tile(a_ptr, out_ptr, N: tl.constexpr):
    # tl.dot stages its operands in threadgroup arrays, which live in the kernel and come in as pointers
    offs = tl.arange(0, N)[:, None] * N + tl.arange(0, N)[None, :]
    a = tl.load(a_ptr + offs)
    tl.store(out_ptr + offs, tl.dot(a, a))


@triton.jit
def dot_call_kernel(a_ptr, out_ptr, N: tl.constexpr):
    matmul_tile(a_ptr, out_ptr, N)


def test_noinline_function_with_a_dot(device):
    a = RNG.standard_normal((16, 16)).astype(np.float32)
    out = torch.empty((16, 16), device=device)
    dot_call_kernel[(1,)](_tensor(a, device), out, N=16, num_warps=1)
    np.testing.assert_allclose(out.cpu().numpy(), a @ a, rtol=1e-2, atol=1e-2)  # tf32 by default


# ---- early returns --------------------------------------------------------------------------

@triton.jit
def runtime_return_kernel(flag_ptr, x_ptr, out_ptr, N: tl.constexpr):
    offs = tl.arange(0, N)
    if tl.load(flag_ptr) != 0:
        tl.store(out_ptr + offs, -1.0)
        return
    tl.store(out_ptr + offs, tl.load(x_ptr + offs) * 2)


@pytest.mark.parametrize("flag", [0, 1])
def test_early_return_on_a_runtime_condition(device, flag):
    x = RNG.standard_normal(64).astype(np.float32)
    out = torch.zeros(64, device=device)
    runtime_return_kernel[(1,)](torch.tensor([flag], dtype=torch.int32, device=device), _tensor(x, device), out, N=64)
    np.testing.assert_array_equal(out.cpu().numpy(), np.full(64, -1, np.float32) if flag else x * 2)


@triton.jit
def program_return_kernel(x_ptr, out_ptr, N: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * N + tl.arange(0, N)
    if pid % 2 == 1:
        return  # odd programs store nothing
    x = tl.load(x_ptr + offs)
    tl.store(out_ptr + offs, x - tl.max(x, axis=0))  # a reduction (barriers) after the branch


def test_early_return_on_program_id(device):
    x = RNG.standard_normal((4, 128)).astype(np.float32)
    out = torch.full((4, 128), 7.0, device=device)
    program_return_kernel[(4,)](_tensor(x, device), out, N=128, num_warps=4)
    ref = np.where(np.arange(4)[:, None] % 2 == 1, np.float32(7), x - x.max(axis=1, keepdims=True))
    np.testing.assert_array_equal(out.cpu().numpy(), ref)


@triton.jit
def chain_kernel(v_ptr, out_ptr):
    v = tl.load(v_ptr + tl.program_id(0))
    o = out_ptr + tl.program_id(0)
    if v < 0:
        tl.store(o, -1)
        return
    elif v == 0:
        tl.store(o, 100)
        return
    elif v < 10:
        v = v * 10
    else:
        tl.store(o, 1000 + v)
        return
    tl.store(o, v + 1)


def test_if_elif_else_chain_with_returns(device):
    v = np.array([-5, 0, 3, 9, 10, 42], np.int32)
    out = torch.zeros(len(v), dtype=torch.int32, device=device)
    chain_kernel[(len(v),)](_tensor(v, device), out)
    ref = [-1 if x < 0 else 100 if x == 0 else x * 10 + 1 if x < 10 else 1000 + x for x in v]
    assert out.cpu().tolist() == ref


@triton.jit
def nested_return_kernel(c_ptr, out_ptr):
    c = c_ptr + tl.program_id(0) * 3
    val = 0
    if tl.load(c) != 0:
        if tl.load(c + 1) != 0:
            val = 1
        else:
            return
        val += 10  # joins the inner branches before the outer join
    else:
        if tl.load(c + 2) != 0:
            val = 2
        else:
            val = 3
    tl.store(out_ptr + tl.program_id(0), val)


def test_nested_branches_with_a_return_and_joins(device):
    conds = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], np.int32)
    out = torch.full((8,), -1, dtype=torch.int32, device=device)
    nested_return_kernel[(8,)](_tensor(conds, device), out)
    ref = [(11 if b else -1) if a else (2 if c else 3) for a, b, c in conds]
    assert out.cpu().tolist() == ref


@triton.jit(noinline=True)
def clamp_store(x, lo, out):
    if x < lo:
        tl.store(out, lo)
        return
    tl.store(out, x)


@triton.jit(noinline=True)
def first_positive(ptr, n):
    # an early return of a value from a function
    for i in range(n):
        tl.store(ptr + n + i, i)  # marks: which elements the loop visited
    if tl.load(ptr) > 0:
        return tl.load(ptr)
    if tl.load(ptr + 1) > 0:
        return tl.load(ptr + 1)
    return -1.0


@triton.jit
def function_return_kernel(x_ptr, out_ptr):
    clamp_store(tl.load(x_ptr), 0.0, out_ptr)
    tl.store(out_ptr + 1, first_positive(x_ptr + 1, 2))


@pytest.mark.parametrize("values", [(-2.0, 3.0, 4.0), (5.0, -1.0, 4.0), (1.0, -1.0, -4.0)])
def test_early_return_inside_a_noinline_function(device, values):
    x = torch.tensor(list(values) + [0.0, 0.0], device=device)
    out = torch.zeros(2, device=device)
    function_return_kernel[(1,)](x, out)
    v0, v1, v2 = values
    assert out.cpu().tolist() == [max(v0, 0.0), v1 if v1 > 0 else v2 if v2 > 0 else -1.0]
    assert x.cpu().tolist()[3:] == [0.0, 1.0]
