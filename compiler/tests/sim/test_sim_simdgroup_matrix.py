"""simdgroup_matrix on the simulator: 8x8 loads, stores and multiply-accumulates against numpy."""
from __future__ import annotations

import numpy as np
import pytest

_MATMUL = """
kernel void tile_matmul(device const {T}* a [[buffer(0)]], device const {T}* b [[buffer(1)]],
                        device float* c [[buffer(2)]], constant uint& k_size [[buffer(3)]],
                        ushort simd [[simdgroup_index_in_threadgroup]]) {{
    // Each simdgroup computes one 8x8 tile of c = a @ b (a is 16 x K, b is K x 16).
    const uint tile_row = (simd >> 1) * 8, tile_col = (simd & 1) * 8;
    simdgroup_float8x8 acc = make_filled_simdgroup_matrix<float, 8>(0.0f);
    for (uint k = 0; k < k_size; k += 8) {{
        simdgroup_matrix<{T}, 8, 8> ma, mb;
        simdgroup_load(ma, a + tile_row * k_size + k, k_size);
        simdgroup_load(mb, b + k * 16 + tile_col, 16);
        simdgroup_multiply_accumulate(acc, ma, mb, acc);
    }}
    simdgroup_store(acc, c + tile_row * 16 + tile_col, 16);
}}
"""


@pytest.mark.parametrize("ctype, dtype", [("float", np.float32), ("half", np.float16)])
def test_multiply_accumulate_mixed_precision_matmul(run_msl, ctype, dtype):
    k = 24
    rng = np.random.default_rng(0)
    a = rng.standard_normal((16, k)).astype(dtype)
    b = rng.standard_normal((k, 16)).astype(dtype)
    c = np.zeros((16, 16), np.float32)
    run_msl(_MATMUL.format(T=ctype), "tile_matmul", (1, 1, 1), (128, 1, 1),
            {0: a, 1: b, 2: c, 3: np.array([k], np.uint32)})
    np.testing.assert_allclose(c, a.astype(np.float32) @ b.astype(np.float32), rtol=1e-5, atol=1e-5)


def test_load_store_origin_stride_and_transpose(run_msl):
    src = np.arange(16 * 12, dtype=np.float32).reshape(16, 12)
    out = np.zeros((2, 8, 8), np.float32)
    run_msl("""
kernel void views(device float* src [[buffer(0)]], device float* out [[buffer(1)]]) {
    simdgroup_float8x8 m;
    simdgroup_load(m, src, 12, ulong2(3, 5));          // rows 5..12, columns 3..10
    simdgroup_store(m, out, 8);
    simdgroup_load(m, src, 12, ulong2(0, 0), true);    // transposed on load
    simdgroup_store(m, out + 64, 8);
}
""", "views", (1, 1, 1), (32, 1, 1), {0: src, 1: out})
    np.testing.assert_array_equal(out[0], src[5:13, 3:11])
    np.testing.assert_array_equal(out[1], src[:8, :8].T)


def test_diagonal_constructor_and_multiply(run_msl):
    x = np.random.default_rng(1).standard_normal((8, 8)).astype(np.float32)
    out = np.zeros((8, 8), np.float32)
    run_msl("""
kernel void scale(device float* x [[buffer(0)]], device float* out [[buffer(1)]]) {
    simdgroup_float8x8 m, d = simdgroup_float8x8(3.0f), r;  // d = 3 * identity
    simdgroup_load(m, x);
    simdgroup_multiply(r, d, m);
    simdgroup_store(r, out);
}
""", "scale", (1, 1, 1), (32, 1, 1), {0: x, 1: out})
    np.testing.assert_allclose(out, 3 * x, rtol=1e-6)


def test_half_accumulator_rounds_to_half(run_msl):
    rng = np.random.default_rng(2)
    a, b = (rng.standard_normal((8, 8)).astype(np.float16) for _ in range(2))
    c = rng.standard_normal((8, 8)).astype(np.float16)
    out = np.zeros((8, 8), np.float16)
    run_msl("""
kernel void mma_half(device half* a [[buffer(0)]], device half* b [[buffer(1)]], device half* c [[buffer(2)]],
                     device half* out [[buffer(3)]]) {
    simdgroup_half8x8 ma, mb, mc;
    simdgroup_load(ma, a); simdgroup_load(mb, b); simdgroup_load(mc, c);
    simdgroup_multiply_accumulate(mc, ma, mb, mc);
    simdgroup_store(mc, out);
}
""", "mma_half", (1, 1, 1), (32, 1, 1), {0: a, 1: b, 2: c, 3: out})
    expected = (a.astype(np.float32) @ b.astype(np.float32) + c.astype(np.float32)).astype(np.float16)
    np.testing.assert_allclose(out.astype(np.float32), expected.astype(np.float32), rtol=1e-3, atol=1e-3)
