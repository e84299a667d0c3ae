"""The shim's simd_prefix_* and simd_shuffle_up as the MSL specification describes them (6.9.2): prefix
functions combine the *active* lanes with lower lane ids, the exclusive ones give the identity (0 for a sum,
1 for a product) to the first active lane, integer sums wrap, and simd_shuffle_up leaves the lowest `delta`
lanes' values unchanged. The scans of codegen/ops/lower_scan.py rely on each of these."""
from __future__ import annotations

import numpy as np

SCANS = """
kernel void scans(device const int* in [[buffer(0)]], device int* out [[buffer(1)]],
                  uint i [[thread_position_in_grid]], ushort lane [[thread_index_in_simdgroup]]) {
    int x = in[i];
    out[i * 4 + 0] = -7;  // inactive lanes keep these
    out[i * 4 + 1] = -7;
    out[i * 4 + 2] = -7;
    out[i * 4 + 3] = -7;
    if (lane % 3 != 0) {  // lanes 0, 3, 6 ... do not take part
        out[i * 4 + 0] = simd_prefix_inclusive_sum(x);
        out[i * 4 + 1] = simd_prefix_exclusive_sum(x);
        out[i * 4 + 2] = simd_prefix_inclusive_product(x);
        out[i * 4 + 3] = simd_prefix_exclusive_product(x);
    }
}
"""


def _wrap32(values):
    return np.asarray(values, np.int64).astype(np.uint64).astype(np.uint32).view(np.int32)


def test_prefix_functions_combine_the_active_lanes_below(run_msl):
    x = np.random.default_rng(0).integers(-3, 4, 64).astype(np.int32)
    out = np.zeros((64, 4), np.int32)
    run_msl(SCANS, "scans", (1, 1, 1), (64, 1, 1), {0: x, 1: out})
    for group in range(2):
        lanes = np.arange(32)
        active = lanes % 3 != 0
        g, o = x[group * 32:(group + 1) * 32], out[group * 32:(group + 1) * 32]
        a = g[active].astype(np.int64)
        inc_sum, inc_prod = np.cumsum(a), np.cumprod(a)
        expected = np.stack([inc_sum, inc_sum - a, inc_prod, np.concatenate([[1], inc_prod[:-1]])], axis=1)
        np.testing.assert_array_equal(o[active], _wrap32(expected))
        np.testing.assert_array_equal(o[~active], -7)


def test_exclusive_identity_on_the_first_lane_and_integer_sums_wrap(run_msl):
    x = np.full(32, 2**30, np.int32)
    x[0] = 5
    out = np.zeros((32, 3), np.int32)
    run_msl("""
kernel void first(device const int* in [[buffer(0)]], device int* out [[buffer(1)]], uint i [[thread_position_in_grid]]) {
    out[i * 3 + 0] = simd_prefix_exclusive_sum(in[i]);
    out[i * 3 + 1] = simd_prefix_exclusive_product(in[i]);
    out[i * 3 + 2] = simd_prefix_inclusive_sum(in[i]);
}
""", "first", (1, 1, 1), (32, 1, 1), {0: x, 1: out})
    assert (out[0, 0], out[0, 1]) == (0, 1)
    np.testing.assert_array_equal(out[:, 2], _wrap32(np.cumsum(x.astype(np.int64))))  # modulo 2**32


def test_shuffle_up_keeps_the_lowest_delta_lanes(run_msl):
    x = np.arange(64, dtype=np.float32) * 1.5
    out = np.zeros((64, 3), np.float32)
    run_msl("""
kernel void up(device const float* in [[buffer(0)]], device float* out [[buffer(1)]], uint i [[thread_position_in_grid]]) {
    out[i * 3 + 0] = simd_shuffle_up(in[i], 1);
    out[i * 3 + 1] = simd_shuffle_up(in[i], 16);
    out[i * 3 + 2] = float(simd_shuffle_up(half(in[i]), 4));
}
""", "up", (1, 1, 1), (64, 1, 1), {0: x, 1: out})
    for g in range(2):
        lanes = np.arange(32)
        src = x[g * 32:(g + 1) * 32]
        for column, delta in enumerate((1, 16, 4)):
            expected = np.where(lanes >= delta, src[np.maximum(lanes - delta, 0)], src)
            np.testing.assert_array_equal(out[g * 32:(g + 1) * 32, column], expected.astype(np.float16)
                                          if column == 2 else expected)
