"""Global memory: tt.load and tt.store with masks, on scalars and tensors of pointers."""
from __future__ import annotations

from triton_metal.codegen.emitter import lowers


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
    else:
        em.define(result, text)


@lowers("tt.store")
def lower_store(em, op):
    ptr, value = em.var(op.operands[0]), em.var(op.operands[1])
    mask = em.var(op.operands[2]) if len(op.operands) > 2 else None
    n = max(ptr.nregs, 1)

    def text(i):
        store = f"*{ptr.at(i)} = {value.at(i)};"
        return store if mask is None else f"if ({mask.at(i)}) {store}"

    if ptr.is_array or (mask is not None and mask.is_array) or value.is_array:
        em.emit_loop(n, text)
    else:
        em.emit(text(0))
