"""The troubleshooting API, at the import path the guide (docs/troubleshooting.md) fixes; the code lives in
``triton_metal.tools``::

    import triton_metal.backends.metal as metal

    metal.check_environment()                       # also: python -m triton_metal.backends.metal.check_environment
    metal.set_debug_option("dump_shaders", True)    # metal.get_debug_options() lists them
    metal.start_profiling(); ...; print(metal.stop_profiling())
    metal.get_hardware_capabilities()
    metal.test_memory_bandwidth(size_mb=64); metal.test_compute_throughput(dtype="float16")
    metal.analyze_memory_access(fn, sample_inputs)
    metal.clear_cache(); metal.synchronize()
"""
import triton  # noqa: F401  (first: Triton's backend discovery imports triton_metal.compiler)

from triton_metal import debug as _debug
from triton_metal.tools.benchmarks import test_compute_throughput, test_memory_bandwidth
from triton_metal.tools.environment import check_environment
from triton_metal.tools.hardware import HardwareCapabilities, get_hardware_capabilities
from triton_metal.tools.maintenance import clear_cache, synchronize
from triton_metal.tools.memory_analysis import MemoryAccessReport, analyze_memory_access
from triton_metal.tools.profiler import ProfileReport, start_profiling, stop_profiling


def set_debug_option(name: str, value) -> None:
    """Set a debug option for this process (``None`` restores the environment's value)."""
    _debug.set_option(name, value)


def get_debug_options() -> dict:
    """Every debug option: its current value and what it does."""
    return {name: {"value": _debug.get_option(name), "description": doc} for name, doc in _debug.OPTION_DOCS.items()}


__all__ = [
    "HardwareCapabilities", "MemoryAccessReport", "ProfileReport", "analyze_memory_access", "check_environment",
    "clear_cache", "get_debug_options", "get_hardware_capabilities", "set_debug_option", "start_profiling",
    "stop_profiling", "synchronize", "test_compute_throughput", "test_memory_bandwidth",
]
