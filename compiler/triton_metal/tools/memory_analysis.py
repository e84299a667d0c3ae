"""``analyze_memory_access(fn, sample_inputs)``: per load and store of a kernel, the bytes moved,
coalescing efficiency, stride pattern and a suggestion.

``fn`` is anything that launches kernels when called: the host function that wraps a kernel
(``add(x, y)``), or a bound launch ``kernel[grid]``. It is called once as ``fn(*sample_inputs,
**kwargs)`` (``sample_inputs`` may be a tuple, a dict of keyword arguments or a single value).
Every kernel dispatch it makes is analysed. A kernel itself (``@triton.jit``, autotuned,
``@triton.heuristics``) needs its launch grid: ``analyze_memory_access(kernel, args, grid=grid)``
is ``analyze_memory_access(kernel[grid], args)``; without ``grid=`` it is refused up front with
both forms, before anything runs.

The counts come from the simulator (``triton_metal.sim.count_traffic``), which runs the very MSL
the GPU would; layouts come from the kernel's TTGIR in Triton's cache. Apple GPUs expose no such
per-access counters, so under the Metal runtime the result says so and holds no sites: run the
analysis with ``TRITON_METAL_DEVICE=sim`` (on a Mac too: the simulator runs there).
"""
from __future__ import annotations

import glob
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from triton import knobs
from triton.runtime.jit import KernelInterface

from triton_metal.runtime import get_runtime
from triton_metal.tools import ttgir_sites

CONTIGUOUS = 0.95   # efficiency from which an access counts as fully coalesced
SCATTERED = 0.25    # efficiency under which each lane is (nearly) its own transaction


@dataclass
class AccessSite:
    kind: str                   # load, store, atomic, ...
    source: str                 # file.py:LINE: source text
    msl_line: int
    bytes: int
    accesses: int
    transactions: int
    ideal_transactions: int
    coalescing_efficiency: float
    stride_pattern: str
    layout: str
    suggestion: str


@dataclass
class LaunchAnalysis:
    kernel: str
    global_bytes_read: int
    global_bytes_written: int
    coalescing_efficiency: float
    sites: list = field(default_factory=list)


@dataclass
class MemoryAccessReport:
    simulated: bool
    launches: list
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def sites(self) -> list:
        return [s for launch in self.launches for s in launch.sites]

    def __str__(self) -> str:
        lines = [f"memory access analysis ({'simulator counters' if self.simulated else 'no counters'})"]
        if self.note:
            lines.append(self.note)
        for launch in self.launches:
            lines.append(f"kernel {launch.kernel}: {launch.global_bytes_read} B read, {launch.global_bytes_written} B "
                         f"written, coalescing {launch.coalescing_efficiency:.0%}")
            for s in launch.sites:
                lines.append(f"  {s.kind:<6} {s.source}")
                lines.append(f"         {s.bytes} B in {s.transactions} transactions (ideal {s.ideal_transactions}): "
                             f"{s.coalescing_efficiency:.0%} coalesced, {s.stride_pattern}")
                lines.append(f"         layout: {s.layout}")
                lines.append(f"         suggestion: {s.suggestion}")
        return "\n".join(lines)


def _interleaved(efficiency: float, op) -> int:
    """N when the layout gives each thread N contiguous elements and the efficiency is 1/N: the
    generated MSL accessed one register per instruction (the vector access's run-time check failed: an
    unaligned address), so in each access lanes sit N elements apart."""
    n = op.elements_per_thread if op is not None and op.elements_per_thread else 1
    return n if n > 1 and abs(efficiency * n - 1) < 0.05 else 0


def stride_pattern(efficiency: float, transactions: int, accesses: int, op=None) -> str:
    if transactions == 0:
        return "no global traffic"
    if efficiency >= CONTIGUOUS:
        return "contiguous: consecutive lanes touch consecutive addresses"
    n = _interleaved(efficiency, op)
    if n:
        return (f"interleaved: each thread holds {n} contiguous elements and each access moves one of them, "
                f"so neighbouring lanes are {n} elements apart")
    if efficiency < SCATTERED or transactions >= accesses:
        return "scattered or large stride: nearly every lane needs its own transaction"
    return f"strided: about {1 / efficiency:.1f}x the minimum transactions (lanes skip addresses)"


def suggestion(kind: str, efficiency: float, op) -> str:
    n = _interleaved(efficiency, op)
    if efficiency < CONTIGUOUS and n:
        return (f"each thread's {n} elements are consecutive, but triton-metal moves them with one vector "
                f"{kind} only when their first address is aligned to the vector's size and none is masked off; "
                "here they were not, so each access moved one element. Start the tensor and its rows (the row "
                "stride) at 16-byte aligned addresses (a slice such as x[1:] is not)")
    if efficiency < CONTIGUOUS:
        return ("make the fastest-varying index (the tl.arange that differs between neighbouring lanes) step through "
                "contiguous memory: swap the roles of the row and column offsets, or transpose the data so the "
                f"{kind} runs along its contiguous axis")
    return "coalesced: nothing to change"


def _ttgir_for(name: str, msl: str) -> str | None:
    """The TTGIR that Triton cached next to this exact MSL."""
    cache_dir = knobs.cache.dir
    # Triton names its files after the Python kernel, which may differ from the MSL name (an MSL
    # keyword, a leading underscore): then look at every cached MSL.
    for pattern in (f"{name}.msl", "*.msl"):
        for path in glob.glob(os.path.join(cache_dir, "*", pattern)):
            try:
                if Path(path).read_text() == msl:
                    ttgir = Path(path).with_suffix(".ttgir")
                    return ttgir.read_text() if ttgir.exists() else None
            except OSError:
                continue
    return None


def _call(fn, sample_inputs, kwargs):
    if isinstance(sample_inputs, dict):
        return fn(**sample_inputs, **kwargs)
    if isinstance(sample_inputs, (tuple, list)):
        return fn(*sample_inputs, **kwargs)
    return fn(sample_inputs, **kwargs)


def _kernel_name(kernel) -> str:
    while not hasattr(kernel, "__name__") and hasattr(kernel, "fn"):  # Autotuner / Heuristics wrap a JITFunction
        kernel = kernel.fn
    return getattr(kernel, "__name__", type(kernel).__name__)


def _launcher(fn, grid):
    """What to call: ``fn`` itself, or ``fn[grid]`` for a kernel (which is not callable without a grid)."""
    if not isinstance(fn, KernelInterface):
        if grid is not None:
            raise TypeError("analyze_memory_access: grid= applies to a kernel (@triton.jit or autotuned); "
                            f"{_kernel_name(fn)} is called as fn(*sample_inputs) and launches its own kernels")
        return fn
    if grid is None:
        name = _kernel_name(fn)
        raise TypeError(
            f"analyze_memory_access needs the launch grid of kernel {name!r}: a kernel cannot be called "
            "without one. Pass the kernel with grid=, or a bound launch (or a host function that launches it):\n"
            f"    metal.analyze_memory_access({name}, (x, y, out, n), grid=(triton.cdiv(n, 1024),), BLOCK_SIZE=1024)\n"
            f"    metal.analyze_memory_access({name}[(triton.cdiv(n, 1024),)], (x, y, out, n), BLOCK_SIZE=1024)\n"
            "(an autotuned kernel takes a grid function, grid=lambda meta: (triton.cdiv(n, meta['BLOCK_SIZE']),), "
            "and no block size)")
    return fn[grid]


def analyze_memory_access(fn, sample_inputs=(), *, grid=None, **kwargs) -> MemoryAccessReport:
    """Run ``fn(*sample_inputs, **kwargs)`` once on the simulator, counting each load and store.

    ``fn`` is a host function or a bound launch ``kernel[grid]``, or a kernel with ``grid=``."""
    fn = _launcher(fn, grid)
    runtime = get_runtime()
    if not runtime.capabilities.simulated:
        _call(fn, sample_inputs, kwargs)
        return MemoryAccessReport(False, [], note=(
            "Apple GPUs expose no per-access memory counters: rerun with TRITON_METAL_DEVICE=sim to analyse the "
            "same MSL on the simulator"))
    from triton_metal.sim import count_traffic

    launched = []  # (kernel name, pipeline) per launch, in order

    def record(metadata):
        data = metadata.get() if metadata is not None else {}
        launched.append((data.get("name"), data.get("function")))

    knobs.runtime.launch_enter_hook.add(record)
    try:
        with count_traffic() as traffic:
            _call(fn, sample_inputs, kwargs)
    finally:
        knobs.runtime.launch_enter_hook.remove(record)

    pipelines = {name: pipeline for name, pipeline in launched}
    launches = []
    for stats in traffic.launches:
        pipeline = pipelines.get(stats.kernel)
        msl = Path(pipeline.metal_path).read_text() if getattr(pipeline, "metal_path", None) else ""
        comments = ttgir_sites.site_ops(msl, _ttgir_for(stats.kernel, msl) if msl else None)
        analysis = LaunchAnalysis(stats.kernel, stats.global_bytes_read, stats.global_bytes_written,
                                  stats.coalescing_efficiency)
        for msl_line, site in sorted(stats.sites.items()):
            where = ttgir_sites.comment_for(msl_line, comments)
            op = where[3] if where else None
            source = f"{where[0]}:{where[1]}: {where[2]}" if where else f"MSL line {msl_line}"
            efficiency = site.ideal_transactions / site.transactions if site.transactions else 1.0
            analysis.sites.append(AccessSite(
                kind=site.kind, source=source, msl_line=msl_line, bytes=site.bytes, accesses=site.accesses,
                transactions=site.transactions, ideal_transactions=site.ideal_transactions,
                coalescing_efficiency=efficiency,
                stride_pattern=stride_pattern(efficiency, site.transactions, site.accesses, op),
                layout=op.describe_layout() if op else "unknown (no TTGIR for this kernel in Triton's cache)",
                suggestion=suggestion(site.kind, efficiency, op)))
        launches.append(analysis)
    return MemoryAccessReport(True, launches)
