"""How the suite compares a Liger result with its float64 reference.

Every reference is computed in float64 on the CPU from the very inputs Liger got (upcast exactly), so
torch's own bf16/f16 CPU kernels never act as the reference. A result in dtype D is then judged in units of
D's machine epsilon: |actual - ref| <= ulps * eps(D) * (|ref| + scale), where ``scale`` is the largest
|ref| of the tensor (an absolute floor, for elements near zero after cancellation). Each test states its
``ulps`` and why; they are counts of roundings the op makes in D plus float32 accumulation error, not
fudge factors, and float32 cases keep the same counts (so f32 tolerances are ~1e-6, not 1e-2).
"""
from __future__ import annotations

import torch

EPS = {torch.float32: torch.finfo(torch.float32).eps, torch.bfloat16: torch.finfo(torch.bfloat16).eps,
       torch.float16: torch.finfo(torch.float16).eps}
DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}


def assert_close(actual: torch.Tensor, ref: torch.Tensor, dtype: torch.dtype, ulps: float, what: str) -> None:
    assert actual.shape == ref.shape, f"{what}: shape {tuple(actual.shape)} != reference {tuple(ref.shape)}"
    assert actual.dtype == dtype or actual.dtype == torch.float32, f"{what}: dtype {actual.dtype}, expected {dtype}"
    a = actual.detach().double()
    r = ref.detach().double()
    assert torch.isfinite(a).all(), f"{what}: non-finite values in the result"
    tol = ulps * EPS[dtype]
    scale = r.abs().max().item() if r.numel() else 0.0
    err = (a - r).abs()
    bound = tol * (r.abs() + scale)
    bad = err > bound
    if bad.any():
        i = int(torch.argmax((err - bound).flatten()))
        worst = (err.flatten()[i] / (r.abs().flatten()[i] + scale)).item() / EPS[dtype]
        raise AssertionError(
            f"{what} ({dtype}): {int(bad.sum())} of {r.numel()} elements outside {ulps} ulps of the float64 "
            f"reference; worst {a.flatten()[i].item()!r} vs {r.flatten()[i].item()!r} ({worst:.1f} ulps)")


def randn(shape, dtype, generator, scale=1.0):
    """Inputs drawn in float32 and rounded once to dtype: the f64 reference sees the exact same values."""
    return (torch.randn(shape, generator=generator) * scale).to(dtype)
