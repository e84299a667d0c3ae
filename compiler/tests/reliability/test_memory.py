"""No memory growth across 10,000 launches of one kernel, and clear_cache() really releases kernels."""
from __future__ import annotations

import gc
import os
import tracemalloc
import weakref

import pytest
import torch
import triton
import triton.language as tl
from triton_metal.cache import clear_in_process
from triton_metal.runtime import get_runtime

pytestmark = pytest.mark.skipif(not get_runtime().capabilities.simulated, reason="measures the simulator's libraries")


@triton.jit
def fma_kernel(x_ptr, out_ptr, n, A: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) * A + 1.0, mask=mask)


@pytest.fixture(autouse=True)
def _no_kernels_loaded_before():
    clear_in_process()  # kernels other tests left in memory were loaded from other cache directories


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _mapped_kernel_libraries(sim_dir) -> set:
    with open("/proc/self/maps") as f:
        return {line.split()[-1] for line in f if str(sim_dir) in line and line.rstrip().endswith(".so")
                and "tm_runtime" not in line}


def test_ten_thousand_launches_do_not_grow_memory(fresh_caches):
    n = 256
    x = torch.rand(n)
    out = torch.empty(n)
    launch = fma_kernel[(2,)]
    for _ in range(500):  # warm-up: compile, load, allocator pools
        launch(x, out, n, A=3.0, BLOCK=128)
    gc.collect()
    rss_before = _rss_bytes()
    for _ in range(10_000):
        launch(x, out, n, A=3.0, BLOCK=128)
    gc.collect()
    rss_growth = _rss_bytes() - rss_before
    tracemalloc.start()  # Python-level leaks, over fewer launches (tracing slows every allocation)
    for _ in range(200):
        launch(x, out, n, A=3.0, BLOCK=128)
    gc.collect()
    traced_before, _ = tracemalloc.get_traced_memory()
    for _ in range(1_000):
        launch(x, out, n, A=3.0, BLOCK=128)
    gc.collect()
    traced_after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"RSS growth over 10,000 launches: {rss_growth} B; traced Python growth over 1,000: "
          f"{traced_after - traced_before} B")
    assert torch.allclose(out, x * 3.0 + 1.0)
    assert rss_growth < 4 * 1024 * 1024, f"RSS grew {rss_growth} B over 10,000 launches"
    assert traced_after - traced_before < 16 * 1024, f"Python allocations grew {traced_after - traced_before} B"
    assert len(_mapped_kernel_libraries(fresh_caches.sim)) == 1  # one library, loaded once


def test_clear_cache_unloads_every_kernel_nobody_holds(fresh_caches):
    x = torch.rand(100)
    out = torch.empty(100)
    for a in (2.0, 3.0, 4.0):
        fma_kernel[(1,)](x, out, 100, A=a, BLOCK=128)
    assert len(_mapped_kernel_libraries(fresh_caches.sim)) == 3
    pipelines = [weakref.ref(k.function) for k in fma_kernel.device_caches[0][0].values()]

    result = clear_in_process()

    assert result["released"] == 3
    assert _mapped_kernel_libraries(fresh_caches.sim) == set()
    assert all(ref() is None for ref in pipelines)
    assert fma_kernel.device_caches == {}
    fma_kernel[(1,)](x, out, 100, A=5.0, BLOCK=128)  # and everything reloads from the disk cache
    assert torch.allclose(out, x * 5.0 + 1.0)


def test_a_kernel_the_caller_still_holds_keeps_working_after_clear_cache(fresh_caches):
    x = torch.rand(100)
    out = torch.empty(100)
    held = fma_kernel[(1,)](x, out, 100, A=6.0, BLOCK=128)  # the CompiledKernel
    clear_in_process()
    out.zero_()
    held[(1, 1, 1)](x, out, 100, 6.0, 128)  # its library must still be loaded: unloading it would crash here
    assert torch.allclose(out, x * 6.0 + 1.0)
