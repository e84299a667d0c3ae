"""tt.unsplat (a one-element tensor to its scalar) and ub.poison (an undefined value): no computation."""
from __future__ import annotations

from triton_metal.codegen.emitter import lowers


@lowers("tt.unsplat")
def lower_unsplat(em, op):
    # Every thread holds the one element (register 0), whatever the layout.
    em.define(op.results[0], em.var(op.operands[0]).at(0))


@lowers("ub.poison")
def lower_poison(em, op):
    # An undefined value (e.g. what a function returns on a path without `return`); zero is one choice.
    em.define(op.results[0], "0")
