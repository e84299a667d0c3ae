"""Errors of the Metal simulator: what Metal would refuse, with the cause and the fix."""
from __future__ import annotations


class SimError(RuntimeError):
    """Base class of the simulator's errors."""


class SimCompileError(SimError):
    """The MSL did not compile: ``log`` is g++'s output (its line numbers are ``.metal`` lines)."""

    def __init__(self, message: str, log: str = "", metal_path: str | None = None):
        self.log = log
        self.metal_path = metal_path
        super().__init__(f"{message}\n{log}".rstrip() if log else message)


class SimLaunchError(SimError):
    """A dispatch that Metal would reject, or a kernel that failed while it ran."""


class SimStrictError(SimLaunchError):
    """Strict mode caught a kernel bug: an out-of-bounds access, a read of unwritten threadgroup
    memory, a threadgroup-memory race or threads meeting at different barriers."""
