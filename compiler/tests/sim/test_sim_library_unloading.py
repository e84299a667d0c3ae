"""The simulator unloads the library of a kernel nobody holds, so a long session stays within the
process's memory maps.

Each loaded kernel is a dlopen'ed library (about 5 memory maps). Linux allows a process 65,530 maps;
upstream's whole test_core in one pytest worker (thousands of kernels, each test defining its own)
once crashed there, in whatever mapped memory next. The executor keeps the MEMO_LIMIT most recent
kernels for reuse and unloads a library when its kernel is collected.
"""
from __future__ import annotations

import gc

import torch
import triton
import triton.language as tl
from triton_metal.sim import executor


def _maps() -> int:
    with open("/proc/self/maps") as f:
        return sum(1 for _ in f)


def _scale_kernel():
    """A new JIT function each call, as a test defining its kernel inside it makes one."""
    @triton.jit
    def scale(x_ptr, z_ptr, C: tl.constexpr, N: tl.constexpr):
        i = tl.arange(0, N)
        tl.store(z_ptr + i, tl.load(x_ptr + i) * C)
    return scale


def test_memory_maps_stay_bounded_over_many_kernels(monkeypatch):
    monkeypatch.setattr(executor, "MEMO_LIMIT", 4)
    x, z = torch.randn(64), torch.empty(64)
    unloaded = executor.unloaded_count()
    for c in range(1, 9):
        _scale_kernel()[(1,)](x, z, c, 64)
    gc.collect()
    maps = _maps()
    for c in range(9, 41):
        _scale_kernel()[(1,)](x, z, c, 64)
        torch.testing.assert_close(z, x * c)
    gc.collect()
    assert executor.unloaded_count() - unloaded >= 32  # the 36 kernels past the memo's 4, less slack
    assert _maps() <= maps + 10  # 32 more kernels would have added about 160


def test_a_kernel_still_held_stays_loaded(monkeypatch):
    monkeypatch.setattr(executor, "MEMO_LIMIT", 2)
    x, z = torch.randn(64), torch.empty(64)
    held = _scale_kernel()
    held[(1,)](x, z, 3, 64)  # compiled; then pushed out of the memo by later kernels
    for c in range(4, 12):
        _scale_kernel()[(1,)](x, z, c, 64)
    gc.collect()
    held[(1,)](x, z, 3, 64)  # Triton's cache still holds the compiled kernel: its library is loaded
    torch.testing.assert_close(z, x * 3)
