"""The runtime seam: every registered runtime keeps the ``Runtime`` contract, and a new runtime needs
its own module and one registry line, nothing else (shown with a toy runtime that Triton launches
kernels through)."""
from __future__ import annotations

import dataclasses
import inspect

import pytest
import torch
import triton
import triton.language as tl
from triton_metal import runtime as runtimes
from triton_metal.errors import MetalError
from triton_metal.runtime.base import Runtime
from triton_metal.runtime.sim_runtime import SimRuntime


@pytest.mark.parametrize("name", sorted(runtimes.RUNTIMES))
def test_every_registered_runtime_implements_the_whole_protocol(name):
    cls = runtimes.RUNTIMES[name]
    assert Runtime in cls.__mro__ and not inspect.isabstract(cls)  # every abstract method implemented
    assert cls.name == name  # what TRITON_METAL_DEVICE calls it is what it calls itself


def test_capabilities_are_a_frozen_record():
    caps = SimRuntime().capabilities
    with pytest.raises(dataclasses.FrozenInstanceError):
        caps.simulated = False


def test_the_simulator_states_its_capabilities():
    caps = SimRuntime().capabilities
    assert (caps.simulated, caps.torch_device, caps.fork_safe, caps.device_print) == (True, "cpu", True, True)
    assert not (caps.immutable_outputs or caps.numpy_buffers or caps.shared_memory_arrays)
    assert SimRuntime().chip is caps.chip


def test_an_unknown_device_names_the_registered_ones(monkeypatch):
    monkeypatch.setenv("TRITON_METAL_DEVICE", "cuda")
    with pytest.raises(MetalError, match="TRITON_METAL_DEVICE='cuda' is not one of auto, sim, metal, mlx"):
        runtimes.requested_device()


# ---- a toy runtime: its module (this class) and one registry line ------------------------------

class CountingRuntime(Runtime):
    """A new runtime as someone would add one: the simulator underneath, counting what it is asked."""

    name = "counting"

    def __init__(self):
        self.sim = SimRuntime()
        self.capabilities = dataclasses.replace(self.sim.capabilities)
        self.compiled, self.launched = [], []

    @classmethod
    def available(cls) -> bool:
        return True

    def compile(self, msl, kernel_name):
        self.compiled.append(kernel_name)
        return self.sim.compile(msl, kernel_name)

    def launch(self, pipeline, grid, threadgroup, buffers, threadgroup_lengths=None):
        self.launched.append((tuple(grid), tuple(threadgroup)))
        self.sim.launch(pipeline, grid, threadgroup, buffers, threadgroup_lengths)

    def buffer_argument(self, value, arg_name):
        return self.sim.buffer_argument(value, arg_name)

    def synchronize(self):
        self.sim.synchronize()

    def release(self):
        return self.sim.release()


@triton.jit
def toy_axpy_kernel(x_ptr, y_ptr, out_ptr, n, alpha, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, alpha * tl.load(x_ptr + offs, mask=mask) + tl.load(y_ptr + offs, mask=mask), mask=mask)


@pytest.fixture
def counting_runtime(monkeypatch, tmp_path):
    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path))  # compiled and loaded while this runtime is active
    monkeypatch.setitem(runtimes.RUNTIMES, CountingRuntime.name, CountingRuntime)  # the one registry line
    monkeypatch.setenv("TRITON_METAL_DEVICE", CountingRuntime.name)
    runtimes.get_runtime.cache_clear()
    yield runtimes.get_runtime()
    toy_axpy_kernel.device_caches.clear()  # its launcher holds the toy runtime
    monkeypatch.undo()
    runtimes.get_runtime.cache_clear()


def test_triton_launches_through_a_newly_registered_runtime(counting_runtime):
    assert isinstance(counting_runtime, CountingRuntime)
    n, alpha = 300, 0.5
    x = torch.linspace(-1, 1, n)
    y = torch.arange(n, dtype=torch.float32)
    out = torch.empty(n)
    toy_axpy_kernel[(triton.cdiv(n, 128),)](x, y, out, n, alpha, BLOCK=128)
    torch.testing.assert_close(out, alpha * x + y)
    assert counting_runtime.compiled == ["toy_axpy_kernel"]
    assert counting_runtime.launched == [((3, 1, 1), (128, 1, 1))]  # 3 programs of num_warps=4 x 32 threads
