"""Benchmark cases: each builds a workload (the Triton launch, its CPU reference, the ideal bytes or
flops, and the peers that compute the same thing) at the size of one device class.

Size classes: ``traffic`` (tiny, for the deterministic traffic check), ``simulator`` (small: the
MSL runs on the CPU) and ``apple`` (realistic GPU sizes). Ideal bytes count every input read once
and every output written once, so GB/s figures are comparable across implementations.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import triton

from conformance.perf import kernels

SIZE_CLASSES = ("traffic", "simulator", "apple")


@dataclass
class Workload:
    label: str                                  # e.g. "softmax 256x1024 f32"
    launch: Callable[[], torch.Tensor]          # runs the Triton kernel, returns its output
    reference: Callable[[], torch.Tensor]       # the same result computed by torch on the CPU
    rtol: float
    atol: float
    ideal_bytes: int
    flops: int | None = None                    # set for compute-bound cases (matmul, attention)
    peers: dict[str, Callable[[], Callable[[], object]]] = field(default_factory=dict)  # name -> builder


def _sync(device) -> Callable[[], None]:
    """Waits for queued GPU work (Triton's and torch's), so a timed call covers the kernel itself."""
    if torch.device(device).type != "mps":
        return lambda: None  # the simulator and torch CPU return when the work is done
    from triton_metal.runtime import get_runtime
    runtime = get_runtime()

    def sync():
        runtime.synchronize()
        torch.mps.synchronize()
    return sync


def _mlx():
    import mlx.core as mx  # the MLX peer runs only where MLX is installed (tox -e bench installs it)
    return mx


def _mlx_peer(op: Callable, *arrays: torch.Tensor) -> Callable[[], Callable[[], object]]:
    """A builder of an MLX timing function: MLX is lazy, so every call evaluates its result."""
    def build():
        mx = _mlx()
        inputs = [mx.array(a.float().numpy()).astype(_MX_DTYPES[a.dtype](mx)) for a in arrays]
        return lambda: mx.eval(op(mx, *inputs))
    return build


_MX_DTYPES = {torch.float32: lambda mx: mx.float32, torch.float16: lambda mx: mx.float16}


def _torch_peer(op: Callable, device, *arrays: torch.Tensor) -> Callable[[], Callable[[], object]]:
    def build():
        inputs = [a.to(device) for a in arrays]
        sync = _sync(device)

        def run():
            out = op(*inputs)
            sync()
            return out
        return run
    return build


def _timed(launch: Callable[[], torch.Tensor], device) -> Callable[[], torch.Tensor]:
    sync = _sync(device)

    def run():
        out = launch()
        sync()
        return out
    return run


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def vector_add(device, n: int) -> Workload:
    g = _gen()
    x, y = torch.rand(n, generator=g), torch.rand(n, generator=g)
    xd, yd, out = x.to(device), y.to(device), torch.empty(n, device=device)
    grid = (triton.cdiv(n, 1024),)

    def launch():
        kernels.vector_add_kernel[grid](xd, yd, out, n, BLOCK=1024)
        return out
    return Workload(f"vector_add {n} f32", _timed(launch, device), lambda: x + y, 0.0, 0.0, ideal_bytes=3 * 4 * n,
                    peers={"torch": _torch_peer(torch.add, device, x, y),
                           "mlx": _mlx_peer(lambda mx, a, b: a + b, x, y)})


def softmax(device, rows: int, cols: int) -> Workload:
    x = torch.randn(rows, cols, generator=_gen())
    xd, out = x.to(device), torch.empty(rows, cols, device=device)
    block = triton.next_power_of_2(cols)
    num_warps = 8 if block >= 2048 else 4

    def launch():
        kernels.softmax_kernel[(rows,)](out, xd, xd.stride(0), out.stride(0), cols, BLOCK=block, num_warps=num_warps)
        return out
    return Workload(f"softmax {rows}x{cols} f32", _timed(launch, device), lambda: torch.softmax(x, dim=1), 1e-6, 1e-6,
                    ideal_bytes=2 * 4 * rows * cols,
                    peers={"torch": _torch_peer(lambda a: torch.softmax(a, dim=1), device, x),
                           "mlx": _mlx_peer(lambda mx, a: mx.softmax(a, axis=-1), x)})


def layer_norm(device, rows: int, cols: int) -> Workload:
    eps = 1e-5
    g = _gen()
    x = torch.randn(rows, cols, generator=g)
    w, b = torch.rand(cols, generator=g), torch.rand(cols, generator=g)
    xd, wd, bd = x.to(device), w.to(device), b.to(device)
    y = torch.empty(rows, cols, device=device)
    mean, rstd = torch.empty(rows, device=device), torch.empty(rows, device=device)
    block = min(1024, triton.next_power_of_2(cols))

    def launch():
        kernels.layer_norm_fwd_kernel[(rows,)](xd, y, wd, bd, mean, rstd, xd.stride(0), cols, eps, BLOCK=block,
                                               num_warps=4)
        return y
    return Workload(f"layer_norm_fwd {rows}x{cols} f32", _timed(launch, device),
                    lambda: torch.nn.functional.layer_norm(x, (cols,), w, b, eps), 1e-5, 1e-5,
                    ideal_bytes=4 * (2 * rows * cols + 2 * cols + 2 * rows),
                    peers={"torch": _torch_peer(lambda a, ww, bb: torch.nn.functional.layer_norm(a, (cols,), ww, bb, eps),
                                                device, x, w, b),
                           "mlx": _mlx_peer(lambda mx, a, ww, bb: mx.fast.layer_norm(a, ww, bb, eps), x, w, b)})


def matmul(device, m: int, n: int, k: int, dtype: torch.dtype, tiles: tuple = (32, 32, 32, 8), num_warps: int = 4,
           tag: str = "") -> Workload:
    g = _gen()
    a, b = torch.randn(m, k, generator=g).to(dtype), torch.randn(k, n, generator=g).to(dtype)
    ad, bd, c = a.to(device), b.to(device), torch.empty(m, n, device=device, dtype=dtype)
    bm, bn, bk, group_m = tiles
    grid = (triton.cdiv(m, bm) * triton.cdiv(n, bn),)

    def launch():
        kernels.matmul_kernel[grid](ad, bd, c, m, n, k, ad.stride(0), ad.stride(1), bd.stride(0), bd.stride(1),
                                    c.stride(0), c.stride(1), BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, GROUP_M=group_m,
                                    num_warps=num_warps)
        return c
    tol = 1e-2 if dtype == torch.float16 else 1e-4
    size = dtype.itemsize
    name = {torch.float16: "f16", torch.float32: "f32"}[dtype]
    return Workload(f"matmul {m}x{n}x{k} {name}{tag}", _timed(launch, device),
                    lambda: (a.float() @ b.float()).to(dtype), tol, tol,
                    ideal_bytes=size * (m * k + k * n + m * n), flops=2 * m * n * k,
                    peers={"torch": _torch_peer(torch.matmul, device, a, b),
                           "mlx": _mlx_peer(lambda mx, x, y: mx.matmul(x, y), a, b)})


def attention(device, batch: int, heads: int, seq: int, head_dim: int, blocks: tuple = (32, 32), num_warps: int = 4,
              tag: str = "") -> Workload:
    g = _gen()
    shape = (batch, heads, seq, head_dim)
    q, k, v = (torch.randn(*shape, generator=g).to(torch.float16) for _ in range(3))
    qd, kd, vd = q.to(device), k.to(device), v.to(device)
    o = torch.empty(shape, device=device, dtype=torch.float16)
    scale = 1.0 / math.sqrt(head_dim)
    block_m, block_n = blocks
    grid = (triton.cdiv(seq, block_m), batch * heads)

    def launch():
        kernels.attention_fwd_kernel[grid](qd, kd, vd, o, scale, seq, seq * head_dim, head_dim, HEAD_DIM=head_dim,
                                           BLOCK_M=block_m, BLOCK_N=block_n, num_warps=num_warps)
        return o

    def reference():
        return torch.nn.functional.scaled_dot_product_attention(q.float(), k.float(), v.float()).to(torch.float16)
    sdpa = torch.nn.functional.scaled_dot_product_attention
    return Workload(f"attention_fwd {batch}x{heads}x{seq}x{head_dim} f16{tag}", _timed(launch, device), reference,
                    2e-2, 2e-2, ideal_bytes=2 * 4 * batch * heads * seq * head_dim,
                    flops=4 * batch * heads * seq * seq * head_dim,
                    peers={"torch": _torch_peer(sdpa, device, q, k, v),
                           "mlx": _mlx_peer(lambda mx, a, b, c: mx.fast.scaled_dot_product_attention(a, b, c,
                                                                                                     scale=scale),
                                            q, k, v)})


# The upstream tutorials' own configurations (python/tutorials/03-matrix-multiplication.py and
# 06-fused-attention.py of Triton 3.x). Tutorial 03 autotunes over get_hip_autotune_config() on any
# backend but CUDA; of its five configs we take 64x128x32, GROUP_SIZE_M 8, 4 warps (its waves_per_eu is
# AMD's): the three larger tiles (128x256, 256x256, 128x128) fill all 32 KiB of Apple's threadgroup memory
# or more in our lowering and leave 256 accumulator floats per thread at 4 warps, and 64x64 is half the
# work per program. Which config the autotuner picks on a Mac is a timing question: the Mac run decides.
# Tutorial 06 checks Z=1, H=2, N_CTX=1024, HEAD_DIM=64 (test_op); its autotune list keeps BLOCK_M in
# {64, 128} x BLOCK_N in {32, 64} at 4 warps (8 warps only for 128x128 tiles); we take 128x64, its largest,
# the fixed BLOCK_M / BLOCK_N of the tutorial's versions before autotuning for HEAD_DIM 64. Our kernel is
# the non-causal forward (the tutorial's test is causal: the same tiles, half the key blocks).
TUTORIAL_MATMUL = {"tiles": (64, 128, 32, 8), "num_warps": 4, "tag": " (tutorial 03 config 64x128x32)"}
TUTORIAL_ATTENTION = {"blocks": (128, 64), "num_warps": 4, "tag": " (tutorial 06 config 128x64)"}


def matmul_tutorial(device, m: int, n: int, k: int) -> Workload:
    return matmul(device, m, n, k, torch.float16, **TUTORIAL_MATMUL)


def attention_tutorial(device, batch: int, heads: int, seq: int, head_dim: int) -> Workload:
    return attention(device, batch, heads, seq, head_dim, **TUTORIAL_ATTENTION)


@dataclass(frozen=True)
class ExpectedRefusal:
    """A case that cannot run yet: the error it must raise (type name and a fragment of its message).
    Its tests pass while it is refused and fail once it runs, so the entry is removed then."""
    error: str
    message: str
    reason: str


def expect_refusal(refusal: ExpectedRefusal, run: Callable[[], object]) -> None:
    """Passes when `run()` raises the refusal's error; fails when it runs (the case works now: remove its
    `refused` entry) or raises anything else."""
    import pytest
    try:
        run()
    except Exception as error:  # matched by name and message below, else re-raised
        if type(error).__name__ == refusal.error and refusal.message in str(error):
            return
        raise
    pytest.fail(f"this case ran, but it is listed as refused ({refusal.reason}): remove its `refused` entry in "
                "conformance/perf/cases.py and record its baselines")


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[..., Workload]
    sizes: dict[str, tuple]                     # size class -> build arguments after `device`
    needs_dot: bool = False                     # uses tl.dot
    refused: ExpectedRefusal | None = None      # cannot run yet (see ExpectedRefusal)

    def workload(self, device, size_class: str) -> Workload:
        return self.build(device, *self.sizes[size_class])


CASES = {case.name: case for case in (
    Case("vector_add", vector_add, {"traffic": (5000,), "simulator": (1 << 20,), "apple": (1 << 26,)}),
    Case("softmax", softmax, {"traffic": (16, 1000), "simulator": (512, 1024), "apple": (4096, 4096)}),
    Case("layer_norm_fwd", layer_norm,
         {"traffic": (16, 1000), "simulator": (512, 1024), "apple": (4096, 4096)}),
    Case("matmul_f16", matmul, {"traffic": (64, 64, 64, torch.float16), "simulator": (256, 256, 256, torch.float16),
                                "apple": (4096, 4096, 4096, torch.float16)}, needs_dot=True),
    Case("matmul_f32", matmul, {"traffic": (64, 64, 64, torch.float32), "simulator": (256, 256, 256, torch.float32),
                                "apple": (4096, 4096, 4096, torch.float32)}, needs_dot=True),
    Case("attention_fwd", attention, {"traffic": (1, 2, 64, 32), "simulator": (1, 4, 256, 64),
                                      "apple": (4, 16, 2048, 64)}, needs_dot=True),
    # Tutorial-sized: the tutorials' own sizes and configurations (TUTORIAL_MATMUL, TUTORIAL_ATTENTION); the
    # traffic size keeps the tiles and shortens the loops (counts per program are those of the full size
    # but for the K / key-block loop trip count).
    Case("matmul_f16_tutorial", matmul_tutorial, {"traffic": (128, 128, 128), "simulator": (512, 512, 512),
                                                  "apple": (512, 512, 512)}, needs_dot=True),
    Case("attention_fwd_tutorial", attention_tutorial, {"traffic": (1, 1, 128, 64), "simulator": (1, 2, 1024, 64),
                                                        "apple": (1, 2, 1024, 64)}, needs_dot=True),
)}


def size_class() -> str:
    from triton_metal.runtime import get_runtime
    return "simulator" if get_runtime().capabilities.simulated else "apple"


