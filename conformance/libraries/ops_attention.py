"""Liger's attention ops: multi-token attention and fused neighborhood attention.

Multi-token attention: causal-masked softmax of attention scores, a 2-D convolution over them
(torch's conv2d), the future masked to zero again.

Shapes (batch, channels, seq_len): "small" is seq_len 37 (masked blocks); "liger" is the largest of Liger's
test_multi_token_attention, seq_len 128 over 8 channels. Kernel 3 x 3, padding 1. (Liger's masking kernels
take one square block of next_power_of_2(seq_len)^2 elements per program: at seq_len 1024 that is 8192
values per thread, over the simulator's 64 KiB thread stack.)
Tolerance: the softmax is a float32 row reduction rounded once to the dtype (4 ulps); then torch's conv2d
sums 9 x channels products of dtype values (rounded once again, accumulated in float32 on the CPU): 16 ulps of
the dtype relative to the largest output (64 for float32). The weight and bias gradients sum over every
position of the L x L maps: 32 ulps (256 for float32) relative to the largest element.

Fused neighborhood attention: softmax(Q K^T * scale, masked to a window of kernel_size keys around each query,
every dilation-th) @ V, per (batch, head). Shapes (batch, heads, seq_len, head_dim, kernel_size, dilation):
"small" is Liger's (1, 8, 24, 16, 5) with dilation 2 (a masked, non-power-of-two sequence); "liger" is its
head_dim 128 case (1, 2, 48, 128, 3). The reference builds the window mask from its definition
(|j - i| <= kernel_size // 2 * dilation and (j - i) divisible by dilation) and uses scale 1/sqrt(head_dim).
Tolerance: Liger stores the scores Q K^T (a float32 tl.dot) in the input dtype, then the softmax weights in
the input dtype, then A @ V (float32 tl.dot) rounded once: a rounded score s moves its weight by
~|s| ulps relative to the weight (|s| up to ~4 here; the output averages those errors over the window), so 8
ulps of the dtype relative to the largest output (16 for float32: dot products of length head_dim <= 128 and
seq_len <= 48). The backward rounds dA = dO V^T, the softmax gradient and each of dQ, dK, dV once more in the
dtype: 16 ulps (64 for float32) relative to the largest element. (Measured: at most 1.2 ulps in the
cases that run.)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from liger_kernel.ops.fused_neighborhood_attention import LigerFusedNeighborhoodAttentionFunction
from liger_kernel.ops.multi_token_attention import LigerMultiTokenAttentionFunction

from conformance.libraries.cases import LibraryOp
from conformance.libraries.numerics import randn

KERNEL = 3


def _inputs(shape, dtype, gen):
    batch, channels, seq = shape
    return {"scores": randn((batch, channels, seq, seq), dtype, gen, scale=2.0),
            "weight": randn((channels, channels, KERNEL, KERNEL), dtype, gen, scale=(channels * KERNEL ** 2) ** -0.5),
            "bias": randn((channels,), dtype, gen, scale=0.1)}


def _reference(scores, weight, bias):
    seq = scores.shape[-1]
    future = torch.ones(seq, seq, dtype=torch.bool).triu(1)
    probs = torch.softmax(scores.masked_fill(future, float("-inf")), -1)
    return F.conv2d(probs, weight, bias, padding=KERNEL // 2).masked_fill(future, 0.0)


MULTI_TOKEN_ATTENTION = LibraryOp(
    "multi_token_attention", _inputs,
    run=lambda scores, weight, bias: LigerMultiTokenAttentionFunction.apply(scores, weight, bias, 1, KERNEL // 2),
    reference=_reference, ulps={"f32": (64, 256), "bf16": (16, 32), "f16": (16, 32)},
    shapes={"small": (2, 4, 37), "liger": (1, 8, 128)}, grads=("scores", "weight", "bias"))


def _qkv(shape, dtype, gen):
    batch, heads, seq, head_dim, kernel_size, dilation = shape
    # the window settings travel with the inputs (ints pass through unchanged to both calls)
    return {**{name: randn((batch, heads, seq, head_dim), dtype, gen) for name in ("q", "k", "v")},
            "kernel_size": kernel_size, "dilation": dilation}


def _neighborhood_reference(q, k, v, kernel_size, dilation):
    seq, head_dim = q.shape[-2:]
    offset = torch.arange(seq)[None, :] - torch.arange(seq)[:, None]  # key j - query i
    window = (offset.abs() <= kernel_size // 2 * dilation) & (offset % dilation == 0)
    scores = (q @ k.transpose(-1, -2)) / head_dim ** 0.5
    return torch.softmax(scores.masked_fill(~window, float("-inf")), -1) @ v


FUSED_NEIGHBORHOOD_ATTENTION = LibraryOp(
    "fused_neighborhood_attention", _qkv,
    run=lambda q, k, v, kernel_size, dilation: LigerFusedNeighborhoodAttentionFunction.apply(
        q, k, v, kernel_size, dilation),
    reference=_neighborhood_reference, ulps={"f32": (16, 64), "bf16": (8, 16), "f16": (8, 16)},
    shapes={"small": (1, 8, 24, 16, 5, 2), "liger": (1, 2, 48, 128, 3, 1)}, grads=("q", "k", "v"))

OPS = (MULTI_TOKEN_ATTENTION, FUSED_NEIGHBORHOOD_ATTENTION)
