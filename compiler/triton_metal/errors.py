"""Errors users see, each naming the cause and the fix.

Limits are raised as Triton's ``OutOfResources`` so that ``triton.autotune`` drops an
over-sized config instead of failing the whole tuning run.
"""
from __future__ import annotations

from triton.runtime.errors import OutOfResources

MAX_THREADS_PER_THREADGROUP = 1024
MAX_THREADGROUP_MEMORY = 32 * 1024  # bytes, every Apple GPU family


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
                f"{self.limit} bytes. Apple GPUs have 32 KiB of threadgroup memory per threadgroup: "
                "use smaller BLOCK sizes or fewer num_stages.")

    def __reduce__(self):
        return (type(self), (self.required, self.limit))


class ThreadsPerThreadgroupError(OutOfResources):
    def __init__(self, required: int, limit: int = MAX_THREADS_PER_THREADGROUP):
        super().__init__(required, limit, "threads per threadgroup")

    def __str__(self) -> str:
        return (f"out of resource: threads per threadgroup, Required: {self.required}, Hardware limit: "
                f"{self.limit}. num_warps x 32 must not exceed {self.limit} on Apple GPUs: "
                f"use num_warps <= {self.limit // 32}.")

    def __reduce__(self):
        return (type(self), (self.required, self.limit))


def check_threads_per_threadgroup(threads: int, limit: int = MAX_THREADS_PER_THREADGROUP) -> None:
    if threads > limit:
        raise ThreadsPerThreadgroupError(threads, limit)


def check_threadgroup_memory(nbytes: int, limit: int = MAX_THREADGROUP_MEMORY) -> None:
    if nbytes > limit:
        raise ThreadgroupMemoryError(nbytes, limit)
