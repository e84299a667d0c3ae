"""Device runtimes: one contract (``runtime.base.Runtime``), several implementations.

``sim`` runs the MSL on the CPU (Linux, CI); ``metal`` runs it on an Apple GPU (PyObjC, torch
``mps`` tensors, numpy); ``mlx`` runs it on an Apple GPU through MLX (``mx.array``).
``TRITON_METAL_DEVICE=sim|metal|mlx|auto`` picks one (auto: the first of ``AUTO`` this machine can
run: metal where there is a usable Apple GPU, else sim; mlx only when asked for). A process has one
runtime, created on first use (``get_runtime``).

Adding a runtime: its module, implementing ``Runtime``, and one line in ``RUNTIMES``.
"""
from __future__ import annotations

import functools
import os

from triton_metal.errors import MetalError
from triton_metal.runtime.base import Capabilities, Runtime
from triton_metal.runtime.metal_runtime import MetalRuntime
from triton_metal.runtime.mlx_runtime import MLXRuntime
from triton_metal.runtime.sim_runtime import SimRuntime

# TRITON_METAL_DEVICE value -> the runtime it creates.
RUNTIMES: dict[str, type[Runtime]] = {
    "sim": SimRuntime,
    "metal": MetalRuntime,
    "mlx": MLXRuntime,
}
AUTO = ("metal", "sim")  # what TRITON_METAL_DEVICE=auto tries, in order

__all__ = ["AUTO", "RUNTIMES", "Capabilities", "Runtime", "created_runtime", "get_runtime", "requested_device"]


def requested_device() -> str:
    """``TRITON_METAL_DEVICE``: ``auto`` or a name in ``RUNTIMES``."""
    device = os.environ.get("TRITON_METAL_DEVICE", "auto").strip().lower() or "auto"
    if device != "auto" and device not in RUNTIMES:
        raise MetalError(f"TRITON_METAL_DEVICE={device!r} is not one of {', '.join(('auto', *RUNTIMES))}")
    return device


@functools.lru_cache(None)
def get_runtime() -> Runtime:
    """This process's runtime, created on the first call (which may open the device)."""
    device = requested_device()
    if device == "auto":
        device = next(name for name in AUTO if RUNTIMES[name].available())
    return RUNTIMES[device]()


def created_runtime() -> Runtime | None:
    """The runtime ``get_runtime`` created, or None when none was: for code that must not open a device
    just to ask (releasing pipelines, fork checks)."""
    return get_runtime() if get_runtime.cache_info().currsize else None
