"""Helper functions the generated MSL may contain, written out: where Metal has no function of its own
(erf, the high half of a 64-bit product, libdevice's functions), where a conversion must round on the
bits, the records of tl.device_print / tl.device_assert, and the compare-and-swap of tl.atomic_cas.

``HELPERS``: name -> (MSL text, the helpers it calls). A lowering adds a text to its kernel with
``KernelEmitter.add_helper`` (once per kernel); ``helper_texts(names)`` lists helpers with the ones
they call, those first. Every text is registered with ``msl_text.own_helper``: the ``tm_`` names it
defines are fixed names of the code generator's namespace, which names allocated per kernel never
take. Helpers are written with arithmetic, ``as_type`` and functions the Metal simulator also
provides, so that the simulator runs the same code as the GPU.
"""
from __future__ import annotations

from triton_metal import abi
from triton_metal.codegen.msl_text import own_helper

HELPERS: dict[str, tuple[str, tuple]] = {}


def _helper(name: str, text: str, calls: tuple = ()) -> str:
    """Registers helper `name` (its MSL `text`, defining `name`; `calls`: the helpers it calls)."""
    HELPERS[name] = (own_helper(text), tuple(calls))
    return text


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


# ---- integer and float functions Metal has none of (lower_numeric, and libdevice) ---------------

UMULHI64 = _helper("tm_umulhi64", """// High 64 bits of the 128-bit product of two unsigned 64-bit integers.
inline ulong tm_umulhi64(ulong a, ulong b) {
    ulong a_lo = a & 0xffffffffUL, a_hi = a >> 32, b_lo = b & 0xffffffffUL, b_hi = b >> 32;
    ulong lo_lo = a_lo * b_lo, hi_lo = a_hi * b_lo, lo_hi = a_lo * b_hi;
    ulong cross = (lo_lo >> 32) + (hi_lo & 0xffffffffUL) + lo_hi;
    return a_hi * b_hi + (hi_lo >> 32) + (cross >> 32);
}""")

ERF = _helper("tm_erf", """// erf(x) (Metal has none): Taylor series for |x| < 0.5 (error < 1 ulp), Abramowitz & Stegun
// 7.1.26 above (absolute error < 1.5e-7).
inline float tm_erf(float x) {
    float a = fabs(x);
    if (a < 0.5f) {
        float x2 = x * x;
        return x * (1.1283791671f + x2 * (-0.3761263890f + x2 * (0.1128379167f + x2 * (-0.0268661706f
                 + x2 * (0.0052239776f + x2 * -0.0008548327f)))));
    }
    float t = 1.0f / (1.0f + 0.3275911f * a);
    float p = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t;
    return copysign(1.0f - p * precise::exp(-a * a), x);
}""")


# ---- float -> half / bfloat conversions that round on the bits (lower_rounding) ------------------

HALF_RTNE = _helper("tm_half_rtne", """// float -> half rounded to nearest even, on the bits (lower_rounding.py: no fast-math fold).
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

HALF_RTZ = _helper("tm_half_rtz", """// float -> half rounded toward zero, on the bits (lower_rounding.py).
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

BFLOAT_RTNE = _helper("tm_bfloat_rtne", """// float -> bfloat rounded to nearest even, on the bits (lower_rounding.py: no fast-math fold).
inline bfloat tm_bfloat_rtne(float x) {
    uint u = as_type<uint>(x);
    u = (u & 0x7fffffffu) > 0x7f800000u ? (u | 0x00400000u) : u + 0x7fffu + ((u >> 16) & 1u);
    return as_type<bfloat>(ushort(u >> 16));
}""")

BFLOAT_RTZ = _helper("tm_bfloat_rtz", """// float -> bfloat rounded toward zero, on the bits (lower_rounding.py).
inline bfloat tm_bfloat_rtz(float x) {
    uint u = as_type<uint>(x);
    u = (u & 0x7fffffffu) > 0x7f800000u ? (u | 0x00400000u) : u;  // NaN stays a quiet NaN
    return as_type<bfloat>(ushort(u >> 16));
}""")


# ---- tl.device_print / tl.device_assert (lower_debug_ops; the buffer's layout: abi.PRINT_*) -------

DEVICE_PRINT = _helper("tm_diag_record", f"""\
// tl.device_print / tl.device_assert: one record in the device-print buffer (see triton_metal/codegen/
// ops/lower_debug_ops.py). Records past the capacity the host wrote are counted, not written.
inline void tm_diag_record(device uint* diag, uint site, uint3 pid, uint seq, uint index, ulong bits) {{
    uint slot = atomic_fetch_add_explicit((device atomic_uint*)diag, 1u, memory_order_relaxed);
    if (slot >= diag[{abi.PRINT_HEADER_CAPACITY}]) return;
    device uint* r = diag + {abi.PRINT_HEADER_WORDS} + slot * {abi.PRINT_RECORD_WORDS};
    r[0] = site; r[1] = pid.x; r[2] = pid.y; r[3] = pid.z; r[4] = seq; r[5] = index;
    r[6] = uint(bits); r[7] = uint(bits >> 32);
}}

// A failed assertion is counted in the header first, so that a full buffer cannot hide it.
inline void tm_diag_fail(device uint* diag, uint site, uint3 pid, uint seq, uint index) {{
    atomic_fetch_add_explicit((device atomic_uint*)(diag + {abi.PRINT_HEADER_FAILURES}), 1u, memory_order_relaxed);
    atomic_store_explicit((device atomic_uint*)(diag + {abi.PRINT_HEADER_FAILED_SITE}), site + 1, memory_order_relaxed);
    tm_diag_record(diag, site, pid, seq, index, 0);
}}""")


# ---- tl.atomic_cas (lower_atomics): a template, {T} the compared type and {A} the atomic pointer type -

ATOMIC_CAS = own_helper("""// Compare-and-swap returning the old value: retries the weak exchange only when it fails
// spuriously.
inline {T} tm_atomic_cas({A} p, {T} expected, {T} desired) {{
    {T} seen = expected;
    while (!atomic_compare_exchange_weak_explicit(p, &seen, desired, memory_order_relaxed, memory_order_relaxed)
           && seen == expected) {{
    }}
    return seen;
}}""")


# ---- libdevice (libdevice_msl.TEMPLATES names them) --------------------------------------------------

_helper("tm_mulhi64", """// High 64 bits of the signed 128-bit product, from the unsigned one.
inline long tm_mulhi64(long a, long b) {
    ulong hi = tm_umulhi64(ulong(a), ulong(b));
    return long(hi - (a < 0 ? ulong(b) : 0UL) - (b < 0 ? ulong(a) : 0UL));
}""", ("tm_umulhi64",))

_helper("tm_expm1", """// expm1 (Metal has none): Kahan's method, exp(x) - 1 corrected by x / log(exp(x)), which cancels
// the rounding error of exp(x) near 0.
inline float tm_expm1(float x) {
    float u = precise::exp(x);
    if (u == 1.0f) return x;
    float um1 = u - 1.0f;
    if (um1 == -1.0f || isinf(u)) return um1;
    return precise::divide(um1 * x, precise::log(u));
}""")

_helper("tm_log1p", """// log1p (Metal has none): Kahan's method, log(1 + x) corrected by x / ((1 + x) - 1).
inline float tm_log1p(float x) {
    float u = 1.0f + x;
    if (u == 1.0f) return x;
    if (isinf(u)) return u;
    return precise::divide(precise::log(u) * x, u - 1.0f);
}""")

_helper("tm_cbrt", """// cbrt (Metal has none): exp2(log2|x| / 3), then one Newton step.
inline float tm_cbrt(float x) {
    float a = fabs(x);
    if (a == 0.0f || !isfinite(a)) return x;
    float y = precise::exp2(precise::divide(precise::log2(a), 3.0f));
    y = y - precise::divide(y - precise::divide(a, y * y), 3.0f);
    return copysign(y, x);
}""")

_helper("tm_erfc", """// erfc (Metal has none): the Chebyshev fit of Numerical Recipes (erfcc, relative error < 1.2e-7),
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
}""")

_helper("tm_erfinv", """// erfinv (Metal has none): M. Giles, "Approximating the erfinv function" (GPU Computing Gems, 2011),
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
inline float tm_normcdfinv(float p) { return -1.41421356237309505f * tm_erfcinv(2.0f * p); }""", ("tm_erfc",))

_helper("tm_norm4", """// sqrt(a^2 + b^2 + c^2 + d^2) without overflow or underflow: scaled by the largest magnitude.
// An infinite operand gives +inf even when another one is NaN (IEEE hypot).
inline float tm_norm4(float a, float b, float c, float d) {
    a = fabs(a); b = fabs(b); c = fabs(c); d = fabs(d);
    if (isinf(a) || isinf(b) || isinf(c) || isinf(d)) return INFINITY;
    if (isnan(a) || isnan(b) || isnan(c) || isnan(d)) return NAN;
    float m = fmax(fmax(a, b), fmax(c, d));
    if (m == 0.0f) return 0.0f;
    a = precise::divide(a, m); b = precise::divide(b, m); c = precise::divide(c, m); d = precise::divide(d, m);
    return m * precise::sqrt(fma(a, a, fma(b, b, fma(c, c, d * d))));
}""")

_helper("tm_remainder", """// IEEE remainder: x - n*y with n = x/y rounded to nearest, ties to even. fmod is exact; the
// parity of its truncated quotient comes from fmod(x, 2|y|).
inline float tm_remainder(float x, float y) {
    float r = precise::fmod(x, y);
    float ay = fabs(y), ar = fabs(r);
    bool odd = fabs(precise::fmod(x, 2.0f * ay)) >= ay;
    if (2.0f * ar > ay || (2.0f * ar == ay && odd)) r -= copysign(ay, r);
    return r;
}""")

_helper("tm_nextafter", """// The next float after x in the direction of y (steps through subnormals).
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
}""")

_helper("tm_ldexp", """// x * 2^n, rounded once: at most two exact pre-scalings keep n in the exponent range.
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
}""")

_helper("tm_ilogb", """// The unbiased exponent of x; ilogb(0) and ilogb(NaN) are INT_MIN, ilogb(inf) INT_MAX (as CUDA).
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
}""")

_helper("tm_float2int", """// float -> integer after rounding: saturating, NaN -> 0 (PTX cvt.sat, what CUDA's libdevice does).
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
}""")

_helper("tm_brev", """// Bit reversal (swap halves, then bytes, nibbles, pairs, bits).
inline uint tm_brev(uint x) {
    x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
    x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
    x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
    x = ((x >> 8) & 0x00ff00ffu) | ((x & 0x00ff00ffu) << 8);
    return (x >> 16) | (x << 16);
}
inline ulong tm_brev(ulong x) { return (ulong(tm_brev(uint(x))) << 32) | ulong(tm_brev(uint(x >> 32))); }""")

_helper("tm_byte_perm", """// CUDA __byte_perm: byte n of the result is byte (s >> 4n) & 7 of the 8 bytes {y, x} (x lowest).
inline int tm_byte_perm(uint x, uint y, uint s) {
    ulong v = (ulong(y) << 32) | ulong(x);
    uint r = 0u;
    for (uint n = 0u; n < 4u; ++n) r |= uint((v >> (8u * ((s >> (4u * n)) & 7u))) & 0xffUL) << (8u * n);
    return int(r);
}""")


# ---- 8- and 16-bit atomics (lower_atomics) ------------------------------------------------------------
# Metal's atomics are 32-bit (and 64-bit max/min). An atomic on an 8- or 16-bit element is a
# compare-and-swap loop on the aligned 32-bit word that holds it, as other GPU backends do: the
# exchange compares the whole word, so the word's other bytes (neighbouring elements, which other
# threads may be updating at the same time) are written back with exactly the values it compared.
# Little-endian: the element's byte offset in the word gives its shift.

# MSL element type -> its unsigned bits type and the mask of those bits.
SUBWORD_BITS = {"char": ("uchar", "0xffu"), "short": ("ushort", "0xffffu"), "half": ("ushort", "0xffffu"),
                "bfloat": ("ushort", "0xffffu")}
# tt.atomic_rmw kind (and "cas") -> the element's new bits, from `ob` (its old bits, a uint), `vb`
# (the operand's bits; `cb` the compared bits of cas), `old` and `v` (the typed values). Integer
# results keep their low bits only: add wraps. Floats are added in float and rounded to nearest even
# once (exact: float carries more than twice a half's or bfloat's significand, and the sum of two of
# them in float rounds as one half/bfloat addition would), as CUDA's atomicAdd on half/bfloat16 does.
SUBWORD_NEW_BITS = {
    "add": ("ob + vb", False), "and": ("ob & vb", False), "or": ("ob | vb", False), "xor": ("ob ^ vb", False),
    "exch": ("vb", False), "umax": ("ob > vb ? ob : vb", False), "umin": ("ob < vb ? ob : vb", False),
    "max": ("as_type<{B}>(old > v ? old : v)", True), "min": ("as_type<{B}>(old < v ? old : v)", True),
    "fadd": ("as_type<ushort>({round}(float(old) + float(v)))", True),
    "cas": ("ob == cb ? vb : ob", False),  # compared bit for bit, as CUDA's atom.cas (floats too)
}
SUBWORD_ROUNDING = {"half": "tm_half_rtne", "bfloat": "tm_bfloat_rtne"}


def _subword_head(T: str, space: str) -> str:
    mask = SUBWORD_BITS[T][1]
    return (f"    uint shift = uint((ulong)p & 3ul) * 8u, mask = {mask} << shift;\n"
            f"    {space} atomic_uint* word = ({space} atomic_uint*)((ulong)p & ~3ul);  // the aligned word holding *p\n")


def subword_atomic(kind: str, T: str, space: str) -> tuple:
    """(function name, MSL text) of the atomic `kind` (a tt.atomic_rmw kind or "cas") on a `T` (char,
    short, half, bfloat) in `space` (`device` or `coherent(device) device`), returning the old value.
    The text calls tm_half_rtne / tm_bfloat_rtne for fadd (add those helpers first)."""
    bits, _ = SUBWORD_BITS[T]
    name = f"tm_atomic_{kind}_{T}"
    expr, typed = SUBWORD_NEW_BITS[kind]
    expr = expr.format(B=bits, round=SUBWORD_ROUNDING.get(T, ""))
    params = f"{T} cmp, {T} v" if kind == "cas" else f"{T} v"
    operands = "    uint vb = uint(as_type<" + bits + ">(v));\n" if "vb" in expr else ""
    if kind == "cas":
        operands += f"    uint cb = uint(as_type<{bits}>(cmp));\n"
    text = (f"// Atomic {kind} on the {T} at p, returning its old value: a compare-and-swap loop on the aligned\n"
            f"// 32-bit word that holds it (Metal has no 8- or 16-bit atomics; the other bytes are kept).\n"
            f"inline {T} {name}({space} {T}* p, {params}) {{\n"
            + _subword_head(T, space) + operands
            + "    uint seen = atomic_load_explicit(word, memory_order_relaxed), ob, next;\n"
            "    do {\n"
            "        ob = (seen & mask) >> shift;\n"
            + (f"        {T} old = as_type<{T}>({bits}(ob));\n" if typed else "")
            + f"        next = (seen & ~mask) | ((uint({expr}) << shift) & mask);\n"
            "    } while (!atomic_compare_exchange_weak_explicit(word, &seen, next, memory_order_relaxed,\n"
            "                                                    memory_order_relaxed));\n"
            f"    return as_type<{T}>({bits}(ob));\n"
            "}")
    return name, own_helper(text)


def subword_atomic_load(T: str, space: str) -> tuple:
    """(function name, MSL text) of a relaxed atomic load of the `T` at p: a load of its word."""
    bits, _ = SUBWORD_BITS[T]
    name = f"tm_atomic_load_{T}"
    text = (f"// Atomic load of the {T} at p: an atomic load of the aligned 32-bit word that holds it.\n"
            f"inline {T} {name}({space} {T}* p) {{\n"
            + _subword_head(T, space)
            + f"    return as_type<{T}>({bits}((atomic_load_explicit(word, memory_order_relaxed) & mask) >> shift));\n"
            "}")
    return name, own_helper(text)


SUBWORD_ROUNDING_TEXTS = {"half": HALF_RTNE, "bfloat": BFLOAT_RTNE}  # the helpers fadd calls
# Their `tm_` names are fixed names of the generator from the start (own_helper), as every helper's is.
for _T in SUBWORD_BITS:
    subword_atomic_load(_T, "device")
    for _kind in SUBWORD_NEW_BITS:
        subword_atomic(_kind, _T, "device")


# ---- vectorised global accesses (codegen/vector_access.py) ---------------------------------------

CONSECUTIVE = _helper("tm_consecutive", """\
// Whether the n pointers p[0..n) are consecutive: then one vector access can move the n elements
// (codegen/vector_access.py).
template <typename P> inline bool tm_consecutive(thread const P* p, uint n) {
    for (uint k = 1; k < n; ++k)
        if (p[k] != p[0] + k) return false;
    return true;
}""")

ALIGNED = _helper("tm_aligned", """\
// Whether p is aligned to `align` bytes. Metal requires a vector access of device memory to be aligned
// to the vector's size (a float4 to 16 bytes); a packed_ vector needs its element's alignment only.
template <typename P> inline bool tm_aligned(P p, ulong align) {
    return ((ulong)p & (align - 1)) == 0;
}""")

ALL_SET = _helper("tm_all_set", """\
// Whether the n mask bits m[0..n) are all set (a vector access needs all its elements unmasked).
inline bool tm_all_set(thread const bool* m, uint n) {
    for (uint k = 0; k < n; ++k)
        if (!m[k]) return false;
    return true;
}""")
