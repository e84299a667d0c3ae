"""tt.scan across simd lanes (codegen/ops/lower_scan.py): the generated MSL uses Metal's prefix functions or a
simd_shuffle_up tree, and every shape of plan (lines shorter than a simdgroup, several simdgroups per line,
several chunks per line, several lines per block, either axis, reverse) matches numpy."""
import re

import numpy as np
import pytest
import torch
import triton
import triton.language as tl
from triton_metal.codegen.ops.lower_scan import ScanPlan


@triton.jit
def cumsum_kernel(x_ptr, out_ptr, N: tl.constexpr, REVERSE: tl.constexpr):
    offs = tl.arange(0, N)
    tl.store(out_ptr + offs, tl.cumsum(tl.load(x_ptr + offs), axis=0, reverse=REVERSE))


@triton.jit
def cumprod_kernel(x_ptr, out_ptr, N: tl.constexpr):
    offs = tl.arange(0, N)
    tl.store(out_ptr + offs, tl.cumprod(tl.load(x_ptr + offs), axis=0))


@triton.jit
def cumsum_2d_kernel(x_ptr, out_ptr, M: tl.constexpr, N: tl.constexpr, AXIS: tl.constexpr, REVERSE: tl.constexpr):
    offs = tl.arange(0, M)[:, None] * N + tl.arange(0, N)[None, :]
    tl.store(out_ptr + offs, tl.cumsum(tl.load(x_ptr + offs), axis=AXIS, reverse=REVERSE))


@triton.jit
def _max(a, b):
    return tl.maximum(a, b)


@triton.jit
def cummax_2d_kernel(x_ptr, out_ptr, M: tl.constexpr, N: tl.constexpr, AXIS: tl.constexpr):
    offs = tl.arange(0, M)[:, None] * N + tl.arange(0, N)[None, :]
    tl.store(out_ptr + offs, tl.associative_scan(tl.load(x_ptr + offs), AXIS, _max))


@triton.jit
def _running_argmax(v, i, w, j):
    # (value, index) pairs: the later index wins ties, so the combine is associative but not commutative.
    take = w >= v
    return tl.where(take, w, v), tl.where(take, j, i)


@triton.jit
def running_argmax_kernel(x_ptr, val_ptr, idx_ptr, N: tl.constexpr, REVERSE: tl.constexpr):
    offs = tl.arange(0, N)
    v, i = tl.associative_scan((tl.load(x_ptr + offs), offs), 0, _running_argmax, reverse=REVERSE)
    tl.store(val_ptr + offs, v)
    tl.store(idx_ptr + offs, i)


def _run(kernel, inputs, outs, **meta):
    device = triton.runtime.driver.active.get_active_torch_device()
    args = [torch.from_numpy(a).to(device) for a in inputs]
    out_t = [torch.from_numpy(o).to(device) for o in outs]
    kernel[(1,)](*args, *out_t, **meta)
    return [o.cpu().numpy() for o in out_t]


def _flip(a, axis, reverse):
    return np.flip(a, axis) if reverse else a


def np_cumsum(x, axis=0, reverse=False, dtype=None):
    return _flip(np.cumsum(_flip(x, axis, reverse), axis=axis, dtype=dtype), axis, reverse)


SIG = {"x_ptr": "*fp32", "out_ptr": "*fp32", "N": "constexpr", "REVERSE": "constexpr"}


# ---- the plan ----------------------------------------------------------------------------------
@pytest.mark.parametrize("n,lines,warps,expected", [
    (4096, 1, 4, {"width": 128, "simdgroups": 4, "parallel": 1, "chunks": 32, "line_rounds": 1}),
    (128, 1, 4, {"width": 128, "simdgroups": 4, "parallel": 1, "chunks": 1, "line_rounds": 1}),
    (64, 16, 4, {"width": 64, "simdgroups": 2, "parallel": 2, "chunks": 1, "line_rounds": 8}),
    (16, 32, 4, {"width": 16, "simdgroups": 0, "parallel": 8, "chunks": 1, "line_rounds": 4}),
    (8, 4, 4, {"width": 8, "simdgroups": 0, "parallel": 16, "chunks": 1, "line_rounds": 1}),
])
def test_scan_plan_shares_lanes_by_line_length(n, lines, warps, expected):
    plan = ScanPlan(n, lines, warps)
    assert {k: getattr(plan, k) for k in expected} == expected


# ---- the generated MSL -------------------------------------------------------------------------
def test_f32_cumsum_uses_simd_prefix_sum_not_a_serial_loop(compile_msl):
    msl, _ = compile_msl(cumsum_kernel, SIG, {"N": 128, "REVERSE": False}, num_warps=4)
    assert "= simd_prefix_inclusive_sum(" in msl
    assert "simd_shuffle_up" not in msl
    scan = msl.split("// scan 1 line(s) of 128", 1)[1].split("v_3", 1)[0]  # from the plan comment to the read back
    assert "for (" not in scan  # no per-element loop: lanes, then the 4 simdgroup totals by lanes
    assert "= simd_prefix_exclusive_sum(" in scan


def test_f32_cumprod_uses_simd_prefix_product(compile_msl):
    msl, _ = compile_msl(cumprod_kernel, {"x_ptr": "*fp32", "out_ptr": "*fp32", "N": "constexpr"}, {"N": 256})
    assert "= simd_prefix_inclusive_product(" in msl


def test_half_cumsum_scans_in_float(compile_msl):
    msl, _ = compile_msl(cumsum_kernel, {**SIG, "x_ptr": "*fp16", "out_ptr": "*fp16"}, {"N": 256, "REVERSE": False})
    assert "= simd_prefix_inclusive_sum(tm_" in msl
    assert "float tm_" in msl and "= half(tm_" in msl


def test_max_scan_is_a_shuffle_up_tree(compile_msl):
    msl, _ = compile_msl(cummax_2d_kernel, {"x_ptr": "*fp32", "out_ptr": "*fp32", "M": "constexpr", "N": "constexpr",
                                            "AXIS": "constexpr"}, {"M": 4, "N": 256, "AXIS": 1})
    assert msl.count("simd_shuffle_up(") == 5 + 2  # log2(32) steps over lanes, log2(4) over the 4 simdgroups' totals
    assert "simd_prefix" not in msl


def test_long_cumsum_carries_across_chunks_with_one_barrier_each(compile_msl):
    msl, _ = compile_msl(cumsum_kernel, SIG, {"N": 4096, "REVERSE": False}, num_warps=4)
    assert re.search(r"for \(uint (tm_chunk\w*) = 0; \1 < 32; ", msl)  # 32 chunks of 128
    assert msl.count("threadgroup_barrier(") == 4  # staged, per chunk (in the loop), scanned, read back


# ---- results against numpy --------------------------------------------------------------------
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("n,num_warps", [(8, 1), (32, 1), (128, 4), (4096, 4)])
def test_f32_cumsum_matches_numpy(n, num_warps, reverse):
    x = np.random.default_rng(n).integers(-8, 9, n).astype(np.float32)  # exact in any order
    (out,) = _run(cumsum_kernel, [x], [np.zeros_like(x)], N=n, REVERSE=reverse, num_warps=num_warps)
    np.testing.assert_array_equal(out, np_cumsum(x, reverse=reverse))


def test_f32_cumsum_long_random_matches_float64_reference():
    x = np.random.default_rng(7).standard_normal(4096).astype(np.float32)
    (out,) = _run(cumsum_kernel, [x], [np.zeros_like(x)], N=4096, REVERSE=False, num_warps=4)
    np.testing.assert_allclose(out, np.cumsum(x.astype(np.float64)), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("m,n", [(16, 32), (64, 8), (8, 256)])
def test_2d_cumsum_matches_numpy(m, n, axis, reverse):
    x = np.random.default_rng(m * n).integers(-8, 9, (m, n)).astype(np.float32)
    (out,) = _run(cumsum_2d_kernel, [x], [np.zeros_like(x)], M=m, N=n, AXIS=axis, REVERSE=reverse, num_warps=4)
    np.testing.assert_array_equal(out, np_cumsum(x, axis=axis, reverse=reverse))


def test_int32_cumsum_wraps_around():
    x = np.full(256, 2**30, np.int32)
    x[::3] = -(2**31) + 5
    (out,) = _run(cumsum_kernel, [x], [np.zeros_like(x)], N=256, REVERSE=False, num_warps=4)
    ref = np.cumsum(x.astype(np.int64)).astype(np.uint64).astype(np.uint32).view(np.int32)  # modulo 2**32
    np.testing.assert_array_equal(out, ref)


def test_int32_cumprod_wraps_around():
    x = np.random.default_rng(3).integers(-7, 8, 128).astype(np.int32)
    x[x == 0] = 3
    (out,) = _run(cumprod_kernel, [x], [np.zeros_like(x)], N=128, num_warps=2)
    ref = np.cumprod(x.astype(np.int64))  # int64 wraps modulo 2**64, so its low 32 bits are the int32 product
    np.testing.assert_array_equal(out, ref.astype(np.uint64).astype(np.uint32).view(np.int32))


def test_f16_cumsum_within_tolerance_of_float64():
    x = np.random.default_rng(5).uniform(0.5, 1.5, 4096).astype(np.float16)
    (out,) = _run(cumsum_kernel, [x], [np.zeros_like(x)], N=4096, REVERSE=False, num_warps=4)
    ref = np.cumsum(x.astype(np.float64))
    # accumulated in float, rounded once: within half an ulp of half, plus float's error on the partials
    np.testing.assert_allclose(out.astype(np.float64), ref, rtol=2 ** -11 + 1e-6)


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("m,n", [(8, 256), (32, 16)])
def test_max_scan_matches_numpy(m, n, axis):
    x = np.random.default_rng(11).standard_normal((m, n)).astype(np.float32)
    (out,) = _run(cummax_2d_kernel, [x], [np.zeros_like(x)], M=m, N=n, AXIS=axis, num_warps=4)
    np.testing.assert_array_equal(out, np.maximum.accumulate(x, axis=axis))


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("n", [16, 1024])
def test_tuple_scan_running_argmax_matches_numpy(n, reverse):
    x = np.random.default_rng(n).integers(0, 6, n).astype(np.float32)  # many ties: the later index must win
    val, idx = _run(running_argmax_kernel, [x], [np.zeros_like(x), np.zeros(n, np.int32)], N=n, REVERSE=reverse,
                    num_warps=4)
    order = np.arange(n)[::-1] if reverse else np.arange(n)
    ref_v, ref_i, best = np.zeros_like(x), np.zeros(n, np.int32), None
    for k in order:  # serial reference: later (in scan order) index wins ties
        if best is None or x[k] >= x[best]:
            best = k
        ref_v[k], ref_i[k] = x[best], best
    np.testing.assert_array_equal(val, ref_v)
    np.testing.assert_array_equal(idx, ref_i)


def test_int64_cumsum_exchanges_64_bit_values_as_two_halves():
    x = np.random.default_rng(9).integers(-(2**40), 2**40, 256).astype(np.int64)  # partial sums beyond 32 bits
    (out,) = _run(cumsum_kernel, [x], [np.zeros_like(x)], N=256, REVERSE=False, num_warps=4)
    np.testing.assert_array_equal(out, np.cumsum(x))


@pytest.mark.parametrize("n", [16, 128])
def test_int8_cumprod_wraps_like_int8(n):
    x = np.random.default_rng(n).integers(-3, 4, n).astype(np.int8)
    (out,) = _run(cumprod_kernel, [x], [np.zeros_like(x)], N=n, num_warps=4)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(out, np.cumprod(x, dtype=np.int8))  # numpy's int8 product wraps as well
