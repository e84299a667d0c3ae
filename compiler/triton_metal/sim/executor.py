"""Loads compiled kernels and dispatches them with a Metal-like API.

``grid`` counts threadgroups (Metal's dispatchThreadgroups, Triton's launch grid), and
``threadgroup`` counts threads per threadgroup. ctypes releases the GIL during a dispatch.
Environment: ``TRITON_METAL_SIM_THREADS`` (OS worker threads, default: the CPUs this process may use),
``TRITON_METAL_SIM_STACK_KB`` (stack per simulated thread, default 64) and
``TRITON_METAL_SIM_SCHEDULE`` (``forward``, the default, or ``reverse``: threads of a
threadgroup run in reverse order, which exposes races such as a missing barrier).
"""
from __future__ import annotations

import ctypes
import os
import threading

from triton_metal.sim import build as _build
from triton_metal.sim.errors import SimCompileError, SimLaunchError

MAX_THREADS_PER_THREADGROUP = 1024
MAX_THREADGROUP_MEMORY = 32768
_SCHEDULES = {"forward": 0, "reverse": 1}  # tm_launch.flags (TM_LAUNCH_REVERSE)

_runtime = None
_runtime_lock = threading.Lock()
_kernels: dict = {}


def _load_runtime() -> None:
    """Load the fiber runtime globally, so kernel libraries resolve tm_rt_* against it."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            path = _build.runtime_library()
            _runtime = ctypes.CDLL(str(path), mode=os.RTLD_NOW | os.RTLD_GLOBAL)


def build_kernel(msl_source: str, kernel_name: str) -> SimKernel:
    """Compile (or fetch from the cache) kernel ``kernel_name`` of ``msl_source``."""
    memo = (str(_build.cache_dir()), kernel_name, msl_source)
    kernel = _kernels.get(memo)
    if kernel is None:
        _load_runtime()
        kernel = _kernels[memo] = SimKernel(_build.build(msl_source, kernel_name))
    return kernel


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))  # respects taskset / container CPU sets
    except AttributeError:
        return os.cpu_count() or 1


def _env_int(name: str, default: int, lo: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SimLaunchError(f"{name}={raw!r} is not an integer") from None
    if value < lo:
        raise SimLaunchError(f"{name}={value} must be at least {lo}")
    return value


def _schedule_flags() -> int:
    schedule = os.environ.get("TRITON_METAL_SIM_SCHEDULE", "").strip().lower() or "forward"
    if schedule not in _SCHEDULES:
        raise SimLaunchError(f"TRITON_METAL_SIM_SCHEDULE={schedule!r} is not one of {', '.join(_SCHEDULES)}")
    return _SCHEDULES[schedule]


def _dim3(value, what: str, lo: int) -> tuple:
    dims = (value,) if isinstance(value, int) else tuple(value)
    if not 1 <= len(dims) <= 3 or not all(isinstance(d, int) and d >= lo for d in dims):
        raise SimLaunchError(f"{what}={value!r}: expected 1 to 3 integers >= {lo}")
    if any(d >= 2**32 for d in dims):
        raise SimLaunchError(f"{what}={value!r}: each dimension must be below 2**32")
    return dims + (1,) * (3 - len(dims))


def _address(value, slot: int, keep: list) -> int:
    """A buffer value as an address: an int, bytes-like contents (copied), a torch tensor or a
    numpy array (their memory is used in place)."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        buf = ctypes.create_string_buffer(bytes(value), max(len(value), 16))
        keep.append(buf)
        return ctypes.addressof(buf)
    if hasattr(value, "data_ptr"):
        return value.data_ptr()
    if hasattr(value, "__array_interface__"):
        return value.__array_interface__["data"][0]
    raise SimLaunchError(f"buffer slot {slot}: expected an address (int), bytes, a tensor or an array, "
                         f"got {type(value).__name__}")


class SimKernel:
    """A compiled kernel: ``params`` describes its signature, ``dispatch`` runs it."""

    def __init__(self, built: _build.BuiltKernel):
        self.name = built.name
        self.params = list(built.prepass.params)
        self.metal_path = str(built.metal_path)
        self.library_path = str(built.library)
        self.max_threads = built.prepass.max_threads
        try:
            self._lib = ctypes.CDLL(str(built.library), mode=os.RTLD_NOW | os.RTLD_LOCAL)
        except OSError as e:
            raise SimCompileError(f"could not load the library of kernel '{self.name}': {e}",
                                  metal_path=self.metal_path) from None
        fn = self._lib.tm_dispatch
        fn.restype = ctypes.c_int
        fn.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_uint32),
                       ctypes.POINTER(ctypes.c_uint32), ctypes.POINTER(ctypes.c_uint32), ctypes.c_uint32,
                       ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_char_p, ctypes.c_size_t]
        self._fn = fn
        self._buffers = {p.index: p for p in self.params if p.kind == "buffer"}
        self._threadgroup = {p.index: p for p in self.params if p.kind == "threadgroup"}

    def __repr__(self) -> str:
        return f"SimKernel({self.name!r}, {self.metal_path})"

    def dispatch(self, grid, threadgroup, buffers=None, threadgroup_lengths=None) -> None:
        """Run ``grid`` threadgroups of ``threadgroup`` threads; returns when all have finished."""
        buffers = buffers or {}
        threadgroup_lengths = threadgroup_lengths or {}
        grid = _dim3(grid, "grid", 0)
        tg = _dim3(threadgroup, "threadgroup", 1)
        threads = tg[0] * tg[1] * tg[2]
        if threads > MAX_THREADS_PER_THREADGROUP:
            raise SimLaunchError(
                f"kernel '{self.name}': a threadgroup of {tg[0]}x{tg[1]}x{tg[2]} = {threads} threads exceeds "
                f"Metal's limit of {MAX_THREADS_PER_THREADGROUP} threads per threadgroup "
                "(maxTotalThreadsPerThreadgroup): use a smaller threadgroup")
        if self.max_threads is not None and threads > self.max_threads:
            raise SimLaunchError(
                f"kernel '{self.name}': a threadgroup of {threads} threads exceeds the kernel's "
                f"[[max_total_threads_per_threadgroup({self.max_threads})]]: use a smaller threadgroup")

        missing = sorted(set(self._buffers) - set(buffers))
        if missing:
            names = ", ".join(f"{self._buffers[s].name} [[buffer({s})]]" for s in missing)
            raise SimLaunchError(f"kernel '{self.name}': no buffer bound for {names}: "
                                 "pass buffers={slot: address, bytes or tensor}")
        lengths = self._threadgroup_lengths(threadgroup_lengths)
        if 0 in grid:
            return

        keep: list = []
        n_buf = max(self._buffers, default=-1) + 1
        buf_array = (ctypes.c_void_p * max(n_buf, 1))()
        for slot in self._buffers:
            buf_array[slot] = _address(buffers[slot], slot, keep)
        len_array = (ctypes.c_uint32 * max(len(lengths), 1))(*lengths)
        err = ctypes.create_string_buffer(2048)
        rc = self._fn(buf_array, (ctypes.c_uint32 * 3)(*grid), (ctypes.c_uint32 * 3)(*tg), len_array,
                      len(lengths), _env_int("TRITON_METAL_SIM_THREADS", _cpu_count(), 1),
                      _env_int("TRITON_METAL_SIM_STACK_KB", 64, 4) * 1024, _schedule_flags(), err, len(err))
        if rc != 0:
            raise SimLaunchError(f"kernel '{self.name}' ({self.metal_path}): {err.value.decode(errors='replace')}")

    def _threadgroup_lengths(self, given: dict) -> list:
        """Bytes per [[threadgroup(i)]] slot, checked as Metal's setThreadgroupMemoryLength would."""
        missing = sorted(set(self._threadgroup) - set(given))
        if missing:
            names = ", ".join(f"{self._threadgroup[s].name} [[threadgroup({s})]]" for s in missing)
            raise SimLaunchError(f"kernel '{self.name}': no threadgroup memory length for {names}: "
                                 "pass threadgroup_lengths={slot: bytes}")
        n = max(self._threadgroup, default=-1) + 1
        lengths = [int(given.get(s, 0)) for s in range(n)]
        for s, length in enumerate(lengths):
            if length < 0 or length % 16:
                raise SimLaunchError(f"kernel '{self.name}': threadgroup_lengths[{s}] = {length} must be a "
                                     "non-negative multiple of 16 bytes (as in Metal)")
        if sum(lengths) > MAX_THREADGROUP_MEMORY:
            raise SimLaunchError(
                f"kernel '{self.name}': threadgroup_lengths total {sum(lengths)} bytes, more than Metal's "
                f"{MAX_THREADGROUP_MEMORY} bytes of threadgroup memory (maxThreadgroupMemoryLength): "
                "use smaller tiles or fewer threadgroup arrays")
        return lengths
