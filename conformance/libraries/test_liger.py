"""Every Liger op of the suite, forward and backward, f32/bf16/f16, against a float64 CPU reference.

Case ids: test_liger[<op>-<dtype>-<fwd|bwd>-<size>]; refusals.toml lists the ones the backend refuses.
"""
from __future__ import annotations

import pytest
import torch

from conformance.libraries import (
    ops_activations,
    ops_attention,
    ops_embedding,
    ops_grpo,
    ops_losses,
    ops_moe,
    ops_norms,
    ops_rope,
)
from conformance.libraries.cases import as_tuple, clone_inputs, params
from conformance.libraries.numerics import DTYPES, assert_close

OPS = (ops_norms.OPS + ops_activations.OPS + ops_rope.OPS + ops_losses.OPS + ops_embedding.OPS
       + ops_attention.OPS + ops_moe.OPS + ops_grpo.OPS)


@pytest.mark.parametrize("op, dtype_name, direction, shape", params(OPS))
def test_liger(op, dtype_name, direction, shape, device):
    dtype = DTYPES[dtype_name]
    inputs = op.inputs(shape, dtype, torch.Generator().manual_seed(0))
    backward = direction == "bwd"
    ref_in = clone_inputs(inputs, torch.float64, op.grads if backward else ())
    # on the device Triton's driver reports (the simulator: cpu; an Apple GPU: mps); Liger may write into
    # its inputs, hence copies
    ours_in = clone_inputs(inputs, None, op.grads if backward else (), device)
    fwd_ulps, bwd_ulps = op.ulps[dtype_name]

    with torch.set_grad_enabled(backward):
        ours = as_tuple(op.run(**ours_in))
        ref = as_tuple(op.reference(**ref_in))
    for i in op.outputs_checked:
        assert_close(ours[i].cpu(), ref[i], dtype, fwd_ulps, f"{op.name} output {i}")
    if not backward:
        return

    gen = torch.Generator().manual_seed(1)
    upstream = [torch.randn(ref[i].shape, generator=gen).to(dtype) for i in op.outputs_checked]
    # copies: Liger may write its input gradient into the upstream one (RMSNorm's in_place=True default)
    ours_upstream = [u.to(ours[i].dtype).to(ours[i].device, copy=True) for i, u in zip(op.outputs_checked, upstream)]
    torch.autograd.backward([ours[i] for i in op.outputs_checked], ours_upstream)
    if op.grad_reference is None:
        torch.autograd.backward([ref[i] for i in op.outputs_checked], [u.double() for u in upstream])
        ref_grads = {name: ref_in[name].grad for name in op.grads}
    else:
        ref_grads = op.grad_reference([o.cpu() for o in ours], ref_in, [u.double() for u in upstream])
    for name in op.grads:
        assert ours_in[name].grad is not None, f"{op.name}: no gradient for {name}"
        assert_close(ours_in[name].grad.cpu(), ref_grads[name], dtype, bwd_ulps, f"{op.name} d{name}")
