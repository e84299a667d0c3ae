"""Floating-point contraction: Triton's ``enable_fp_fusion`` written out as ``fma()``.

Apple's compiler may fuse ``a*b+c`` by itself (within a statement in safe mode, across statements in
fast mode: MSL spec 1.6.3), g++ only where the CPU has FMA instructions, so neither compiler is left to
choose: every kernel turns implicit contraction off (numerics.MathMode.pragmas) and, when the kernel
allows fusion, an add or subtract of a product computed in the same block is written as one
``fma()``. fma is correctly rounded on Apple GPUs (MSL spec Tables 8.1 and 8.3) and on the simulator,
so both compute the fused bits, as Triton does on NVIDIA GPUs (LLVM fuses there with
``enable_fp_fusion``). As LLVM's DAG combiner there: one block at a time, the first operand's product
when both operands are products, and a product with other uses too (it is then computed once more
for them). float and half only: Metal has no bfloat fma, and bfloat products stay rounded.

This module is the one lowering of ``arith.addf``, ``arith.subf`` and ``arith.mulf`` (msl_ops.CONTRACTIBLE:
lower_elementwise leaves them out), fused or not.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from triton_metal.codegen import msl_ops
from triton_metal.codegen.emitter import lowers
from triton_metal.codegen.ir_reader import kernel_blocks
from triton_metal.codegen.msl_text import paren
from triton_metal.codegen.ops.lower_elementwise import render

FUSABLE = ("f32", "f16")
ADDS = ("arith.addf", "arith.subf")
PRODUCT = "arith.mulf"


@dataclass
class FusionPlan:
    fused: dict = field(default_factory=dict)  # id(add or subtract op) -> (index of the product operand, mulf op)
    absorbed: set = field(default_factory=set)  # ids of products every use of which is fused: not emitted


def plan(func, enabled: bool) -> FusionPlan:
    """Which adds and subtracts of ``func`` (and of the functions it calls) become fma()."""
    result = FusionPlan()
    if not enabled:
        return result
    uses: Counter = Counter()
    for block in kernel_blocks(func):
        products = {}  # value id -> mulf op, for the products of this block
        for op in block.ops:
            uses.update(v.id for v in op.operands)
            for _, operands in op.successors:
                uses.update(v.id for v in operands)
            element = op.results[0].type.element if op.results else ""
            if op.name in ADDS and element in FUSABLE:
                k = next((k for k, v in enumerate(op.operands) if v.id in products), None)
                if k is not None:
                    result.fused[id(op)] = (k, products[op.operands[k].id])
            elif op.name == PRODUCT and element in FUSABLE:
                products[op.results[0].id] = op
    fused_uses = Counter(mul.results[0].id for _, mul in result.fused.values())
    result.absorbed = {vid for vid, n in fused_uses.items() if n == uses[vid]}
    return result


def _fusion(em):
    return getattr(em, "fusion", None) or FusionPlan()


@lowers(PRODUCT)
def lower_mulf(em, op):
    if op.results[0].id in _fusion(em).absorbed:
        return  # only fused adds use this product, and they compute it inside their fma()
    render(em, op, msl_ops.BINARY[op.name])


@lowers(*ADDS)
def lower_add_or_subtract(em, op):
    found = _fusion(em).fused.get(id(op))
    if found is None:
        render(em, op, msl_ops.BINARY[op.name])
        return
    k, mul = found
    a, b = (em.var(v) for v in mul.operands)
    c = em.var(op.operands[1 - k])
    negate_product = op.name == "arith.subf" and k == 1  # c - a*b = fma(-a, b, c)
    negate_addend = op.name == "arith.subf" and k == 0  # a*b - c = fma(a, b, -c)

    def text(i):
        x = f"-{paren(a.at(i))}" if negate_product else a.at(i)
        z = f"-{paren(c.at(i))}" if negate_addend else c.at(i)
        return f"fma({x}, {b.at(i)}, {z})"

    if all(not v.is_array for v in (a, b, c)):
        em.define(op.results[0], text(0))
    else:
        em.define(op.results[0], text)
