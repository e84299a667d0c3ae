"""Device runtimes: one small interface, several implementations.

``compile(msl, kernel_name) -> pipeline``, ``launch(pipeline, grid, threadgroup, buffers)``,
``synchronize()``. ``sim`` runs the MSL on the CPU (Linux, CI); ``metal`` runs it on an Apple GPU.
``TRITON_METAL_DEVICE=sim|metal|auto`` picks one (auto: metal where there is a usable Apple GPU).
"""
from __future__ import annotations

import functools
import os
import platform

from triton_metal.errors import MetalError

DEVICES = ("auto", "sim", "metal")


def requested_device() -> str:
    device = os.environ.get("TRITON_METAL_DEVICE", "auto").strip().lower() or "auto"
    if device not in DEVICES:
        raise MetalError(f"TRITON_METAL_DEVICE={device!r} is not one of {', '.join(DEVICES)}")
    return device


@functools.lru_cache(None)
def get_runtime():
    device = requested_device()
    if device == "auto":
        device = "metal" if platform.system() == "Darwin" and _metal_available() else "sim"
    if device == "metal":
        from triton_metal.runtime.metal_runtime import MetalRuntime
        return MetalRuntime()
    from triton_metal.runtime.sim_runtime import SimRuntime
    return SimRuntime()


def _metal_available() -> bool:
    try:
        from triton_metal.runtime.metal_runtime import metal_device_available
    except ImportError:
        return False
    return metal_device_available()
