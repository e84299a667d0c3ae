"""Float narrowing conversions that round as Triton says: to nearest even, or toward zero on request.

A float -> half or bfloat conversion rounds to nearest even in MSL (spec 8.6: "fast math does not change
the accuracy of conversion operations"), but projects running Triton kernels on Apple GPUs report
Apple's compiler folding a ``(half)`` conversion away under fast math, and MSL has no per-conversion
rounding mode (``x.to(tl.float16, fp_downcast_rounding="rtz")``, ``tt.fp_to_fp`` with ``rtz``). Where
Triton's semantics need the rounding (an explicit ``.to()`` under fast math, any ``rtz`` conversion),
it is computed on the bits with integer arithmetic, which no floating-point licence can fold; like
the native conversion it keeps half subnormals (spec 8.6), NaN (quiet) and infinities. Otherwise
the native conversion.
"""
from __future__ import annotations

import re

from triton_metal.codegen import lower_elementwise, lower_numeric  # noqa: F401  (registered first)
from triton_metal.codegen.emitter import lowers
from triton_metal.codegen.lower_elementwise import _render
from triton_metal.codegen.lower_numeric import add_helper
from triton_metal.codegen.msl_text import own_helper

_HALF_RTNE = own_helper("""// float -> half rounded to nearest even, on the bits (lower_rounding.py: no fast-math fold).
inline half tm_half_rtne(float x) {
    uint u = as_type<uint>(x), a = u & 0x7fffffffu, h = (u >> 16) & 0x8000u;
    if (a > 0x7f800000u) {
        h |= 0x7e00u | ((a >> 13) & 0x3ffu);  // NaN stays a quiet NaN
    } else if (a >= 0x477ff000u) {
        h |= 0x7c00u;  // 65520 and above round to infinity
    } else if (a >= 0x38800000u) {  // a normal half: rebias the exponent (127 -> 15), round 13 bits off
        uint r = a - 0x38000000u;
        h |= (r + 0x0fffu + ((r >> 13) & 1u)) >> 13;
    } else if (a > 0x33000000u) {  // a subnormal half (more than half the smallest one)
        uint m = (a & 0x7fffffu) | 0x800000u, shift = 126u - (a >> 23);
        uint q = m >> shift, rest = m & ((1u << shift) - 1u), halfway = 1u << (shift - 1u);
        h |= q + uint(rest > halfway || (rest == halfway && (q & 1u) != 0u));
    }  // else a zero of x's sign
    return as_type<half>(ushort(h));
}""")

_HALF_RTZ = own_helper("""// float -> half rounded toward zero, on the bits (lower_rounding.py).
inline half tm_half_rtz(float x) {
    uint u = as_type<uint>(x), a = u & 0x7fffffffu, h = (u >> 16) & 0x8000u;
    if (a > 0x7f800000u) {
        h |= 0x7e00u | ((a >> 13) & 0x3ffu);  // NaN stays a quiet NaN
    } else if (a == 0x7f800000u) {
        h |= 0x7c00u;  // infinity
    } else if (a >= 0x47800000u) {
        h |= 0x7bffu;  // beyond the largest half: the largest half
    } else if (a >= 0x38800000u) {
        h |= (a - 0x38000000u) >> 13;  // a normal half
    } else if (a >= 0x33800000u) {
        h |= ((a & 0x7fffffu) | 0x800000u) >> (126u - (a >> 23));  // a subnormal half
    }  // else a zero of x's sign
    return as_type<half>(ushort(h));
}""")

_BFLOAT_RTNE = own_helper("""// float -> bfloat rounded to nearest even, on the bits (lower_rounding.py: no fast-math fold).
inline bfloat tm_bfloat_rtne(float x) {
    uint u = as_type<uint>(x);
    u = (u & 0x7fffffffu) > 0x7f800000u ? (u | 0x00400000u) : u + 0x7fffu + ((u >> 16) & 1u);
    return as_type<bfloat>(ushort(u >> 16));
}""")

_BFLOAT_RTZ = own_helper("""// float -> bfloat rounded toward zero, on the bits (lower_rounding.py).
inline bfloat tm_bfloat_rtz(float x) {
    uint u = as_type<uint>(x);
    u = (u & 0x7fffffffu) > 0x7f800000u ? (u | 0x00400000u) : u;  // NaN stays a quiet NaN
    return as_type<bfloat>(ushort(u >> 16));
}""")

# (target element, rounding) -> (helper function, its text)
HELPERS = {
    ("f16", "rtne"): ("tm_half_rtne", _HALF_RTNE), ("f16", "rtz"): ("tm_half_rtz", _HALF_RTZ),
    ("bf16", "rtne"): ("tm_bfloat_rtne", _BFLOAT_RTNE), ("bf16", "rtz"): ("tm_bfloat_rtz", _BFLOAT_RTZ),
}
_ROUNDING = re.compile(r"\brounding\s*=\s*(\w+)")


def _convert(em, op, rounding: str) -> None:
    """``op``'s operand converted to its result type through float (exact for half and bfloat)."""
    src, dst = op.operands[0].type.element, op.results[0].type.element
    em.ctype(op.operands[0])  # refuses fp8 and fp64 operands
    helper = HELPERS.get((dst, rounding))
    narrowing = src != dst and (src == "f32" or (src, dst) in (("f16", "bf16"), ("bf16", "f16")))
    if helper is None or not narrowing or (rounding == "rtne" and not em.options.fast_math):
        _render(em, op, f"{em.ctype(op.results[0])}({{0}})" if src == "f32" else
                f"{em.ctype(op.results[0])}(float({{0}}))")
        return
    name, text = helper
    add_helper(em, text)
    _render(em, op, f"{name}({{0}})" if src == "f32" else f"{name}(float({{0}}))")


@lowers("arith.truncf")
def lower_truncf(em, op):
    _convert(em, op, "rtne")


@lowers("tt.fp_to_fp")
def lower_fp_to_fp(em, op):
    # Between half, bfloat and float (fp8 types are refused by em.ctype); rounding = rtne unless the
    # op says rtz (x.to(..., fp_downcast_rounding="rtz")).
    m = _ROUNDING.search(op.text or "")
    _convert(em, op, m.group(1) if m else "rtne")
