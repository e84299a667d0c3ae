"""Memory-traffic counters (triton_metal.sim.count_traffic), each checked against hand counts."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from triton_metal.sim import build as sim_build
from triton_metal.sim import count_traffic

LOAD_STRIDED = """
kernel void strided(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
                    constant uint& stride [[buffer(2)]], uint i [[thread_position_in_grid]]) {
    float v = x[i * stride];
    y[i] = v;
}
"""


def _run_strided(run_msl, stride, n=256):
    x, y = np.arange(n * stride, dtype=np.float32), np.zeros(n, np.float32)
    with count_traffic() as traffic:
        run_msl(LOAD_STRIDED, "strided", (n // 64, 1, 1), (64, 1, 1), {0: x, 1: y, 2: struct.pack("<I", stride)})
    np.testing.assert_array_equal(y, x[::stride])
    assert len(traffic.launches) == 1
    return traffic.launches[0]


def test_contiguous_access_is_fully_coalesced(run_msl):
    s = _run_strided(run_msl, 1)
    assert s.kernel == "strided"
    assert (s.global_bytes_read, s.global_bytes_written) == (256 * 4, 256 * 4)
    # 8 simdgroups, each reading 128 contiguous bytes = 4 segments of 32 bytes, per access site
    assert s.sites[6].kind == "load" and s.sites[7].kind == "store"
    assert (s.sites[6].accesses, s.sites[6].bytes, s.sites[6].transactions) == (256, 1024, 8 * 4)
    assert s.sites[6].transactions_by_segment == {32: 32, 64: 16, 128: 8}
    assert (s.global_transactions, s.ideal_transactions, s.coalescing_efficiency) == (64, 64, 1.0)


@pytest.mark.parametrize("stride, efficiency", [(2, 0.5), (4, 0.25), (8, 0.125), (64, 0.125)])
def test_strided_access_efficiency(run_msl, stride, efficiency):
    s = _run_strided(run_msl, stride)
    load = s.sites[6]
    touched = min(32, 32 * stride * 4 // 32)  # distinct 32-byte segments per simdgroup access
    assert load.transactions == 8 * touched
    assert load.ideal_transactions == 8 * 4
    assert load.coalescing_efficiency == pytest.approx(efficiency)


def test_broadcast_load_is_one_transaction(run_msl):
    x, y = np.full(4, 3.0, np.float32), np.zeros(64, np.float32)
    with count_traffic() as traffic:
        run_msl("""
kernel void bcast(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
                  uint i [[thread_position_in_grid]]) {
    y[i] = x[0];
}
""", "bcast", (1, 1, 1), (64, 1, 1), {0: x, 1: y})
    site = traffic.launches[0].sites[6]
    assert site.kind == "load+store"  # one line, both accesses
    assert site.accesses == 128 and site.bytes == 512
    # load: 1 segment per simdgroup; store: 4 per simdgroup; 2 simdgroups
    assert (site.transactions, site.ideal_transactions) == (2 * 1 + 2 * 4, 2 * 1 + 2 * 4)


def test_atomics_and_threadgroup_traffic(run_msl):
    counter, out = np.zeros(1, np.uint32), np.zeros(128, np.float32)
    with count_traffic() as traffic:
        run_msl("""
kernel void tg(device atomic_uint* counter [[buffer(0)]], device float* out [[buffer(1)]],
               uint tid [[thread_index_in_threadgroup]], uint gid [[thread_position_in_grid]]) {
    threadgroup float a[64];
    a[tid] = float(tid);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    out[gid] = a[63 - tid] + a[0];
    atomic_fetch_add_explicit(counter, 1u, memory_order_relaxed);
}
""", "tg", (2, 1, 1), (64, 1, 1), {0: counter, 1: out})
    s = traffic.launches[0]
    assert counter[0] == 128
    assert s.atomics == 128 and s.sites[10].kind == "atomic" and s.sites[10].accesses == 128
    assert (s.threadgroup_bytes_written, s.threadgroup_bytes_read) == (128 * 4, 128 * 2 * 4)
    assert (s.global_bytes_read, s.global_bytes_written) == (0, 128 * 4)


def test_counts_are_deterministic(run_msl):
    a = _run_strided(run_msl, 3).as_dict()
    b = _run_strided(run_msl, 3).as_dict()
    assert a == b and a["sites"]["6"]["accesses"] == 256


def test_without_count_traffic_the_plain_build_runs(run_msl):
    src = LOAD_STRIDED.replace("strided", "plain")
    x, y = np.arange(64, dtype=np.float32), np.zeros(64, np.float32)
    runs = sim_build.compiler_runs
    kernel = run_msl(src, "plain", (1, 1, 1), (64, 1, 1), {0: x, 1: y, 2: struct.pack("<I", 1)})
    assert sim_build.compiler_runs == runs + 1  # only the plain library was built
    assert kernel._instrumented is None
    with count_traffic() as traffic:
        kernel.dispatch((1, 1, 1), (64, 1, 1), {0: x, 1: y, 2: struct.pack("<I", 1)})
    assert sim_build.compiler_runs == runs + 2 and traffic.launches[0].global_bytes_read == 256


def test_triton_kernel_sites_are_the_msl_lines_after_source_comments():
    torch = pytest.importorskip("torch")
    import triton
    import triton.language as tl

    @triton.jit
    def add(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) + tl.load(y_ptr + offs, mask=mask), mask=mask)

    n = 1000
    x, y, out = torch.rand(n), torch.rand(n), torch.empty(n)
    with count_traffic() as traffic:
        compiled = add[(4,)](x, y, out, n, BLOCK=256)
    torch.testing.assert_close(out, x + y)
    s = traffic.launches[0]
    assert (s.kernel, s.global_bytes_read, s.global_bytes_written) == ("add", 2 * n * 4, n * 4)
    msl = compiled.asm["msl"]
    msl = msl.decode() if isinstance(msl, bytes) else msl
    lines = msl.splitlines()
    kinds = sorted(site.kind for site in s.sites.values())
    assert kinds == ["load", "load", "store"]
    for line in s.sites:  # the nearest comment above each site names the Python source line
        above = [i for i in range(line - 2, max(line - 5, 0), -1) if lines[i].strip().startswith("//")]
        assert above and ".py:" in lines[above[0]] and "tl." in lines[above[0]], lines[line - 5:line]
