"""Liger's multi-token attention: causal-masked softmax of attention scores, a 2-D convolution over them
(torch's conv2d), the future masked to zero again.

Shapes (batch, channels, seq_len): "small" is seq_len 37 (masked blocks); "liger" is the largest of Liger's
test_multi_token_attention, seq_len 128 over 8 channels. Kernel 3 x 3, padding 1. (Liger's masking kernels
take one square block of next_power_of_2(seq_len)^2 elements per program: at seq_len 1024 that is 8192
values per thread, over the simulator's 64 KiB thread stack.)
Tolerance: the softmax is a float32 row reduction rounded once to the dtype (4 ulps); then torch's conv2d
sums 9 x channels products of dtype values (rounded once again, accumulated in float32 on the CPU): 16 ulps of
the dtype relative to the largest output (64 for float32). The weight and bias gradients sum over every
position of the L x L maps: 32 ulps (256 for float32) relative to the largest element.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
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

OPS = (MULTI_TOKEN_ATTENTION,)
