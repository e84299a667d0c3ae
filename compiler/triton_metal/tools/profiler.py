"""A kernel profiler built on Triton's own hooks (nothing in the launch path changes when it is off).

    metal.start_profiling()
    ...launch kernels...
    report = metal.stop_profiling()
    print(report); report.as_dict()

Per kernel: calls, compile time (Triton's stages on a cache miss plus building the MSL for the
runtime), total and mean run time, and achieved GB/s when the bytes moved are known: from the
kernel's ``launch_metadata`` (Triton's convention: ``@triton.jit(launch_metadata=f)`` with ``f``
returning ``{"bytes": ...}``) or, with ``start_profiling(count_traffic=True)`` on the simulator,
from the simulator's traffic counters. Run time is wall time from launch to completion: the
profiler synchronizes after every launch, so queued GPU work never hides inside another kernel.
"""
from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass

from triton import knobs

from triton_metal.runtime import get_runtime


@dataclass
class KernelProfile:
    kernel: str
    calls: int = 0
    compile_ms: float = 0.0  # compilations seen while profiling; 0 when compiled before
    total_ms: float = 0.0
    bytes_moved: int | None = None  # over all calls; None when unknown
    bytes_source: str = ""

    @property
    def mean_ms(self) -> float:
        return self.total_ms / self.calls if self.calls else 0.0

    @property
    def gb_per_s(self) -> float | None:
        if self.bytes_moved is None or self.total_ms <= 0:
            return None
        return self.bytes_moved / (self.total_ms * 1e-3) / 1e9

    def as_dict(self) -> dict:
        return {**asdict(self), "mean_ms": self.mean_ms, "gb_per_s": self.gb_per_s}


@dataclass
class ProfileReport:
    runtime: str
    simulated: bool
    wall_ms: float
    kernels: list

    def as_dict(self) -> dict:
        return {"runtime": self.runtime, "simulated": self.simulated, "wall_ms": self.wall_ms,
                "kernels": [k.as_dict() for k in self.kernels]}

    def __getitem__(self, name: str) -> KernelProfile:
        from triton_metal.codegen import msl_kernel_name
        # Kernels are recorded under their MSL function name, which differs from the Python name
        # when that one is not a valid MSL identifier: look either up.
        for k in self.kernels:
            if k.kernel in (name, msl_kernel_name(name)):
                return k
        raise KeyError(f"no kernel named {name!r} was launched while profiling")

    def __str__(self) -> str:
        head = ("kernel", "calls", "compile ms", "total ms", "mean ms", "GB/s")
        rows = [(k.kernel, str(k.calls), f"{k.compile_ms:.1f}", f"{k.total_ms:.3f}", f"{k.mean_ms:.3f}",
                 "-" if k.gb_per_s is None else f"{k.gb_per_s:.2f}") for k in self.kernels]
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        title = (f"triton-metal profile ({self.runtime} runtime{', simulated' if self.simulated else ''}, "
                 f"{self.wall_ms:.1f} ms wall)")
        lines = [title]
        for r in [head, *rows]:
            lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if not rows:
            lines.append("(no kernels launched)")
        return "\n".join(lines)


class _Session:
    """Hooks into Triton's launch, load and compile notifications while profiling is on."""

    def __init__(self, count_traffic: bool):
        self.runtime = get_runtime()
        self.kernels: dict = {}
        self.local = threading.local()
        self.lock = threading.Lock()
        self.load_started: dict = {}
        self.previous_listener = knobs.compilation.listener
        self.traffic_ctx = self.traffic = None
        if count_traffic:
            if not self.runtime.capabilities.simulated:
                raise RuntimeError("count_traffic=True needs the simulator (TRITON_METAL_DEVICE=sim): Apple GPUs "
                                   "expose no per-kernel memory counters to triton-metal")
            from triton_metal.sim import count_traffic as counter
            self.traffic_ctx = counter()
        self.start = time.perf_counter()

    def _kernel(self, name: str) -> KernelProfile:
        with self.lock:
            return self.kernels.setdefault(name, KernelProfile(name))

    # Triton hooks -------------------------------------------------------------------------
    def enter(self, metadata) -> None:
        stack = getattr(self.local, "stack", None)
        if stack is None:
            stack = self.local.stack = []
        stack.append(time.perf_counter())

    def exit(self, metadata) -> None:
        self.runtime.synchronize()
        elapsed = time.perf_counter() - self.local.stack.pop()
        data = metadata.get() if metadata is not None else {}
        k = self._kernel(data.get("name", "?"))
        with self.lock:
            k.calls += 1
            k.total_ms += elapsed * 1e3
            if "bytes" in data and self.traffic_ctx is None:
                k.bytes_moved = (k.bytes_moved or 0) + int(data["bytes"])
                k.bytes_source = "launch_metadata"

    def load_start(self, module, function, name, metadata_group, hash) -> None:
        self.load_started[(name, hash)] = time.perf_counter()

    def load_end(self, module, function, name, metadata_group, hash) -> None:
        start = self.load_started.pop((name, hash), None)
        if start is not None:
            k = self._kernel(name)
            with self.lock:
                k.compile_ms += (time.perf_counter() - start) * 1e3

    def listener(self, *, src, metadata, metadata_group, times, cache_hit) -> None:
        if self.previous_listener is not None:
            self.previous_listener(src=src, metadata=metadata, metadata_group=metadata_group, times=times,
                                   cache_hit=cache_hit)
        if not cache_hit:
            k = self._kernel(metadata["name"])
            with self.lock:
                k.compile_ms += times.total / 1e3  # microseconds

    # on / off -----------------------------------------------------------------------------
    def install(self) -> None:
        if self.traffic_ctx is not None:
            self.traffic = self.traffic_ctx.__enter__()
        knobs.runtime.launch_enter_hook.add(self.enter)
        knobs.runtime.launch_exit_hook.add(self.exit)
        knobs.runtime.kernel_load_start_hook.add(self.load_start)
        knobs.runtime.kernel_load_end_hook.add(self.load_end)
        knobs.compilation.listener = self.listener

    def uninstall(self) -> ProfileReport:
        knobs.runtime.launch_enter_hook.remove(self.enter)
        knobs.runtime.launch_exit_hook.remove(self.exit)
        knobs.runtime.kernel_load_start_hook.remove(self.load_start)
        knobs.runtime.kernel_load_end_hook.remove(self.load_end)
        knobs.compilation.listener = self.previous_listener
        wall_ms = (time.perf_counter() - self.start) * 1e3
        if self.traffic_ctx is not None:
            self.traffic_ctx.__exit__(None, None, None)
            for launch in self.traffic.launches:
                k = self._kernel(launch.kernel)
                k.bytes_moved = (k.bytes_moved or 0) + launch.global_bytes_read + launch.global_bytes_written
                k.bytes_source = "simulator traffic counters"
        return ProfileReport(self.runtime.name, self.runtime.capabilities.simulated, wall_ms,
                             sorted(self.kernels.values(), key=lambda k: -k.total_ms))


_session: _Session | None = None
_session_lock = threading.Lock()


def start_profiling(count_traffic: bool = False) -> None:
    """Start recording kernel launches and compilations (see the module docstring)."""
    global _session
    with _session_lock:
        if _session is not None:
            raise RuntimeError("profiling is already on: call metal.stop_profiling() first")
        session = _Session(count_traffic)
        session.install()
        _session = session


def stop_profiling() -> ProfileReport:
    """Stop recording and return the report (print it for a table; ``.as_dict()`` for data)."""
    global _session
    with _session_lock:
        if _session is None:
            raise RuntimeError("profiling is not on: call metal.start_profiling() first")
        session, _session = _session, None
    return session.uninstall()
