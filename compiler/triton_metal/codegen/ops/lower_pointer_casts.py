"""Pointer casts: tt.int_to_ptr and tt.ptr_to_int, elementwise.

Pointer tables (grouped GEMM's arrays of addresses) load integers and use them as pointers.

(Tensor descriptors, ``tl.make_tensor_descriptor`` / ``desc.load`` / ``desc.store``, never reach
the backend: Triton's own ``rewrite_tensor_descriptor_to_pointer`` pass, run in make_ttir, rewrites
them into pointer arithmetic with masks for the bounds checks, and the ``tt.reshape`` ops it
produces are lowered in lower_shape. Block pointers, ``tl.make_block_ptr``, are gone from Triton
3.9's frontend.)
"""
from __future__ import annotations

from triton_metal.codegen.emitter import lowers


@lowers("tt.int_to_ptr")
def lower_int_to_ptr(em, op):
    """tt.int_to_ptr: an address loaded from memory (grouped GEMM's pointer arrays) used as a pointer."""
    _render_cast(em, op, f"({em.ctype(op.results[0])})({{}})")


@lowers("tt.ptr_to_int")
def lower_ptr_to_int(em, op):
    _render_cast(em, op, f"{em.ctype(op.results[0])}({{}})")


def _render_cast(em, op, template: str):
    src = em.var(op.operands[0])
    if src.is_array:
        em.define(op.results[0], lambda i: template.format(src.at(i)))
    else:
        em.define(op.results[0], template.format(src.at(0)))
