"""Threadgroup memory, barriers, simd collectives and atomics, each checked against numpy."""
from __future__ import annotations

import struct

import numpy as np
import pytest


def test_threadgroup_memory_reduction_with_barriers(run_msl):
    n_tg, tg = 64, 256
    x = np.random.default_rng(1).standard_normal(n_tg * tg).astype(np.float32)
    out = np.zeros(n_tg, np.float32)
    run_msl("""
kernel void block_sum(device const float* x [[buffer(0)]], device float* out [[buffer(1)]],
                      uint gid [[thread_position_in_grid]], uint tid [[thread_index_in_threadgroup]],
                      uint group [[threadgroup_position_in_grid]]) {
    threadgroup float buf[256];
    buf[tid] = x[gid];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint s = 128; s > 0; s >>= 1) {
        if (tid < s) buf[tid] += buf[tid + s];
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    if (tid == 0) out[group] = buf[0];
}
""", "block_sum", (n_tg, 1, 1), (tg, 1, 1), {0: x, 1: out})
    np.testing.assert_allclose(out, x.reshape(n_tg, tg).sum(1), rtol=1e-5, atol=1e-5)


def test_2d_threadgroup_tile(run_msl):
    n = 64
    x = np.arange(n * n, dtype=np.float32).reshape(n, n)
    y = np.zeros_like(x)
    run_msl("""
kernel void tiled_transpose(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
                            constant uint& n [[buffer(2)]], uint2 group [[threadgroup_position_in_grid]],
                            uint2 local [[thread_position_in_threadgroup]]) {
    threadgroup float tile[16][17];  // padded, as on a GPU
    tile[local.y][local.x] = x[(group.y * 16 + local.y) * n + group.x * 16 + local.x];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    y[(group.x * 16 + local.y) * n + group.y * 16 + local.x] = tile[local.x][local.y];
}
""", "tiled_transpose", (n // 16, n // 16, 1), (16, 16, 1), {0: x, 1: y, 2: struct.pack("<I", n)})
    np.testing.assert_array_equal(y, x.T)

def test_threadgroup_parameter_with_length(run_msl):
    out = np.zeros(8, np.int32)
    run_msl("""
kernel void reverse(device int* out [[buffer(0)]], threadgroup int* tmp [[threadgroup(0)]],
                    uint tid [[thread_index_in_threadgroup]], uint n [[threads_per_threadgroup]]) {
    tmp[tid] = int(tid) * 3;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    out[tid] = tmp[n - 1 - tid];
}
""", "reverse", (1, 1, 1), (8, 1, 1), {0: out}, {0: 32})
    np.testing.assert_array_equal(out, np.arange(8)[::-1] * 3)


def test_threadgroup_memory_is_shared_and_zeroed_per_threadgroup(run_msl):
    out = np.zeros(4 * 64, np.uint32)
    run_msl("""
kernel void count(device uint* out [[buffer(0)]], uint tid [[thread_index_in_threadgroup]],
                  uint gid [[thread_position_in_grid]]) {
    threadgroup atomic_uint counter;
    threadgroup uint seen[64], unused[4];
    seen[tid] = unused[tid % 4];  // zero
    atomic_fetch_add_explicit(&counter, 1u, memory_order_relaxed);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    out[gid] = atomic_load_explicit(&counter, memory_order_relaxed) + seen[tid];
}
""", "count", (4, 1, 1), (64, 1, 1), {0: out})
    np.testing.assert_array_equal(out, 64)


SIMD_OPS = {
    # name: (MSL expression of x and lane, numpy reference of one simdgroup's x)
    "simd_sum": ("simd_sum(x)", lambda x: np.full(32, x.sum())),
    "simd_max": ("simd_max(x)", lambda x: np.full(32, x.max())),
    "simd_min": ("simd_min(x)", lambda x: np.full(32, x.min())),
    "simd_shuffle_xor": ("simd_shuffle_xor(x, 5)", lambda x: x[np.arange(32) ^ 5]),
    "simd_shuffle": ("simd_shuffle(x, (lane * 7) % 32)", lambda x: x[np.arange(32) * 7 % 32]),
    "simd_broadcast": ("simd_broadcast(x, 9)", lambda x: np.full(32, x[9])),
    "simd_shuffle_up": ("simd_shuffle_up(x, 3)", lambda x: np.concatenate([x[:3], x[:29]])),
    "simd_shuffle_down": ("simd_shuffle_down(x, 3)", lambda x: np.concatenate([x[3:], x[29:]])),
    "simd_prefix_inclusive_sum": ("simd_prefix_inclusive_sum(x)", np.cumsum),
    "simd_prefix_exclusive_sum": ("simd_prefix_exclusive_sum(x)", lambda x: np.cumsum(x) - x),
}


@pytest.mark.parametrize("op", sorted(SIMD_OPS))
def test_simd_collective(run_msl, op):
    expr, reference = SIMD_OPS[op]
    x = np.random.default_rng(2).integers(-50, 50, 3 * 96).astype(np.float32)  # exact sums
    out = np.zeros_like(x)
    run_msl(f"""
kernel void simd_op(device const float* in [[buffer(0)]], device float* out [[buffer(1)]],
                    uint gid [[thread_position_in_grid]], ushort lane [[thread_index_in_simdgroup]]) {{
    float x = in[gid];
    out[gid] = {expr};
}}
""", "simd_op", (3, 1, 1), (96, 1, 1), {0: x, 1: out})
    expected = np.concatenate([reference(g) for g in x.reshape(-1, 32)])
    np.testing.assert_array_equal(out, expected)


def test_simd_integer_and_bool_collectives(run_msl):
    x = np.arange(64, dtype=np.int32) * 3 + 1
    out = np.zeros((64, 5), np.int32)
    run_msl("""
kernel void ints(device const int* in [[buffer(0)]], device int* out [[buffer(1)]],
                 uint i [[thread_position_in_grid]]) {
    int x = in[i];
    out[i * 5 + 0] = simd_sum(x);
    out[i * 5 + 1] = simd_or(x);
    out[i * 5 + 2] = simd_xor(x);
    out[i * 5 + 3] = simd_any(x == 7) ? 1 : 0;
    out[i * 5 + 4] = simd_all(x > 0) ? 1 : 0;
}
""", "ints", (1, 1, 1), (64, 1, 1), {0: x, 1: out})
    for g, rows in zip(x.reshape(2, 32), out.reshape(2, 32, 5)):
        expected = [g.sum(), np.bitwise_or.reduce(g), np.bitwise_xor.reduce(g), int((g == 7).any()), 1]
        np.testing.assert_array_equal(rows, np.tile(expected, (32, 1)))


# The element types the code generator hands to simd_sum/simd_max/simd_min (lower_reduce.py).
SIMD_REDUCTION_TYPES = {"half": np.float16, "int": np.int32, "uint": np.uint32}


@pytest.mark.parametrize("msl_type", sorted(SIMD_REDUCTION_TYPES))
def test_simd_sum_max_min_of_each_type(run_msl, msl_type):
    np_type = SIMD_REDUCTION_TYPES[msl_type]
    rng = np.random.default_rng(5)
    # uint: values above 2**31 (max/min must compare unsigned, sums wrap modulo 2**32);
    # half and int: small integers, so that every partial sum is exact.
    x = (rng.integers(0, 2**32, 64, dtype=np.uint64).astype(np.uint32) if msl_type == "uint"
         else rng.integers(-60, 60, 64).astype(np_type))
    out = np.zeros((64, 3), np_type)
    run_msl(f"""
kernel void reductions(device const {msl_type}* in [[buffer(0)]], device {msl_type}* out [[buffer(1)]],
                       uint i [[thread_position_in_grid]]) {{
    {msl_type} x = in[i];
    out[i * 3 + 0] = simd_sum(x);
    out[i * 3 + 1] = simd_max(x);
    out[i * 3 + 2] = simd_min(x);
}}
""", "reductions", (1, 1, 1), (64, 1, 1), {0: x, 1: out})
    for g, rows in zip(x.reshape(2, 32), out.reshape(2, 32, 3)):
        total = g.astype(np.int64).sum()
        total = np.uint32(total % 2**32) if msl_type == "uint" else np_type(total)
        np.testing.assert_array_equal(rows, np.tile(np.array([total, g.max(), g.min()], np_type), (32, 1)))


def test_simd_max_and_min_ignore_nan_lanes_like_fmax(run_msl):
    """tl.max/tl.min (maxnumf/minnumf) become simd_max/simd_min: NaN operands are skipped."""
    x = np.arange(32, dtype=np.float32) - 10
    x[[0, 7, 31]] = np.nan
    out = np.zeros((32, 2), np.float32)
    run_msl("""
kernel void nan_minmax(device const float* in [[buffer(0)]], device float* out [[buffer(1)]],
                       uint i [[thread_position_in_grid]]) {
    out[i * 2 + 0] = simd_max(in[i]);
    out[i * 2 + 1] = simd_min(in[i]);
}
""", "nan_minmax", (1, 1, 1), (32, 1, 1), {0: x, 1: out})
    np.testing.assert_array_equal(out, np.tile([np.nanmax(x), np.nanmin(x)], (32, 1)).astype(np.float32))


def test_simd_sum_over_active_lanes_only(run_msl):
    """Lanes that returned or took the other branch do not take part (Metal's active lanes)."""
    out = np.zeros(48, np.float32)  # 48 threads: the second simdgroup has 16 lanes
    run_msl("""
kernel void active(device float* out [[buffer(0)]], ushort lane [[thread_index_in_simdgroup]],
                   uint tid [[thread_index_in_threadgroup]]) {
    if (tid % 4 == 3) return;
    float x = float(lane);
    if (lane < 10) out[tid] = simd_sum(x);
    else out[tid] = simd_max(x) + 1000.0f;
}
""", "active", (1, 1, 1), (48, 1, 1), {0: out})
    lane = np.arange(48) % 32
    active = np.arange(48) % 4 != 3
    expected = np.zeros(48, np.float32)
    for sg in (0, 1):
        members = (np.arange(48) // 32 == sg) & active
        low, high = members & (lane < 10), members & (lane >= 10)
        expected[low] = lane[low].sum()
        expected[high] = lane[high].max() + 1000
    np.testing.assert_array_equal(out, expected)


def test_row_softmax_with_simd_and_threadgroup_memory(run_msl):
    rows, cols = 16, 1024
    x = np.random.default_rng(3).standard_normal((rows, cols)).astype(np.float32)
    y = np.zeros_like(x)
    run_msl("""
kernel void softmax(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
                    constant uint& ncols [[buffer(2)]], uint row [[threadgroup_position_in_grid]],
                    uint tid [[thread_index_in_threadgroup]], uint lane [[thread_index_in_simdgroup]],
                    uint sg [[simdgroup_index_in_threadgroup]], uint nsg [[simdgroups_per_threadgroup]],
                    uint ntg [[threads_per_threadgroup]]) {
    threadgroup float partial[32];
    device const float* xr = x + row * ncols;
    float m = -INFINITY;
    for (uint c = tid; c < ncols; c += ntg) m = max(m, xr[c]);
    m = simd_max(m);
    if (lane == 0) partial[sg] = m;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    m = partial[0];
    for (uint i = 1; i < nsg; ++i) m = max(m, partial[i]);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    float s = 0.0f;
    for (uint c = tid; c < ncols; c += ntg) s += exp(xr[c] - m);
    s = simd_sum(s);
    if (lane == 0) partial[sg] = s;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    s = 0.0f;
    for (uint i = 0; i < nsg; ++i) s += partial[i];
    for (uint c = tid; c < ncols; c += ntg) y[row * ncols + c] = exp(xr[c] - m) / s;
}
""", "softmax", (rows, 1, 1), (128, 1, 1), {0: x, 1: y, 2: struct.pack("<I", cols)})
    e = np.exp(x - x.max(1, keepdims=True))
    np.testing.assert_allclose(y, e / e.sum(1, keepdims=True), rtol=1e-5, atol=1e-7)


def test_atomic_fetch_add_from_many_threadgroups(run_msl):
    counter = np.zeros(1, np.int32)
    run_msl("""
kernel void count(device atomic_int* counter [[buffer(0)]]) {
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}
""", "count", (512, 1, 1), (64, 1, 1), {0: counter})
    assert counter[0] == 512 * 64


def test_atomic_float_add_and_int_max(run_msl):
    x = np.random.default_rng(4).integers(-1000, 1000, 256 * 64).astype(np.float32)
    total, biggest = np.zeros(1, np.float32), np.full(1, -(2**31), np.int32)
    run_msl("""
kernel void reduce(device const float* x [[buffer(0)]], device atomic_float* total [[buffer(1)]],
                   device atomic_int* biggest [[buffer(2)]], uint i [[thread_position_in_grid]]) {
    atomic_fetch_add_explicit(total, x[i], memory_order_relaxed);
    atomic_fetch_max_explicit(biggest, int(x[i]), memory_order_relaxed);
}
""", "reduce", (256, 1, 1), (64, 1, 1), {0: x, 1: total, 2: biggest})
    assert total[0] == x.sum()  # integers: exact in any order
    assert biggest[0] == x.max()



def test_simd_collective_after_divergent_branches_sees_all_lanes(run_msl):
    out = np.zeros(32, np.float32)
    run_msl("""
kernel void reconverge(device float* out [[buffer(0)]], ushort lane [[thread_index_in_simdgroup]]) {
    float x = float(lane), a;
    if (lane < 10) a = simd_sum(x);
    else a = simd_max(x);
    out[lane] = a + 1000.0f * simd_sum(1.0f);
}
""", "reconverge", (1, 1, 1), (32, 1, 1), {0: out})
    lane = np.arange(32)
    np.testing.assert_array_equal(out, np.where(lane < 10, lane[:10].sum(), 31) + 32000)


def test_simd_collective_in_loops_of_different_lengths(run_msl):
    out = np.zeros(32, np.float32)
    run_msl("""
kernel void loops(device float* out [[buffer(0)]], ushort lane [[thread_index_in_simdgroup]]) {
    float total = 0.0f;
    for (ushort i = 0; i < lane; ++i) total += simd_sum(1.0f);  // iteration i: lanes > i
    out[lane] = total;
}
""", "loops", (1, 1, 1), (32, 1, 1), {0: out})
    np.testing.assert_array_equal(out, [sum(32 - i - 1 for i in range(k)) for k in range(32)])


RACE = """
kernel void shift(device int* out [[buffer(0)]], uint tid [[thread_index_in_threadgroup]]) {
    threadgroup int buf[64];
    buf[tid] = int(tid) + 1;
    {barrier}
    out[tid] = tid > 0 ? buf[tid - 1] : 0;
}
"""


@pytest.mark.parametrize("schedule", ["forward", "reverse"])
def test_schedules_agree_on_a_race_free_kernel(run_msl, monkeypatch, schedule):
    monkeypatch.setenv("TRITON_METAL_SIM_SCHEDULE", schedule)
    out = np.full(64, -1, np.int32)
    run_msl(RACE.replace("{barrier}", "threadgroup_barrier(mem_flags::mem_threadgroup);"), "shift",
            (1, 1, 1), (64, 1, 1), {0: out})
    np.testing.assert_array_equal(out, np.arange(64))


def test_reverse_schedule_exposes_a_missing_barrier(run_msl, monkeypatch):
    out = np.full(64, -1, np.int32)
    run_msl(RACE.replace("{barrier}", ""), "shift", (1, 1, 1), (64, 1, 1), {0: out})
    np.testing.assert_array_equal(out, np.arange(64))  # the forward order hides the race ...
    monkeypatch.setenv("TRITON_METAL_SIM_SCHEDULE", "reverse")
    run_msl(RACE.replace("{barrier}", ""), "shift", (1, 1, 1), (64, 1, 1), {0: out})
    assert (out[1:] == 0).all()  # ... which the reverse order shows: nobody wrote buf yet
