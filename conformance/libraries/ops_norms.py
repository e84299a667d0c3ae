"""Liger's normalizations: RMSNorm, fused add+RMSNorm, LayerNorm, GroupNorm, PolyNorm, DyT, modulated RMSNorm.

Shapes: "small" keeps Liger's odd hidden size 123 (a masked, non-power-of-two block) with few rows;
"liger" is hidden 4096 (Llama; Liger's test_rms_norm / test_layer_norm go to 4096 and beyond) with the row
count cut to 32: each row is one program of the same kernel, so more rows change nothing but the time.
Tolerances: these ops compute in float32 and round once or twice to the dtype (Liger's llama casting mode
rounds x*rstd to the dtype before the weight multiply), so forward is 2-4 ulps of the dtype; float32 cases
carry float32 reductions over the hidden size (error ~ sqrt(n) ulps, we allow 64 at n = 4096). Weight
gradients sum over every row in float32, then round once: a few ulps of the dtype relative to the largest
element.
Modulated RMSNorm (AdaLN: RMSNorm(x) * w * (1 + scale) + shift, one scale/shift row per batch shared by its
tokens, so the backward sums their gradients with float32 atomics) adds two operations in the dtype after the
RMSNorm: 8 ulps forward, 16 backward in bf16/f16; float32 keeps the norms' 64 / 256.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from liger_kernel.ops.dyt import LigerDyTFunction
from liger_kernel.ops.fused_add_rms_norm import LigerFusedAddRMSNormFunction
from liger_kernel.ops.group_norm import LigerGroupNormFunction
from liger_kernel.ops.layer_norm import LigerLayerNormFunction
from liger_kernel.ops.modulated_rms_norm import LigerModulatedRMSNormFunction
from liger_kernel.ops.poly_norm import LigerPolyNormFunction
from liger_kernel.ops.rms_norm import LigerRMSNormFunction

from conformance.libraries.cases import LibraryOp
from conformance.libraries.numerics import randn

EPS = 1e-6
ROWS_SHAPES = {"small": (2, 7, 123), "liger": (2, 16, 4096)}
# forward, backward ulps per dtype (see the module docstring).
NORM_ULPS = {"f32": (64, 256), "bf16": (4, 8), "f16": (4, 8)}


def _x_w(shape, dtype, gen):
    return {"x": randn(shape, dtype, gen), "w": randn(shape[-1:], dtype, gen, scale=0.5) + 1}


def _rms(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * w


RMS_NORM = LibraryOp(
    "rms_norm", _x_w,
    run=lambda x, w: LigerRMSNormFunction.apply(x, w, EPS),
    reference=_rms, ulps=NORM_ULPS, shapes=ROWS_SHAPES, grads=("x", "w"))


def _x_r_w(shape, dtype, gen):
    return {**_x_w(shape, dtype, gen), "r": randn(shape, dtype, gen)}


FUSED_ADD_RMS_NORM = LibraryOp(
    "fused_add_rms_norm", _x_r_w,
    # returns (normalized x + r, x + r): both are checked
    run=lambda x, r, w: LigerFusedAddRMSNormFunction.apply(x, r, w, EPS),
    reference=lambda x, r, w: (_rms(x + r, w), x + r),
    ulps=NORM_ULPS, shapes=ROWS_SHAPES, grads=("x", "r", "w"), outputs_checked=(0, 1))


def _x_w_b(shape, dtype, gen):
    return {**_x_w(shape, dtype, gen), "b": randn(shape[-1:], dtype, gen, scale=0.1)}


LAYER_NORM = LibraryOp(
    "layer_norm", _x_w_b,
    run=lambda x, w, b: LigerLayerNormFunction.apply(x, w, b, EPS),
    reference=lambda x, w, b: F.layer_norm(x, x.shape[-1:], w, b, EPS),
    ulps=NORM_ULPS, shapes=ROWS_SHAPES, grads=("x", "w", "b"))

POLY_NORM = LibraryOp(
    "poly_norm",
    # inputs of scale 0.5: with unit-variance rows of 4096, Liger's float16 kernel overflows on any backend
    # (it sums x^6 in float16: 4096 * E[x^6] = 61440, near float16's 65504; docs/libraries.md)
    lambda shape, dtype, gen: {"x": randn(shape, dtype, gen, scale=0.5), "w": torch.tensor([0.3, 0.5, 1.0]).to(dtype),
                               "b": torch.tensor(0.1).to(dtype)},  # b: a scalar, as Liger's
    run=lambda x, w, b: LigerPolyNormFunction.apply(x, w, b, EPS),
    reference=lambda x, w, b: sum(w[i] * _rms(x ** (3 - i), 1.0) for i in range(3)) + b,
    # x^3 spreads the values: its normalization rounds the cube in float32 first (3 more roundings)
    ulps={"f32": (128, 512), "bf16": (6, 12), "f16": (8, 16)}, shapes=ROWS_SHAPES, grads=("x", "w", "b"))

DYT = LibraryOp(
    "dyt",
    lambda shape, dtype, gen: {"x": randn(shape, dtype, gen), "alpha": torch.tensor([0.7]).to(dtype),
                               "gamma": randn(shape[-1:], dtype, gen, scale=0.5) + 1,
                               "beta": randn(shape[-1:], dtype, gen, scale=0.1)},
    run=lambda x, alpha, gamma, beta: LigerDyTFunction.apply(x, alpha, gamma, beta),
    reference=lambda x, alpha, gamma, beta: gamma * torch.tanh(alpha * x) + beta,
    # elementwise (tanh in float32, then a multiply-add, one rounding); alpha's gradient sums every element
    ulps={"f32": (16, 256), "bf16": (4, 8), "f16": (4, 8)}, shapes=ROWS_SHAPES,
    grads=("x", "alpha", "gamma", "beta"))

GROUPS = 4


def _group_inputs(shape, dtype, gen):
    channels = shape[1]  # (batch, channels, hidden)
    return {"x": randn(shape, dtype, gen), "w": randn((channels,), dtype, gen, scale=0.5) + 1,
            "b": randn((channels,), dtype, gen, scale=0.1)}


GROUP_NORM = LibraryOp(
    "group_norm", _group_inputs,
    run=lambda x, w, b: LigerGroupNormFunction.apply(x, w, b, x.shape[1], GROUPS, EPS),
    reference=lambda x, w, b: F.group_norm(x, GROUPS, w, b, EPS),
    # Liger's test_group_norm: (batch, channels, hidden) up to (16, 64, 8192 / 512 ...) with 4-8 groups
    ulps=NORM_ULPS, shapes={"small": (2, 8, 123), "liger": (2, 32, 4096)}, grads=("x", "w", "b"))


def _modulated_inputs(shape, dtype, gen):
    batch, hidden = shape[0], shape[-1]
    return {**_x_w(shape, dtype, gen), "scale": randn((batch, hidden), dtype, gen, scale=0.1),
            "shift": randn((batch, hidden), dtype, gen, scale=0.1)}


MODULATED_RMS_NORM = LibraryOp(
    "modulated_rms_norm", _modulated_inputs,
    # scale, shift of shape (batch, hidden) with x (batch, tokens, hidden): shared along the tokens
    run=lambda x, w, scale, shift: LigerModulatedRMSNormFunction.apply(x, w, scale, shift, EPS),
    reference=lambda x, w, scale, shift: _rms(x, w) * (1 + scale[:, None, :]) + shift[:, None, :],
    ulps={"f32": (64, 256), "bf16": (8, 16), "f16": (8, 16)}, shapes=ROWS_SHAPES,
    grads=("x", "w", "scale", "shift"))

OPS = (RMS_NORM, FUSED_ADD_RMS_NORM, LAYER_NORM, GROUP_NORM, POLY_NORM, DYT, MODULATED_RMS_NORM)
