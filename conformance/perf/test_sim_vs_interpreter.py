"""The Metal simulator against TRITON_INTERPRET=1 on the same kernels, in one run.

Both run the same @triton.jit functions (the harness's `kernels.py`, plus an FMA matmul below) on the
same inputs. The interpreter side runs in a subprocess (``python -m perf.test_sim_vs_interpreter <case>``
with TRITON_INTERPRET=1 set before the kernels are defined) and reports its best wall time; the simulator side is timed by
pytest-benchmark after one warm-up launch (so the first compile is excluded). ``extra_info``
records both times and the ratio. Results are checked against torch on the CPU on both sides.

    pytest conformance/perf/test_sim_vs_interpreter.py --benchmark-only

Simulated timings: they measure the CPU simulator, not an Apple GPU.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import triton
import triton.language as tl

from conformance.perf.kernels import layer_norm_fwd_kernel, softmax_kernel, vector_add_kernel

MIN_RATIO = 100


@triton.jit
def matmul_fma(a_ptr, b_ptr, c_ptr, M, N, K, stride_am, stride_ak, stride_bk, stride_bn, stride_cm, stride_cn,
               BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    # An FMA loop over k, not tl.dot: the interpreter runs tl.dot as one numpy matmul, which would time
    # numpy's BLAS rather than the same kernel run two ways.
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_m, mask_n = offs_m < M, offs_n < N
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(K):
        a = tl.load(a_ptr + offs_m * stride_am + k * stride_ak, mask=mask_m, other=0.0)
        b = tl.load(b_ptr + k * stride_bk + offs_n * stride_bn, mask=mask_n, other=0.0)
        acc += a[:, None] * b[None, :]
    c_ptrs = c_ptr + offs_m[:, None] * stride_cm + offs_n[None, :] * stride_cn
    tl.store(c_ptrs, acc, mask=mask_m[:, None] & mask_n[None, :])


# Each case: inputs(device) -> (launch() -> output tensor, torch reference, tolerance).
def _vector_add(device):
    n = 1 << 20
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(n, generator=g), torch.rand(n, generator=g)
    out = torch.empty(n, device=device)
    xd, yd = x.to(device), y.to(device)

    def launch():
        vector_add_kernel[(triton.cdiv(n, 1024),)](xd, yd, out, n, BLOCK=1024)
        return out
    return launch, x + y, 0.0


def _row_softmax(device):
    rows, cols = 4096, 1024
    x = torch.randn(rows, cols, generator=torch.Generator().manual_seed(0))
    xd, out = x.to(device), torch.empty(rows, cols, device=device)

    def launch():
        softmax_kernel[(rows,)](out, xd, xd.stride(0), out.stride(0), cols, BLOCK=1024, num_warps=4)
        return out
    return launch, torch.softmax(x, dim=1), 1e-6


def _layer_norm_forward(device):
    rows, cols, eps = 4096, 1024, 1e-5
    g = torch.Generator().manual_seed(0)
    x = torch.randn(rows, cols, generator=g)
    w, b = torch.rand(cols, generator=g), torch.rand(cols, generator=g)
    xd, wd, bd = x.to(device), w.to(device), b.to(device)
    y = torch.empty(rows, cols, device=device)
    mean, rstd = torch.empty(rows, device=device), torch.empty(rows, device=device)

    def launch():
        layer_norm_fwd_kernel[(rows,)](xd, y, wd, bd, mean, rstd, xd.stride(0), cols, eps, BLOCK=1024, num_warps=4)
        return y
    return launch, torch.nn.functional.layer_norm(x, (cols,), w, b, eps), 1e-5


def _matmul_fma(device):
    m = n = k = 256
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(m, k, generator=g), torch.randn(k, n, generator=g)
    ad, bd, c = a.to(device), b.to(device), torch.empty(m, n, device=device)

    def launch():
        matmul_fma[(m // 32, n // 32)](ad, bd, c, m, n, k, ad.stride(0), ad.stride(1), bd.stride(0), bd.stride(1),
                                       c.stride(0), c.stride(1), BLOCK_M=32, BLOCK_N=32, num_warps=4)
        return c
    return launch, a @ b, 1e-4


CASES = {
    "vector_add_2^20_f32": _vector_add,
    "row_softmax_4096x1024": _row_softmax,
    "layer_norm_forward_4096x1024": _layer_norm_forward,
    "matmul_fma_256^3_f32": _matmul_fma,
}


def _check(out, ref, tol):
    torch.testing.assert_close(out.cpu(), ref, rtol=tol, atol=tol)


def _interpreter_seconds(case: str) -> float:
    """Best wall time of the case under TRITON_INTERPRET=1, measured in a fresh interpreter."""
    env = dict(os.environ, TRITON_INTERPRET="1")
    # Run as a module of the package, from the repository root, so that it imports the same kernels as this test.
    proc = subprocess.run([sys.executable, "-m", f"conformance.perf.{Path(__file__).stem}", case], env=env,
                          cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, check=False,
                          timeout=900)
    if proc.returncode != 0:
        raise AssertionError(f"interpreter run of {case} failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])["seconds"]


# Row softmax and layer norm meet at a simd collective and a barrier per reduction. They run
# without fibers: their collectives all sit at the top level of the kernel body, so the simulator
# runs the threadgroup phase by phase (sim/phase_split.py). On fibers softmax was 98-110x here.
@pytest.mark.parametrize("case", list(CASES))
def test_sim_vs_interpreter(case, benchmark, device):
    from triton_metal.runtime import get_runtime
    if not get_runtime().capabilities.simulated:
        pytest.skip("compares the Metal simulator with the interpreter; this run uses an Apple GPU")
    if benchmark.disabled:  # pytest-benchmark turns itself off under xdist and with --benchmark-disable
        pytest.skip("needs pytest-benchmark's timings: run without -n and with --benchmark-only")
    launch, ref, tol = CASES[case](device)
    start = time.perf_counter()
    _check(launch(), ref, tol)  # the first launch compiles (or loads from the caches)
    first_launch = time.perf_counter() - start
    out = benchmark.pedantic(launch, rounds=5, iterations=1, warmup_rounds=1)
    _check(out, ref, tol)
    sim = benchmark.stats.stats.min
    interp = _interpreter_seconds(case)
    ratio = interp / sim
    benchmark.extra_info.update({
        "simulator_seconds": sim, "interpreter_seconds": interp, "ratio": ratio,
        "first_launch_seconds": first_launch, "simulated": True,
    })
    print(f"\n{case}: simulator {sim * 1e3:.2f} ms, TRITON_INTERPRET=1 {interp * 1e3:.1f} ms, ratio {ratio:.0f}x")
    assert ratio >= MIN_RATIO, f"{case}: the simulator is only {ratio:.1f}x faster than the interpreter"


def _interpreter_main(case: str) -> None:
    assert os.environ.get("TRITON_INTERPRET") == "1"
    launch, ref, tol = CASES[case]("cpu")
    best = float("inf")
    for _ in range(2):  # best of two, or one when a run takes long (layer norm, matmul: ~20 s each)
        start = time.perf_counter()
        out = launch()
        best = min(best, time.perf_counter() - start)
        if best > 5.0:
            break
    _check(out, ref, tol)
    print(json.dumps({"case": case, "seconds": best}))


if __name__ == "__main__":
    _interpreter_main(sys.argv[1])
