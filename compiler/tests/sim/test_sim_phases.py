"""Kernels split into phases at their top-level barriers and simd collectives (sim/phase_split.py).

Each kernel runs both ways, phase by phase and on fibers (TRITON_METAL_SIM_PHASES=0), and both
results are checked against numpy; kernels the splitter must leave alone are shown to run on fibers.
"""
from __future__ import annotations

import re
import struct

import numpy as np
import pytest
from triton_metal.sim import SimCompileError, SimLaunchError, build_kernel, phase_split
from triton_metal.sim.build import PHASES_ENV

PRELUDE = "#include <metal_stdlib>\nusing namespace metal;\n"


@pytest.fixture(autouse=True)
def plain_build(monkeypatch):
    """Phases are a property of the plain build: strict mode runs the instrumented one, on fibers."""
    monkeypatch.delenv("TRITON_METAL_SIM_STRICT", raising=False)


@pytest.fixture(params=["phases", "fibers"])
def mode(request, monkeypatch):
    monkeypatch.setenv(PHASES_ENV, "1" if request.param == "phases" else "0")
    return request.param


ROW_SOFTMAX = """
kernel void row_softmax(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
                        uint row [[threadgroup_position_in_grid]], uint tid [[thread_index_in_threadgroup]],
                        ushort lane [[thread_index_in_simdgroup]], ushort simd [[simdgroup_index_in_threadgroup]]) {
    threadgroup float partial[4];
    float v[2];
    for (uint i = 0; i < 2; ++i) v[i] = x[row * 256 + tid * 2 + i];
    float m = max(v[0], v[1]);
    m = simd_max(m);
    if (lane == 0) partial[simd] = m;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    m = max(max(partial[0], partial[1]), max(partial[2], partial[3]));
    threadgroup_barrier(mem_flags::mem_threadgroup);
    float e[2];
    for (uint i = 0; i < 2; ++i) e[i] = exp(v[i] - m);
    float s = simd_sum(e[0] + e[1]);
    if (lane == 0) partial[simd] = s;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    s = partial[0] + partial[1] + partial[2] + partial[3];
    for (uint i = 0; i < 2; ++i) y[row * 256 + tid * 2 + i] = e[i] / s;
}
"""


def test_row_softmax_both_ways(run_msl, mode):
    x = np.random.default_rng(0).standard_normal((64, 256)).astype(np.float32)
    y = np.zeros_like(x)
    kernel = run_msl(ROW_SOFTMAX, "row_softmax", (64, 1, 1), (128, 1, 1), {0: x, 1: y})
    assert (kernel.phases > 0) == (mode == "phases")
    e = np.exp(x - x.max(1, keepdims=True))
    np.testing.assert_allclose(y, e / e.sum(1, keepdims=True), rtol=1e-5, atol=1e-7)


def test_the_softmax_splits_at_each_barrier_and_before_each_collective(run_msl, monkeypatch):
    monkeypatch.setenv(PHASES_ENV, "1")
    kernel = run_msl(ROW_SOFTMAX, "row_softmax", (1, 1, 1), (128, 1, 1), {0: np.zeros(256, np.float32),
                                                                     1: np.zeros(256, np.float32)})
    assert kernel.phases == 6  # 3 barriers + 2 collectives + 1


SCANS_AND_SHUFFLES = """
kernel void lanes(device const int* x [[buffer(0)]], device int* out [[buffer(1)]],
                  uint gid [[thread_position_in_grid]], ushort lane [[thread_index_in_simdgroup]]) {
    int v = x[gid];
    int inclusive = simd_prefix_inclusive_sum(v);
    int exclusive = simd_prefix_exclusive_sum(v);
    int flipped = simd_shuffle_xor(v, ushort(5));
    int first = simd_broadcast_first(int(v * 2));
    int down = simd_shuffle_down(v, ushort(3));
    out[gid * 5 + 0] = inclusive;
    out[gid * 5 + 1] = exclusive;
    out[gid * 5 + 2] = flipped;
    out[gid * 5 + 3] = first;
    out[gid * 5 + 4] = down;
}
"""


def test_consecutive_collectives_read_their_own_values(run_msl, mode):
    # Five collectives in a row: each phase both reads one snapshot and deposits the next.
    n = 96  # three simdgroups
    x = np.random.default_rng(1).integers(-100, 100, n).astype(np.int32)
    out = np.zeros(n * 5, np.int32)
    kernel = run_msl(SCANS_AND_SHUFFLES, "lanes", (1, 1, 1), (n, 1, 1), {0: x, 1: out})
    assert (kernel.phases == 6) == (mode == "phases")
    got = out.reshape(n, 5)
    groups = x.reshape(-1, 32)
    lane = np.arange(32)
    np.testing.assert_array_equal(got[:, 0], np.cumsum(groups, 1).ravel())
    np.testing.assert_array_equal(got[:, 1], (np.cumsum(groups, 1) - groups).ravel())
    np.testing.assert_array_equal(got[:, 2], groups[:, lane ^ 5].ravel())
    np.testing.assert_array_equal(got[:, 3], np.repeat(groups[:, 0] * 2, 32))
    np.testing.assert_array_equal(got[:, 4], np.where(lane + 3 < 32, groups[:, np.minimum(lane + 3, 31)], groups).ravel())


def test_a_partial_last_simdgroup_reduces_over_its_lanes_only(run_msl, mode):
    n = 48  # 32 + 16 lanes
    x = np.arange(1, n + 1, dtype=np.float32)
    out = np.zeros(n, np.float32)
    run_msl("""
kernel void partial(device const float* x [[buffer(0)]], device float* out [[buffer(1)]],
                    uint tid [[thread_index_in_threadgroup]]) {
    float s = simd_sum(x[tid]);
    out[tid] = s;
}
""", "partial", (1, 1, 1), (n, 1, 1), {0: x, 1: out})
    np.testing.assert_array_equal(out, np.r_[np.full(32, x[:32].sum()), np.full(16, x[32:].sum())])


LOCALS = """
kernel void carried(device const float* x [[buffer(0)]], device float* out [[buffer(1)]],
                    uint gid [[thread_position_in_grid]], uint tid [[thread_index_in_threadgroup]]) {
    threadgroup float shared[64];
    const uint twice = tid * 2;
    device const float* src = x + gid;
    float acc[3] = {};
    int count = 0;
    acc[1] = src[0];
    shared[tid] = acc[1] + float(twice);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    acc[0] = shared[63 - tid];
    count += 1;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    acc[2] = simd_max(acc[0]);
    out[gid] = acc[0] + acc[1] + acc[2] + float(count) + float(twice);
}
"""


def test_locals_live_across_phases(run_msl, mode):
    # An array zero-initialised with `= {}`, a const, a pointer and a counter defined before the
    # barriers and read after them keep their values (they move into the per-thread struct).
    x = np.random.default_rng(2).standard_normal(128).astype(np.float32)
    out = np.zeros(128, np.float32)
    run_msl(LOCALS, "carried", (2, 1, 1), (64, 1, 1), {0: x, 1: out})
    tid = np.tile(np.arange(64), 2)
    shared = x.reshape(2, 64) + 2.0 * np.arange(64)
    mirrored = shared[:, ::-1].ravel()
    top = np.repeat(mirrored.reshape(-1, 32).max(1), 32)
    np.testing.assert_allclose(out, mirrored + x + top + 1 + 2 * tid, rtol=1e-6)


def test_the_reverse_schedule_gives_the_same_result(run_msl, mode, monkeypatch):
    monkeypatch.setenv("TRITON_METAL_SIM_SCHEDULE", "reverse")
    x = np.random.default_rng(3).standard_normal((8, 256)).astype(np.float32)
    y = np.zeros_like(x)
    run_msl(ROW_SOFTMAX, "row_softmax", (8, 1, 1), (128, 1, 1), {0: x, 1: y})
    e = np.exp(x - x.max(1, keepdims=True))
    np.testing.assert_allclose(y, e / e.sum(1, keepdims=True), rtol=1e-5, atol=1e-7)


# ---- kernels that stay on fibers -----------------------------------------------------------------
STAY_ON_FIBERS = {
    "a collective in a loop": """
kernel void k(device float* out [[buffer(0)]], uint tid [[thread_index_in_threadgroup]]) {
    float v = float(tid);
    for (ushort m = 1; m < 32; m <<= 1) v += simd_shuffle_xor(v, m);
    out[tid] = v;
}""",
    "a barrier in a branch": """
kernel void k(device float* out [[buffer(0)]], uint tid [[thread_index_in_threadgroup]]) {
    if (out[0] >= 0.0f) { threadgroup_barrier(mem_flags::mem_threadgroup); }
    out[tid] = simd_sum(1.0f);
}""",
    "an early return": """
kernel void k(device float* out [[buffer(0)]], uint tid [[thread_index_in_threadgroup]]) {
    float s = simd_sum(1.0f);
    if (tid >= 64) return;
    out[tid] = s;
}""",
    "a collective in a helper function": """
inline float total(float v) { return simd_sum(v); }
kernel void k(device float* out [[buffer(0)]], uint tid [[thread_index_in_threadgroup]]) {
    out[tid] = total(1.0f);
}""",
    "a value with a side effect": """
kernel void k(device float* out [[buffer(0)]], uint tid [[thread_index_in_threadgroup]]) {
    float v = 1.0f;
    float s = simd_sum(v += 1.0f);
    out[tid] = s + v;
}""",
    "no collective at all": """
kernel void k(device float* out [[buffer(0)]], uint tid [[thread_index_in_threadgroup]]) {
    out[tid] = 2.0f;
}""",
}


@pytest.mark.parametrize("why", list(STAY_ON_FIBERS))
def test_kernels_the_splitter_leaves_on_fibers(run_msl, why, monkeypatch):
    monkeypatch.setenv(PHASES_ENV, "1")
    assert phase_split.split(PRELUDE + STAY_ON_FIBERS[why], "k") is None
    out = np.zeros(64, np.float32)
    kernel = run_msl(STAY_ON_FIBERS[why], "k", (1, 1, 1), (64, 1, 1), {0: out})
    assert kernel.phases == 0
    assert np.all(out > 0)  # and they still run


# ---- errors in a phased launch -------------------------------------------------------------------
def test_invalid_access_in_a_phased_kernel_is_an_error_and_the_next_launch_runs(run_msl, monkeypatch):
    monkeypatch.setenv(PHASES_ENV, "1")
    src = """
kernel void wild(device float* out [[buffer(0)]], constant uint& bad [[buffer(1)]],
                 uint tid [[thread_index_in_threadgroup]]) {
    float s = simd_sum(float(tid));
    device float* p = out + (bad ? 0x40000000u : tid);
    *p = s;
}
"""
    out = np.zeros(32, np.float32)
    with pytest.raises(SimLaunchError, match=r"invalid memory access \(SIGSEGV"):
        kernel = run_msl(src, "wild", (4, 1, 1), (32, 1, 1), {0: out, 1: struct.pack("<I", 1)})
    kernel = run_msl(src, "wild", (1, 1, 1), (32, 1, 1), {0: out, 1: struct.pack("<I", 0)})
    assert kernel.phases == 2
    np.testing.assert_array_equal(out, np.full(32, sum(range(32)), np.float32))


def test_threadgroup_limit_in_a_phased_kernel(run_msl, monkeypatch):
    monkeypatch.setenv(PHASES_ENV, "1")
    with pytest.raises(SimLaunchError, match="threadgroup memory limit exceeded.*40960 bytes"):
        run_msl("""
kernel void tg(device float* out [[buffer(0)]], uint tid [[thread_index_in_threadgroup]]) {
    threadgroup float a[5120];
    threadgroup float b[5120];
    a[tid] = 1.0f;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    b[tid] = a[tid];
    out[tid] = b[0];
}
""", "tg", (1, 1, 1), (4, 1, 1), {0: np.zeros(4, np.float32)})


def test_compile_errors_after_a_split_point_at_the_metal_line(monkeypatch):
    monkeypatch.setenv(PHASES_ENV, "1")
    src = PRELUDE + """
kernel void broken(device float* out [[buffer(0)]], uint tid [[thread_index_in_threadgroup]]) {
    float s = simd_sum(1.0f);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    out[tid] = s + undefined_name;
}
"""
    with pytest.raises(SimCompileError) as info:
        build_kernel(src, "broken")
    line = src.splitlines().index("    out[tid] = s + undefined_name;") + 1
    assert re.search(rf"\.metal:{line}:\d+: error: .undefined_name. was not declared", str(info.value))
