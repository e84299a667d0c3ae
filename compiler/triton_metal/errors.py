"""Errors users see, each naming the cause and the fix.

Limits are raised as Triton's ``OutOfResources`` so that ``triton.autotune`` drops an
over-sized config instead of failing the whole tuning run.
"""
from __future__ import annotations

from triton.runtime.errors import OutOfResources

from triton_metal import abi

# Metal's limits are abi's; these names stay for the modules that import them from here.
MAX_THREADS_PER_THREADGROUP = abi.MAX_THREADS_PER_THREADGROUP
MAX_THREADGROUP_MEMORY = abi.MAX_THREADGROUP_MEMORY


class MetalError(RuntimeError):
    """Base class of triton-metal's errors."""


class UnsupportedOperationError(MetalError):
    """A Triton operation the Metal backend cannot lower (refused at compile time)."""

    def __init__(self, op: str, location: str = "", reason: str = "", alternative: str = ""):
        self.op = op
        msg = f"Operation {op} is not supported by the Metal backend"
        if reason:
            msg += f": {reason}"
        if alternative:
            msg += f". Instead: {alternative}"
        if location:
            msg += f"\n  at {location}"
        super().__init__(msg)


class ThreadgroupMemoryError(OutOfResources):
    def __init__(self, required: int, limit: int = MAX_THREADGROUP_MEMORY):
        super().__init__(required, limit, "threadgroup memory (shared memory)")

    def __str__(self) -> str:
        return (f"out of resource: threadgroup memory, Required: {self.required} bytes, Hardware limit: "
                f"{self.limit} bytes. Apple GPUs have {abi.MAX_THREADGROUP_MEMORY // 1024} KiB of threadgroup "
                "memory per threadgroup: use smaller BLOCK sizes or fewer num_stages.")

    def __reduce__(self):
        return (type(self), (self.required, self.limit))


class ThreadsPerThreadgroupError(OutOfResources):
    def __init__(self, required: int, limit: int = MAX_THREADS_PER_THREADGROUP):
        super().__init__(required, limit, "threads per threadgroup")

    def __str__(self) -> str:
        return (f"out of resource: threads per threadgroup, Required: {self.required}, Hardware limit: "
                f"{self.limit}. num_warps x {abi.SIMD_WIDTH} must not exceed {self.limit} on Apple GPUs: "
                f"use num_warps <= {self.limit // abi.SIMD_WIDTH}.")

    def __reduce__(self):
        return (type(self), (self.required, self.limit))


def check_threads_per_threadgroup(threads: int, limit: int = MAX_THREADS_PER_THREADGROUP) -> None:
    if threads > limit:
        raise ThreadsPerThreadgroupError(threads, limit)


def check_threadgroup_memory(nbytes: int, limit: int = MAX_THREADGROUP_MEMORY) -> None:
    if nbytes > limit:
        raise ThreadgroupMemoryError(nbytes, limit)


# ---- launch arguments and grids (raised by triton_metal.arg_checks) -------------------------
MAX_THREADGROUPS_PER_GRID_DIMENSION = 2**32 - 1  # threadgroup_position_in_grid is a uint3


class LaunchArgumentError(MetalError, ValueError):
    """A kernel argument the Metal backend cannot launch with (wrong device, no data)."""


class GridError(MetalError, ValueError):
    """A launch grid Metal cannot dispatch (negative, not an integer, beyond Metal's limits)."""


# ---- compile cache (triton_metal.cache) -------------------------------------------------------
class CacheCorruptionWarning(UserWarning):
    """A compile-cache entry failed its checksum: it was discarded and is being rebuilt."""


# ---- Metal and MLX runtimes (triton_metal.runtime.metal_runtime, mlx_runtime) -----------------
class MetalNotSupportedError(MetalError):
    """No usable Metal device here (not macOS on Apple Silicon, or PyObjC's Metal bindings missing)."""


class MLXNotFoundError(MetalError, ImportError):
    """The mlx runtime was asked for but MLX (or its Metal back end) is not installed."""


class MetalCompileError(MetalError):
    """Apple's Metal compiler rejected a shader; the message carries its log and the dumped MSL."""

    def __init__(self, kernel_name: str, compiler_log: str, dump_path=None):
        self.kernel_name, self.compiler_log, self.dump_path = kernel_name, compiler_log, dump_path
        msg = f"Metal shader compilation failed for kernel '{kernel_name}': {compiler_log.strip()}"
        if dump_path is not None:
            msg += f"\n  the MSL is in {dump_path}"
        msg += ("\n  Generated MSL that Apple's compiler rejects is a triton-metal bug: please report it with that "
                "file (TRITON_METAL_SHADER_DUMP_DIR sets where it is written).")
        super().__init__(msg)


class MetalOutOfMemoryError(MetalError):
    """A Metal buffer could not be allocated, or a command buffer ran out of GPU memory."""

    def __init__(self, detail: str):
        super().__init__(f"Metal runtime error: out of memory: {detail}. Free tensors you no longer need "
                         "(torch.mps.empty_cache()), or use smaller inputs.")


class ForkedAfterDeviceOpenedError(MetalError):
    """A launch in a process forked after its parent opened the Metal device (not fork-safe)."""
