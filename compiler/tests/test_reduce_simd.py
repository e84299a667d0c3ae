"""Reductions across a full simdgroup: simd_sum/simd_max/simd_min instead of a shuffle butterfly,
and one barrier for kernel-scope reductions across simdgroups; results against numpy."""
import re

import numpy as np
import pytest
import torch
import triton
import triton.language as tl

SIG = {"x_ptr": "*fp32", "out_ptr": "*fp32", "N": "constexpr"}


@triton.jit
def row_softmax_kernel(x_ptr, out_ptr, N: tl.constexpr):
    offs = tl.arange(0, N)
    x = tl.load(x_ptr + tl.program_id(0) * N + offs)
    x = x - tl.max(x, axis=0)
    num = tl.exp(x)
    tl.store(out_ptr + tl.program_id(0) * N + offs, num / tl.sum(num, axis=0))


@triton.jit
def _reduce(x, AXIS: tl.constexpr, OP: tl.constexpr):
    if OP == "sum":
        r = tl.sum(x, axis=AXIS)
    elif OP == "max":
        r = tl.max(x, axis=AXIS)
    else:
        r = tl.min(x, axis=AXIS)
    return r


@triton.jit
def reduce_kernel(x_ptr, out_ptr, N: tl.constexpr, OP: tl.constexpr):
    tl.store(out_ptr, _reduce(tl.load(x_ptr + tl.arange(0, N)), 0, OP))


@triton.jit
def row_reduce_kernel(x_ptr, out_ptr, M: tl.constexpr, N: tl.constexpr, OP: tl.constexpr):
    rows = tl.arange(0, M)
    x = tl.load(x_ptr + rows[:, None] * N + tl.arange(0, N)[None, :])
    tl.store(out_ptr + rows, _reduce(x, 1, OP))


@triton.jit
def argmax_kernel(x_ptr, out_ptr, N: tl.constexpr):
    tl.store(out_ptr, tl.argmax(tl.load(x_ptr + tl.arange(0, N)), axis=0))


@triton.jit
def max_propagating_nan(a, b):
    return tl.maximum(a, b, propagate_nan=tl.PropagateNan.ALL)


@triton.jit
def nan_max_kernel(x_ptr, out_ptr, N: tl.constexpr):
    x = tl.load(x_ptr + tl.arange(0, N))
    tl.store(out_ptr, tl.max(x, axis=0))
    tl.store(out_ptr + 1, tl.reduce(x, 0, max_propagating_nan))


@triton.jit
def loop_sums_kernel(x_ptr, out_ptr, ROUNDS: tl.constexpr, N: tl.constexpr):
    # Two reductions per iteration through the shared scratch: the trailing barriers must stay.
    offs = tl.arange(0, N)
    for r in range(ROUNDS):
        x = tl.load(x_ptr + r * N + offs)
        tl.store(out_ptr + 2 * r, tl.sum(x, axis=0))
        tl.store(out_ptr + 2 * r + 1, tl.max(x, axis=0))


def _run(kernel, inputs: dict, out, **meta):
    """Launch one program on the simulator (or GPU) with numpy inputs; returns `out` as numpy."""
    device = triton.runtime.driver.active.get_active_torch_device()
    args = [torch.from_numpy(a).to(device) for a in inputs.values()]
    out_t = torch.from_numpy(out).to(device)
    kernel[(1,)](*args, out_t, **meta)
    return out_t.cpu().numpy()


# ---- the generated MSL ---------------------------------------------------------------------------
def test_full_simdgroup_sum_and_max_are_simd_collectives(compile_msl):
    msl, _ = compile_msl(row_softmax_kernel, SIG, {"N": 1024}, num_warps=4)
    assert "= simd_max(" in msl
    assert "= simd_sum(" in msl
    assert "simd_shuffle_xor" not in msl


def test_kernel_scope_reductions_need_one_barrier_each(compile_msl):
    msl, _ = compile_msl(row_softmax_kernel, SIG, {"N": 1024}, num_warps=4)
    assert msl.count("threadgroup_barrier(") == 2  # partials in their own arrays: no trailing barrier
    # (tm_: a name of the code generator's own; its own bytes of the threadgroup arena)
    assert re.search(r"threadgroup float\* tm_x_acc_partials = \(threadgroup float\*\)\(tm_arena \+ \d+\);", msl)


def test_reductions_in_a_loop_keep_the_trailing_barrier(compile_msl):
    msl, _ = compile_msl(loop_sums_kernel, {"x_ptr": "*fp32", "out_ptr": "*fp32", "ROUNDS": "constexpr",
                                            "N": "constexpr"}, {"ROUNDS": 3, "N": 256}, num_warps=4)
    assert msl.count("threadgroup_barrier(") == 4
    assert "(tm_arena + " in msl  # the op's scratch in the threadgroup arena


def test_argmax_keeps_the_shuffle_butterfly(compile_msl):
    msl, _ = compile_msl(argmax_kernel, {"x_ptr": "*fp32", "out_ptr": "*i32", "N": "constexpr"}, {"N": 1024})
    assert "simd_shuffle_xor" in msl
    assert "simd_max" not in msl


def test_nan_propagating_max_keeps_the_shuffle_butterfly(compile_msl):
    msl, _ = compile_msl(nan_max_kernel, SIG, {"N": 1024})
    assert msl.count("= simd_max(") == 1  # tl.max (maxnumf); the propagating combine shuffles
    assert "simd_shuffle_xor" in msl


def test_reduction_over_half_a_simdgroup_keeps_the_shuffle_butterfly(compile_msl):
    # 16 elements over 32 lanes: two lanes hold each element, only 4 lane bits move along the axis.
    msl, _ = compile_msl(reduce_kernel, {**SIG, "OP": "constexpr"}, {"N": 16, "OP": "sum"}, num_warps=1)
    assert "simd_shuffle_xor" in msl
    assert "simd_sum" not in msl


def test_unsigned_max_compares_as_unsigned(compile_msl):
    msl, _ = compile_msl(reduce_kernel, {"x_ptr": "*u32", "out_ptr": "*u32", "N": "constexpr", "OP": "constexpr"},
                         {"N": 1024, "OP": "max"})
    assert "int(simd_max(uint(" in msl


# ---- results on the device (the simulator on Linux) ----------------------------------------------
NUMPY = {"sum": np.sum, "max": np.max, "min": np.min}
DTYPES = {"f32": np.float32, "f16": np.float16, "i32": np.int32}


def _values(dtype, n, seed=0):
    # Small integers: every partial sum is exact in each type, so any summation order matches numpy.
    return np.random.default_rng(seed).integers(-8, 9, n).astype(DTYPES[dtype])


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("op", sorted(NUMPY))
@pytest.mark.parametrize("n,num_warps", [(32, 1), (1024, 4)])
def test_reduction_matches_numpy(op, dtype, n, num_warps):
    x = _values(dtype, n)
    out = _run(reduce_kernel, {"x": x}, np.zeros(1, x.dtype), N=n, OP=op, num_warps=num_warps)
    assert out[0] == NUMPY[op](x)


@pytest.mark.parametrize("op", sorted(NUMPY))
def test_row_reductions_match_numpy(op):
    m, n = 8, 256  # each row spans the 32 lanes of two simdgroups
    x = np.random.default_rng(1).standard_normal((m, n)).astype(np.float32)
    out = _run(row_reduce_kernel, {"x": x}, np.zeros(m, np.float32), M=m, N=n, OP=op, num_warps=4)
    np.testing.assert_allclose(out, NUMPY[op](x, axis=1), rtol=1e-5, atol=1e-5)


def test_unsigned_max_matches_numpy():
    x = np.random.default_rng(2).integers(0, 2**32, 1024, dtype=np.uint64).astype(np.uint32)
    x[17] = 2**32 - 5  # above 2**31: a signed comparison would pick another element
    out = _run(reduce_kernel, {"x": x}, np.zeros(1, np.uint32), N=1024, OP="max")
    assert out[0] == x.max()


def test_max_ignores_nan_unless_propagating():
    x = np.random.default_rng(3).standard_normal(1024).astype(np.float32)
    x[[5, 600]] = np.nan
    out = _run(nan_max_kernel, {"x": x}, np.zeros(2, np.float32), N=1024)
    assert out[0] == np.nanmax(x)  # tl.max: IEEE maxNum, like Metal's simd_max and fmax
    assert np.isnan(out[1])  # propagate_nan=ALL


def test_row_softmax_matches_numpy_in_strict_mode(monkeypatch):
    # Strict mode reports threadgroup races: the partial arrays without a trailing barrier have none.
    monkeypatch.setenv("TRITON_METAL_SIM_STRICT", "1")
    x = np.random.default_rng(4).standard_normal((4, 1024)).astype(np.float32)
    device = triton.runtime.driver.active.get_active_torch_device()
    out = torch.empty(4, 1024, device=device)
    row_softmax_kernel[(4,)](torch.from_numpy(x).to(device), out, N=1024, num_warps=4)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(out.cpu().numpy(), e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-7)


def test_reductions_in_a_loop_match_numpy_in_strict_mode(monkeypatch):
    monkeypatch.setenv("TRITON_METAL_SIM_STRICT", "1")
    x = np.random.default_rng(5).standard_normal((3, 256)).astype(np.float32)
    out = _run(loop_sums_kernel, {"x": x}, np.zeros(6, np.float32), ROUNDS=3, N=256, num_warps=4)
    np.testing.assert_allclose(out[0::2], x.sum(axis=1), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(out[1::2], x.max(axis=1))
