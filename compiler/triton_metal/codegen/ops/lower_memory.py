"""Global memory: tt.load and tt.store with masks, on scalars and tensors of pointers.

Registers holding consecutive elements are moved by vector accesses where the pointers allow it at
run time (codegen/vector_access.py); the rest one register at a time."""
from __future__ import annotations

from triton_metal.codegen import vector_access
from triton_metal.codegen.emitter import lowers
from triton_metal.codegen.layout import redundant_bits
from triton_metal.codegen.own_names import LANE, REG, SIMD


@lowers("tt.load")
def lower_load(em, op):
    ptr = em.var(op.operands[0])
    mask = em.var(op.operands[1]) if len(op.operands) > 1 else None
    other = em.var(op.operands[2]) if len(op.operands) > 2 else None
    result = op.results[0]
    zero = f"{em.ctype(result)}(0)"

    def text(i):
        load = f"*{ptr.at(i)}"
        if mask is None:
            return load
        # The ternary never dereferences a masked-off pointer.
        return f"{mask.at(i)} ? {load} : {other.at(i) if other else zero}"

    if not ptr.is_array and (mask is None or not mask.is_array):
        em.define(result, text(0))
        return
    width = vector_access.vector_width(result.layout, em.ctype(result)) if ptr.is_array else 1
    if width > 1:
        vector_access.emit_load(em, result, ptr, mask, text, width)
    else:
        em.define(result, text)


def owner_condition(layout) -> str:
    """MSL condition true in exactly one thread per element (Triton stores each element once)."""
    if layout is None:  # a scalar: every thread holds it, thread 0 owns it
        return f"{LANE} == 0 && {SIMD} == 0"
    terms = []
    for var, bases in ((LANE, layout.lane_bases), (SIMD, layout.warp_bases)):
        mask = redundant_bits(bases)
        if mask:
            terms.append(f"({var} & {mask}) == 0")
    return " && ".join(terms)


@lowers("tt.store")
def lower_store(em, op):
    ptr, value = em.var(op.operands[0]), em.var(op.operands[1])
    mask = em.var(op.operands[2]) if len(op.operands) > 2 else None
    layout = op.operands[0].layout
    n = max(ptr.nregs, 1)
    # Copies of an element held by several threads (or registers) are stored once, so that a
    # kernel reading and writing the same address sees one store, as on CUDA.
    owner = owner_condition(layout)
    reg_mask = redundant_bits(layout.reg_bases) if layout is not None else 0

    def text(i):
        store = f"*{ptr.at(i)} = {value.at(i)};"
        conds = [c for c in (mask.at(i) if mask is not None else "",
                             f"({i} & {reg_mask}) == 0" if reg_mask and i == REG else "") if c]
        return f"if ({' && '.join(conds)}) {store}" if conds else store

    def element_text(i):  # a register of a vector group: the group's guard holds the register rule
        store = f"*{ptr.at(i)} = {value.at(i)};"
        return f"if ({mask.at(i)}) {store}" if mask is not None else store

    def group_guard(group):  # a group's registers share their redundant bits (never among its own)
        if not reg_mask:
            return ""
        return ("" if int(group) & reg_mask == 0 else "false") if group.isdigit() else f"({group} & {reg_mask}) == 0"

    width = vector_access.vector_width(layout, value.ctype) if ptr.is_array else 1
    if owner:
        em.emit(f"if ({owner}) {{")
        em.depth += 1
    if width > 1:
        vector_access.emit_store(em, ptr, value, mask, element_text, width, n, group_guard)
    elif ptr.is_array or (mask is not None and mask.is_array) or value.is_array:
        em.emit_loop(n, text)
    else:
        em.emit(text("0"))
    if owner:
        em.depth -= 1
        em.emit("}")
