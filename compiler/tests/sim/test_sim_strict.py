"""Strict mode (TRITON_METAL_SIM_STRICT=1): each catch shown by a purposely faulty kernel."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from triton_metal.sim import SimCompileError, SimStrictError


@pytest.fixture(autouse=True)
def strict(monkeypatch):
    monkeypatch.setenv("TRITON_METAL_SIM_STRICT", "1")


COPY = """
kernel void copy(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
                 uint i [[thread_position_in_grid]]) {
    y[i] = x[i];  // no bounds check: the grid covers more threads than elements
}
"""


def test_out_of_bounds_device_load_names_kernel_argument_offset_and_thread(run_msl):
    x, y = np.ones(40, np.float32), np.zeros(64, np.float32)
    with pytest.raises(SimStrictError) as info:
        run_msl(COPY, "copy", (2, 1, 1), (32, 1, 1), {0: x, 1: y})
    msg = str(info.value)
    assert "kernel 'copy'" in msg
    assert ("out-of-bounds load of 4 bytes at byte offset 160 of 'x' [[buffer(0)]], which has 160 bytes, by "
            "thread (8,0,0) of threadgroup (1,0,0) (thread_position_in_grid (40,0,0)), at MSL line 6") in msg


def test_out_of_bounds_device_store(run_msl):
    x, y = np.ones(64, np.float32), np.zeros(33, np.float32)
    with pytest.raises(SimStrictError, match=r"out-of-bounds store of 4 bytes at byte offset 132 of 'y' "
                                             r"\[\[buffer\(1\)\]\], which has 132 bytes, by thread \(1,0,0\) "
                                             r"of threadgroup \(1,0,0\)"):
        run_msl(COPY, "copy", (2, 1, 1), (32, 1, 1), {0: x, 1: y})


def test_in_bounds_kernel_passes(run_msl):
    x, y = np.arange(64, dtype=np.float32), np.zeros(64, np.float32)
    run_msl(COPY, "copy", (2, 1, 1), (32, 1, 1), {0: x, 1: y})
    np.testing.assert_array_equal(y, x)


def test_negative_offset_is_caught(run_msl):
    x, y = np.ones(64, np.float32), np.zeros(64, np.float32)
    with pytest.raises(SimStrictError, match=r"out-of-bounds load of 4 bytes at byte offset -4 of 'x'"):
        run_msl("""
kernel void prev(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
                 uint i [[thread_position_in_grid]]) {
    y[i] = x[int(i) - 1];
}
""", "prev", (1, 1, 1), (64, 1, 1), {0: x, 1: y})


def test_out_of_bounds_threadgroup_array(run_msl):
    out = np.zeros(32, np.float32)
    with pytest.raises(SimStrictError, match=r"out-of-bounds threadgroup store of 4 bytes .* by thread \(31,0,0\) "
                                             r"of threadgroup \(0,0,0\).*MSL line 7"):
        run_msl("""
kernel void shift(device float* out [[buffer(0)]], uint tid [[thread_index_in_threadgroup]]) {
    threadgroup float a[32];
    threadgroup float b[32];
    a[tid + 1] = 1.0f;  // thread 31 writes a[32]
    b[tid] = 2.0f;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    out[tid] = a[tid] + b[tid];
}
""", "shift", (1, 1, 1), (32, 1, 1), {0: out})


def test_out_of_bounds_threadgroup_parameter(run_msl):
    out = np.zeros(8, np.float32)
    with pytest.raises(SimStrictError, match=r"out-of-bounds threadgroup store .* thread \(4,0,0\)"):
        run_msl("""
kernel void over(device float* out [[buffer(0)]], threadgroup float* tmp [[threadgroup(0)]],
                 uint tid [[thread_index_in_threadgroup]]) {
    tmp[tid] = 1.0f;  // 16 bytes bound: 4 floats
    threadgroup_barrier(mem_flags::mem_threadgroup);
    out[tid] = tmp[tid];
}
""", "over", (1, 1, 1), (8, 1, 1), {0: out}, {0: 16})


def test_uninitialised_threadgroup_read(run_msl):
    out = np.zeros(64, np.float32)
    with pytest.raises(SimStrictError, match=r"read of uninitialised threadgroup memory .* byte offset 4.*"
                                             r"thread \(0,0,0\)"):
        run_msl("""
kernel void uninit(device float* out [[buffer(0)]], uint tid [[thread_index_in_threadgroup]]) {
    threadgroup float a[64];
    if (tid != 1) a[tid] = float(tid);  // a[1] is never written
    threadgroup_barrier(mem_flags::mem_threadgroup);
    out[tid] = a[(tid + 1) % 64];
}
""", "uninit", (1, 1, 1), (64, 1, 1), {0: out})


def test_threadgroup_race_without_barrier(run_msl):
    out = np.zeros(64, np.float32)
    # The last thread to reach the barrier goes on first: thread 63 rewrites a[63] before thread 31 reads it.
    with pytest.raises(SimStrictError, match=r"threadgroup memory race at threadgroup byte offset 252: thread "
                                             r"\(63,0,0\) .* wrote it and then thread \(31,0,0\) .* read it "
                                             r"\(MSL line 8\) with no threadgroup_barrier in between"):
        run_msl("""
kernel void racy(device float* out [[buffer(0)]], uint tid [[thread_index_in_threadgroup]]) {
    threadgroup float a[64];
    a[tid] = float(tid);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    float other = a[(tid + 32) % 64];
    // missing threadgroup_barrier: simdgroup 1 overwrites what simdgroup 0 has just read
    a[tid] = 2.0f * float(tid);
    out[tid] = other;
}
""", "racy", (1, 1, 1), (64, 1, 1), {0: out})


def test_replicated_threads_writing_the_same_value_do_not_race(run_msl):
    out = np.zeros(64, np.float32)
    run_msl("""
kernel void same(device float* out [[buffer(0)]], uint tid [[thread_index_in_threadgroup]]) {
    threadgroup float a[32];
    a[tid % 32] = float(tid % 32);  // both simdgroups store the same values
    threadgroup_barrier(mem_flags::mem_threadgroup);
    out[tid] = a[31 - tid % 32];
}
""", "same", (1, 1, 1), (64, 1, 1), {0: out})
    np.testing.assert_array_equal(out, 31 - np.arange(64) % 32)


def test_barriers_at_different_calls(run_msl):
    out = np.zeros(64, np.float32)
    with pytest.raises(SimStrictError, match=r"met at different threadgroup_barrier calls: .* MSL line 6, "
                                             r".* MSL line 8"):
        run_msl("""
kernel void split(device float* out [[buffer(0)]], uint tid [[thread_index_in_threadgroup]]) {
    if (tid < 32) {
        threadgroup_barrier(mem_flags::mem_threadgroup);
    } else {
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    out[tid] = 1.0f;
}
""", "split", (1, 1, 1), (64, 1, 1), {0: out})


def test_barrier_not_reached_by_every_thread(run_msl):
    out = np.zeros(64, np.float32)
    with pytest.raises(SimStrictError.__mro__[1], match=r"deadlock: threadgroup_barrier not reached by all threads "
                                                        r"of threadgroup \(0,0,0\): 32 of 64 threads wait"):
        run_msl("""
kernel void early(device float* out [[buffer(0)]], uint tid [[thread_index_in_threadgroup]]) {
    if (tid >= 32) return;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    out[tid] = 1.0f;
}
""", "early", (1, 1, 1), (64, 1, 1), {0: out})


def test_mixing_address_spaces_does_not_compile(run_msl):
    out = np.zeros(32, np.float32)
    with pytest.raises(SimCompileError, match=r":6:\d+: error: conversion from .ptr<\[\.\.\.\],0>. to "
                                              r"non-scalar type .ptr<\[\.\.\.\],1>. requested"):
        run_msl("""
kernel void mixed(device float* out [[buffer(0)]], uint tid [[thread_index_in_threadgroup]]) {
    threadgroup float a[32];
    threadgroup float* p = out;  // a device pointer is not a threadgroup pointer
    p[tid] = 1.0f;
    out[tid] = a[tid];
}
""", "mixed", (1, 1, 1), (32, 1, 1), {0: out})



PROBE = """
from triton_metal.sim import strict_enabled

def test_probe():
    assert strict_enabled()
"""


def test_pytest_option_sets_strict_mode(tmp_path):
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k != "TRITON_METAL_SIM_STRICT"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "triton_metal.sim.pytest_plugin",
                           "--sim-strict", "-p", "no:cacheprovider", str(tmp_path)],
                          env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_triton_kernel_without_mask_is_caught_with_the_argument_name():
    torch = pytest.importorskip("torch")
    import triton
    import triton.language as tl

    @triton.jit
    def unmasked_copy(x_ptr, y_ptr, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        tl.store(y_ptr + offs, tl.load(x_ptr + offs))  # the last program reads and writes past n

    x, y = torch.rand(1000), torch.empty(1000)
    # A load of 4 or 8 bytes: the two elements a thread holds are one float2 load (codegen/vector_access).
    with pytest.raises(SimStrictError, match=r"kernel 'unmasked_copy' .*out-of-bounds load of [48] bytes at byte offset "
                                             r"4000 of 'x_ptr' \[\[buffer\(0\)\]\], which has 4000 bytes, by thread "
                                             r"\(\d+,0,0\) of threadgroup \(3,0,0\)"):
        unmasked_copy[(4,)](x, y, BLOCK=256)


def test_half_elements_of_one_word_written_by_two_simdgroups_do_not_race(run_msl):
    # Each simdgroup's first lane writes its own half of partial[]: two halves share a 4-byte word.
    x = np.arange(64, dtype=np.float16)
    out = np.zeros(2, np.float16)
    run_msl("""
kernel void halves(device const half* x [[buffer(0)]], device half* out [[buffer(1)]],
                   uint tid [[thread_index_in_threadgroup]], ushort lane [[thread_index_in_simdgroup]],
                   ushort simd [[simdgroup_index_in_threadgroup]]) {
    threadgroup half partial[2];
    half s = simd_max(x[tid]);
    if (lane == 0) partial[simd] = s;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (tid < 2) out[tid] = partial[tid];
}
""", "halves", (1, 1, 1), (64, 1, 1), {0: x, 1: out})
    np.testing.assert_array_equal(out, [31, 63])


CONSTANT_MISUSE = {
    "a store through a constant pointer": "    w[tid] = 0.0f;",
    "a constant pointer as a device pointer": "    device const float* d = w;\n    out[tid] = d[tid];",
    "an assignment to a constant scalar": "    n = 3u;",
}


@pytest.mark.parametrize("misuse", list(CONSTANT_MISUSE))
def test_constant_address_space_misuse_does_not_compile(misuse, run_msl):
    with pytest.raises(SimCompileError, match=r"\.metal:6:\d+: +(error|required from here)"):
        run_msl(f"""
kernel void misuse(device float* out [[buffer(0)]], constant float* w [[buffer(1)]],
                   constant uint& n [[buffer(2)]], uint tid [[thread_index_in_threadgroup]]) {{
{CONSTANT_MISUSE[misuse]}
    out[tid] = w[tid] * float(n);
}}
""", "misuse", (1, 1, 1), (4, 1, 1), {0: np.zeros(4, np.float32), 1: np.ones(4, np.float32),
                                       2: np.array([2], np.uint32)})


def test_constant_buffer_reads_are_bounds_checked(run_msl):
    w, out = np.arange(3, dtype=np.float32), np.zeros(4, np.float32)
    with pytest.raises(SimStrictError, match=r"out-of-bounds load of 4 bytes at byte offset 12 of 'w' "
                                             r"\[\[buffer\(1\)\]\], which has 12 bytes"):
        run_msl("""
kernel void weights(device float* out [[buffer(0)]], constant float* w [[buffer(1)]],
                    constant uint& n [[buffer(2)]], uint tid [[thread_index_in_threadgroup]]) {
    out[tid] = w[tid] * float(n);
}
""", "weights", (1, 1, 1), (4, 1, 1), {0: out, 1: w, 2: np.array([2], np.uint32)})


SCALE = """
kernel void scale(device int* x [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    x[i] = x[i] * 3;  // signed overflow: undefined in MSL as in C++
}
"""


def test_signed_integer_overflow_traps(run_msl):
    x = np.array([2**31 - 1] * 32, np.int32)
    with pytest.raises(Exception, match=r"undefined integer behaviour \(signed overflow"):
        run_msl(SCALE, "scale", (1, 1, 1), (32, 1, 1), {0: x})


def test_signed_arithmetic_without_overflow_runs(run_msl):
    x = np.arange(32, dtype=np.int32)
    run_msl(SCALE, "scale", (1, 1, 1), (32, 1, 1), {0: x})
    np.testing.assert_array_equal(x, np.arange(32, dtype=np.int32) * 3)
