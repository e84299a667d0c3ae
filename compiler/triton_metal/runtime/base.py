"""The contract every device runtime keeps: the ``Runtime`` protocol and its ``Capabilities``.

A runtime turns MSL into something it can run (a *pipeline*) and runs it on a grid. The launcher,
the driver, the device-print read-back, the cache and the troubleshooting tools talk to whichever
runtime ``TRITON_METAL_DEVICE`` chose only through this protocol; where runtimes differ, they ask the
runtime's ``capabilities`` (a frozen record), never its name or which attributes it happens to have.

Adding a runtime: write a module with a class implementing ``Runtime`` (subclass it, so the
inherited ``chip`` and the abstract methods keep you honest) and add one line to
``triton_metal.runtime.RUNTIMES``.
"""
from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from triton_metal.runtime.chips import Chip


@dataclass(frozen=True)
class Capabilities:
    """What a runtime can do, for callers that must behave differently on different runtimes."""

    # Kernels run on the CPU through the Metal simulator: per-access counters exist (profiler, memory
    # analysis), timings are the host CPU's, a program's "multiprocessors" are its CPU cores.
    simulated: bool
    # Where torch tensors passed as pointer arguments must live ("cpu" for the simulator, "mps").
    torch_device: str
    # The Apple GPU the kernels are compiled for (emulated by the simulator: TRITON_METAL_SIM_CHIP).
    chip: Chip
    # GPU cores of the device in use, when the runtime could tell (the Metal runtime reads IORegistry).
    gpu_cores: int | None = None
    # Memory the device recommends a process keep in use (Metal's recommendedMaxWorkingSetSize); None:
    # the runtime does not know, callers fall back to the host's RAM.
    device_memory_bytes: int | None = None
    # A process forked after the runtime opened its device may still launch kernels. Metal and PyObjC
    # are not fork-safe; the simulator creates its worker threads per dispatch, so it is.
    fork_safe: bool = False
    # Arrays are immutable (MLX): the buffers a kernel writes are named as outputs and ``launch``
    # returns them as new arrays.
    immutable_outputs: bool = False
    # ``launch`` binds numpy arrays as buffers (the Metal runtime: shared-storage MTLBuffers).
    numpy_buffers: bool = False
    # ``runtime.empty(shape, dtype)`` makes numpy arrays the GPU reads and writes without copies.
    shared_memory_arrays: bool = False
    # The device-print buffer of tl.device_print / tl.device_assert can be bound and read back after a
    # launch (MLX returns only the outputs a launch names).
    device_print: bool = True


@runtime_checkable
class Runtime(Protocol):
    """A device runtime. Implementations: ``sim_runtime.SimRuntime``, ``metal_runtime.MetalRuntime``,
    ``mlx_runtime.MLXRuntime``."""

    name: str  # what TRITON_METAL_DEVICE names it, and what logs and reports call it
    capabilities: Capabilities

    @property
    def chip(self) -> Chip:
        """The chip kernels are compiled for (``capabilities.chip``)."""
        return self.capabilities.chip

    @classmethod
    @abstractmethod
    def available(cls) -> bool:
        """Whether this machine can run the runtime (``TRITON_METAL_DEVICE=auto`` tries ``AUTO`` in order)."""

    @abstractmethod
    def compile(self, msl: str, kernel_name: str):
        """The pipeline of kernel ``kernel_name`` in ``msl``, compiled once per (MSL, kernel) and kept until
        ``release()``. The kernel's math mode is the one its MSL states (numerics.MathMode.of_msl):
        the compiler decided it, the runtime does not choose again."""

    @abstractmethod
    def launch(self, pipeline, grid, threadgroup, buffers: dict, threadgroup_lengths=None):
        """Run ``grid`` (3 ints) threadgroups of ``threadgroup`` (3 ints) threads. ``buffers`` maps each
        ``[[buffer(i)]]`` slot to what ``buffer_argument`` returned for a pointer, or to the bytes of a
        scalar (or of the struct of packed scalars, ``triton_metal.arguments``). May return before the
        kernel finished: ``synchronize()`` waits."""

    @abstractmethod
    def buffer_argument(self, value, arg_name: str):
        """What ``launch`` binds for the pointer argument ``arg_name``; raises naming the argument and the
        fix when ``value`` cannot be bound here (e.g. a tensor on another device)."""

    @abstractmethod
    def synchronize(self) -> None:
        """Wait until every kernel launched so far has finished (results are then visible on the host)."""

    @abstractmethod
    def release(self) -> int:
        """Drop every compiled pipeline (the next launch compiles or reloads again) and return how many were
        released. Pipelines a caller still holds keep working."""
