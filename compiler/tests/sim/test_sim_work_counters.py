"""Work counters of count_traffic (barriers, simdgroup_matrix operations, FMAs, threadgroup memory), each
checked against a hand count of the kernel."""
from __future__ import annotations

import numpy as np
import pytest
from triton_metal.sim import count_traffic

BARRIERS = """
kernel void barriers(device float* out [[buffer(0)]], uint tid [[thread_index_in_threadgroup]],
                     uint gid [[thread_position_in_grid]]) {
    threadgroup float a[64];
    threadgroup half b[10];
    for (uint round = 0; round < 3; ++round) {
        a[tid] = float(tid + round);
        threadgroup_barrier(mem_flags::mem_threadgroup);
        out[gid] = a[63 - tid];
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    b[tid % 10] = half(1);
    threadgroup_barrier(mem_flags::mem_threadgroup);
}
"""


def _launch(run_msl, *args, **kwargs):
    with count_traffic() as traffic:
        run_msl(*args, **kwargs)
    assert len(traffic.launches) == 1
    return traffic.launches[0]


def test_barriers_are_counted_once_per_threadgroup(run_msl):
    out = np.zeros(128, np.float32)
    s = _launch(run_msl, BARRIERS, "barriers", (2, 1, 1), (64, 1, 1), {0: out})
    np.testing.assert_array_equal(out, np.tile(63 - np.arange(64) + 2, 2).astype(np.float32))
    assert s.barriers == 2 * 7  # two threadgroups, 3 * 2 + 1 barriers each (not 64 threads * 7)
    assert s.barriers_per_program == 7


def test_threadgroup_memory_is_what_one_threadgroup_allocated(run_msl):
    s = _launch(run_msl, BARRIERS, "barriers", (2, 1, 1), (64, 1, 1), {0: np.zeros(128, np.float32)})
    assert s.threadgroup_memory_bytes == 64 * 4 + 32  # float[64], half[10] rounded up to 16 bytes


def test_threadgroup_lengths_count_in_the_footprint(run_msl):
    s = _launch(run_msl, """
kernel void dyn(device float* out [[buffer(0)]], threadgroup float* t [[threadgroup(0)]],
                uint tid [[thread_index_in_threadgroup]]) {
    t[tid] = 1.0f;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    out[tid] = t[31 - tid];
}
""", "dyn", (1, 1, 1), (32, 1, 1), {0: np.zeros(32, np.float32)}, threadgroup_lengths={0: 128})
    assert s.threadgroup_memory_bytes == 128
    assert s.barriers == 1


MATMUL = """
kernel void tiles(device const half* a [[buffer(0)]], device const half* b [[buffer(1)]],
                  device float* c [[buffer(2)]], ushort simd [[simdgroup_index_in_threadgroup]],
                  uint3 program [[threadgroup_position_in_grid]], uint tid [[thread_index_in_threadgroup]]) {
    // 2 simdgroups per program, each one 8x8 tile of c = a @ b over K = 16 (a: 8 x 16, b: 16 x 16),
    // a staged through threadgroup memory: 2 loads of a and 2 of b, 2 multiply-accumulates, 1 store.
    threadgroup half sa[8 * 16];
    for (uint i = tid; i < 8 * 16; i += 64) sa[i] = a[i];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    simdgroup_float8x8 acc = make_filled_simdgroup_matrix<float, 8>(0.0f);
    for (uint k = 0; k < 16; k += 8) {
        simdgroup_half8x8 ma, mb;
        simdgroup_load(ma, sa + k, 16);
        simdgroup_load(mb, b + k * 16 + simd * 8, 16);
        simdgroup_multiply_accumulate(acc, ma, mb, acc);
    }
    simdgroup_store(acc, c + program.x * 128 + simd * 8, 16);
}
"""


@pytest.fixture
def matmul_launch(run_msl):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((8, 16)).astype(np.float16)
    b = rng.standard_normal((16, 16)).astype(np.float16)
    c = np.zeros((3, 8, 16), np.float32)
    s = _launch(run_msl, MATMUL, "tiles", (3, 1, 1), (64, 1, 1), {0: a, 1: b, 2: c})
    for p in range(3):
        np.testing.assert_allclose(c[p], a.astype(np.float32) @ b.astype(np.float32), rtol=1e-5, atol=1e-5)
    return s


def test_simdgroup_matrix_operations_are_counted_once_per_simdgroup(matmul_launch):
    s = matmul_launch
    programs_simdgroups = 3 * 2
    assert s.simdgroup_matrix_loads == programs_simdgroups * 4
    assert s.simdgroup_matrix_multiply_accumulates == programs_simdgroups * 2
    assert s.simdgroup_matrix_stores == programs_simdgroups * 1
    assert s.fmas == programs_simdgroups * 2 * 8 * 8 * 8


def test_threadgroup_bytes_read_per_fma(matmul_launch):
    s = matmul_launch
    # threadgroup reads: each lane of each simdgroup reads its share (2 of 64 elements) of two 8x8 half tiles
    assert s.threadgroup_bytes_read == 3 * 2 * 2 * 64 * 2
    assert s.threadgroup_bytes_read_per_fma == pytest.approx(s.threadgroup_bytes_read / (3 * 2 * 2 * 512))
    assert s.as_dict()["threadgroup_bytes_read_per_fma"] == s.threadgroup_bytes_read_per_fma


def test_no_fma_means_no_ratio(run_msl):
    s = _launch(run_msl, BARRIERS, "barriers", (1, 1, 1), (64, 1, 1), {0: np.zeros(64, np.float32)})
    assert s.fmas == 0 and s.threadgroup_bytes_read_per_fma is None
