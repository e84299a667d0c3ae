"""The Metal runtime (Apple GPUs through PyObjC)."""
from __future__ import annotations

import platform

from triton_metal.errors import MetalError


def metal_device_available() -> bool:
    if platform.system() != "Darwin":
        return False
    try:
        import Metal
    except ImportError:
        return False
    return Metal.MTLCreateSystemDefaultDevice() is not None


class MetalRuntime:
    name = "metal"
    simulated = False
    torch_device = "mps"

    def __init__(self):
        if not metal_device_available():
            raise MetalError(
                "Metal is not supported on this machine: TRITON_METAL_DEVICE=metal needs macOS 13.5+ on Apple "
                "Silicon with pyobjc-framework-Metal installed. Use TRITON_METAL_DEVICE=sim to run kernels "
                "on the CPU through the Metal simulator.")
        raise MetalError("The Metal GPU runtime is not implemented yet: use TRITON_METAL_DEVICE=sim")
