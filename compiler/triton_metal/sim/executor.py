"""Loads compiled kernels and dispatches them with a Metal-like API.

``grid`` counts threadgroups (Metal's dispatchThreadgroups, Triton's launch grid), and
``threadgroup`` counts threads per threadgroup. ctypes releases the GIL during a dispatch.
Environment: ``TRITON_METAL_SIM_THREADS`` (OS worker threads, default: the CPUs this process may use),
``TRITON_METAL_SIM_STACK_KB`` (stack per simulated thread, default 64) and
``TRITON_METAL_SIM_SCHEDULE`` (``forward``, the default, or ``reverse``: threads of a
threadgroup run in reverse order, which exposes races such as a missing barrier) and
``TRITON_METAL_SIM_STRICT=1`` (strict mode: kernels run from their instrumented build, which
checks every device and threadgroup access against its buffer or array, reports reads of
unwritten threadgroup memory, threadgroup-memory races between simdgroups and barriers that the
threads of a threadgroup reach at different calls; see ``strict_enabled``) and
``TRITON_METAL_SIM_DENORMALS`` (``apple``, the default: float and bfloat arithmetic flushes subnormals to
zero as Apple GPUs do; ``ieee``: the CPU's gradual underflow, for comparison; see triton_metal.numerics).
"""
from __future__ import annotations

import _ctypes
import ctypes
import os
import re
import threading
import weakref
from collections import OrderedDict
from pathlib import Path

from triton_metal import numerics
from triton_metal.abi import MAX_THREADGROUP_MEMORY, MAX_THREADS_PER_THREADGROUP
from triton_metal.sim import build as _build
from triton_metal.sim import traffic as _traffic
from triton_metal.sim.errors import SimCompileError, SimLaunchError, SimStrictError

_SCHEDULES = {"forward": 0, "reverse": 1}  # tm_launch.flags (TM_LAUNCH_REVERSE)
TM_LAUNCH_STRICT = 2  # tm_sim_abi.h
TM_LAUNCH_COUNT = 4
TM_LAUNCH_FLUSH_DENORMALS = 8

_runtime = None
_runtime_lock = threading.Lock()
# The kernels loaded most recently, for reuse by MSL. Each holds a dlopen'ed library (about 5 memory
# maps); a library is unloaded when its kernel is garbage (SimKernel._load), so the memo is bounded:
# a long session (the whole of upstream's test_core in one worker) would otherwise exhaust the
# process's 65,530 memory maps and crash in whatever maps memory next.
MEMO_LIMIT = 1024
_kernels: OrderedDict = OrderedDict()
_unloaded = [0]  # libraries unloaded so far (SimRuntime.release reports the difference)


def _load_runtime() -> None:
    """Load the fiber runtime globally, so kernel libraries resolve tm_rt_* against it."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            path = _build.runtime_library()
            _runtime = ctypes.CDLL(str(path), mode=os.RTLD_NOW | os.RTLD_GLOBAL)


def build_kernel(msl_source: str, kernel_name: str) -> SimKernel:
    """Compile (or fetch from the cache) kernel ``kernel_name`` of ``msl_source``."""
    memo = (str(_build.cache_dir()), kernel_name, msl_source, _build.phases_enabled())
    kernel = _kernels.get(memo)
    if kernel is None:
        _load_runtime()
        kernel = _kernels[memo] = SimKernel(_build.build(msl_source, kernel_name), msl_source)
        while len(_kernels) > MEMO_LIMIT:
            _kernels.popitem(last=False)  # (still loaded while a caller holds it)
    else:
        _kernels.move_to_end(memo)
    return kernel


def strict_enabled() -> bool:
    """Strict mode: ``TRITON_METAL_SIM_STRICT=1`` (or the pytest option ``--sim-strict`` of
    ``triton_metal.sim.pytest_plugin``, which sets it)."""
    raw = os.environ.get("TRITON_METAL_SIM_STRICT", "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise SimLaunchError(f"TRITON_METAL_SIM_STRICT={raw!r}: use 1 (strict mode) or 0")


def clear_memo() -> None:
    """Forget every loaded kernel: the libraries of those nobody else references are unloaded when
    they are collected (``SimRuntime.release`` collects them)."""
    _kernels.clear()


def unloaded_count() -> int:
    """How many kernel libraries have been unloaded in this process."""
    return _unloaded[0]


def _unload(handle: int) -> None:
    _ctypes.dlclose(handle)
    _unloaded[0] += 1


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


def _size(value) -> int:
    """Bytes addressable from a buffer value (0 = unknown): a tensor's storage from its first
    element on, an array's or bytes' length."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return max(len(value), 16)
    if hasattr(value, "untyped_storage"):
        storage = value.untyped_storage()
        return max(0, storage.nbytes() - (value.data_ptr() - storage.data_ptr()))
    if hasattr(value, "__array_interface__") and hasattr(value, "nbytes"):
        return int(value.nbytes)
    return 0


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

    def __init__(self, built: _build.BuiltKernel, msl_source: str | None = None):
        self._msl = msl_source
        self._instrumented = None  # the strict / counting build, loaded when first needed
        self.name = built.name
        self.params = list(built.prepass.params)
        self.metal_path = str(built.metal_path)
        self.library_path = str(built.library)
        self.max_threads = built.prepass.max_threads
        self.phases = built.phases  # > 0: runs phase by phase without fibers (phase_split.py)
        self.math_mode = built.math_mode  # as the MSL states it (numerics.MathMode)
        self._lib, self._fn = self._load(built)
        self._buffers = {p.index: p for p in self.params if p.kind == "buffer"}
        self._threadgroup = {p.index: p for p in self.params if p.kind == "threadgroup"}

    def __repr__(self) -> str:
        return f"SimKernel({self.name!r}, {self.metal_path})"

    def _load(self, built: _build.BuiltKernel) -> tuple:
        try:
            lib = ctypes.CDLL(str(built.library), mode=os.RTLD_NOW | os.RTLD_LOCAL)
        except OSError as e:
            raise SimCompileError(f"could not load the library of kernel '{self.name}': {e}",
                                  metal_path=self.metal_path) from None
        # Unloaded with the kernel: nothing can call into the library once the kernel (which holds its
        # function pointer) is unreachable. Not at exit: the process unmaps everything then.
        weakref.finalize(self, _unload, lib._handle).atexit = False
        fn = lib.tm_dispatch
        fn.restype = ctypes.c_int
        fn.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_uint32),
                       ctypes.POINTER(ctypes.c_uint32), ctypes.POINTER(ctypes.c_uint32), ctypes.c_uint32,
                       ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_char_p, ctypes.c_size_t,
                       ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint64), ctypes.c_void_p]
        return lib, fn

    def _instrumented_fn(self):
        if self._instrumented is None:
            msl = self._msl if self._msl is not None else Path(self.metal_path).read_text()
            self._instrumented = self._load(_build.build(msl, self.name, instrument=True))
        return self._instrumented[1]

    def _message(self, raw: str) -> str:
        """Names the buffers in a runtime message: {buffer:1} -> 'x_ptr' [[buffer(1)]]."""
        def name(m):
            slot = int(m.group(1))
            p = self._buffers.get(slot)
            return f"'{p.name}' [[buffer({slot})]]" if p else f"[[buffer({slot})]]"
        return re.sub(r"\{buffer:(-?\d+)\}", name, raw)

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
        flags, fn, sizes, stats = _schedule_flags(), self._fn, None, None
        if numerics.sim_flushes_denormals(self.math_mode):
            flags |= TM_LAUNCH_FLUSH_DENORMALS  # the worker threads compute with FTZ/DAZ (fiber_runtime.cpp)
        strict, counting = strict_enabled(), _traffic.collecting()
        if strict or counting:
            fn = self._instrumented_fn()
            sizes = (ctypes.c_uint64 * max(n_buf, 1))(*[_size(buffers[s]) if s in self._buffers else 0
                                                         for s in range(n_buf)])
            flags |= TM_LAUNCH_STRICT if strict else 0
            if counting:
                flags |= TM_LAUNCH_COUNT
                stats, sites = _traffic.new_c_stats()
                keep.append(sites)
        rc = fn(buf_array, (ctypes.c_uint32 * 3)(*grid), (ctypes.c_uint32 * 3)(*tg), len_array,
                len(lengths), _env_int("TRITON_METAL_SIM_THREADS", _cpu_count(), 1),
                _env_int("TRITON_METAL_SIM_STACK_KB", 64, 4) * 1024, flags, err, len(err),
                n_buf if sizes is not None else 0, sizes, ctypes.addressof(stats) if stats is not None else None)
        if rc != 0:
            message = self._message(err.value.decode(errors="replace"))
            error = SimStrictError if message.startswith("strict mode:") else SimLaunchError
            raise error(f"kernel '{self.name}' ({self.metal_path}): {message}")
        if stats is not None:
            _traffic.record(_traffic.from_c_stats(self.name, stats, grid, tg))

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
