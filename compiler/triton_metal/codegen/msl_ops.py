"""Tables from TTGIR op to MSL text, in the spirit of tinygrad's renderers.

Templates use ``{0}``, ``{1}``, ... for operands and ``{u0}``, ``{u1}`` for operands cast to the
unsigned type of the same width (for the ops whose meaning depends on the sign). The ops here are
lowered by their table (codegen/ops/lower_elementwise.py), except CONTRACTIBLE; ops whose Triton
semantics need more than one operator (integer division, float division, float -> int casts,
narrowing float conversions) are not in the tables: codegen/ops/lower_numeric.py, lower_rounding.py.
"""
from __future__ import annotations

import re

BINARY = {
    "arith.addf": "{0} + {1}", "arith.addi": "{0} + {1}",
    "arith.subf": "{0} - {1}", "arith.subi": "{0} - {1}",
    "arith.mulf": "{0} * {1}", "arith.muli": "{0} * {1}",
    "arith.remf": "{f}fmod({0}, {1})",
    "arith.andi": "{0} & {1}", "arith.ori": "{0} | {1}", "arith.xori": "{0} ^ {1}",
    "arith.shli": "{0} << {1}", "arith.shrsi": "{0} >> {1}", "arith.shrui": "{u0} >> {u1}",
    # maxnum/minnum return the non-NaN operand (IEEE maxNum), which is what metal::precise::fmax does;
    # maximum/minimum propagate NaN (NaN + x is NaN). `{f}` names the float variant (precise:: or fast::,
    # numerics.py): unnamed, the runtime's compile options would choose (fast::fmax's NaN result is undefined).
    "arith.maxnumf": "{f}fmax({0}, {1})", "arith.minnumf": "{f}fmin({0}, {1})",
    "arith.maximumf": "(isnan({0}) || isnan({1})) ? {0} + {1} : {f}fmax({0}, {1})",
    "arith.minimumf": "(isnan({0}) || isnan({1})) ? {0} + {1} : {f}fmin({0}, {1})",
    "arith.maxsi": "max({0}, {1})", "arith.minsi": "min({0}, {1})",
    "arith.maxui": "max({u0}, {u1})", "arith.minui": "min({u0}, {u1})",
    "tt.addptr": "{0} + {1}",
}

# Float add, subtract and multiply are lowered by codegen/ops/lower_contraction.py, which writes a*b+c as
# one fma() when the kernel allows fusion; their BINARY templates are the unfused spelling (which it, and
# the combine functions of reductions, use).
CONTRACTIBLE = ("arith.addf", "arith.subf", "arith.mulf")

# Triton's integer arithmetic wraps, but signed overflow is undefined in MSL (C++ rules) and Apple's
# optimiser may assume it never happens (`x + 1 > x` folds to true). 32- and 64-bit signed operands
# are computed in their unsigned type, where wrapping is defined, and reinterpreted back. 8- and
# 16-bit ones are promoted to int, where `+ - *` cannot overflow but `<<` of a negative value is
# still undefined: their left shifts start from the unsigned type too.
WRAPPING = {"arith.addi": "+", "arith.subi": "-", "arith.muli": "*", "arith.shli": "<<"}


def wrapping(op_name: str, ctype: str, bits: int) -> str | None:
    """Template of a wrapping integer op whose result has MSL type `ctype`, or None if C++'s own is fine."""
    if bits >= 32:
        return f"as_type<{ctype}>({{u0}} {WRAPPING[op_name]} {{u1}})"
    if op_name == "arith.shli" and bits > 1:
        return f"{ctype}({{u0}} << {{u1}})"
    return None


# i1 is MSL `bool`, which C++ promotes to int for arithmetic; Triton's i1 wraps mod 2.
BOOL_BINARY = {
    "arith.addi": "{0} != {1}", "arith.subi": "{0} != {1}", "arith.muli": "{0} && {1}",
}

# Math functions: `{f}` is the namespace prefix chosen for precise or fast math.
UNARY = {
    "arith.negf": "-{0}",
    "math.exp": "{f}exp({0})", "math.exp2": "{f}exp2({0})",
    "math.log": "{f}log({0})", "math.log2": "{f}log2({0})",
    "math.sin": "{f}sin({0})", "math.cos": "{f}cos({0})", "math.tan": "{f}tan({0})",
    "math.tanh": "{f}tanh({0})",
    "math.sqrt": "{f}sqrt({0})", "math.rsqrt": "{f}rsqrt({0})",
    "math.absf": "fabs({0})", "math.absi": "abs({0})",
    "math.floor": "floor({0})", "math.ceil": "ceil({0})",
    "math.round": "round({0})", "math.roundeven": "rint({0})", "math.trunc": "trunc({0})",
}

TERNARY = {
    "arith.select": "{0} ? {1} : {2}",
    "math.fma": "fma({0}, {1}, {2})",
}

# arith.cmpi predicates, by their enum value.
CMPI = {
    0: "{0} == {1}", 1: "{0} != {1}",
    2: "{0} < {1}", 3: "{0} <= {1}", 4: "{0} > {1}", 5: "{0} >= {1}",
    6: "{u0} < {u1}", 7: "{u0} <= {u1}", 8: "{u0} > {u1}", 9: "{u0} >= {u1}",
}

# arith.cmpf predicates. C comparisons are ordered, except `!=`, which is unordered.
CMPF = {
    0: "false", 1: "{0} == {1}", 2: "{0} > {1}", 3: "{0} >= {1}", 4: "{0} < {1}", 5: "{0} <= {1}",
    6: "({0} < {1} || {0} > {1})", 7: "!(isnan({0}) || isnan({1}))",
    8: "!({0} < {1} || {0} > {1})", 9: "!({0} <= {1})", 10: "!({0} < {1})", 11: "!({0} >= {1})",
    12: "!({0} > {1})", 13: "{0} != {1}", 14: "(isnan({0}) || isnan({1}))", 15: "true",
}

# Casts: `{T}` is the result type, `{U}` the unsigned type of the operand. (Float -> integer casts
# saturate: lower_numeric; arith.truncf rounds as Triton says: lower_rounding.)
CASTS = {
    "arith.extf": "{T}({0})",
    "arith.sitofp": "{T}({0})", "arith.uitofp": "{T}({U}({0}))",
    "arith.extsi": "{T}({0})", "arith.extui": "{T}({U}({0}))", "arith.trunci": "{T}({0})",
    "arith.index_cast": "{T}({0})", "arith.index_castui": "{T}({U}({0}))",
    "arith.bitcast": "as_type<{T}>({0})", "tt.bitcast": "as_type<{T}>({0})",
}

# ---- bfloat ------------------------------------------------------------------------------------
# MSL 3.1, which introduced `bfloat`, defines the arithmetic and comparison operators on it (bfloat
# op bfloat is a bfloat, bfloat op float a float) and explicit conversions to and from it, but no
# implicit conversion from float or half ("neither float nor half can be implicitly converted to
# bfloat", the specification as quoted in MLX's mlx/backend/metal/kernels/bf16_math.h) and no bfloat
# overload of the math, relational or simd functions (MLX defines its own for that reason; where the
# specification is silent we assume there is none). The ops whose template is valid MSL on bfloat
# operands as written:
BFLOAT_AS_WRITTEN = {
    "arith.addf", "arith.subf", "arith.mulf", "arith.divf", "arith.negf",  # operators
    "arith.select", "arith.cmpf",  # `c ? a : b`, comparisons (lower_cmpf: the ord/uno ones call isnan)
    *CASTS, "arith.truncf", "tt.fp_to_fp", "arith.fptosi", "arith.fptoui",  # explicit conversions
    "tt.extern_elementwise",  # libdevice: float32 arguments, or a bfloat helper of its own (nextafter)
}
# Every other op with a bf16 operand or result (fmax, fmin, fabs, fma, fmod, floor, ceil, exp, the
# NaN-propagating maximum, clamp, ...) computes in float and converts back explicitly:
# `bfloat(fmax(float(a), float(b)))`.

_BFLOAT_LITERAL = re.compile(r"bfloat\((-?(?:[0-9][0-9.e+-]*|INFINITY|NAN))\)")


def as_float(expr: str) -> str:
    """The bfloat expression `expr` as a float: `float(x)`, and a bfloat constant (always exact in
    float) as the float literal of the same value: `bfloat(0.5)` -> `0.5f`."""
    m = _BFLOAT_LITERAL.fullmatch(expr)
    if m:
        value = m.group(1)
        return value if value.lstrip("-") in ("INFINITY", "NAN") else f"{value}f"
    return f"float({expr})"
