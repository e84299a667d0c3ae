"""Elementwise kernels, grids and builtins, each checked against numpy."""
from __future__ import annotations

import struct
import threading

import numpy as np
import pytest

VADD = """
kernel void vadd(device const {T}* a [[buffer(0)]], device const {T}* b [[buffer(1)]],
                 device {T}* c [[buffer(2)]], constant uint& n [[buffer(3)]],
                 uint i [[thread_position_in_grid]]) {{
    if (i < n) c[i] = a[i] + b[i];
}}
"""


@pytest.mark.parametrize("msl_type, np_type", [("float", np.float32), ("half", np.float16)])
def test_vector_add(run_msl, msl_type, np_type):
    n = 10_000  # not a multiple of the threadgroup: the tail is masked
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(n).astype(np_type), rng.standard_normal(n).astype(np_type)
    c = np.zeros(n, np_type)
    run_msl(VADD.format(T=msl_type), "vadd", ((n + 255) // 256, 1, 1), (256, 1, 1),
        {0: a, 1: b, 2: c, 3: struct.pack("<I", n)})
    np.testing.assert_array_equal(c, a + b)


def test_addresses_from_torch_tensors(run_msl):
    torch = pytest.importorskip("torch")
    a, b = torch.arange(1000, dtype=torch.float32), torch.ones(1000)
    c = torch.empty(1000)
    run_msl(VADD.format(T="float"), "vadd", (4, 1, 1), (256, 1, 1),
        {0: a.data_ptr(), 1: b.data_ptr(), 2: c.data_ptr(), 3: struct.pack("<I", 1000)})
    assert torch.equal(c, a + b)


def test_2d_grid_transpose(run_msl):
    rows, cols = 37, 50
    x = np.arange(rows * cols, dtype=np.float32).reshape(rows, cols)
    y = np.zeros((cols, rows), np.float32)
    run_msl("""
kernel void transpose(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
                      constant uint2& shape [[buffer(2)]], uint2 gid [[thread_position_in_grid]]) {
    if (gid.x < shape.y && gid.y < shape.x) y[gid.x * shape.x + gid.y] = x[gid.y * shape.y + gid.x];
}
""", "transpose", ((cols + 7) // 8, (rows + 3) // 4, 1), (8, 4, 1), {0: x, 1: y, 2: struct.pack("<II", rows, cols)})
    np.testing.assert_array_equal(y, x.T)


def test_3d_builtins(run_msl):
    grid, tg = (3, 2, 2), (4, 2, 5)  # 40 threads: one full and one partial simdgroup
    n_tg, n_thr = int(np.prod(grid)), int(np.prod(tg))
    out = np.zeros((n_tg * n_thr, 22), np.uint32)
    run_msl("""
kernel void builtins(device uint* out [[buffer(0)]],
                     uint3 pos [[thread_position_in_grid]], uint3 lpos [[thread_position_in_threadgroup]],
                     uint3 tgpos [[threadgroup_position_in_grid]], uint3 ntgs [[threadgroups_per_grid]],
                     uint3 tpt [[threads_per_threadgroup]], uint3 tpg [[threads_per_grid]],
                     ushort tid [[thread_index_in_threadgroup]], ushort lane [[thread_index_in_simdgroup]],
                     ushort sg [[simdgroup_index_in_threadgroup]], uint nsg [[simdgroups_per_threadgroup]],
                     uint width [[threads_per_simdgroup]]) {
    uint flat_tg = (tgpos.z * ntgs.y + tgpos.y) * ntgs.x + tgpos.x;
    device uint* o = out + (flat_tg * (tpt.x * tpt.y * tpt.z) + tid) * 22;
    uint v[22] = {pos.x, pos.y, pos.z, lpos.x, lpos.y, lpos.z, tgpos.x, tgpos.y, tgpos.z, ntgs.x, ntgs.y, ntgs.z,
                  tpt.x, tpt.y, tpt.z, tpg.x, tpg.y, tpg.z, tid, lane, sg, nsg * 1000 + width};
    for (int i = 0; i < 22; ++i) o[i] = v[i];
}
""", "builtins", grid, tg, {0: out})
    expected = []
    for gz in range(grid[2]):
        for gy in range(grid[1]):
            for gx in range(grid[0]):
                for t in range(n_thr):
                    lx, ly, lz = t % tg[0], t // tg[0] % tg[1], t // (tg[0] * tg[1])
                    expected.append([gx * tg[0] + lx, gy * tg[1] + ly, gz * tg[2] + lz, lx, ly, lz, gx, gy, gz,
                                     *grid, *tg, *(g * t_ for g, t_ in zip(grid, tg)), t, t % 32, t // 32,
                                     2 * 1000 + 32])
    np.testing.assert_array_equal(out, np.array(expected, np.uint32))


def test_zero_grid_runs_nothing(run_msl):
    c = np.full(4, 7.0, np.float32)
    run_msl(VADD.format(T="float"), "vadd", (0, 1, 1), (256, 1, 1), {0: c, 1: c, 2: c, 3: struct.pack("<I", 4)})
    np.testing.assert_array_equal(c, 7.0)


def test_select_as_type_clamp(run_msl):
    x = np.array([-2.5, -0.0, 0.25, 1.5, np.inf, 3.0, -1.0, 0.75], np.float32)
    out_sel, out_bits, out_clamp = (np.zeros(8, np.float32), np.zeros(8, np.uint32), np.zeros(8, np.float32))
    run_msl("""
kernel void misc(device const float* x [[buffer(0)]], device float* sel [[buffer(1)]],
                 device uint* bits [[buffer(2)]], device float* cl [[buffer(3)]], uint i [[thread_position_in_grid]]) {
    sel[i] = select(x[i], -x[i], x[i] < 0.0f);
    bits[i] = as_type<uint>(x[i]);
    cl[i] = clamp(x[i], -1.0f, 1.0f);
}
""", "misc", (1, 1, 1), (8, 1, 1), {0: x, 1: out_sel, 2: out_bits, 3: out_clamp})
    np.testing.assert_array_equal(out_sel, np.where(x < 0, -x, x))
    np.testing.assert_array_equal(out_bits, x.view(np.uint32))
    np.testing.assert_array_equal(out_clamp, np.clip(x, -1, 1))


def test_vector_types_and_math(run_msl):
    x = np.linspace(0.1, 4.0, 16, dtype=np.float32)
    out = np.zeros((4, 4), np.float32)
    sizes = np.zeros(4, np.uint32)
    run_msl("""
kernel void vmath(device const float4* x [[buffer(0)]], device float4* out [[buffer(1)]],
                  device uint* sizes [[buffer(2)]], uint i [[thread_position_in_grid]]) {
    float4 v = x[i];
    float2 lo = float2(v.x, v.y);
    out[i] = float4(precise::exp(lo), fast::sqrt(v.z), rsqrt(v.w)) * 2.0f + float4(0.5f);
    if (i == 0) {
        sizes[0] = sizeof(float3); sizes[1] = alignof(float3); sizes[2] = sizeof(half4); sizes[3] = sizeof(bfloat);
    }
}
""", "vmath", (1, 1, 1), (4, 1, 1), {0: x, 1: out, 2: sizes})
    v = x.reshape(4, 4)
    expected = np.stack([np.exp(v[:, 0]), np.exp(v[:, 1]), np.sqrt(v[:, 2]), 1 / np.sqrt(v[:, 3])], 1) * 2 + 0.5
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    np.testing.assert_array_equal(sizes, [16, 16, 8, 2])


def test_bfloat_rounds_to_nearest_even(run_msl):
    x = np.array([1.0, 1.00390625, 1.01171875, 1.0078125, -3.140625, 65504.0, np.float32(1.0) + np.float32(2**-9)],
                 np.float32)
    out = np.zeros(x.size, np.uint16)
    run_msl("""
kernel void to_bf16(device const float* x [[buffer(0)]], device ushort* out [[buffer(1)]],
                    uint i [[thread_position_in_grid]]) {
    bfloat b = bfloat(x[i]);
    out[i] = as_type<ushort>(b);
}
""", "to_bf16", (1, 1, 1), (x.size, 1, 1), {0: x, 1: out})
    bits = x.view(np.uint32).astype(np.uint64)
    expected = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    np.testing.assert_array_equal(out, expected)


def test_program_scope_constant(run_msl):
    out = np.zeros(4, np.float32)
    run_msl("""
constant float SCALE[4] = {1.0f, 2.0f, 3.0f, 4.0f};
constant int N = 4;
kernel void scale(device float* out [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    float tmp[N];
    tmp[i % N] = SCALE[i];
    out[i] = tmp[i % N] * 10.0f;
}
""", "scale", (1, 1, 1), (4, 1, 1), {0: out})
    np.testing.assert_array_equal(out, [10, 20, 30, 40])


def test_concurrent_dispatches_from_python_threads(run_msl):
    kernel = run_msl(VADD.format(T="float"), "vadd", (0, 1, 1), (64, 1, 1), {0: 0, 1: 0, 2: 0, 3: b"\0" * 4})
    n = 50_000
    results, errors = [], []

    def work(seed):
        try:
            a = np.random.default_rng(seed).standard_normal(n).astype(np.float32)
            c = np.zeros_like(a)
            for _ in range(10):
                kernel.dispatch((n // 64 + 1, 1, 1), (64, 1, 1), {0: a, 1: a, 2: c, 3: struct.pack("<I", n)})
            results.append(np.array_equal(c, a + a))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and results == [True] * 4
