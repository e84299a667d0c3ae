"""Device runtimes: one small interface, several implementations.

``compile(msl, kernel_name) -> pipeline``, ``launch(pipeline, grid, threadgroup, buffers)``,
``synchronize()``. ``sim`` runs the MSL on the CPU (Linux, CI); ``metal`` runs it on an Apple GPU
(PyObjC, torch ``mps`` tensors, numpy); ``mlx`` runs it on an Apple GPU through MLX (``mx.array``).
``TRITON_METAL_DEVICE=sim|metal|mlx|auto`` picks one (auto: metal where there is a usable Apple GPU,
else sim; mlx only when asked for).
"""
from __future__ import annotations

import functools
import os
import platform

from triton_metal.errors import MetalError

DEVICES = ("auto", "sim", "metal", "mlx")


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
    if device == "mlx":
        from triton_metal.runtime.mlx_runtime import MLXRuntime
        return MLXRuntime()
    from triton_metal.runtime.sim_runtime import SimRuntime
    return SimRuntime()


def _metal_available() -> bool:
    try:
        from triton_metal.runtime.metal_runtime import metal_device_available
    except ImportError:
        return False
    return metal_device_available()


def clear_cache() -> dict:
    """Release every compiled kernel this process holds (pipelines, simulator libraries, Triton's
    per-function kernel caches); the on-disk caches stay. See ``triton_metal.cache.clear_in_process``."""
    from triton_metal.cache import clear_in_process
    return clear_in_process()
