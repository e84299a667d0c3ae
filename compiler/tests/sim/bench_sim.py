"""Timings of the Metal simulator (not a test): python compiler/tests/sim/bench_sim.py

Cold builds use a fresh cache directory; dispatch times are the best of 5 after one warm-up.
"""
from __future__ import annotations

import os
import struct
import tempfile
import time

import numpy as np

PRELUDE = "#include <metal_stdlib>\nusing namespace metal;\n"
VADD = PRELUDE + """
kernel void vadd(device const {T}* a [[buffer(0)]], device const {T}* b [[buffer(1)]],
                 device {T}* c [[buffer(2)]], constant uint& n [[buffer(3)]], uint i [[thread_position_in_grid]]) {{
    if (i < n) c[i] = a[i] + b[i];
}}
"""
SOFTMAX = PRELUDE + """
kernel void softmax(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
                    constant uint& ncols [[buffer(2)]], uint row [[threadgroup_position_in_grid]],
                    uint tid [[thread_index_in_threadgroup]], uint lane [[thread_index_in_simdgroup]],
                    uint sg [[simdgroup_index_in_threadgroup]], uint nsg [[simdgroups_per_threadgroup]],
                    uint ntg [[threads_per_threadgroup]]) {
    threadgroup float partial[32];
    device const float* xr = x + row * ncols;
    float v[8];
    float m = -INFINITY;
    for (uint k = 0; k < 8; ++k) { v[k] = xr[tid + k * ntg]; m = max(m, v[k]); }
    m = simd_max(m);
    if (lane == 0) partial[sg] = m;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    m = partial[0];
    for (uint i = 1; i < nsg; ++i) m = max(m, partial[i]);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    float s = 0.0f;
    for (uint k = 0; k < 8; ++k) { v[k] = exp(v[k] - m); s += v[k]; }
    s = simd_sum(s);
    if (lane == 0) partial[sg] = s;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    s = 0.0f;
    for (uint i = 0; i < nsg; ++i) s += partial[i];
    for (uint k = 0; k < 8; ++k) y[row * ncols + tid + k * ntg] = v[k] / s;
}
"""


def best_ms(kernel, grid, threadgroup, buffers, repeat=5):
    kernel.dispatch(grid, threadgroup, buffers)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        kernel.dispatch(grid, threadgroup, buffers)
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def main():
    os.environ["TRITON_METAL_SIM_CACHE_DIR"] = tempfile.mkdtemp(prefix="tm-sim-bench-")
    from triton_metal.sim import build, build_kernel

    start = time.perf_counter()
    build.runtime_library()
    print(f"cold build, runtime library: {time.perf_counter() - start:.3f} s")
    start = time.perf_counter()
    build_kernel(VADD.format(T="float"), "vadd")
    print(f"cold build, vector add kernel: {time.perf_counter() - start:.3f} s")

    n = 1 << 20
    for msl_type, np_type in (("float", np.float32), ("half", np.float16)):
        k = build_kernel(VADD.format(T=msl_type), "vadd")
        a, b, c = np.random.rand(n).astype(np_type), np.random.rand(n).astype(np_type), np.zeros(n, np_type)
        ms = best_ms(k, (n // 256, 1, 1), (256, 1, 1), {0: a, 1: b, 2: c, 3: struct.pack("<I", n)})
        assert np.array_equal(c, a + b)
        print(f"vector add {msl_type} 2^20 (4096 x 256 threads): {ms:.1f} ms")

    rows, cols = 4096, 1024
    start = time.perf_counter()
    k = build_kernel(SOFTMAX, "softmax")
    print(f"cold build, softmax kernel: {time.perf_counter() - start:.3f} s")
    x, y = np.random.randn(rows, cols).astype(np.float32), np.zeros((rows, cols), np.float32)
    ms = best_ms(k, (rows, 1, 1), (128, 1, 1), {0: x, 1: y, 2: struct.pack("<I", cols)}, repeat=3)
    e = np.exp(x - x.max(1, keepdims=True))
    assert np.allclose(y, e / e.sum(1, keepdims=True), rtol=1e-5, atol=1e-7)
    print(f"row softmax {rows}x{cols} (128 threads per row, simd + threadgroup reductions): {ms:.1f} ms")


if __name__ == "__main__":
    main()
