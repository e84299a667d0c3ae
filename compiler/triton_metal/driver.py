"""The driver half of the backend, as Triton discovers it: device, target, launcher, benchmarking."""
from __future__ import annotations

import os
import time

from triton.backends.compiler import GPUTarget
from triton.backends.driver import DriverBase

from triton_metal.debug import log
from triton_metal.launcher import MetalLauncher
from triton_metal.runtime import get_runtime


class MetalUtils:
    """What Triton's ``CompiledKernel`` asks of ``driver.utils``."""

    def load_binary(self, name, kernel_bytes, shared, device):
        runtime = get_runtime()
        msl = kernel_bytes.decode() if isinstance(kernel_bytes, bytes) else kernel_bytes
        log(3, "MSL of %s:\n%s", name, msl)
        from triton_metal.tools.shaders import on_kernel_loaded  # dumps before building: failures too
        on_kernel_loaded(name, msl, runtime)
        start = time.perf_counter()
        pipeline = runtime.compile(msl, name)
        log(1, "built %s for the %s runtime in %.1f ms", name, runtime.name, (time.perf_counter() - start) * 1e3)
        # Metal reports no per-thread register count. Triton code (e.g. the upstream fused-softmax tutorial)
        # divides by it, so registers are counted in units of one per thread: max_num_regs below is then the
        # threads a threadgroup may hold, and NUM_REGS // (n_regs * 32 * num_warps) its occupancy bound.
        return None, pipeline, 1, 0, runtime.chip.max_threads_per_threadgroup

    def unload_module(self, module):
        pass

    def get_device_properties(self, device):
        capabilities = get_runtime().capabilities
        chip = capabilities.chip
        return {
            "max_shared_mem": chip.max_threadgroup_memory,
            "max_num_regs": chip.max_threads_per_threadgroup,  # one register unit per thread (load_binary)
            "multiprocessor_count": os.cpu_count() if capabilities.simulated else 1,
            "warpSize": chip.simd_width,
        }


class _Event:
    """Timing event with the torch.cuda.Event interface that ``triton.testing.do_bench`` uses."""

    def __init__(self, enable_timing=True):
        self.t = None

    def record(self, stream=None):
        get_runtime().synchronize()
        self.t = time.perf_counter()

    def synchronize(self):
        get_runtime().synchronize()

    def elapsed_time(self, end: _Event) -> float:
        return (end.t - self.t) * 1000.0


class MetalDeviceInterface:
    Event = _Event

    @staticmethod
    def synchronize(device=None):
        get_runtime().synchronize()


class MetalDriver(DriverBase):

    def __init__(self):
        super().__init__()
        self.utils = MetalUtils()
        self.launcher_cls = MetalLauncher

    @classmethod
    def is_active(cls) -> bool:
        # A machine with a CUDA or ROCm GPU keeps its own backend unless Metal is asked for.
        if "TRITON_METAL_DEVICE" in os.environ:
            return True
        return not (os.path.exists("/dev/nvidia0") or os.path.exists("/dev/kfd"))

    def get_current_target(self) -> GPUTarget:
        return GPUTarget("metal", get_runtime().chip.id, 32)

    def get_active_torch_device(self):
        import torch
        return torch.device(get_runtime().capabilities.torch_device)

    def get_current_device(self) -> int:
        return 0

    def set_current_device(self, device) -> None:
        pass

    def get_current_stream(self, device=None):
        return None

    def get_device_interface(self):
        return MetalDeviceInterface

    def get_benchmarker(self):
        from triton.testing import do_bench
        return do_bench

    def get_empty_cache_for_benchmark(self):
        import torch
        # Larger than the system-level cache of every Apple chip (and of CI's CPUs).
        return torch.empty(64 * 1024 * 1024 // 4, dtype=torch.int32, device=self.get_active_torch_device())

    def clear_cache(self, cache) -> None:
        cache.zero_()

    def map_python_to_cpp_type(self, ty: str) -> str:
        from triton_metal.codegen.types import msl_type_of_signature
        return msl_type_of_signature(ty)
