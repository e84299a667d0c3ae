"""Our port of upstream tutorial 06 (fused attention, forward), checked against torch on the CPU.

Flash-attention forward: a BLOCK_M block of queries per program, K and V blocks read through
tensor descriptors (tl.make_tensor_descriptor), online softmax in base 2, causal masking in two
stages (blocks left of the diagonal without a mask, the diagonal block with one). The kernel
also writes the row log-sum-exp M, as the tutorial does for its backward pass.

Sizes: the tutorial checks Z=1, H=2, N_CTX=1024, HEAD_DIM=64 in f16. On the simulator we check
Z=1, H=2, N_CTX=128, HEAD_DIM=64 (and a second case with HEAD_DIM=32) to stay within CI time.
"""
import math

import pytest
import torch
import triton
import triton.language as tl


@triton.jit
def _attn_fwd_inner(acc, l_i, m_i, q, desc_k, desc_v, offset_y, start_m, qk_scale, BLOCK_M: tl.constexpr,
                    HEAD_DIM: tl.constexpr, BLOCK_N: tl.constexpr, STAGE: tl.constexpr,
                    offs_m: tl.constexpr, offs_n: tl.constexpr, N_CTX: tl.constexpr):
    if STAGE == 1:  # causal, left of the diagonal: no mask needed
        lo, hi = 0, start_m * BLOCK_M
    elif STAGE == 2:  # causal, the diagonal block
        lo, hi = start_m * BLOCK_M, (start_m + 1) * BLOCK_M
    else:  # not causal: everything
        lo, hi = 0, N_CTX
    offset_kv = offset_y + lo
    for start_n in range(lo, hi, BLOCK_N):
        k = desc_k.load([offset_kv, 0]).T
        qk = tl.dot(q, k)
        if STAGE == 2:
            causal = offs_m[:, None] >= (start_n + offs_n[None, :])
            qk = qk * qk_scale + tl.where(causal, 0, -1.0e6)
            m_ij = tl.maximum(m_i, tl.max(qk, 1))
            qk -= m_ij[:, None]
        else:
            m_ij = tl.maximum(m_i, tl.max(qk, 1) * qk_scale)
            qk = qk * qk_scale - m_ij[:, None]
        p = tl.math.exp2(qk)
        alpha = tl.math.exp2(m_i - m_ij)
        l_ij = tl.sum(p, 1)
        acc = acc * alpha[:, None]
        v = desc_v.load([offset_kv, 0])
        acc = tl.dot(p.to(tl.float16), v, acc)
        l_i = l_i * alpha + l_ij
        m_i = m_ij
        offset_kv += BLOCK_N
    return acc, l_i, m_i


@triton.jit
def attn_fwd_kernel(sm_scale, M, Z, H, Q, K, V, Out, N_CTX: tl.constexpr, HEAD_DIM: tl.constexpr,
                    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, STAGE: tl.constexpr):
    start_m = tl.program_id(0)
    off_hz = tl.program_id(1)
    y_dim = Z * H * N_CTX
    desc_q = tl.make_tensor_descriptor(Q, [y_dim, HEAD_DIM], [HEAD_DIM, 1], [BLOCK_M, HEAD_DIM])
    desc_k = tl.make_tensor_descriptor(K, [y_dim, HEAD_DIM], [HEAD_DIM, 1], [BLOCK_N, HEAD_DIM])
    desc_v = tl.make_tensor_descriptor(V, [y_dim, HEAD_DIM], [HEAD_DIM, 1], [BLOCK_N, HEAD_DIM])
    desc_o = tl.make_tensor_descriptor(Out, [y_dim, HEAD_DIM], [HEAD_DIM, 1], [BLOCK_M, HEAD_DIM])
    offset_y = off_hz * N_CTX
    qo_offset_y = offset_y + start_m * BLOCK_M
    offs_m = start_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    m_i = tl.zeros([BLOCK_M], dtype=tl.float32) - float("inf")
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32) + 1.0
    acc = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)
    qk_scale = sm_scale * 1.44269504  # 1/log(2): exp2 instead of exp
    q = desc_q.load([qo_offset_y, 0])
    if STAGE & 1:
        acc, l_i, m_i = _attn_fwd_inner(acc, l_i, m_i, q, desc_k, desc_v, offset_y, start_m, qk_scale, BLOCK_M,
                                        HEAD_DIM, BLOCK_N, 4 - STAGE, offs_m, offs_n, N_CTX)
    if STAGE & 2:
        acc, l_i, m_i = _attn_fwd_inner(acc, l_i, m_i, q, desc_k, desc_v, offset_y, start_m, qk_scale, BLOCK_M,
                                        HEAD_DIM, BLOCK_N, 2, offs_m, offs_n, N_CTX)
    m_i += tl.math.log2(l_i)
    acc = acc / l_i[:, None]
    tl.store(M + off_hz * N_CTX + offs_m, m_i)
    desc_o.store([qo_offset_y, 0], acc.to(tl.float16))


def attention(q, k, v, causal, sm_scale, block_m=32, block_n=32):
    Z, H, N_CTX, HEAD_DIM = q.shape
    o = torch.empty_like(q)
    M = torch.empty((Z, H, N_CTX), device=q.device, dtype=torch.float32)
    grid = (triton.cdiv(N_CTX, block_m), Z * H)
    attn_fwd_kernel[grid](sm_scale, M, Z, H, q, k, v, o, N_CTX=N_CTX, HEAD_DIM=HEAD_DIM, BLOCK_M=block_m,
                          BLOCK_N=block_n, STAGE=3 if causal else 1, num_warps=4)
    return o, M


@pytest.mark.parametrize("Z, H, N_CTX, HEAD_DIM", [(1, 2, 128, 64), (2, 1, 64, 32)])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_forward(Z, H, N_CTX, HEAD_DIM, causal, device, rng):
    q, k, v = ((torch.randn(Z, H, N_CTX, HEAD_DIM, generator=rng) * 0.5).to(torch.float16) for _ in range(3))
    sm_scale = 0.5
    o, M = attention(q.to(device), k.to(device), v.to(device), causal, sm_scale)
    # Reference in f32 on the CPU, from the f16 inputs.
    s = (q.float() @ k.float().transpose(2, 3)) * sm_scale
    if causal:
        s = s.masked_fill(~torch.tril(torch.ones(N_CTX, N_CTX, dtype=torch.bool)), float("-inf"))
    ref = torch.softmax(s, dim=-1) @ v.float()
    torch.testing.assert_close(o.cpu().float(), ref, rtol=0, atol=1e-2)
    torch.testing.assert_close(M.cpu(), torch.logsumexp(s, dim=-1) / math.log(2), rtol=1e-4, atol=1e-4)
