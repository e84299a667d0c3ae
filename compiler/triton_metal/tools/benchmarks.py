"""Bandwidth and compute micro-benchmarks: ordinary Triton kernels compiled by this backend.

The bytes and FLOPs each result reports are what the kernels do by construction (a copy reads
and writes every byte once; an FMA chain does 2 FLOPs per element per iteration); the tests check
the bytes against the simulator's traffic counters. On the simulator the timings are those of the
CPU running the simulator, and the results say so.
"""
from __future__ import annotations

import time

import triton
import triton.language as tl

from triton_metal.tools.hardware import get_hardware_capabilities

# A rule of thumb for what well-written streaming / FMA-bound kernels reach, as a fraction of the
# chip's peak. Printed as a planning range; it is not a measurement made by this project.
EXPECTED_FRACTION_OF_PEAK = (0.6, 0.9)
COPY_BLOCK = 1024
FMA_BLOCK = 256


# Public-looking names on purpose: they are what the profiler, debug logs and dumps show, and C++
# reserves identifiers with a leading underscore, so the MSL of `_name` would be renamed.
@triton.jit
def bandwidth_copy_kernel(src, dst, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(dst + offs, tl.load(src + offs, mask=mask), mask=mask)


@triton.jit
def fma_chain_kernel(src, dst, n, a, b, ITERATIONS: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(src + offs, mask=mask)
    a_x, b_x = a.to(x.dtype), b.to(x.dtype)  # the chain stays in the element type (fp16 stays fp16)
    for _ in range(ITERATIONS):
        x = x * a_x + b_x  # 2 FLOPs: one fma() with Triton's default fp fusion (numerics.py), counted as two
    tl.store(dst + offs, x, mask=mask)


class BenchmarkResult(float):
    """The measured rate (GB/s or TFLOP/s) as a number, with how it was measured as attributes.

    It is a ``float``, so it formats, compares and computes as one (``f"{bandwidth:.2f} GB/s"``,
    ``bandwidth > 100``, ``bandwidth / 2``: arithmetic gives plain floats); ``str()`` / ``print``
    give the full description, ``as_dict()`` every detail. ``test_compute_throughput`` also keeps the
    computed tensor as ``.output`` (the tests check it).
    """

    DETAILS = ("name", "chip", "runtime", "simulated",
               "launches",        # kernel launches made, warm-up included
               "timed_runs", "mean_ms", "bytes_per_run", "flops_per_run",
               "unit",            # "GB/s" or "TFLOP/s"
               "expected_range",  # (low, high) in `unit` on the chip, None when the chip table has no peak
               "note")

    def __new__(cls, value: float, **details):
        unknown = set(details) - set(cls.DETAILS)
        if unknown:
            raise TypeError(f"BenchmarkResult has no detail {', '.join(sorted(unknown))}")
        result = super().__new__(cls, value)
        result.__dict__.update(details)
        return result

    def __getnewargs__(self):
        return (float(self),)  # copy / pickle: the details travel in __dict__

    @property
    def value(self) -> float:
        return float(self)

    def as_dict(self) -> dict:
        return {"value": float(self), **{name: getattr(self, name, None) for name in self.DETAILS}}

    def __repr__(self) -> str:
        d = self.as_dict()
        return f"BenchmarkResult({float(self)!r} {d['unit']}, {d['name']!r} on {d['chip']}, {d['runtime']} runtime)"

    def __str__(self) -> str:
        where = f"{self.runtime} runtime" + (" (simulated: the CPU running the simulator)" if self.simulated else "")
        text = f"{self.name}: {self.value:.4g} {self.unit} on {self.chip}, {where}, mean of {self.timed_runs} runs"
        if self.expected_range:
            lo, hi = self.expected_range
            text += f"\n  expected on {self.chip}: {lo:.1f}-{hi:.1f} {self.unit} ({self.note})"
        else:
            text += f"\n  expected on {self.chip}: {self.note}"
        return text

    def __format__(self, spec: str) -> str:
        # An empty spec (f"{result}") is str(): the description, as print() shows it; any other
        # spec formats the number (f"{result:.2f}").
        return str(self) if not spec else float.__format__(float(self), spec)


def _torch_dtype(dtype):
    import torch
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
             "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
    try:
        return names[str(dtype)]
    except KeyError:
        raise ValueError(f"dtype {dtype!r} is not one of {', '.join(names)}") from None


def _time_runs(launch, runs: int, warmup: int) -> float:
    """Mean milliseconds per launch, synchronizing around each one."""
    from triton_metal.runtime import get_runtime
    runtime = get_runtime()
    for _ in range(warmup):
        launch()
    runtime.synchronize()
    total = 0.0
    for _ in range(runs):
        start = time.perf_counter()
        launch()
        runtime.synchronize()
        total += time.perf_counter() - start
    return total / runs * 1e3


def _expected(peak, unit: str):
    if peak is None:
        return None, f"the chip table has no peak {unit} figure for this chip"
    lo, hi = EXPECTED_FRACTION_OF_PEAK
    return (peak * lo, peak * hi), (f"{lo:.0%}-{hi:.0%} of its {peak:g} {unit} peak from the chip table; "
                                    "a rule of thumb, not a measurement")


def test_memory_bandwidth(size_mb: float = 64, runs: int = 5, warmup: int = 1, verbose: bool = True):
    """Copy ``size_mb`` MiB (float32) from one buffer to another; GB/s counts the read and the write."""
    import torch
    device = triton.runtime.driver.active.get_active_torch_device()
    n = max(COPY_BLOCK, int(size_mb * (1 << 20)) // 4 // COPY_BLOCK * COPY_BLOCK)
    src = torch.arange(n, dtype=torch.float32).to(device)
    dst = torch.empty_like(src)
    grid = (triton.cdiv(n, COPY_BLOCK),)
    mean_ms = _time_runs(lambda: bandwidth_copy_kernel[grid](src, dst, n, BLOCK=COPY_BLOCK), runs, warmup)
    if not torch.equal(dst.cpu(), src.cpu()):
        raise RuntimeError("the bandwidth kernel copied wrong values: the backend is miscompiling a plain copy")
    caps = get_hardware_capabilities()
    bytes_per_run = 2 * n * 4
    expected, note = _expected(caps.peak_bandwidth_gbs, "GB/s")
    result = BenchmarkResult(bytes_per_run / (mean_ms * 1e-3) / 1e9, name="memory bandwidth (copy)", chip=caps.chip,
                             runtime=caps.runtime, simulated=caps.simulated, launches=runs + warmup, timed_runs=runs,
                             mean_ms=mean_ms, bytes_per_run=bytes_per_run, flops_per_run=0, unit="GB/s",
                             expected_range=expected, note=note)
    if verbose:
        print(result)
    return result


def test_compute_throughput(dtype="float32", n: int | None = None, iterations: int = 256, runs: int = 3,
                            warmup: int = 1, verbose: bool = True):
    """Run a dependent multiply-add chain per element; TFLOP/s counts 2 FLOPs per iteration."""
    import torch
    torch_dtype = _torch_dtype(dtype)
    caps = get_hardware_capabilities()
    if torch_dtype == torch.bfloat16 and not caps.supports_bfloat:
        raise ValueError(f"{caps.chip} has no bfloat support (Metal 3.1): use dtype='float16' or 'float32'")
    if n is None:
        n = (1 << 16) if caps.simulated else (1 << 24)  # the simulator runs on the CPU: keep it short
    device = triton.runtime.driver.active.get_active_torch_device()
    src = torch.linspace(0, 1, n, dtype=torch.float32).to(torch_dtype).to(device)
    dst = torch.empty_like(src)
    a, b = 0.999, 0.001  # keeps values in [0, 1]: no overflow whatever the iteration count
    grid = (triton.cdiv(n, FMA_BLOCK),)
    mean_ms = _time_runs(lambda: fma_chain_kernel[grid](src, dst, n, a, b, ITERATIONS=iterations, BLOCK=FMA_BLOCK),
                         runs, warmup)
    flops_per_run = 2 * n * iterations
    peak = caps.peak_fp32_tflops if torch_dtype == torch.float32 else None
    expected, note = _expected(peak, "TFLOP/s")
    if peak is None and torch_dtype != torch.float32:
        note = f"the chip table has only an FP32 peak; no expected range for {torch_dtype}"
    result = BenchmarkResult(flops_per_run / (mean_ms * 1e-3) / 1e12,
                             name=f"compute throughput ({str(torch_dtype).removeprefix('torch.')} multiply-add)",
                             chip=caps.chip, runtime=caps.runtime, simulated=caps.simulated, launches=runs + warmup,
                             timed_runs=runs, mean_ms=mean_ms, bytes_per_run=2 * n * src.element_size(),
                             flops_per_run=flops_per_run, unit="TFLOP/s", expected_range=expected, note=note)
    result.output = dst
    if verbose:
        print(result)
    return result


# pytest must not collect these when a test module imports them by name.
test_memory_bandwidth.__test__ = False
test_compute_throughput.__test__ = False
