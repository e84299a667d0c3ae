"""Elementwise ops whose Triton semantics need more than one MSL operator.

- Integer division and remainder never trap: a GPU does not fault on ``x / 0`` (Triton leaves the
  result unspecified) but the simulator's CPU does, and masked-off lanes often divide by
  ``other=0``. ``x / 0`` is ``x`` and ``x % 0`` is ``0``; ``MIN / -1`` wraps to ``MIN``.
- Float -> integer casts truncate toward zero and saturate, NaN -> 0 (PTX ``cvt.rzi.sat``, what
  Triton does on NVIDIA GPUs); MSL leaves out-of-range conversions undefined.
- ``tl.umulhi``, ``tl.clamp``, ``tl.sqrt_rn``, ``tl.div_rn``, ``tl.erf``: MSL spellings or our own
  helpers (Metal has no erf and no 64-bit mulhi: codegen/msl_helpers.py).

These ops are not in msl_ops' tables: this module is their one lowering.
"""
from __future__ import annotations

import re

from triton_metal.codegen import msl_helpers
from triton_metal.codegen.emitter import lowers
from triton_metal.codegen.ops.lower_elementwise import render
from triton_metal.codegen.types import BITWIDTH, msl_scalar

_LITERAL = re.compile(r"^(?:[a-z]+\()?(-?\d+)L?\)?$")


def _literal(var) -> int | None:
    m = _LITERAL.match(var.name) if not var.is_array else None
    return int(m.group(1)) if m else None


@lowers("arith.divsi", "arith.remsi", "arith.divui", "arith.remui")
def lower_int_division(em, op):
    divisor = _literal(em.var(op.operands[1]))
    element = op.operands[0].type.element
    wide = BITWIDTH[element] >= 32  # narrower types are promoted to int: MIN / -1 cannot overflow
    signed = op.name in ("arith.divsi", "arith.remsi")
    ctype = msl_scalar(element)
    a, b = ("{0}", "{1}") if signed else ("{u0}", "{u1}")
    safe_b = b if divisor not in (None, 0) else f"({b} == 0 ? 1 : {b})"
    if op.name.startswith("arith.div"):
        template = f"{a} / {safe_b}"
        if signed and wide and divisor in (None, -1):
            u = msl_scalar(element, unsigned=True)
            template = f"({b} == -1 ? {ctype}({u}(0) - {u}({a})) : {template})"
    else:
        template = f"{a} % {safe_b}" if divisor not in (None, 0) else f"({b} == 0 ? 0 : {a} % {b})"
        if signed and wide and divisor in (None, -1):
            template = f"({b} == -1 ? {ctype}(0) : {template})"
    render(em, op, template)


# Rounding integer divisions (Triton's loop fusion computes trip counts with them). The quotient
# truncates toward zero; one step toward the rounding direction when there is a remainder.
ROUNDING_DIVISION = {
    "arith.ceildivsi": "({0} / {b} + ({ctype})({0} % {b} != 0 && ({0} < 0) == ({b} < 0)))",
    "arith.floordivsi": "({0} / {b} - ({ctype})({0} % {b} != 0 && ({0} < 0) != ({b} < 0)))",
    "arith.ceildivui": "({u0} / {ub} + ({ctype})({u0} % {ub} != 0))",
}


@lowers(*ROUNDING_DIVISION)
def lower_rounding_division(em, op):
    ctype = msl_scalar(op.operands[0].type.element, unsigned=op.name.endswith("ui"))
    # A zero divisor (unspecified in Triton) divides by one instead of trapping the simulator.
    template = ROUNDING_DIVISION[op.name].replace("{b}", "({1} == 0 ? 1 : {1})").replace(
        "{ub}", "({u1} == 0 ? 1 : {u1})").replace("{ctype}", ctype)
    render(em, op, template)


def _saturating(em, src_element: str, dst_element: str, unsigned: bool) -> str:
    bits = BITWIDTH[dst_element]
    ctype = msl_scalar(dst_element, unsigned)
    lo = 0 if unsigned else -(1 << (bits - 1))
    hi = (1 << bits) if unsigned else (1 << (bits - 1))
    suffix = ("U" if unsigned else "") + ("L" if bits == 64 else "")
    hi_lit = f"{hi - 1}{suffix}"
    lo_lit = "0" if unsigned else f"({lo + 1}{suffix} - 1)"  # MIN itself is not a valid literal
    f = "{0}" if src_element == "f32" else "float({0})"
    text = (f"(isnan({f}) ? {ctype}(0) : {f} <= {float(lo)!r}f ? {ctype}({lo_lit}) : "
            f"{f} >= {float(hi)!r}f ? {ctype}({hi_lit}) : {ctype}({f}))")
    return text


@lowers("arith.fptosi", "arith.fptoui")
def lower_float_to_int(em, op):
    src, dst = op.operands[0].type.element, op.results[0].type.element
    text = _saturating(em, src, dst, op.name == "arith.fptoui")
    render(em, op, f"{em.ctype(op.results[0])}({text})")


@lowers("tt.mulhiui")
def lower_mulhi(em, op):
    element = op.operands[0].type.element
    ctype = msl_scalar(element)
    if BITWIDTH[element] == 64:
        em.add_helper(msl_helpers.UMULHI64)
        render(em, op, f"{ctype}(tm_umulhi64({{u0}}, {{u1}}))")
    else:
        render(em, op, f"{ctype}(mulhi({{u0}}, {{u1}}))")


@lowers("tt.clampf")
def lower_clampf(em, op):
    propagate_all = op.int_attr("propagateNan") != 0
    template = "{f}fmin({f}fmax({0}, {1}), {2})"
    if propagate_all:
        template = f"(isnan({{0}}) ? {{0}} : {template})"
    render(em, op, template)


@lowers("tt.precise_sqrt")
def lower_precise_sqrt(em, op):
    render(em, op, "precise::sqrt({0})")


@lowers("tt.precise_divf")
def lower_precise_divf(em, op):
    render(em, op, "precise::divide({0}, {1})")


@lowers("arith.divf")
def lower_divf(em, op):
    # Triton's `/` is IEEE division (div.rn on NVIDIA); Metal's `/` follows the fast-math setting.
    if op.operands[0].type.element == "f32":
        render(em, op, f"{em.math_prefix('f32')}divide({{0}}, {{1}})")
    else:
        render(em, op, "{0} / {1}")


@lowers("math.erf")
def lower_erf(em, op):
    em.add_helper(msl_helpers.ERF)
    element = op.operands[0].type.element
    ctype = msl_scalar(element)
    # (bf16 goes through float in render, as every function MSL has no bfloat overload of)
    render(em, op, "tm_erf({0})" if element in ("f32", "bf16") else f"{ctype}(tm_erf(float({{0}})))")

# tt.fp_to_fp (and arith.truncf): lower_rounding.py, which honours the rounding mode.
