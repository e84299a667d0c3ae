"""Shim features not covered elsewhere, each a hand-written MSL snippet checked against numpy."""
from __future__ import annotations

import numpy as np


def test_ballot_rotate_prefix_product_and_simdgroup_barrier(run_msl):
    x = (np.arange(64, dtype=np.int32) % 5) + 1
    out = np.zeros((64, 5), np.int64)
    run_msl("""
kernel void simd_more(device const int* in [[buffer(0)]], device long* out [[buffer(1)]],
                      uint i [[thread_position_in_grid]], ushort lane [[thread_index_in_simdgroup]]) {
    int x = in[i];
    out[i * 5 + 0] = long(ulong(simd_ballot(x == 3)));
    out[i * 5 + 1] = simd_shuffle_rotate_down(x, 3u);
    out[i * 5 + 2] = simd_shuffle_rotate_up(x, 5u);
    simdgroup_barrier(mem_flags::mem_none);
    out[i * 5 + 3] = simd_prefix_exclusive_product(x % 2 == 0 ? 2 : 1);
    out[i * 5 + 4] = simd_is_first() ? 1 : 0;
}
""", "simd_more", (1, 1, 1), (64, 1, 1), {0: x, 1: out})
    for g, rows in zip(x.reshape(2, 32), out.reshape(2, 32, 5)):
        lanes = np.arange(32)
        ballot = sum(1 << int(lane) for lane in lanes[g == 3])
        np.testing.assert_array_equal(rows[:, 0], ballot)
        np.testing.assert_array_equal(rows[:, 1], g[(lanes + 3) % 32])
        np.testing.assert_array_equal(rows[:, 2], g[(lanes - 5) % 32])
        factors = np.where(g % 2 == 0, 2, 1)
        np.testing.assert_array_equal(rows[:, 3], np.cumprod(factors) // factors)
        np.testing.assert_array_equal(rows[:, 4], lanes == 0)


def test_atomic_exchange_compare_exchange_and_min(run_msl):
    slots, lowest, winner = np.zeros(4, np.int32), np.full(1, 1 << 30, np.int32), np.full(1, -1, np.int32)
    run_msl("""
kernel void atomics(device atomic_int* slots [[buffer(0)]], device atomic_int* lowest [[buffer(1)]],
                    device atomic_int* winner [[buffer(2)]], uint i [[thread_position_in_grid]]) {
    atomic_exchange_explicit(&slots[i % 4], 7, memory_order_relaxed);
    atomic_fetch_min_explicit(lowest, int(i) * 3 + 11, memory_order_relaxed);
    int expected = -1;  // exactly one thread replaces the -1
    atomic_compare_exchange_weak_explicit(winner, &expected, int(i), memory_order_relaxed, memory_order_relaxed);
}
""", "atomics", (4, 1, 1), (64, 1, 1), {0: slots, 1: lowest, 2: winner})
    np.testing.assert_array_equal(slots, 7)
    assert lowest[0] == 11
    assert 0 <= winner[0] < 256


def test_half_vectors_round_like_numpy(run_msl):
    x = np.linspace(-3, 3, 64, dtype=np.float16).reshape(16, 4)
    out = np.zeros_like(x)
    run_msl("""
kernel void halves(device const half4* x [[buffer(0)]], device half4* out [[buffer(1)]],
                   uint i [[thread_position_in_grid]]) {
    half4 v = x[i];
    out[i] = v * v + half4(0.5h, 1.0h, 1.5h, 2.0h) - v / 3.0h;
}
""", "halves", (1, 1, 1), (16, 1, 1), {0: x, 1: out})
    h = np.float16
    expected = ((x * x).astype(h) + np.array([0.5, 1.0, 1.5, 2.0], h)).astype(h) - (x / h(3)).astype(h)
    np.testing.assert_array_equal(out, expected)


def test_threadgroup_barrier_memory_flags(run_msl):
    out = np.zeros(64, np.float32)
    run_msl("""
kernel void flags(device float* out [[buffer(0)]], uint tid [[thread_index_in_threadgroup]]) {
    threadgroup float a[64];
    a[tid] = float(tid);
    threadgroup_barrier(mem_flags::mem_threadgroup | mem_flags::mem_device);
    out[tid] = a[63 - tid];
    threadgroup_barrier(mem_flags::mem_device);
    threadgroup_barrier(mem_flags::mem_none);
}
""", "flags", (1, 1, 1), (64, 1, 1), {0: out})
    np.testing.assert_array_equal(out, 63 - np.arange(64))
