"""Liger's activations and softmaxes: SwiGLU, GeGLU, ReLU², softmax, sparsemax.

Shapes: "small" is an odd width (123, a masked block) over few rows; "liger" is Llama's MLP width 11008
(Liger's test_swiglu / test_geglu use (bs, seq, 4096 -> 11008)) and a 32000-wide softmax, with 8-32 rows:
every row is one program of the same kernel, so more rows change only the time.
Tolerances: SwiGLU/GeGLU are elementwise, computed in float32 and rounded once to the dtype, but Liger's
backward rounds its recomputed activation to the dtype before multiplying (two or three roundings): 4 ulps
forward, 8 backward. Softmax/sparsemax reduce a row in float32 (max, sum / sort-free threshold search) and
round once: 4-8 ulps of the dtype; float32 needs room for the row sum (~sqrt(n) ulps).
"""
from __future__ import annotations

import torch
from liger_kernel.ops.geglu import LigerGELUMulFunction
from liger_kernel.ops.relu_squared import LigerReLUSquaredFunction
from liger_kernel.ops.softmax import LigerSoftmaxFunction
from liger_kernel.ops.sparsemax import LigerSparsemaxFunction
from liger_kernel.ops.swiglu import LigerSiLUMulFunction

from conformance.libraries.cases import LibraryOp
from conformance.libraries.numerics import randn

GLU_ULPS = {"f32": (16, 32), "bf16": (4, 8), "f16": (4, 8)}
GLU_SHAPES = {"small": (2, 7, 123), "liger": (1, 8, 11008)}


def _a_b(shape, dtype, gen):
    return {"a": randn(shape, dtype, gen), "b": randn(shape, dtype, gen)}


SWIGLU = LibraryOp(
    "swiglu", _a_b, run=lambda a, b: LigerSiLUMulFunction.apply(a, b),
    reference=lambda a, b: torch.nn.functional.silu(a) * b,
    ulps=GLU_ULPS, shapes=GLU_SHAPES, grads=("a", "b"))

GEGLU = LibraryOp(
    "geglu", _a_b, run=lambda a, b: LigerGELUMulFunction.apply(a, b),
    # Liger's GeGLU is the tanh approximation of GELU (as Gemma's gelu_pytorch_tanh)
    reference=lambda a, b: torch.nn.functional.gelu(a, approximate="tanh") * b,
    ulps=GLU_ULPS, shapes=GLU_SHAPES, grads=("a", "b"))

RELU_SQUARED = LibraryOp(
    "relu_squared", lambda shape, dtype, gen: {"x": randn(shape, dtype, gen)},
    run=lambda x: LigerReLUSquaredFunction.apply(x),
    reference=lambda x: torch.relu(x) ** 2,
    # one float32 square rounded once (the gradient 2 relu(x) dy: one more)
    ulps={"f32": (2, 4), "bf16": (2, 4), "f16": (2, 4)}, shapes=GLU_SHAPES, grads=("x",))

SOFTMAX = LibraryOp(
    "softmax", lambda shape, dtype, gen: {"x": randn(shape, dtype, gen, scale=2.0)},
    run=lambda x: LigerSoftmaxFunction.apply(x),
    reference=lambda x: torch.softmax(x, -1),
    ulps={"f32": (64, 128), "bf16": (4, 8), "f16": (4, 8)},
    # Liger's test_softmax: (2, 8, 4096 ...); 32000 is a vocabulary-wide row (its multi-block path)
    shapes={"small": (4, 123), "liger": (8, 32000)}, grads=("x",))


def _sparsemax(x):
    z, _ = torch.sort(x, dim=-1, descending=True)
    k = torch.arange(1, x.shape[-1] + 1, dtype=x.dtype)
    cumsum = z.cumsum(-1)
    support = (1 + k * z) > cumsum
    k_star = support.sum(-1, keepdim=True)
    tau = (cumsum.gather(-1, k_star - 1) - 1) / k_star
    return torch.clamp(x - tau, min=0)


def _sparsemax_grad(outputs, inputs, upstream):
    # d sparsemax: g - mean(g over the support), on the support; zero elsewhere. The support is where the
    # library's own output is positive: an element within a rounding of the threshold tau may fall on
    # either side in float32 (bf16 rows of 4096 are full of ties), and that flips every gradient of the row.
    support = (outputs[0].detach() > 0).double()
    g = upstream[0]
    return {"x": support * (g - (g * support).sum(-1, keepdim=True) / support.sum(-1, keepdim=True))}


SPARSEMAX = LibraryOp(
    "sparsemax", lambda shape, dtype, gen: {"x": randn(shape, dtype, gen, scale=2.0)},
    run=lambda x: LigerSparsemaxFunction.apply(x, -1),
    reference=_sparsemax,
    # the threshold tau is a float32 sum over the support divided by its size: a few ulps of the dtype
    # near the support's edge, relative to the row's largest probability
    ulps={"f32": (64, 128), "bf16": (8, 8), "f16": (8, 8)},
    shapes={"small": (4, 123), "liger": (8, 4096)}, grads=("x",), grad_reference=_sparsemax_grad)

OPS = (SWIGLU, GEGLU, RELU_SQUARED, SOFTMAX, SPARSEMAX)
