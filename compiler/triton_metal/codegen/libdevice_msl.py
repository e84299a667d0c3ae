"""MSL text of the Metal backend's libdevice (``triton_metal.libdevice``): symbol -> template, and
the helper functions (codegen/msl_helpers.py) the templates call where Metal has no function of its own.

Templates follow msl_ops.py: ``{0}``, ``{1}``, ... are the operands, ``{u0}``, ... the operands as
the unsigned type of their width, ``{T}`` the result type. Float functions receive float32
(the frontend computes float16/bfloat16 in float32). libdevice names its precision, so these use
``metal::precise::`` (or ``metal::fast::`` for the ``fast_`` functions) whatever the fast-math
option says.
"""
from __future__ import annotations

SYMBOL_PREFIX = "triton_metal."  # of every symbol triton_metal.libdevice emits


def _h(*names):
    return tuple(names)


# symbol (without the "triton_metal." prefix) -> (template, helpers it calls)
TEMPLATES: dict[str, tuple[str, tuple]] = {
    # ---- Metal's own precise math --------------------------------------------------------------
    **{name: (f"precise::{name}({{0}})", ()) for name in (
        "exp", "exp2", "exp10", "log", "log2", "log10", "sin", "cos", "tan", "sinpi", "cospi", "asin", "acos",
        "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "sqrt", "rsqrt")},
    "sqrt_rn": ("precise::sqrt({0})", ()),
    "rsqrt_rn": ("precise::rsqrt({0})", ()),  # correctly rounded (MSL Table 8.1); 1/sqrt would round twice
    "rcp_rn": ("precise::divide(1.0f, {0})", ()),
    "div_rn": ("precise::divide({0}, {1})", ()),
    "add_rn": ("({0} + {1})", ()),
    "sub_rn": ("({0} - {1})", ()),
    "mul_rn": ("({0} * {1})", ()),
    "fma": ("fma({0}, {1}, {2})", ()),
    "fma_rn": ("fma({0}, {1}, {2})", ()),
    "atan2": ("precise::atan2({0}, {1})", ()),
    "pow": ("precise::pow({0}, {1})", ()),
    "powi": ("precise::pow({0}, float({1}))", ()),
    **{name: (f"{name}({{0}})", ()) for name in ("floor", "ceil", "trunc", "round", "rint", "fabs")},
    "nearbyint": ("rint({0})", ()),
    # precise:: where a fast variant differs (MSL Table 8.2: fast fmod is undefined; fast fmax/fmin's NaN result)
    **{name: (f"precise::{name}({{0}}, {{1}})", ()) for name in ("fmod", "fmin", "fmax")},
    **{name: (f"{name}({{0}}, {{1}})", ()) for name in ("fdim", "copysign")},
    "saturatef": ("({0} >= 1.0f ? 1.0f : {0} > 0.0f ? {0} : 0.0f)", ()),  # NaN -> 0, as CUDA
    "isnan": ("isnan({0})", ()),
    "isinf": ("isinf({0})", ()),
    "isfinite": ("isfinite({0})", ()),
    "signbit": ("int(signbit({0}))", ()),
    # ---- fast math ---------------------------------------------------------------------------
    **{f"fast_{name}f": (f"fast::{name}({{0}})", ()) for name in (
        "sin", "cos", "tan", "tanh", "exp", "exp10", "log", "log2", "log10")},
    "fast_dividef": ("fast::divide({0}, {1})", ()),
    "fast_powf": ("fast::pow({0}, {1})", ()),
    # ---- our helpers (Metal has no such function) ------------------------------------------------
    "expm1": ("tm_expm1({0})", _h("tm_expm1")),
    "log1p": ("tm_log1p({0})", _h("tm_log1p")),
    "cbrt": ("tm_cbrt({0})", _h("tm_cbrt")),
    "rcbrt": ("precise::divide(1.0f, tm_cbrt({0}))", _h("tm_cbrt")),
    "erf": ("tm_erf({0})", _h("tm_erf")),
    "erfc": ("tm_erfc({0})", _h("tm_erfc")),
    "erfcx": ("tm_erfcx({0})", _h("tm_erfc")),
    "erfinv": ("tm_erfinv({0})", _h("tm_erfinv")),
    "erfcinv": ("tm_erfcinv({0})", _h("tm_erfinv")),
    "normcdf": ("tm_normcdf({0})", _h("tm_erfc")),
    "normcdfinv": ("tm_normcdfinv({0})", _h("tm_erfinv")),
    "hypot": ("tm_norm4({0}, {1}, 0.0f, 0.0f)", _h("tm_norm4")),
    "rhypot": ("precise::divide(1.0f, tm_norm4({0}, {1}, 0.0f, 0.0f))", _h("tm_norm4")),
    "norm3d": ("tm_norm4({0}, {1}, {2}, 0.0f)", _h("tm_norm4")),
    "rnorm3d": ("precise::divide(1.0f, tm_norm4({0}, {1}, {2}, 0.0f))", _h("tm_norm4")),
    "norm4d": ("tm_norm4({0}, {1}, {2}, {3})", _h("tm_norm4")),
    "rnorm4d": ("precise::divide(1.0f, tm_norm4({0}, {1}, {2}, {3}))", _h("tm_norm4")),
    "remainder": ("tm_remainder({0}, {1})", _h("tm_remainder")),
    "nextafter": ("tm_nextafter({0}, {1})", _h("tm_nextafter")),
    "ldexp": ("tm_ldexp({0}, {1})", _h("tm_ldexp")),
    "ilogb": ("tm_ilogb({0})", _h("tm_ilogb")),
    "logb": ("tm_logb({0})", _h("tm_ilogb")),
    # ---- conversions ---------------------------------------------------------------------------
    **{f"float2{kind}_{mode}": (f"{{T}}(tm_float2{kind}({fn}({{0}})))", _h("tm_float2int"))
       for kind in ("int", "uint", "ll", "ull")
       for mode, fn in (("rn", "rint"), ("rz", "trunc"), ("rd", "floor"), ("ru", "ceil"))},
    "llrint": ("tm_float2ll(rint({0}))", _h("tm_float2int")),
    "llround": ("tm_float2ll(round({0}))", _h("tm_float2int")),  # halfway cases away from zero
    "int2float_rn": ("float({0})", ()),
    "uint2float_rn": ("float({u0})", ()),
    "ll2float_rn": ("float({0})", ()),
    "ull2float_rn": ("float({u0})", ()),
    "int_as_float": ("as_type<float>({0})", ()),
    "float_as_int": ("as_type<int>({0})", ()),
    # ---- integers (signless in the IR: unsigned variants read {uN}) ----------------------------
    "abs": ("{T}({0} < 0 ? 0 - {u0} : {u0})", ()),  # abs(MIN) == MIN, as CUDA
    "clz": ("int(clz({0}))", ()),
    "popc": ("int(popcount({0}))", ()),
    "ffs": ("({0} == 0 ? 0 : int(ctz({0})) + 1)", ()),
    "brev": ("{T}(tm_brev({u0}))", _h("tm_brev")),
    "mulhi": ("mulhi({0}, {1})", ()),
    "umulhi": ("int(mulhi({u0}, {u1}))", ()),
    "mul64hi": ("tm_mulhi64({0}, {1})", _h("tm_mulhi64")),
    "umul64hi": ("long(tm_umulhi64({u0}, {u1}))", _h("tm_umulhi64")),
    # The low 24 bits, sign-extended (mul24) or zero-extended (umul24); the low 32 bits of the product.
    "mul24": ("int(uint(int({u0} << 8) >> 8) * uint(int({u1} << 8) >> 8))", ()),
    "umul24": ("int(({u0} & 0xffffffu) * ({u1} & 0xffffffu))", ()),
    "hadd": ("int((long({0}) + long({1})) >> 1)", ()),
    "uhadd": ("int((ulong({u0}) + ulong({u1})) >> 1)", ()),
    "rhadd": ("int((long({0}) + long({1}) + 1) >> 1)", ()),
    "urhadd": ("int((ulong({u0}) + ulong({u1}) + 1) >> 1)", ()),
    "sad": ("int(uint(abs(long({0}) - long({1}))) + {u2})", ()),
    "usad": ("int(uint(abs(long({u0}) - long({u1}))) + {u2})", ()),
    "byte_perm": ("tm_byte_perm({u0}, {u1}, {u2})", _h("tm_byte_perm")),
}
