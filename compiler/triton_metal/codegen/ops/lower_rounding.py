"""Float narrowing conversions that round as Triton says: to nearest even, or toward zero on request.

A float -> half or bfloat conversion rounds to nearest even in MSL (spec 8.6: "fast math does not change
the accuracy of conversion operations"), but projects running Triton kernels on Apple GPUs report
Apple's compiler folding a ``(half)`` conversion away under fast math, and MSL has no per-conversion
rounding mode (``x.to(tl.float16, fp_downcast_rounding="rtz")``, ``tt.fp_to_fp`` with ``rtz``). Where
Triton's semantics need the rounding (an explicit ``.to()`` under fast math, any ``rtz`` conversion),
it is computed on the bits with integer arithmetic, which no floating-point licence can fold; like
the native conversion it keeps half subnormals (spec 8.6), NaN (quiet) and infinities. Otherwise
the native conversion. This module is the one lowering of ``arith.truncf`` and ``tt.fp_to_fp``
(msl_ops.CASTS leaves arith.truncf out).
"""
from __future__ import annotations

import re

from triton_metal.codegen import fp8_msl, msl_helpers
from triton_metal.codegen.emitter import lowers
from triton_metal.codegen.ops.lower_elementwise import render

# (target element, rounding) -> (helper function, its text: codegen/msl_helpers.py)
HELPERS = {
    ("f16", "rtne"): ("tm_half_rtne", msl_helpers.HALF_RTNE), ("f16", "rtz"): ("tm_half_rtz", msl_helpers.HALF_RTZ),
    ("bf16", "rtne"): ("tm_bfloat_rtne", msl_helpers.BFLOAT_RTNE),
    ("bf16", "rtz"): ("tm_bfloat_rtz", msl_helpers.BFLOAT_RTZ),
}
_ROUNDING = re.compile(r"\brounding\s*=\s*(\w+)")


def _convert_fp8(em, op, rounding: str) -> None:
    """A conversion with an fp8 side: decode to float exactly, encode from float rounding once
    (codegen/fp8_msl.py); fp8 -> fp8 goes through float, which holds every fp8 value exactly."""
    src, dst = op.operands[0].type.element, op.results[0].type.element
    expr = "{0}"
    if src_fmt := fp8_msl.fp8_format(src):
        name, text = fp8_msl.decode_helper(src_fmt)
        em.add_helper(text)
        expr = f"{name}({expr})"
    elif src != "f32":
        expr = f"float({expr})"  # half and bfloat are exact in float
    if dst_fmt := fp8_msl.fp8_format(dst):
        name, text = fp8_msl.encode_helper(dst_fmt, rounding)
        em.add_helper(text)
        expr = f"{name}({expr})"
    elif dst != "f32":
        expr = f"{em.ctype(op.results[0])}({expr})"  # an fp8 value is exact in half and bfloat
    render(em, op, expr)


def _convert(em, op, rounding: str) -> None:
    """``op``'s operand converted to its result type through float (exact for half and bfloat)."""
    src, dst = op.operands[0].type.element, op.results[0].type.element
    em.ctype(op.operands[0])  # refuses fp64 operands
    if fp8_msl.fp8_format(src) or fp8_msl.fp8_format(dst):
        _convert_fp8(em, op, rounding)
        return
    helper = HELPERS.get((dst, rounding))
    narrowing = src != dst and (src == "f32" or (src, dst) in (("f16", "bf16"), ("bf16", "f16")))
    if helper is None or not narrowing or (rounding == "rtne" and not em.options.fast_math):
        render(em, op, f"{em.ctype(op.results[0])}({{0}})" if src == "f32" else
               f"{em.ctype(op.results[0])}(float({{0}}))")
        return
    name, text = helper
    em.add_helper(text)
    render(em, op, f"{name}({{0}})" if src == "f32" else f"{name}(float({{0}}))")


@lowers("arith.truncf")
def lower_truncf(em, op):
    _convert(em, op, "rtne")


@lowers("tt.fp_to_fp")
def lower_fp_to_fp(em, op):
    # Between fp8, half, bfloat and float; rounding = rtne unless the op says rtz
    # (x.to(..., fp_downcast_rounding="rtz")).
    m = _ROUNDING.search(op.text or "")
    _convert(em, op, m.group(1) if m else "rtne")
