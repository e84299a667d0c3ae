"""MSL text of the Metal backend's libdevice (``triton_metal.libdevice``): symbol -> template, and
the helper functions the templates call where Metal has no function of its own.

Templates follow msl_ops.py: ``{0}``, ``{1}``, ... are the operands, ``{u0}``, ... the operands as
the unsigned type of their width, ``{T}`` the result type. Float functions receive float32
(the frontend computes float16/bfloat16 in float32). libdevice names its precision, so these use
``metal::precise::`` (or ``metal::fast::`` for the ``fast_`` functions) whatever the fast-math
option says. Helpers are written with arithmetic, ``as_type`` and functions the Metal simulator
also provides, so that the simulator runs the same code as the GPU.
"""
from __future__ import annotations

from triton_metal.codegen.lower_numeric import _ERF, _MULHI64
from triton_metal.codegen.msl_text import own_helper

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

# helper name -> (MSL text, helpers it calls)
HELPERS: dict[str, tuple[str, tuple]] = {
    "tm_erf": (_ERF, ()),
    "tm_umulhi64": (_MULHI64, ()),
    "tm_mulhi64": ("""// High 64 bits of the signed 128-bit product, from the unsigned one.
inline long tm_mulhi64(long a, long b) {
    ulong hi = tm_umulhi64(ulong(a), ulong(b));
    return long(hi - (a < 0 ? ulong(b) : 0UL) - (b < 0 ? ulong(a) : 0UL));
}""", _h("tm_umulhi64")),
    "tm_expm1": ("""// expm1 (Metal has none): Kahan's method, exp(x) - 1 corrected by x / log(exp(x)), which cancels
// the rounding error of exp(x) near 0.
inline float tm_expm1(float x) {
    float u = precise::exp(x);
    if (u == 1.0f) return x;
    float um1 = u - 1.0f;
    if (um1 == -1.0f || isinf(u)) return um1;
    return precise::divide(um1 * x, precise::log(u));
}""", ()),
    "tm_log1p": ("""// log1p (Metal has none): Kahan's method, log(1 + x) corrected by x / ((1 + x) - 1).
inline float tm_log1p(float x) {
    float u = 1.0f + x;
    if (u == 1.0f) return x;
    if (isinf(u)) return u;
    return precise::divide(precise::log(u) * x, u - 1.0f);
}""", ()),
    "tm_cbrt": ("""// cbrt (Metal has none): exp2(log2|x| / 3), then one Newton step.
inline float tm_cbrt(float x) {
    float a = fabs(x);
    if (a == 0.0f || !isfinite(a)) return x;
    float y = precise::exp2(precise::divide(precise::log2(a), 3.0f));
    y = y - precise::divide(y - precise::divide(a, y * y), 3.0f);
    return copysign(y, x);
}""", ()),
    "tm_erfc": ("""// erfc (Metal has none): the Chebyshev fit of Numerical Recipes (erfcc, relative error < 1.2e-7),
// with x*x split into a rounded part and its error so that large |x| keeps its relative accuracy.
inline float tm_erfc_scaled(float z, thread float& x2_hi, thread float& x2_lo) {
    // exp(z*z) * erfc(z) for z >= 0; x2_hi + x2_lo == z * z exactly.
    float t = precise::divide(1.0f, 1.0f + 0.5f * z);
    float p = -1.26551223f + t * (1.00002368f + t * (0.37409196f + t * (0.09678418f + t * (-0.18628806f
              + t * (0.27886807f + t * (-1.13520398f + t * (1.48851587f + t * (-0.82215223f + t * 0.17087277f))))))));
    x2_hi = z * z;
    x2_lo = fma(z, z, -x2_hi);
    return t * precise::exp(p);
}
inline float tm_erfc(float x) {
    if (isnan(x)) return x;
    float hi, lo;
    float s = tm_erfc_scaled(fabs(x), hi, lo);
    float r = s * precise::exp(-hi) * precise::exp(-lo);
    return x >= 0.0f ? r : 2.0f - r;
}
// erfcx(x) = exp(x*x) * erfc(x), without overflow for large x.
inline float tm_erfcx(float x) {
    if (isnan(x)) return x;
    float hi, lo;
    float s = tm_erfc_scaled(fabs(x), hi, lo);
    return x >= 0.0f ? s : 2.0f * precise::exp(hi) * precise::exp(lo) - s;
}
// normcdf(x) = erfc(z) / 2 with z = -x / sqrt(2) carried as z + z_lo: the rounding error of z alone
// would grow by 2 z^2 in the result's relative error. erfc(|z| + d) = erfc(|z|) - 2/sqrt(pi) e^(-z^2) d.
inline float tm_normcdf(float x) {
    if (isnan(x)) return x;
    const float c = 0.707106769f, c_lo = 1.21016171e-08f;  // 1/sqrt(2) = c + c_lo
    float z = -x * c;
    float z_lo = fma(-x, c, -z) - x * c_lo;
    float hi, lo;
    float s = tm_erfc_scaled(fabs(z), hi, lo);
    float e = precise::exp(-hi) * precise::exp(-lo);
    // (s - correction) * e: e * correction alone would be subnormal for large |x|, flushed on Apple GPUs.
    float r = (s - 1.12837917f * (z >= 0.0f ? z_lo : -z_lo)) * e;
    return 0.5f * (z >= 0.0f ? r : 2.0f - r);
}""", ()),
    "tm_erfinv": ("""// erfinv (Metal has none): M. Giles, "Approximating the erfinv function" (GPU Computing Gems, 2011),
// single-precision polynomials in w = -log((1 - x)(1 + x)). erfcinv(y) = erfinv(1 - y) computes w
// from y directly, which keeps small y accurate.
inline float tm_erfinv_w(float w, float x) {
    float p;
    if (w < 5.0f) {
        w = w - 2.5f;
        p = 2.81022636e-08f;
        p = 3.43273939e-07f + p * w;
        p = -3.5233877e-06f + p * w;
        p = -4.39150654e-06f + p * w;
        p = 0.00021858087f + p * w;
        p = -0.00125372503f + p * w;
        p = -0.00417768164f + p * w;
        p = 0.246640727f + p * w;
        p = 1.50140941f + p * w;
    } else {
        w = precise::sqrt(w) - 3.0f;
        p = -0.000200214257f;
        p = 0.000100950558f + p * w;
        p = 0.00134934322f + p * w;
        p = -0.00367342844f + p * w;
        p = 0.00573950773f + p * w;
        p = -0.0076224613f + p * w;
        p = 0.00943887047f + p * w;
        p = 1.00167406f + p * w;
        p = 2.83297682f + p * w;
    }
    return p * x;
}
inline float tm_erfinv(float x) {
    float a = fabs(x);
    if (a >= 1.0f) return a == 1.0f ? copysign(INFINITY, x) : NAN;
    return tm_erfinv_w(-precise::log((1.0f - x) * (1.0f + x)), x);
}
// erfcinv(y) for y < 2^-23, beyond the polynomials' range: Newton steps on log(erfc(t)) = log(y),
// from the asymptotic erfc(t) ~ exp(-t^2) / (t sqrt(pi)). d/dt log(erfc(t)) = -2 / (sqrt(pi) erfcx(t)).
inline float tm_erfcinv_tail(float y) {
    float ly = precise::log(y);
    float t = precise::sqrt(-ly);
    t = precise::sqrt(-ly - precise::log(1.77245385f * t));
    for (int k = 0; k < 3; ++k) {
        float hi, lo;
        float s = tm_erfc_scaled(t, hi, lo);
        float g = (precise::log(s) - lo) - (hi + ly);  // log(erfc(t)) - log(y)
        t += g * 0.886226925f * s;
    }
    return t;
}
inline float tm_erfcinv(float y) {
    if (y <= 0.0f || y >= 2.0f) return y == 0.0f ? INFINITY : y == 2.0f ? -INFINITY : NAN;
    if (y < 1.1920929e-07f) return tm_erfcinv_tail(y);
    if (2.0f - y < 1.1920929e-07f) return -tm_erfcinv_tail(2.0f - y);
    return tm_erfinv_w(-precise::log(y * (2.0f - y)), 1.0f - y);
}
// normcdfinv(p) = -sqrt(2) * erfcinv(2 p)
inline float tm_normcdfinv(float p) { return -1.41421356237309505f * tm_erfcinv(2.0f * p); }""", _h("tm_erfc")),
    "tm_norm4": ("""// sqrt(a^2 + b^2 + c^2 + d^2) without overflow or underflow: scaled by the largest magnitude.
// An infinite operand gives +inf even when another one is NaN (IEEE hypot).
inline float tm_norm4(float a, float b, float c, float d) {
    a = fabs(a); b = fabs(b); c = fabs(c); d = fabs(d);
    if (isinf(a) || isinf(b) || isinf(c) || isinf(d)) return INFINITY;
    if (isnan(a) || isnan(b) || isnan(c) || isnan(d)) return NAN;
    float m = fmax(fmax(a, b), fmax(c, d));
    if (m == 0.0f) return 0.0f;
    a = precise::divide(a, m); b = precise::divide(b, m); c = precise::divide(c, m); d = precise::divide(d, m);
    return m * precise::sqrt(fma(a, a, fma(b, b, fma(c, c, d * d))));
}""", ()),
    "tm_remainder": ("""// IEEE remainder: x - n*y with n = x/y rounded to nearest, ties to even. fmod is exact; the
// parity of its truncated quotient comes from fmod(x, 2|y|).
inline float tm_remainder(float x, float y) {
    float r = precise::fmod(x, y);
    float ay = fabs(y), ar = fabs(r);
    bool odd = fabs(precise::fmod(x, 2.0f * ay)) >= ay;
    if (2.0f * ar > ay || (2.0f * ar == ay && odd)) r -= copysign(ay, r);
    return r;
}""", ()),
    "tm_nextafter": ("""// The next float after x in the direction of y (steps through subnormals).
inline float tm_nextafter(float x, float y) {
    if (isnan(x) || isnan(y)) return x + y;
    if (x == y) return y;
    if (x == 0.0f) return copysign(as_type<float>(1u), y);
    uint bits = as_type<uint>(x);
    return as_type<float>((y > x) == (x > 0.0f) ? bits + 1u : bits - 1u);
}
inline half tm_nextafter(half x, half y) {
    if (isnan(x) || isnan(y)) return x + y;
    if (x == y) return y;
    if (x == 0.0h) return copysign(as_type<half>(ushort(1)), y);
    ushort bits = as_type<ushort>(x);
    return as_type<half>(ushort((y > x) == (x > 0.0h) ? bits + 1 : bits - 1));
}
inline bfloat tm_nextafter(bfloat bx, bfloat by) {  // compared as float: exact for bfloat values
    float x = float(bx), y = float(by);
    if (isnan(x) || isnan(y)) return bfloat(x + y);
    if (x == y) return by;
    if (x == 0.0f) return as_type<bfloat>(ushort(y > 0.0f ? 0x0001 : 0x8001));
    ushort bits = as_type<ushort>(bx);
    return as_type<bfloat>(ushort((y > x) == (x > 0.0f) ? bits + 1 : bits - 1));
}""", ()),
    "tm_ldexp": ("""// x * 2^n, rounded once: at most two exact pre-scalings keep n in the exponent range.
inline float tm_ldexp(float x, int n) {
    const float two_127 = as_type<float>(0x7f000000u), two_m102 = as_type<float>(0x0c800000u);
    if (n > 127) {
        x *= two_127; n -= 127;
        if (n > 127) { x *= two_127; n -= 127; if (n > 127) n = 127; }
    } else if (n < -126) {
        x *= two_m102; n += 102;
        if (n < -126) { x *= two_m102; n += 102; if (n < -126) n = -126; }
    }
    return x * as_type<float>(uint(n + 127) << 23);
}""", ()),
    "tm_ilogb": ("""// The unbiased exponent of x; ilogb(0) and ilogb(NaN) are INT_MIN, ilogb(inf) INT_MAX (as CUDA).
inline int tm_ilogb(float x) {
    uint bits = as_type<uint>(x) & 0x7fffffffu;
    uint e = bits >> 23;
    if (e == 0xffu) return bits == 0x7f800000u ? 2147483647 : (-2147483647 - 1);
    if (e != 0u) return int(e) - 127;
    if (bits == 0u) return -2147483647 - 1;
    return (31 - int(clz(bits))) - 149;  // subnormal
}
inline float tm_logb(float x) {
    if (isnan(x)) return x;
    if (isinf(x)) return INFINITY;
    // Zero by its bits: a subnormal x compares equal to 0 where Apple GPUs flush it.
    if ((as_type<uint>(x) & 0x7fffffffu) == 0u) return -INFINITY;
    return float(tm_ilogb(x));
}""", ()),
    "tm_float2int": ("""// float -> integer after rounding: saturating, NaN -> 0 (PTX cvt.sat, what CUDA's libdevice does).
inline int tm_float2int(float x) {
    return isnan(x) ? 0 : x <= -2147483648.0f ? (-2147483647 - 1) : x >= 2147483648.0f ? 2147483647 : int(x);
}
inline uint tm_float2uint(float x) {
    return isnan(x) || x <= 0.0f ? 0u : x >= 4294967296.0f ? 4294967295u : uint(x);
}
inline long tm_float2ll(float x) {
    return isnan(x) ? 0L : x <= -9223372036854775808.0f ? (-9223372036854775807L - 1L)
           : x >= 9223372036854775808.0f ? 9223372036854775807L : long(x);
}
inline ulong tm_float2ull(float x) {
    return isnan(x) || x <= 0.0f ? 0UL : x >= 18446744073709551616.0f ? 18446744073709551615UL : ulong(x);
}""", ()),
    "tm_brev": ("""// Bit reversal (swap halves, then bytes, nibbles, pairs, bits).
inline uint tm_brev(uint x) {
    x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
    x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
    x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
    x = ((x >> 8) & 0x00ff00ffu) | ((x & 0x00ff00ffu) << 8);
    return (x >> 16) | (x << 16);
}
inline ulong tm_brev(ulong x) { return (ulong(tm_brev(uint(x))) << 32) | ulong(tm_brev(uint(x >> 32))); }""", ()),
    "tm_byte_perm": ("""// CUDA __byte_perm: byte n of the result is byte (s >> 4n) & 7 of the 8 bytes {y, x} (x lowest).
inline int tm_byte_perm(uint x, uint y, uint s) {
    ulong v = (ulong(y) << 32) | ulong(x);
    uint r = 0u;
    for (uint n = 0u; n < 4u; ++n) r |= uint((v >> (8u * ((s >> (4u * n)) & 7u))) & 0xffUL) << (8u * n);
    return int(r);
}""", ()),
}


def helper_texts(names) -> list:
    """The helpers `names` need, dependencies first, each once."""
    out = []

    def visit(name):
        text, deps = HELPERS[name]
        for dep in deps:
            visit(dep)
        if text not in out:
            out.append(text)
    for name in names:
        visit(name)
    return out


for _text, _ in HELPERS.values():  # their tm_ names are fixed names of the code generator's namespace
    own_helper(_text)
