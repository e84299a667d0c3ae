"""Tensor descriptors, pointer casts, and what remains of block pointers.

Triton 3.9's frontend has removed block pointers (`tl.make_block_ptr` raises "Block pointers
have been removed in favor of the tensor descriptor API"), so they never reach a backend.
Tensor descriptors (`tl.make_tensor_descriptor`, `desc.load`, `desc.store`) are rewritten by
Triton's own `rewrite_tensor_descriptor_to_pointer` pass (run in make_ttir) into pointer
arithmetic with masks for the bounds checks (out-of-bounds loads read zero, out-of-bounds
stores are dropped); the `tt.reshape` ops that rewrite produces are lowered in lower_shape.
Pointer tables (grouped GEMM) need `tt.int_to_ptr`, lowered here.
"""
from __future__ import annotations

from triton_metal.codegen.emitter import LOWERINGS, lowers


def lower_int_to_ptr(em, op):
    """tt.int_to_ptr: an address loaded from memory (grouped GEMM's pointer arrays) used as a pointer."""
    _render_cast(em, op, f"({em.ctype(op.results[0])})({{}})")


def lower_ptr_to_int(em, op):
    _render_cast(em, op, f"{em.ctype(op.results[0])}({{}})")


def _render_cast(em, op, template: str):
    src = em.var(op.operands[0])
    if src.is_array:
        em.define(op.results[0], lambda i: template.format(src.at(i)))
    else:
        em.define(op.results[0], template.format(src.at(0)))


if "tt.int_to_ptr" not in LOWERINGS:  # pointer casts: elementwise, but only needed by pointer tables
    lowers("tt.int_to_ptr")(lower_int_to_ptr)
    lowers("tt.ptr_to_int")(lower_ptr_to_int)
