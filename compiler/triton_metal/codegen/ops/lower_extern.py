"""``tt.extern_elementwise``: the calls of ``triton.language.extra.libdevice`` (mapped to
``triton_metal.libdevice`` by the backend's module map) become MSL from libdevice_msl's table.

Any other symbol, such as a CUDA ``__nv_*`` function from a user's own ``extern_elementwise`` or
from ``triton.language.extra.cuda.libdevice``, is refused with the catalog entry that names it.
"""
from __future__ import annotations

from triton_metal.codegen.emitter import lowers
from triton_metal.codegen.libdevice_msl import SYMBOL_PREFIX, TEMPLATES
from triton_metal.codegen.msl_helpers import helper_texts
from triton_metal.codegen.ops.lower_elementwise import render


def _uses_fp64(op) -> bool:
    return any(v.type.element == "f64" for v in (*op.operands, *op.results))


@lowers("tt.extern_elementwise")
def lower_extern_elementwise(em, op):
    symbol = op.str_attr("symbol")
    if _uses_fp64(op):  # libdevice's double variants
        raise em.refuse("fp64", op)
    entry = TEMPLATES.get(symbol.removeprefix(SYMBOL_PREFIX)) if symbol.startswith(SYMBOL_PREFIX) else None
    if entry is None:
        raise em.refuse("extern_elementwise", op, symbol=symbol)
    template, helpers = entry
    for text in helper_texts(helpers):
        em.add_helper(text)
    render(em, op, template.replace("{T}", em.ctype(op.results[0])))
