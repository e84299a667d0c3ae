"""Liger's fused mixture-of-experts (grouped GEMM + SwiGLU + weighted scatter), the suite's tl.dot op.

Shapes (tokens, hidden, intermediate, experts, top_k): "small" is 16 tokens over 4 experts (top 2) with
hidden 64 and intermediate 32; Liger's test_fused_moe goes to Mixtral-like sizes, which on the simulator
would cost minutes per case (its GEMM kernels autotune over 32 configs), so no liger-size case yet.
Tolerance: each output is a sum of top_k GEMM chains (x @ W_gate/up, SwiGLU, @ W_down) accumulated in
float32 by tl.dot, with the activation rounded to the dtype between the two GEMMs (Liger stores it): 16 ulps
of the dtype relative to the largest output (64 for float32: two length-64/32 dot products).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from liger_kernel.ops.fused_moe import LigerFusedMoEFunction

from conformance.libraries.cases import LibraryOp
from conformance.libraries.numerics import randn


def _inputs(shape, dtype, gen):
    tokens, hidden, inter, experts, top_k = shape
    index = torch.stack([torch.randperm(experts, generator=gen)[:top_k] for _ in range(tokens)]).int()
    return {"x": randn((tokens, hidden), dtype, gen),
            "gate_up": randn((experts, 2 * inter, hidden), dtype, gen, scale=hidden ** -0.5),
            "down": randn((experts, hidden, inter), dtype, gen, scale=inter ** -0.5),
            "index": index, "weights": torch.softmax(torch.randn(tokens, top_k, generator=gen), -1).to(dtype)}


def _reference(x, gate_up, down, index, weights):
    # gate_up_proj rows [0, I) are the gate, [I, 2I) the up projection (Liger's kernel and HF's layout)
    inter = down.shape[-1]
    out = torch.zeros_like(x)
    for k in range(index.shape[1]):
        e = index[:, k].long()
        z = torch.einsum("th,tnh->tn", x, gate_up[e])
        y = F.silu(z[:, :inter]) * z[:, inter:]
        out = out + weights[:, k:k + 1] * torch.einsum("ti,thi->th", y, down[e])
    return out


FUSED_MOE = LibraryOp(
    "fused_moe", _inputs,
    run=lambda x, gate_up, down, index, weights: LigerFusedMoEFunction.apply(x, gate_up, down, index, weights),
    reference=_reference, ulps={"f32": (64, 64), "bf16": (16, 16), "f16": (16, 16)},
    # slow: every case compiles and times its GEMM kernels' 32 autotune configs (30-80 s a case)
    shapes={"small": (16, 64, 32, 4, 2)}, grads=("x", "gate_up", "down", "weights"), slow=True)

OPS = (FUSED_MOE,)
