"""Bandwidth and compute micro-benchmarks: ordinary Triton kernels compiled by this backend.

The bytes and FLOPs each result reports are what the kernels do by construction (a copy reads
and writes every byte once; an FMA chain does 2 FLOPs per element per iteration); the tests check
the bytes against the simulator's traffic counters. On the simulator the timings are those of the
CPU running the simulator, and the results say so.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import triton
import triton.language as tl

from triton_metal.backends.metal.hardware import get_hardware_capabilities

# A rule of thumb for what well-written streaming / FMA-bound kernels reach, as a fraction of the
# chip's peak. Printed as a planning range; it is not a measurement made by this project.
EXPECTED_FRACTION_OF_PEAK = (0.6, 0.9)
COPY_BLOCK = 1024
FMA_BLOCK = 256


@triton.jit
def _copy_kernel(src, dst, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(dst + offs, tl.load(src + offs, mask=mask), mask=mask)


@triton.jit
def _fma_chain_kernel(src, dst, n, a, b, ITERATIONS: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(src + offs, mask=mask)
    a_x, b_x = a.to(x.dtype), b.to(x.dtype)  # the chain stays in the element type (fp16 stays fp16)
    for _ in range(ITERATIONS):
        x = x * a_x + b_x  # 2 FLOPs (the backend does not fuse into fma: enable_fp_fusion is off)
    tl.store(dst + offs, x, mask=mask)


@dataclass
class BenchmarkResult:
    name: str
    chip: str
    runtime: str
    simulated: bool
    launches: int             # kernel launches made, warm-up included
    timed_runs: int
    mean_ms: float
    bytes_per_run: int
    flops_per_run: int
    value: float              # GB/s or TFLOP/s
    unit: str
    expected_range: tuple | None  # (low, high) in `unit` on the chip, None when the chip table has no peak
    note: str

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        where = f"{self.runtime} runtime" + (" (simulated: the CPU running the simulator)" if self.simulated else "")
        text = f"{self.name}: {self.value:.4g} {self.unit} on {self.chip}, {where}, mean of {self.timed_runs} runs"
        if self.expected_range:
            lo, hi = self.expected_range
            text += f"\n  expected on {self.chip}: {lo:.1f}-{hi:.1f} {self.unit} ({self.note})"
        else:
            text += f"\n  expected on {self.chip}: {self.note}"
        return text


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
    mean_ms = _time_runs(lambda: _copy_kernel[grid](src, dst, n, BLOCK=COPY_BLOCK), runs, warmup)
    if not torch.equal(dst.cpu(), src.cpu()):
        raise RuntimeError("the bandwidth kernel copied wrong values: the backend is miscompiling a plain copy")
    caps = get_hardware_capabilities()
    bytes_per_run = 2 * n * 4
    expected, note = _expected(caps.peak_bandwidth_gbs, "GB/s")
    result = BenchmarkResult("memory bandwidth (copy)", caps.chip, caps.runtime, caps.simulated, runs + warmup,
                             runs, mean_ms, bytes_per_run, 0, bytes_per_run / (mean_ms * 1e-3) / 1e9, "GB/s",
                             expected, note)
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
    mean_ms = _time_runs(lambda: _fma_chain_kernel[grid](src, dst, n, a, b, ITERATIONS=iterations, BLOCK=FMA_BLOCK),
                         runs, warmup)
    flops_per_run = 2 * n * iterations
    peak = caps.peak_fp32_tflops if torch_dtype == torch.float32 else None
    expected, note = _expected(peak, "TFLOP/s")
    if peak is None and torch_dtype != torch.float32:
        note = f"the chip table has only an FP32 peak; no expected range for {torch_dtype}"
    result = BenchmarkResult(f"compute throughput ({str(torch_dtype).removeprefix('torch.')} multiply-add)",
                             caps.chip, caps.runtime, caps.simulated, runs + warmup, runs, mean_ms, 2 * n *
                             src.element_size(), flops_per_run, flops_per_run / (mean_ms * 1e-3) / 1e12, "TFLOP/s",
                             expected, note)
    result.output = dst
    if verbose:
        print(result)
    return result


# pytest must not collect these when a test module imports them by name.
test_memory_bandwidth.__test__ = False
test_compute_throughput.__test__ = False
