"""Liger's GRPO loss (liger_kernel.ops.grpo_loss.GrpoLossFunction): the clipped policy-gradient loss of RL
fine-tuning with a KL penalty, fused with the log-softmax over the vocabulary.

Per completion token t of sequence b (the logits of position t predict token t; the last position is unused):
logp = log_softmax(logits / temperature)[token], ratio = exp(logp - old_logp), loss_t =
-min(ratio * A_b, clamp(ratio, 1 - eps_low, 1 + eps_high) * A_b) + beta * (exp(ref_logp - logp) - (ref_logp -
logp) - 1); the "grpo" reduction averages loss_t over each sequence's unmasked tokens, then over sequences.
Settings as Liger's test_grpo_loss: temperature 0.9, beta 0.04, eps 0.2 / 0.4, token-level importance
sampling; old_logp and ref_logp are the current log-probabilities plus noise (so some tokens are clipped),
in float32 as Liger's callers pass them; the last tokens of each sequence are masked out.
Shapes (batch, completion length, vocabulary): "small" is Liger's test_grpo_loss_vs_trl vocabulary 1000
(one masked block of 2048) over (2, 16) tokens; "liger" is Liger's test_grpo_loss vocabulary 151936 (Qwen2;
74 blocks of 2048 forward, 38 of 4096 backward) with the 1024 tokens cut to 8 (each token is one program).
Tolerance: the loss is computed in float32 from the dtype's logits (which the reference gets exactly): a
float32 log-sum-exp over the vocabulary and a float32 mean, so the loss is judged in float32 ulps whatever
the logits' dtype: 64 ulps of the dtype is looser than that (Liger returns a float32 loss). The logits
gradient (onehot - softmax) * dlogp / temperature is one float32 exp rounded once to the dtype: 8 ulps
(64 for float32) relative to the largest element. The clip decision jumps where ratio = 1 +- eps; the
inputs keep every ratio well away from those edges at float32 rounding (noise of scale 0.3).
"""
from __future__ import annotations

import torch
from liger_kernel.ops.grpo_loss import GrpoLossFunction

from conformance.libraries.cases import LibraryOp
from conformance.libraries.numerics import randn

TEMPERATURE, BETA, EPS_LOW, EPS_HIGH = 0.9, 0.04, 0.2, 0.4
PADDING = 3  # masked tokens at the end of every sequence


def _inputs(shape, dtype, gen):
    batch, length, vocab = shape
    logits = randn((batch, length + 1, vocab), dtype, gen)
    ids = torch.randint(0, vocab, (batch, length), generator=gen)
    logp = _token_logp(logits.double(), ids).float()
    mask = torch.ones(batch, length, dtype=torch.int32)
    mask[:, -PADDING:] = 0
    return {"logits": logits, "old_logp": logp + 0.3 * torch.randn(batch, length, generator=gen),
            "ref_logp": logp + 0.2 * torch.randn(batch, length, generator=gen), "ids": ids,
            "advantages": torch.randn(batch, generator=gen), "mask": mask}


def _token_logp(logits, ids):
    return torch.log_softmax(logits[:, :-1] / TEMPERATURE, -1).gather(-1, ids[..., None])[..., 0]


def _reference(logits, old_logp, ref_logp, ids, advantages, mask):
    logp = _token_logp(logits, ids)
    ratio = torch.exp(logp - old_logp)
    adv = advantages[:, None]
    loss = -torch.minimum(ratio * adv, ratio.clamp(1 - EPS_LOW, 1 + EPS_HIGH) * adv)
    loss = loss + BETA * (torch.exp(ref_logp - logp) - (ref_logp - logp) - 1)
    mask = mask.double()
    return ((loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()


def _run(logits, old_logp, ref_logp, ids, advantages, mask):
    # inplace=False: Liger would otherwise write the logits gradient over the logits; returns
    # (loss, mean KL, clip ratio), of which the loss is the differentiable output
    return GrpoLossFunction.apply(logits, old_logp, ref_logp, ids, advantages, mask, TEMPERATURE, BETA, EPS_LOW,
                                  EPS_HIGH, False)


GRPO_LOSS = LibraryOp(
    "grpo_loss", _inputs, run=_run, reference=_reference,
    ulps={"f32": (64, 64), "bf16": (8, 8), "f16": (8, 8)},
    shapes={"small": (2, 16, 1000), "liger": (1, 8, 151936)}, grads=("logits",))

OPS = (GRPO_LOSS,)
