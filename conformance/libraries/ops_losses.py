"""Liger's losses: cross entropy, fused linear cross entropy, KL divergence, JSD, fused linear JSD, TVD, fused
linear KL divergence, fused cross entropy + TVD.

Shapes (rows, vocabulary): "small" is an odd vocabulary (1000, one masked block) over 14 rows; "liger" is
Llama's vocabulary 32000 (Liger's test_cross_entropy: (3, 423, 32000) and (2, 4096, 32000)) over 8 rows:
each row is one program, so Liger's thousands of rows change only the time, while the vocabulary decides the
block size (32768) and the kernel's threadgroup memory. Fused linear cross entropy: hidden 256 (small) and 512
(liger) with vocabularies 1000 and 32000.
Tolerances: the losses are float32 reductions over the vocabulary (log-sum-exp, sums) rounded once to the
dtype: 8 ulps of the dtype (64 for float32, ~sqrt(V) ulps of accumulation). The logits gradients
(softmax - onehot) / rows are each one float32 exp rounded once: 4-8 ulps. Fused linear cross entropy
rounds the logits of x @ W^T to the dtype before the softmax (torch's matmul on the chunk), and its weight
gradient sums the rows' products: 16 ulps of the dtype relative to the largest element.
Fused linear KL divergence (KL(target || softmax(x @ W^T)) per row, rows with an ignored label left out, averaged
over the other rows) rounds the logits and its logits gradient to the dtype as fused linear JSD does: the same
16 ulps.
Fused cross entropy + TVD (Liger has no fused *linear* TVD; this is its fused TVD op) returns both per-row
terms unreduced in float32 (0 for ignored rows), each a float32 log-sum-exp / sum over the vocabulary: the
loss tolerance (64 / 8 ulps). Its student-logits gradient, p * (grad_ce + grad_tvd * (sign(p - q) - sigma)) -
grad_ce * onehot, is float32 math rounded once to the dtype: the loss tolerance too. (sign(p - q) jumps at
ties; a flip moves one element by 2 p |grad_tvd|, p ~ 1/V, far below the tolerance relative to the largest
gradient element, which the cross-entropy term makes ~1.)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from liger_kernel.ops.cross_entropy import LigerCrossEntropyFunction
from liger_kernel.ops.fused_ce_tvd import LigerFusedCETVDFunction
from liger_kernel.ops.fused_linear_cross_entropy import LigerFusedLinearCrossEntropyFunction
from liger_kernel.ops.fused_linear_jsd import LigerFusedLinearJSDFunction
from liger_kernel.ops.fused_linear_kl_div import LigerFusedLinearKLDivFunction
from liger_kernel.ops.jsd import LigerJSDFunction
from liger_kernel.ops.kl_div import LigerKLDivLossFunction
from liger_kernel.ops.tvd import LigerTVDLossFunction

from conformance.libraries.cases import LibraryOp
from conformance.libraries.numerics import randn

VOCAB_SHAPES = {"small": (14, 1000), "liger": (8, 32000)}
LOSS_ULPS = {"f32": (64, 64), "bf16": (8, 8), "f16": (8, 8)}
IGNORE = -100


def _targets(rows, vocab, gen):
    target = torch.randint(0, vocab, (rows,), generator=gen)
    target[::5] = IGNORE  # some ignored rows, as Liger's ignore_index tests
    return target


def _logits_target(shape, dtype, gen):
    return {"logits": randn(shape, dtype, gen, scale=2.0), "target": _targets(*shape, gen)}


CROSS_ENTROPY = LibraryOp(
    "cross_entropy", _logits_target,
    run=lambda logits, target: LigerCrossEntropyFunction.apply(logits, target, None, IGNORE),
    reference=lambda logits, target: F.cross_entropy(logits, target, ignore_index=IGNORE),
    ulps=LOSS_ULPS, shapes=VOCAB_SHAPES, grads=("logits",))


def _flce_inputs(shape, dtype, gen):
    rows, hidden, vocab = shape
    return {"x": randn((rows, hidden), dtype, gen), "w": randn((vocab, hidden), dtype, gen, scale=hidden ** -0.5),
            "target": _targets(rows, vocab, gen)}


FUSED_LINEAR_CROSS_ENTROPY = LibraryOp(
    "fused_linear_cross_entropy", _flce_inputs,
    run=lambda x, w, target: LigerFusedLinearCrossEntropyFunction.apply(x, w, target, None, None, IGNORE),
    reference=lambda x, w, target: F.cross_entropy(x @ w.T, target, ignore_index=IGNORE),
    ulps={"f32": (64, 64), "bf16": (16, 16), "f16": (16, 16)},
    # liger: vocabulary 32000 as Liger's tests; hidden 512, not 4096: the hidden size only enters torch's
    # matmuls (not a Triton kernel), and 4096 x 32000 weights with float64 references take gigabytes
    shapes={"small": (14, 256, 1000), "liger": (8, 512, 32000)}, grads=("x", "w"))


def _log_probs(shape, dtype, gen):
    return {"y_pred": torch.log_softmax(torch.randn(shape, generator=gen), -1).to(dtype),
            "y_true": torch.softmax(torch.randn(shape, generator=gen), -1).to(dtype)}


KL_DIV = LibraryOp(
    "kl_div", _log_probs,
    run=lambda y_pred, y_true: LigerKLDivLossFunction.apply(y_pred, y_true, "batchmean"),
    reference=lambda y_pred, y_true: F.kl_div(y_pred, y_true, reduction="batchmean"),
    ulps=LOSS_ULPS, shapes=VOCAB_SHAPES, grads=("y_pred",))


def _two_log_probs(shape, dtype, gen):
    return {"log_q": torch.log_softmax(torch.randn(shape, generator=gen), -1).to(dtype),
            "log_p": torch.log_softmax(torch.randn(shape, generator=gen), -1).to(dtype)}


def _jsd(log_q, log_p, beta=0.5):
    # Liger's generalized JSD: beta * KL(P || M) + (1 - beta) * KL(Q || M), M = beta P + (1 - beta) Q,
    # summed over the vocabulary and averaged over rows (input = student log Q, target = teacher log P).
    p, q = log_p.exp(), log_q.exp()
    log_m = (beta * p + (1 - beta) * q).log()
    return (beta * p * (log_p - log_m) + (1 - beta) * q * (log_q - log_m)).sum() / log_q.shape[0]


JSD = LibraryOp(
    "jsd", _two_log_probs,
    run=lambda log_q, log_p: LigerJSDFunction.apply(log_q, log_p, None, 0.5),
    reference=_jsd, ulps=LOSS_ULPS, shapes=VOCAB_SHAPES, grads=("log_q",))


def _flj_inputs(shape, dtype, gen):
    rows, hidden, vocab = shape
    return {"s_x": randn((rows, hidden), dtype, gen), "s_w": randn((vocab, hidden), dtype, gen, scale=hidden ** -0.5),
            "t_x": randn((rows, hidden), dtype, gen), "t_w": randn((vocab, hidden), dtype, gen, scale=hidden ** -0.5)}


FUSED_LINEAR_JSD = LibraryOp(
    "fused_linear_jsd", _flj_inputs,
    run=lambda s_x, s_w, t_x, t_w: LigerFusedLinearJSDFunction.apply(s_x, s_w, t_x, t_w, None, 0.5),
    reference=lambda s_x, s_w, t_x, t_w: _jsd(torch.log_softmax(s_x @ s_w.T, -1), torch.log_softmax(t_x @ t_w.T, -1)),
    # as fused linear cross entropy: the logits are rounded to the dtype by torch's matmul first
    ulps={"f32": (64, 64), "bf16": (16, 16), "f16": (16, 16)},
    shapes={"small": (14, 256, 1000), "liger": (8, 512, 32000)}, grads=("s_x", "s_w"))


def _two_probs(shape, dtype, gen):
    return {"p": torch.softmax(torch.randn(shape, generator=gen), -1).to(dtype),
            "q": torch.softmax(torch.randn(shape, generator=gen), -1).to(dtype)}


TVD = LibraryOp(
    "tvd", _two_probs,
    run=lambda p, q: LigerTVDLossFunction.apply(p, q, None, "batchmean"),
    reference=lambda p, q: 0.5 * (p - q).abs().sum() / p.shape[0],
    ulps=LOSS_ULPS, shapes=VOCAB_SHAPES, grads=("p",))



def _flkl_inputs(shape, dtype, gen):
    rows, hidden, vocab = shape
    return {"x": randn((rows, hidden), dtype, gen), "w": randn((vocab, hidden), dtype, gen, scale=hidden ** -0.5),
            "target": torch.softmax(torch.randn((rows, vocab), generator=gen), -1).to(dtype),
            "labels": _targets(rows, vocab, gen)}  # only which rows are ignored matters


def _fused_linear_kl(x, w, target, labels):
    # batchmean over the rows whose label is not ignored; target entries are > 0 (a softmax), so no 0 * log 0
    kept = labels != IGNORE
    log_p = torch.log_softmax(x @ w.T, -1)
    return (target * (target.log() - log_p))[kept].sum() / kept.sum()


FUSED_LINEAR_KL_DIV = LibraryOp(
    "fused_linear_kl_div", _flkl_inputs,
    run=lambda x, w, target, labels: LigerFusedLinearKLDivFunction.apply(x, w, target, labels, "batchmean", IGNORE),
    reference=_fused_linear_kl,
    ulps={"f32": (64, 64), "bf16": (16, 16), "f16": (16, 16)},
    # as fused linear JSD; at the liger size the rows go through Liger's chunk loop (4 chunks of 2 rows)
    shapes={"small": (14, 256, 1000), "liger": (8, 512, 32000)}, grads=("x", "w"))



def _ce_tvd_inputs(shape, dtype, gen):
    return {"student": randn(shape, dtype, gen, scale=2.0), "teacher": randn(shape, dtype, gen, scale=2.0),
            "target": _targets(*shape, gen)}


def _ce_tvd(student, teacher, target):
    kept = (target != IGNORE).double()
    ce = F.cross_entropy(student, target, ignore_index=IGNORE, reduction="none")
    tvd = 0.5 * (student.softmax(-1) - teacher.softmax(-1)).abs().sum(-1) * kept
    return ce, tvd


FUSED_CE_TVD = LibraryOp(
    "fused_ce_tvd", _ce_tvd_inputs,
    run=lambda student, teacher, target: LigerFusedCETVDFunction.apply(student, teacher, target, IGNORE),
    reference=_ce_tvd, ulps=LOSS_ULPS, shapes=VOCAB_SHAPES, grads=("student",), outputs_checked=(0, 1))

OPS = (CROSS_ENTROPY, FUSED_LINEAR_CROSS_ENTROPY, KL_DIV, JSD, FUSED_LINEAR_JSD, TVD, FUSED_LINEAR_KL_DIV,
       FUSED_CE_TVD)
