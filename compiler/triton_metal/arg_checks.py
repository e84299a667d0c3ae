"""Checks of a launch's grid and tensor arguments, before anything reaches the device.

Each error names the argument (or grid dimension) and the fix. Only what Metal cannot run is
refused: strides are passed to kernels as ordinary arguments, so non-contiguous or overlapping
tensors are accepted, as Triton itself accepts them. Scalar arguments are checked where they are
packed (``arguments.pack_scalar``); dtypes Apple GPUs lack (fp64) are refused at compile time.

The launcher builds one ``LaunchChecks`` per compiled kernel and calls it on every launch, so the
per-launch work is a loop over the pointer arguments only.
"""
from __future__ import annotations

import operator
import os

from triton_metal.errors import (
    MAX_THREADGROUPS_PER_GRID_DIMENSION,
    ForkedAfterDeviceOpenedError,
    GridError,
    LaunchArgumentError,
)
from triton_metal.runtime import created_runtime

# What the user sees for the runtime the kernel runs on, by torch device type.
RUNTIME_DESCRIPTIONS = {
    "cpu": "on the CPU through the Metal simulator",
    "mps": "on the Apple GPU",
}


def _pointer_paths(signature: dict) -> list:
    """(name, index path into the launch arguments) of every pointer argument, tuples flattened."""
    out = []

    def visit(name, ty, path):
        if isinstance(ty, tuple):
            for i, t in enumerate(ty):
                visit(f"{name}[{i}]", t, (*path, i))
        elif isinstance(ty, str) and ty.startswith("*"):
            out.append((name, path))

    for position, (name, ty) in enumerate(signature.items()):
        visit(name, ty, (position,))
    return out


def _at(args, path):
    value = args
    for i in path:
        value = value[i]
    return value


def check_grid(kernel_name: str, grid: tuple) -> None:
    """A grid of zero launches nothing (as in Triton); negative, non-integer and over-large ones are refused."""
    for dim, size in enumerate(grid):
        try:
            size = operator.index(size)
        except TypeError:
            raise GridError(f"kernel '{kernel_name}': grid[{dim}] = {size!r} is a {type(size).__name__}, not an "
                            "integer: compute grid sizes with integer arithmetic, e.g. triton.cdiv(n, BLOCK)") from None
        if size < 0:
            raise GridError(f"kernel '{kernel_name}': grid[{dim}] = {size} is negative: a grid counts programs "
                            "(threadgroups) along each axis and must be >= 0")
        if size > MAX_THREADGROUPS_PER_GRID_DIMENSION:
            raise GridError(f"kernel '{kernel_name}': grid[{dim}] = {size} exceeds Metal's limit of "
                            f"{MAX_THREADGROUPS_PER_GRID_DIMENSION} (2**32 - 1) threadgroups per grid dimension: "
                            "use a larger BLOCK size, or loop inside the kernel over several blocks per program")


def check_tensor(arg_name: str, value, device_type: str) -> None:
    """``value`` (a pointer argument) must live where the kernel runs."""
    device = getattr(value, "device", None)
    kind = getattr(device, "type", None)
    if not isinstance(kind, str) or kind == device_type:
        return  # None (a null pointer), or not a torch tensor (e.g. an mx.array): the runtime decides
    where = RUNTIME_DESCRIPTIONS.get(device_type, f"on '{device_type}'")
    if kind == "meta":
        raise LaunchArgumentError(
            f"argument '{arg_name}' is a 'meta' tensor, which has no data: kernels run {where}, so create it on "
            f"'{device_type}' (triton.runtime.driver.active.get_active_torch_device())")
    raise LaunchArgumentError(
        f"argument '{arg_name}' is a tensor on device '{device}', but triton-metal runs kernels {where} "
        f"(device '{device_type}'): move it with {arg_name}.to('{device_type}'), or create it on "
        "triton.runtime.driver.active.get_active_torch_device()")


class LaunchChecks:
    """Everything checked on each launch of one compiled kernel (built when Triton loads the kernel)."""

    def __init__(self, kernel_name: str, signature: dict, runtime):
        self.kernel_name = kernel_name
        self.runtime = runtime
        self.device_type = runtime.capabilities.torch_device
        self.pointers = _pointer_paths(signature)
        check_not_forked(runtime)  # before the kernel is loaded onto the device

    def __call__(self, grid: tuple, args) -> None:
        if _forked_after_device_opened:
            check_not_forked(self.runtime)
        check_grid(self.kernel_name, grid)
        for name, path in self.pointers:
            check_tensor(name, _at(args, path), self.device_type)


# ---- fork safety --------------------------------------------------------------------------------
# Metal and PyObjC are not fork-safe: a child forked after the parent opened the Metal device
# inherits handles it must not use. Runtimes say whether they are (``Capabilities.fork_safe``: the
# simulator creates its worker threads per dispatch in the process that dispatches).
_forked_after_device_opened = False


def _after_fork_in_child() -> None:
    global _forked_after_device_opened
    if created_runtime() is not None:
        _forked_after_device_opened = True


def check_not_forked(runtime) -> None:
    if _forked_after_device_opened and not runtime.capabilities.fork_safe:
        raise ForkedAfterDeviceOpenedError(
            f"this process was forked after its parent opened the {runtime.name} device: Metal and PyObjC are "
            "not fork-safe, so triton-metal cannot launch kernels here. Start workers with "
            "multiprocessing.get_context('spawn') (or 'forkserver'), or set the start method before the "
            "first kernel runs: multiprocessing.set_start_method('spawn')")


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
