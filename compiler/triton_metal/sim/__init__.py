"""The Metal simulator: MSL kernels compiled as C++ with g++ and run on the CPU.

    k = build_kernel(msl_source, "kernel_name")        # compiled once, cached on disk
    k.params                                           # buffer / threadgroup / builtin parameters
    k.dispatch(grid=(gx, gy, gz), threadgroup=(tx, ty, tz),
               buffers={0: tensor.data_ptr(), 1: struct.pack("<i", n)},
               threadgroup_lengths={0: 1024})

Threads of a threadgroup run cooperatively as fibers, so threadgroup_barrier and simd
collectives behave exactly; threadgroups run in parallel on OS threads.

Strict mode (``TRITON_METAL_SIM_STRICT=1``, or ``pytest -p triton_metal.sim.pytest_plugin
--sim-strict``) and traffic counters (``with count_traffic() as traffic: ...``) run kernels from a
second, instrumented build of each kernel; see ``executor`` and ``traffic``.
"""
from triton_metal.sim.errors import SimCompileError, SimError, SimLaunchError, SimStrictError
from triton_metal.sim.executor import SimKernel, build_kernel, strict_enabled
from triton_metal.sim.msl_prepass import KernelParam
from triton_metal.sim.traffic import SiteStats, TrafficStats, count_traffic

__all__ = ["KernelParam", "SimCompileError", "SimError", "SimKernel", "SimLaunchError", "SimStrictError", "SiteStats",
           "TrafficStats", "build_kernel", "count_traffic", "strict_enabled"]
