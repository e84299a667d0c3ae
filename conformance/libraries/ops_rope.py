"""Liger's rotary position embeddings: Llama's (rotate_half over the halves of head_dim), Llama 4's
(complex rotation of interleaved pairs) and Qwen2-VL's multimodal M-RoPE (three position ids per token).

Shapes (bsz, n_q_head, n_kv_head, seq_len, head_dim): "small" has an odd seq_len and head_dim 32; "liger"
is head_dim 128 (Llama) with 32 query and 8 key/value heads, Liger's test_rope sizes, at seq_len 64.
Tolerance: q*cos + rotate_half(q)*sin in float32, rounded once: 2 ulps forward and backward (4 for f32,
where cos/sin themselves are float32 inputs).
"""
from __future__ import annotations

import torch
from liger_kernel.ops.llama4_rope import LigerLlama4RopeFunction
from liger_kernel.ops.qwen2vl_mrope import LigerQwen2VLMRopeFunction
from liger_kernel.ops.rope import LigerRopeFunction

from conformance.libraries.cases import LibraryOp
from conformance.libraries.numerics import randn


def _inputs(shape, dtype, gen):
    bsz, n_q, n_kv, seq, dim = shape
    inv_freq = 1.0 / (10000 ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    freqs = torch.outer(torch.arange(seq, dtype=torch.float64), inv_freq)
    emb = torch.cat([freqs, freqs], -1)[None]  # (1, seq, dim) as HF's LlamaRotaryEmbedding
    return {"q": randn((bsz, n_q, seq, dim), dtype, gen), "k": randn((bsz, n_kv, seq, dim), dtype, gen),
            "cos": emb.cos().to(dtype), "sin": emb.sin().to(dtype)}


def _rotate_half(x):
    x1, x2 = x.chunk(2, -1)
    return torch.cat([-x2, x1], -1)


def _reference(q, k, cos, sin):
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    return q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin


ROPE = LibraryOp(
    "rope", _inputs, run=lambda q, k, cos, sin: LigerRopeFunction.apply(q, k, cos, sin),
    reference=_reference, ulps={"f32": (4, 4), "bf16": (2, 2), "f16": (2, 2)},
    shapes={"small": (2, 4, 2, 7, 32), "liger": (1, 32, 8, 64, 128)}, grads=("q", "k"), outputs_checked=(0, 1))



def _llama4_inputs(shape, dtype, gen):
    bsz, n_q, n_kv, seq, dim = shape
    inv_freq = 1.0 / (500000 ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    angles = torch.outer(torch.arange(seq, dtype=torch.float64), inv_freq)  # (seq, dim / 2)
    # Llama 4's freqs_cis as (real, imag) pairs in float32, the layout Liger reads a complex64 tensor as
    freqs = torch.stack([angles.cos(), angles.sin()], -1).float()
    return {"q": randn((bsz, seq, n_q, dim), dtype, gen), "k": randn((bsz, seq, n_kv, dim), dtype, gen),
            "freqs": freqs}


def _llama4_reference(q, k, freqs):
    # interleaved pairs (x[2i], x[2i+1]) as complex numbers, times e^{i angle}: Llama 4's apply_rotary_emb
    rot = torch.view_as_complex(freqs.contiguous())[None, :, None, :]

    def apply(x):
        return torch.view_as_real(torch.view_as_complex(x.reshape(*x.shape[:-1], -1, 2)) * rot).flatten(-2)
    return apply(q), apply(k)


LLAMA4_ROPE = LibraryOp(
    "llama4_rope", _llama4_inputs, run=lambda q, k, freqs: LigerLlama4RopeFunction.apply(q, k, freqs),
    # a complex multiply by a float32 unit number: two fused multiply-adds, rounded once to the dtype
    reference=_llama4_reference, ulps={"f32": (4, 4), "bf16": (2, 2), "f16": (2, 2)},
    # (bsz, n_q_head, n_kv_head, seq_len, head_dim): head_dim 128 as Llama 4
    shapes={"small": (2, 4, 2, 7, 32), "liger": (1, 40, 8, 64, 128)}, grads=("q", "k"), outputs_checked=(0, 1))



def _mrope_inputs(shape, dtype, gen):
    bsz, n_q, n_kv, seq, dim = shape
    inv_freq = 1.0 / (1000000 ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    # temporal, height and width position ids of each token (Qwen2-VL's three rows), as HF builds cos/sin
    positions = torch.randint(0, 4 * seq, (3, bsz, seq), generator=gen).double()
    emb = torch.cat([positions[..., None] * inv_freq] * 2, -1)  # (3, bsz, seq, dim)
    return {"q": randn((bsz, n_q, seq, dim), dtype, gen), "k": randn((bsz, n_kv, seq, dim), dtype, gen),
            "cos": emb.cos().to(dtype), "sin": emb.sin().to(dtype)}


def _mrope_sections(dim):
    return [dim // 8, 3 * dim // 16, 3 * dim // 16]  # [16, 24, 24] at head_dim 128, Qwen2-VL's config


def _mrope_reference(q, k, cos, sin):
    # HF's apply_multimodal_rotary_pos_emb: the frequency bands of head_dim take t, h, w positions in turn
    sections = _mrope_sections(q.shape[-1]) * 2
    cos = torch.cat([m[i % 3] for i, m in enumerate(cos.split(sections, -1))], -1).unsqueeze(1)
    sin = torch.cat([m[i % 3] for i, m in enumerate(sin.split(sections, -1))], -1).unsqueeze(1)
    return q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin


QWEN2VL_MROPE = LibraryOp(
    "qwen2vl_mrope", _mrope_inputs,
    run=lambda q, k, cos, sin: LigerQwen2VLMRopeFunction.apply(q, k, cos, sin, _mrope_sections(q.shape[-1])),
    reference=_mrope_reference, ulps={"f32": (4, 4), "bf16": (2, 2), "f16": (2, 2)},
    # (bsz, n_q_head, n_kv_head, seq_len, head_dim): head_dim 128 with 28/4 heads as Qwen2-VL 7B
    shapes={"small": (2, 4, 2, 7, 32), "liger": (1, 28, 4, 64, 128)}, grads=("q", "k"), outputs_checked=(0, 1))

OPS = (ROPE, LLAMA4_ROPE, QWEN2VL_MROPE)
