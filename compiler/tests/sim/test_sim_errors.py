"""What Metal would refuse, and kernels that fail, raise clear Python exceptions."""
from __future__ import annotations

import re
import struct
import time

import numpy as np
import pytest
from triton_metal.sim import SimCompileError, SimLaunchError, build_kernel, executor
from triton_metal.sim import build as sim_build

PRELUDE = "#include <metal_stdlib>\nusing namespace metal;\n"

FILL = """
kernel void fill(device float* out [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    out[i] = 1.0f;
}
"""


def test_barrier_in_divergent_code_is_a_deadlock_error(run_msl):
    out = np.zeros(64, np.float32)
    with pytest.raises(SimLaunchError, match=r"deadlock: threadgroup_barrier not reached by all threads "
                                             r"of threadgroup \(1,0,0\)"):
        run_msl("""
kernel void bad(device float* out [[buffer(0)]], uint tid [[thread_index_in_threadgroup]],
                uint group [[threadgroup_position_in_grid]]) {
    if (group == 1 && tid < 16) threadgroup_barrier(mem_flags::mem_threadgroup);
    out[tid] = 1.0f;
}
""", "bad", (2, 1, 1), (64, 1, 1), {0: out})


def test_too_many_threads_per_threadgroup(run_msl):
    out = np.zeros(2048, np.float32)
    with pytest.raises(SimLaunchError, match="1025 threads exceeds Metal's limit of 1024"):
        run_msl(FILL, "fill", (1, 1, 1), (1025, 1, 1), {0: out})


def test_max_total_threads_attribute_is_enforced(run_msl):
    out = np.zeros(256, np.float32)
    src = "[[max_total_threads_per_threadgroup(64)]]\n" + FILL
    with pytest.raises(SimLaunchError, match=r"max_total_threads_per_threadgroup\(64\)"):
        run_msl(src, "fill", (1, 1, 1), (128, 1, 1), {0: out})


def test_threadgroup_lengths_over_32k(run_msl):
    out = np.zeros(1, np.float32)
    with pytest.raises(SimLaunchError, match="40960 bytes, more than Metal's 32768"):
        run_msl("""
kernel void tg(device float* out [[buffer(0)]], threadgroup float* a [[threadgroup(0)]],
               threadgroup float* b [[threadgroup(1)]]) {
    out[0] = a[0] + b[0];
}
""", "tg", (1, 1, 1), (1, 1, 1), {0: out}, {0: 20480, 1: 20480})


def test_threadgroup_declarations_over_32k(run_msl):
    out = np.zeros(1, np.float32)
    with pytest.raises(SimLaunchError, match="threadgroup memory limit exceeded.*40960 bytes"):
        run_msl("""
kernel void tg(device float* out [[buffer(0)]], uint tid [[thread_index_in_threadgroup]]) {
    threadgroup float a[5120];
    threadgroup float b[5120];
    a[tid] = 1.0f; b[tid] = 2.0f;
    out[0] = a[0] + b[0];
}
""", "tg", (1, 1, 1), (1, 1, 1), {0: out})


def test_missing_buffer(run_msl):
    with pytest.raises(SimLaunchError, match=r"no buffer bound for out \[\[buffer\(0\)\]\]"):
        run_msl(FILL, "fill", (1, 1, 1), (4, 1, 1), {})


def test_compile_error_points_at_the_metal_line():
    src = PRELUDE + """
kernel void broken(device float* out [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    out[i] = undefined_name;
}
"""
    with pytest.raises(SimCompileError) as info:
        build_kernel(src, "broken")
    err = info.value
    assert err.metal_path.endswith(".metal")
    assert re.search(re.escape(err.metal_path) + r":5:\d+: error: .undefined_name", str(err)), str(err)
    with open(err.metal_path) as f:
        assert f.read() == src


def test_unknown_kernel_name():
    with pytest.raises(SimCompileError, match=r"kernel 'nope' not found .*kernels found: fill"):
        build_kernel(PRELUDE + FILL, "nope")


def test_cache_hit_does_not_run_the_compiler():
    src = PRELUDE + FILL.replace("1.0f", "2.0f")
    build_kernel(src, "fill")
    runs = sim_build.compiler_runs
    executor._kernels.clear()  # forget the loaded kernel: only the disk cache is left
    start = time.perf_counter()
    kernel = build_kernel(src, "fill")
    elapsed = time.perf_counter() - start
    assert sim_build.compiler_runs == runs
    assert elapsed < 0.5
    out = np.zeros(4, np.float32)
    kernel.dispatch(grid=(1, 1, 1), threadgroup=(4, 1, 1), buffers={0: out})
    np.testing.assert_array_equal(out, 2.0)


def test_invalid_memory_access_is_an_error_not_a_crash(run_msl):
    with pytest.raises(SimLaunchError, match=r"invalid memory access \(SIGSEGV"):
        run_msl(FILL, "fill", (1, 1, 1), (4, 1, 1), {0: 0})  # a null buffer


def test_integer_division_by_zero_is_an_error_not_a_crash(run_msl):
    x = np.array([1, 2, 0, 4], np.int32)
    with pytest.raises(SimLaunchError, match="SIGFPE"):
        run_msl("""
kernel void div(device int* x [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    x[i] = 100 / x[i];
}
""", "div", (1, 1, 1), (4, 1, 1), {0: x})


def test_stack_overflow_names_the_stack_size(run_msl):
    out = np.zeros(4, np.float32)
    with pytest.raises(SimLaunchError, match="stack overflow .* TRITON_METAL_SIM_STACK_KB"):
        run_msl("""
kernel void big(device float* out [[buffer(0)]], constant uint& n [[buffer(1)]], uint i [[thread_position_in_grid]]) {
    volatile float local[32768];
    for (uint k = 0; k < n; ++k) local[k] = float(k);
    out[i] = local[i];
}
""", "big", (1, 1, 1), (4, 1, 1), {0: out, 1: struct.pack("<I", 32768)})


def test_runs_again_after_a_failed_dispatch(run_msl):
    out = np.zeros(4, np.float32)
    with pytest.raises(SimLaunchError):
        run_msl(FILL, "fill", (1, 1, 1), (4, 1, 1), {0: 0})
    run_msl(FILL, "fill", (1, 1, 1), (4, 1, 1), {0: out})
    np.testing.assert_array_equal(out, 1.0)


def test_buffer_slot_beyond_metal_argument_table():
    src = PRELUDE + """
kernel void far(device float* out [[buffer(31)]], uint i [[thread_position_in_grid]]) {
    out[i] = 1.0f;
}
"""
    with pytest.raises(SimCompileError, match=r"uses \[\[buffer\(31\)\]\], but Metal has 31 buffer argument slots "
                                              r"\(indices 0 to 30\)"):
        build_kernel(src, "far")


def test_threadgroup_slot_beyond_metal_argument_table():
    src = PRELUDE + """
kernel void far(device float* out [[buffer(0)]], threadgroup float* t [[threadgroup(31)]]) {
    out[0] = t[0];
}
"""
    with pytest.raises(SimCompileError, match=r"uses \[\[threadgroup\(31\)\]\], but Metal has 31 threadgroup"):
        build_kernel(src, "far")
