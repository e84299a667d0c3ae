"""Metal 3.2's device-scope fences and coherent(device) buffers in the shim, and the memory orders it
leaves out (MSL 3.2: atomic functions take memory_order_relaxed only, fences also seq_cst)."""
import numpy as np
import pytest
from triton_metal.sim import build_kernel
from triton_metal.sim.errors import SimCompileError

# The last threadgroup to arrive adds up the partial sums the others published with plain stores:
# release fence, relaxed ticket, acquire fence (what codegen/memory_model.py emits for acq_rel).
LAST_ARRIVAL = """
kernel void last_arrival(coherent(device) device float* partial [[buffer(0)]],
                         coherent(device) device atomic_uint* arrivals [[buffer(1)]],
                         coherent(device) device float* total [[buffer(2)]],
                         device const float* x [[buffer(3)]],
                         uint group [[threadgroup_position_in_grid]], uint groups [[threadgroups_per_grid]],
                         uint tid [[thread_index_in_threadgroup]]) {
    threadgroup float sums[64];
    sums[tid] = x[group * 64 + tid];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (tid == 0) {
        float s = 0.0f;
        for (uint i = 0; i < 64; ++i) s += sums[i];
        partial[group] = s;
        atomic_thread_fence(mem_flags::mem_device, memory_order_seq_cst, thread_scope_device);
        uint ticket = atomic_fetch_add_explicit(arrivals, 1u, memory_order_relaxed);
        atomic_thread_fence(mem_flags::mem_device, memory_order_seq_cst, thread_scope_device);
        if (ticket == groups - 1) {
            float t = 0.0f;
            for (uint g = 0; g < groups; ++g) t += partial[g];
            total[0] = t;
        }
    }
}
"""


@pytest.mark.parametrize("strict", ["0", "1"])
def test_device_fences_and_coherent_buffers_publish_across_threadgroups(strict, run_msl, monkeypatch):
    monkeypatch.setenv("TRITON_METAL_SIM_STRICT", strict)
    groups = 200
    x = np.random.default_rng(7).integers(-100, 100, groups * 64).astype(np.float32)  # exact sums
    partial, arrivals, total = np.zeros(groups, np.float32), np.zeros(1, np.uint32), np.full(1, np.nan, np.float32)
    run_msl(LAST_ARRIVAL, "last_arrival", (groups, 1, 1), (64, 1, 1), {0: partial, 1: arrivals, 2: total, 3: x})
    assert arrivals[0] == groups
    np.testing.assert_array_equal(partial, x.reshape(groups, 64).sum(1))
    assert total[0] == x.sum()


@pytest.mark.parametrize("order", ["memory_order_acquire", "memory_order_release", "memory_order_acq_rel"])
def test_orders_metal_3_2_does_not_have_do_not_compile(order):
    with pytest.raises(SimCompileError, match=order):
        build_kernel(f"""#include <metal_stdlib>
using namespace metal;
kernel void ordered(device atomic_int* flag [[buffer(0)]]) {{
    atomic_store_explicit(flag, 1, {order});
}}
""", "ordered")
