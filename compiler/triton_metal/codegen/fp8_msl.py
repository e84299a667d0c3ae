"""fp8 as a storage type: the formats, and the MSL helpers converting them to and from float.

Apple GPUs have no 8-bit float type or arithmetic, so an fp8 value lives in a ``uchar`` (its bit
pattern) and every conversion is integer bit manipulation on that pattern, which no fast-math licence
can fold or reassociate. The rules (docs/compatibility.md states them):

* fp8 -> float / half / bfloat is exact (every fp8 value of these formats is a half and a bfloat);
  NaN codes give a quiet NaN of the same sign, e5m2's infinities give infinities.
* float / half / bfloat -> fp8 rounds once, from the exact source value, to nearest even (``rtne``,
  Triton's default) or toward zero (``rtz``, ``fp_downcast_rounding="rtz"``). A finite value beyond
  the largest finite fp8 value saturates to it (Triton's CUDA lowering converts with ``.satfinite``);
  so does an infinity for the formats without one (e4m3fn, the FNUZ formats), while e5m2 keeps its
  infinities. NaN stays NaN. The FNUZ formats have no negative zero: -0 and negative values that
  round to zero give +0.

Triton 3.9's fifth fp8 type, ``tl.float8e4b15``, is ``i8`` in the IR (no MLIR type): its conversions are
Triton-language code of ``triton_metal.fp8e4b15``, not helpers here.
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass


@dataclass(frozen=True)
class Fp8Format:
    short: str  # names the MSL helpers: tm_<short>_to_float, tm_float_to_<short>_<rounding>
    exponent_bits: int
    mantissa_bits: int
    bias: int
    # "ieee": the top exponent holds infinities (mantissa 0) and NaNs (e5m2); "fn": only S.1111.111 is
    # NaN, no infinities (e4m3fn); "fnuz": 0x80 (negative zero's code) is the one NaN, no infinities.
    specials: str

    @property
    def max_code(self) -> int:
        """The code of the largest finite value."""
        top = ((1 << self.exponent_bits) - 1) << self.mantissa_bits
        return {"ieee": top - 1, "fn": 0x7E, "fnuz": 0x7F}[self.specials]

    def nan_code(self, sign: int) -> int:
        return 0x80 if self.specials == "fnuz" else sign | {"ieee": 0x7E, "fn": 0x7F}[self.specials]

    def decode(self, code: int) -> float:
        """The value of `code` (Python float; the reference the tests and constant folding use)."""
        sign = -1.0 if code & 0x80 else 1.0
        exponent = (code >> self.mantissa_bits) & ((1 << self.exponent_bits) - 1)
        mantissa = code & ((1 << self.mantissa_bits) - 1)
        if self.specials == "fnuz" and code == 0x80 or self.specials == "fn" and code & 0x7F == 0x7F:
            return float("nan")
        if self.specials == "ieee" and exponent == (1 << self.exponent_bits) - 1:
            return sign * float("inf") if mantissa == 0 else float("nan")
        if exponent == 0:
            return sign * mantissa * 2.0 ** (1 - self.bias - self.mantissa_bits)
        return sign * (mantissa + (1 << self.mantissa_bits)) * 2.0 ** (exponent - self.bias - self.mantissa_bits)


# MLIR element type (as TTGIR spells it) -> format. Triton: float8e4nv, float8e5, float8e4b8, float8e5b16.
FORMATS = {
    "f8E4M3FN": Fp8Format("e4m3fn", 4, 3, 7, "fn"),
    "f8E5M2": Fp8Format("e5m2", 5, 2, 15, "ieee"),
    "f8E4M3FNUZ": Fp8Format("e4m3fnuz", 4, 3, 8, "fnuz"),
    "f8E5M2FNUZ": Fp8Format("e5m2fnuz", 5, 2, 16, "fnuz"),
}
ROUNDINGS = ("rtne", "rtz")


def _f32_bits(value: float) -> int:
    return struct.unpack("<I", struct.pack("<f", value))[0]


def _nan_test(fmt: Fp8Format) -> str:
    return {"ieee": f"exponent == {(1 << fmt.exponent_bits) - 1}u && mantissa != 0u",
            "fn": "(v & 0x7Fu) == 0x7Fu", "fnuz": "v == 0x80u"}[fmt.specials]


def decode_helper(fmt: Fp8Format) -> tuple[str, str]:
    """(name, MSL text) of the exact fp8 -> float conversion."""
    m, name = fmt.mantissa_bits, f"tm_{fmt.short}_to_float"
    subnormal_unit = 2.0 ** (1 - fmt.bias - m)  # the value of mantissa 1 with exponent 0
    inf = (f"    if (exponent == {(1 << fmt.exponent_bits) - 1}u) return as_type<float>(sign | 0x7F800000u);\n"
           if fmt.specials == "ieee" else "")
    text = f"""// {fmt.short} (fp8: {fmt.exponent_bits} exponent bits, bias {fmt.bias}, {m} mantissa bits) -> float, exactly:
// the code's fields rebuilt as float bits (integer arithmetic: nothing for fast math to change).
inline float {name}(uchar code) {{
    uint v = uint(code);
    uint sign = (v & 0x80u) << 24, exponent = (v >> {m}) & {(1 << fmt.exponent_bits) - 1}u, mantissa = v & {(1 << m) - 1}u;
    if ({_nan_test(fmt)}) return as_type<float>(sign | 0x7FC00000u);
{inf}    if (exponent == 0u)  // zero or subnormal: mantissa * 2^{1 - fmt.bias - m} (a power-of-two scaling, exact)
        return as_type<float>(sign | as_type<uint>(float(mantissa) * as_type<float>({_f32_bits(subnormal_unit):#010x}u)));
    return as_type<float>(sign | ((exponent + {127 - fmt.bias}u) << 23) | (mantissa << {23 - m}));
}}
"""
    return name, text


def encode_helper(fmt: Fp8Format, rounding: str) -> tuple[str, str]:
    """(name, MSL text) of float -> fp8 with `rounding` ("rtne" or "rtz"), saturating as the module says."""
    m, bias, name = fmt.mantissa_bits, fmt.bias, f"tm_float_to_{fmt.short}_{rounding}"
    max_bits = _f32_bits(fmt.decode(fmt.max_code))
    nan = "0x80u" if fmt.specials == "fnuz" else f"sign | {fmt.nan_code(0):#04x}u"
    inf = (f"        if (a == 0x7F800000u) return uchar(sign | {fmt.max_code + 1:#04x}u);  // infinity stays infinity\n"
           if fmt.specials == "ieee" else "")
    zero = "0u" if fmt.specials == "fnuz" else "sign"  # FNUZ: no negative zero
    increment = ("    keep += (rest > halfway || (rest == halfway && (keep & 1u) != 0u)) ? 1u : 0u;  // to nearest, ties to even\n"
                 if rounding == "rtne" else "")
    finish = ("    return code == 0u ? uchar(0u) : uchar(sign | code);  // FNUZ: no negative zero\n"
              if fmt.specials == "fnuz" else "    return uchar(sign | code);\n")
    what = "to nearest even" if rounding == "rtne" else "toward zero"
    text = f"""// float -> {fmt.short} (fp8: {fmt.exponent_bits} exponent bits, bias {bias}, {m} mantissa bits), rounded {what} once
// from the exact value, on the bits; beyond the largest finite value: saturate to it ({fmt.decode(fmt.max_code):g}).
inline uchar {name}(float x) {{
    uint bits = as_type<uint>(x);
    uint sign = (bits >> 24) & 0x80u, a = bits & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return uchar({nan});
    if (a > {max_bits:#010x}u) {{
{inf}        return uchar(sign | {fmt.max_code:#04x}u);
    }}
    if (a < 0x00800000u) return uchar({zero});  // zero or a float subnormal: far below half the least fp8 value
    int e = int(a >> 23) - 127;  // the value is 1.mantissa * 2^e
    uint mant = (a & 0x7FFFFFu) | 0x800000u;
    // bits of the 24-bit significand below the fp8 quantum: {23 - m}, more where the result is subnormal
    int shift = {23 - m} + (e < {1 - bias} ? {1 - bias} - e : 0);
    if (shift > 24) return uchar({zero});  // below half the least subnormal
    uint keep = mant >> shift, rest = mant & ((1u << shift) - 1u), halfway = 1u << (shift - 1);
{increment}    // a normal result: biased exponent above the implicit bit of `keep` (a carry out of the mantissa
    // moves to the next binade by itself); a subnormal one: `keep` is the code
    uint code = e >= {1 - bias} ? (uint(e + {bias - 1}) << {m}) + keep : keep;
    code = min(code, {fmt.max_code:#04x}u);
{finish}}}
"""
    return name, text


def fp8_format(element: str) -> Fp8Format | None:
    return FORMATS.get(element)


def encode_constant(value: float, fmt: Fp8Format) -> int:
    """The code of `value` rounded to nearest even with the rules above (an fp8 arith.constant)."""
    if math.isnan(value):
        return fmt.nan_code(0)
    best = 0
    for code in range(fmt.max_code + 1):  # the finite non-negative codes, in increasing value
        if abs(value) >= fmt.decode(code):
            best = code
    low, high = fmt.decode(best), fmt.decode(min(best + 1, fmt.max_code))
    if abs(value) - low > high - abs(value) or abs(value) - low == high - abs(value) and best & 1:
        best = min(best + 1, fmt.max_code)
    if abs(value) == float("inf") and fmt.specials == "ieee":
        best = fmt.max_code + 1
    if best == 0 and fmt.specials == "fnuz":
        return 0
    return best | (0x80 if value < 0 or (value == 0 and struct.pack("<f", value)[3] & 0x80) else 0)


# The ops that may have fp8 operands or results: they move, select or convert codes without computing
# on them (or, tt.dot / tt.dot_scaled, convert them first). Any other op on fp8 values (arithmetic,
# comparisons, math, reductions) is refused (refusals "fp8"): Apple GPUs have no fp8 arithmetic, and
# computing on the uchar codes would silently give something else.
FP8_STORAGE_OPS = frozenset({
    "tt.load", "tt.store", "tt.bitcast", "arith.bitcast", "tt.fp_to_fp", "arith.truncf",
    "arith.constant", "arith.select", "tt.splat", "tt.broadcast", "tt.expand_dims", "tt.reshape", "tt.trans",
    "tt.join", "tt.split", "tt.cat", "tt.addptr", "tt.dot", "tt.dot_scaled", "ttg.convert_layout",
    "ttg.local_alloc", "ttg.local_load", "ttg.local_store", "ttg.local_dealloc", "ttg.memdesc_trans",
    "ttg.memdesc_subview", "ttg.memdesc_index", "ttg.memdesc_subslice", "scf.for", "scf.yield", "scf.if",
    "scf.while", "scf.condition", "tt.return", "tt.call", "tt.func", "cf.br", "cf.cond_br", "ub.poison",
    "tt.make_tensor_ptr", "tt.advance", "tt.int_to_ptr", "tt.ptr_to_int", "math.absf",
})
# Ops exact on the codes themselves: (MSL template, its FNUZ variant, where 0x80 is NaN and must stay).
FP8_SIGN_OPS = {
    "math.absf": ("uchar({0} & 0x7F)", "uchar({0} == 0x80 ? 0x80 : {0} & 0x7F)"),
}


def fp8_element(op) -> str:
    """The first fp8 element type among `op`'s operands and results (pointees included), or ''."""
    for value in (*op.operands, *op.results):
        element = value.type.element.removeprefix("!tt.ptr<").rstrip(">")
        if element in FORMATS:
            return element
    return ""


def widen(em, element: str, ctype: str, expr: str) -> str:
    """`expr`, a value of `element`, as MSL type `ctype` (float, half, bfloat, or another type for the
    non-fp8 elements): fp8 codes are decoded exactly (the decode helper is added to the kernel), other
    values converted as written. For tl.dot operands staged as half and the FMA path's products."""
    fmt = FORMATS.get(element)
    if fmt is None:
        return f"{ctype}({expr})"
    name, text = decode_helper(fmt)
    em.add_helper(text)
    return f"{name}({expr})" if ctype == "float" else f"{ctype}({name}({expr}))"
