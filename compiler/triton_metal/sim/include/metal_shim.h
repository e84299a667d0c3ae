// Metal Shading Language as C++17 for g++: types, math, atomics, barriers and simd collectives.
//
// MSL kernel text compiles unchanged against this header (after msl_prepass.py strips the
// [[attributes]] and rewrites kernel-scope threadgroup arrays). Barriers and simd collectives
// call the fiber runtime (tm_sim_abi.h). Known gaps: swizzles (.xy), packed_* arithmetic,
// textures, quad_* collectives. Address spaces are empty macros here; the instrumented build
// (strict mode, traffic counters: tm_instrument.h) makes device and threadgroup pointers
// distinct checked types.
#ifndef TM_METAL_SHIM_H
#define TM_METAL_SHIM_H
#pragma GCC system_header  // silences e.g. the warning on the non-underscore literal suffix `h`

// Every standard header first: the address-space keyword macros at the end of this file would
// break them (std::thread, `device`, `constant` ...). <cmath>/<cstdlib> are deliberately not
// included: their global ::abs/::exp overloads would make `using namespace metal;` ambiguous.
#include <stddef.h>
#include <stdint.h>

#include <type_traits>

#include "tm_sim_abi.h"

// The MSL line of the statement running now: set by the markers that msl_prepass puts before each
// statement in instrumented builds (see tm_instrument.h), kept across fiber switches below.
namespace __tm {
static thread_local uint32_t site_line = 0;
}
#ifdef TM_SIM_INSTRUMENT
#define TM_KEEP_SITE(call)                                                                           \
    do {                                                                                             \
        const uint32_t __tm_saved_site = __tm::site_line;                                            \
        call;                                                                                        \
        __tm::site_line = __tm_saved_site;                                                           \
    } while (0)
#else
#define TM_KEEP_SITE(call) call
#endif

// ---------------------------------------------------------------------------------------------
// Scalar types
// ---------------------------------------------------------------------------------------------
typedef unsigned char uchar;
typedef unsigned short ushort;
typedef unsigned int uint;
typedef unsigned long ulong;
#if defined(__aarch64__) && !defined(__clang__) && __GNUC__ < 13
typedef __fp16 half;    // g++ < 13 has no _Float16 in C++ on aarch64; __fp16 computes in float
#else
typedef _Float16 half;  // x86: compile with -mf16c, or every conversion is a library call
#endif

constexpr half operator""h(long double v) { return half(v); }
constexpr half operator""h(unsigned long long v) { return half(v); }

struct bfloat;

namespace __tm {
template <class T> struct is_num : std::integral_constant<bool, std::is_arithmetic<T>::value> {};
template <> struct is_num<half> : std::true_type {};
template <> struct is_num<bfloat> : std::true_type {};
template <class T> constexpr bool is_num_v = is_num<std::remove_cv_t<T>>::value;
// Arithmetic types other than bfloat (the operand kinds bfloat converts from and mixes with).
template <class T> constexpr bool is_plain_v = is_num_v<T> && !std::is_same<std::remove_cv_t<T>, bfloat>::value;
template <class T> struct id { using type = T; };
template <class T> using id_t = typename id<T>::type;  // blocks template argument deduction

constexpr uint16_t f32_to_bf16(float f) {
    uint32_t u = __builtin_bit_cast(uint32_t, f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40u);  // NaN stays NaN
    u += 0x7fffu + ((u >> 16) & 1u);                                          // round to nearest even
    return uint16_t(u >> 16);
}
}  // namespace __tm

// bfloat (MSL 3.1): the top 16 bits of a float; arithmetic is done in float, rounded once per
// operation. The specification's conversion rule, as MLX quotes it (mlx/backend/metal/kernels/
// bf16_math.h): "bfloat is an extended floating point type that only allows implicit conversion to
// a type of greater floating point rank. While bfloat can be implicitly converted to float, it cannot
// be implicitly converted to half, and neither float nor half can be implicitly converted to
// bfloat." Modelled here, and stricter where that text is silent (integers, bool, double):
// - bfloat -> float is the only implicit conversion; every other one, to or from bfloat, is written
//   bfloat(x), half(x), int(x), ...;
// - bfloat op bfloat is a bfloat and bfloat op float a float (usual arithmetic conversions); a
//   bfloat with a half, an integer or a double operand does not compile;
// - compound assignment takes a bfloat right-hand side only (anything else would convert to bfloat
//   implicitly).
struct bfloat {
    uint16_t bits;
    bfloat() = default;
    template <class S, std::enable_if_t<__tm::is_plain_v<S>, int> = 0>
    constexpr explicit bfloat(S s) : bits(__tm::f32_to_bf16(float(s))) {}
    // bfloat(x) of something that converts to float (an instrumented build's loaded element)
    template <class S, std::enable_if_t<!__tm::is_num_v<S> && std::is_convertible<S, float>::value, int> = 0>
    constexpr explicit bfloat(const S& s) : bits(__tm::f32_to_bf16(float(s))) {}
    // Implicitly to float only. A conversion function template is deduced from the target type, so
    // `int i = b;` or `half h = b;` finds no conversion (a plain `operator float()` would be followed
    // by an implicit float -> int or float -> half).
    template <class T, std::enable_if_t<std::is_same<T, float>::value, int> = 0>
    constexpr operator T() const { return __builtin_bit_cast(float, uint32_t(bits) << 16); }
    template <class T, std::enable_if_t<__tm::is_plain_v<T> && !std::is_same<T, float>::value, int> = 0>
    constexpr explicit operator T() const { return T(float(*this)); }
};

namespace __tm {
template <class T> constexpr bool bfloat_mix_v = is_plain_v<T> && !std::is_same<std::remove_cv_t<T>, float>::value;
template <class...> constexpr bool always_false_v = false;
}  // namespace __tm

inline bfloat operator-(bfloat a) {
    bfloat r;
    r.bits = uint16_t(a.bits ^ 0x8000u);
    return r;
}
inline bfloat operator+(bfloat a) { return a; }

#define TM_BF_MIXED_ERROR                                                                            \
    "MSL 3.1 has no implicit conversion between bfloat and half, integer or double operands: "      \
    "convert explicitly, e.g. float(b) op x, or bfloat(x)"
#define TM_BF_OPERATORS(op, R)                                                                       \
    inline R operator op(bfloat a, bfloat b) { return R(float(a) op float(b)); }                    \
    inline auto operator op(bfloat a, float b) { return float(a) op b; }                            \
    inline auto operator op(float a, bfloat b) { return a op float(b); }                            \
    template <class S, std::enable_if_t<__tm::bfloat_mix_v<S>, int> = 0> R operator op(bfloat, S) { \
        static_assert(__tm::always_false_v<S>, TM_BF_MIXED_ERROR);                                   \
        return R();                                                                                  \
    }                                                                                                \
    template <class S, std::enable_if_t<__tm::bfloat_mix_v<S>, int> = 0> R operator op(S, bfloat) { \
        static_assert(__tm::always_false_v<S>, TM_BF_MIXED_ERROR);                                   \
        return R();                                                                                  \
    }
#define TM_BF_ARITH(op)                                                                              \
    TM_BF_OPERATORS(op, bfloat)                                                                      \
    inline bfloat& operator op##=(bfloat& a, bfloat b) { return a = a op b; }
TM_BF_ARITH(+)
TM_BF_ARITH(-)
TM_BF_ARITH(*)
TM_BF_ARITH(/)
#undef TM_BF_ARITH

#define TM_BF_CMP(op) TM_BF_OPERATORS(op, bool)
TM_BF_CMP(==)
TM_BF_CMP(!=)
TM_BF_CMP(<)
TM_BF_CMP(<=)
TM_BF_CMP(>)
TM_BF_CMP(>=)
#undef TM_BF_CMP
#undef TM_BF_OPERATORS
#undef TM_BF_MIXED_ERROR

// ---------------------------------------------------------------------------------------------
// Vector types: metal::vec<T, N> with .x .y .z .w (.r .g .b .a), [] and elementwise operators.
// Alignment follows Metal: vecN is aligned to its size, and a vec3 is as big as a vec4.
// ---------------------------------------------------------------------------------------------
namespace metal {
template <class T, int N> struct vec;
}

namespace __tm {
template <class T> struct vec_info {
    static constexpr int n = 1;
    using elem = T;
};
template <class T, int N> struct vec_info<metal::vec<T, N>> {
    static constexpr int n = N;
    using elem = T;
};
template <class... A> constexpr int ncomp_sum() { return (0 + ... + vec_info<std::remove_cv_t<A>>::n); }

// Appends the components of a scalar or a vector to e[k...].
template <class T, class S> inline void put(T* e, int& k, const S& s) {
    if constexpr (vec_info<S>::n == 1) {
        e[k++] = T(s);
    } else {
        for (int i = 0; i < vec_info<S>::n; ++i) e[k++] = T(s.__e[i]);
    }
}
}  // namespace __tm

#define TM_VEC_BODY(N)                                                                               \
    vec() = default;                                                                                 \
    /* splat: float4 v = 0.0f; (a bfloat vector from a bfloat only: no implicit conversion) */     \
    template <class S, std::enable_if_t<__tm::is_num_v<S> && (!std::is_same<T, bfloat>::value ||     \
                                                              std::is_same<S, bfloat>::value), int> = 0> \
    vec(S s) {                                                                                       \
        for (int i = 0; i < N; ++i) __e[i] = T(s);                                                   \
    }                                                                                                \
    /* components: float4(a, b, c, d), float4(float2 xy, z, w), float4(float3 xyz, w) ... */         \
    template <class A0, class A1, class... A,                                                        \
              std::enable_if_t<__tm::ncomp_sum<A0, A1, A...>() == N, int> = 0>                       \
    vec(const A0& a0, const A1& a1, const A&... a) {                                                 \
        int k = 0;                                                                                   \
        __tm::put(__e, k, a0);                                                                       \
        __tm::put(__e, k, a1);                                                                       \
        (__tm::put(__e, k, a), ...);                                                                 \
    }                                                                                                \
    /* explicit conversion between element types: float4(int4) */                                   \
    template <class U, std::enable_if_t<!std::is_same<U, T>::value, int> = 0>                       \
    explicit vec(const vec<U, N>& o) {                                                               \
        for (int i = 0; i < N; ++i) __e[i] = T(o.__e[i]);                                            \
    }                                                                                                \
    T& operator[](int i) { return __e[i]; }                                                          \
    const T& operator[](int i) const { return __e[i]; }

namespace metal {
template <class T> struct alignas(2 * sizeof(T)) vec<T, 2> {
    union {
        struct { T x, y; };
        struct { T r, g; };
        T __e[2];
    };
    TM_VEC_BODY(2)
};
template <class T> struct alignas(4 * sizeof(T)) vec<T, 3> {
    union {
        struct { T x, y, z; };
        struct { T r, g, b; };
        T __e[3];
    };
    TM_VEC_BODY(3)
};
template <class T> struct alignas(4 * sizeof(T)) vec<T, 4> {
    union {
        struct { T x, y, z, w; };
        struct { T r, g, b, a; };
        T __e[4];
    };
    TM_VEC_BODY(4)
};
#undef TM_VEC_BODY

#define TM_VEC_LOOP(expr)                                                                            \
    vec<T, N> r;                                                                                     \
    for (int i = 0; i < N; ++i) r.__e[i] = T(expr);                                                  \
    return r

#define TM_VEC_BINOP(op)                                                                             \
    template <class T, int N> inline vec<T, N> operator op(const vec<T, N>& a, const vec<T, N>& b) { \
        TM_VEC_LOOP(a.__e[i] op b.__e[i]);                                                           \
    }                                                                                                \
    template <class T, int N, class S, std::enable_if_t<__tm::is_num_v<S>, int> = 0>                 \
    inline vec<T, N> operator op(const vec<T, N>& a, S b) {                                          \
        TM_VEC_LOOP(a.__e[i] op T(b));                                                               \
    }                                                                                                \
    template <class T, int N, class S, std::enable_if_t<__tm::is_num_v<S>, int> = 0>                 \
    inline vec<T, N> operator op(S a, const vec<T, N>& b) {                                          \
        TM_VEC_LOOP(T(a) op b.__e[i]);                                                               \
    }                                                                                                \
    template <class T, int N, class U> inline vec<T, N>& operator op##=(vec<T, N>& a, const U& b) {  \
        return a = a op b;                                                                           \
    }
TM_VEC_BINOP(+)
TM_VEC_BINOP(-)
TM_VEC_BINOP(*)
TM_VEC_BINOP(/)
TM_VEC_BINOP(%)
TM_VEC_BINOP(&)
TM_VEC_BINOP(|)
TM_VEC_BINOP(^)
TM_VEC_BINOP(<<)
TM_VEC_BINOP(>>)
#undef TM_VEC_BINOP

#define TM_VEC_CMP(op)                                                                               \
    template <class T, int N> inline vec<bool, N> operator op(const vec<T, N>& a, const vec<T, N>& b) { \
        vec<bool, N> r;                                                                              \
        for (int i = 0; i < N; ++i) r.__e[i] = a.__e[i] op b.__e[i];                                 \
        return r;                                                                                    \
    }                                                                                                \
    template <class T, int N, class S, std::enable_if_t<__tm::is_num_v<S>, int> = 0>                 \
    inline vec<bool, N> operator op(const vec<T, N>& a, S b) {                                       \
        return a op vec<T, N>(b);                                                                    \
    }                                                                                                \
    template <class T, int N, class S, std::enable_if_t<__tm::is_num_v<S>, int> = 0>                 \
    inline vec<bool, N> operator op(S a, const vec<T, N>& b) {                                       \
        return vec<T, N>(a) op b;                                                                    \
    }
TM_VEC_CMP(==)
TM_VEC_CMP(!=)
TM_VEC_CMP(<)
TM_VEC_CMP(<=)
TM_VEC_CMP(>)
TM_VEC_CMP(>=)
TM_VEC_CMP(&&)
TM_VEC_CMP(||)
#undef TM_VEC_CMP

template <class T, int N> inline vec<T, N> operator-(const vec<T, N>& a) { TM_VEC_LOOP(-a.__e[i]); }
template <class T, int N> inline vec<T, N> operator+(const vec<T, N>& a) { return a; }
template <class T, int N> inline vec<T, N> operator~(const vec<T, N>& a) { TM_VEC_LOOP(~a.__e[i]); }
template <class T, int N> inline vec<bool, N> operator!(const vec<T, N>& a) {
    vec<bool, N> r;
    for (int i = 0; i < N; ++i) r.__e[i] = !a.__e[i];
    return r;
}
}  // namespace metal

#define TM_VEC_TYPES(T, name)                                                                        \
    typedef metal::vec<T, 2> name##2;                                                                \
    typedef metal::vec<T, 3> name##3;                                                                \
    typedef metal::vec<T, 4> name##4;                                                                \
    namespace metal {                                                                                \
    using ::name##2;                                                                                 \
    using ::name##3;                                                                                 \
    using ::name##4;                                                                                 \
    }
TM_VEC_TYPES(float, float)
TM_VEC_TYPES(half, half)
TM_VEC_TYPES(bfloat, bfloat)
TM_VEC_TYPES(bool, bool)
TM_VEC_TYPES(signed char, char)  // Metal's char is signed on every target
TM_VEC_TYPES(uchar, uchar)
TM_VEC_TYPES(short, short)
TM_VEC_TYPES(ushort, ushort)
TM_VEC_TYPES(int, int)
TM_VEC_TYPES(uint, uint)
TM_VEC_TYPES(long, long)
TM_VEC_TYPES(ulong, ulong)
#undef TM_VEC_TYPES

// Packed vectors (MSL 2.2.3): packed_floatn etc., aligned to their element (a packed_float4 to 4 bytes,
// a float4 to 16), sizeof n elements; converted to and from the vector of the same type by
// construction and assignment, components read with [] (no .xyzw). The vectorised loads and stores of
// codegen/vector_access.py use them for consecutive elements whose address is not vector-aligned.
namespace metal {
template <class T, int N> struct packed_vec {
    T __e[N];
    packed_vec() = default;
    packed_vec(const vec<T, N>& v) {
        for (int i = 0; i < N; ++i) __e[i] = v.__e[i];
    }
    operator vec<T, N>() const {
        vec<T, N> v;
        for (int i = 0; i < N; ++i) v.__e[i] = __e[i];
        return v;
    }
    T& operator[](int i) { return __e[i]; }
    const T& operator[](int i) const { return __e[i]; }
};
}  // namespace metal
#define TM_PACKED_TYPES(T, name)                                                                     \
    typedef metal::packed_vec<T, 2> packed_##name##2;                                               \
    typedef metal::packed_vec<T, 3> packed_##name##3;                                               \
    typedef metal::packed_vec<T, 4> packed_##name##4;                                               \
    namespace metal {                                                                                \
    using ::packed_##name##2;                                                                        \
    using ::packed_##name##3;                                                                        \
    using ::packed_##name##4;                                                                        \
    }
TM_PACKED_TYPES(float, float)
TM_PACKED_TYPES(half, half)
TM_PACKED_TYPES(signed char, char)
TM_PACKED_TYPES(uchar, uchar)
TM_PACKED_TYPES(short, short)
TM_PACKED_TYPES(ushort, ushort)
TM_PACKED_TYPES(int, int)
TM_PACKED_TYPES(uint, uint)
#undef TM_PACKED_TYPES

// ---------------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------------
#ifndef INFINITY
#define INFINITY (__builtin_inff())
#endif
#ifndef NAN
#define NAN (__builtin_nanf(""))
#endif
#define HUGE_VALF (__builtin_huge_valf())
#define MAXFLOAT 0x1.fffffep+127f
#define FLT_MAX 0x1.fffffep+127f
#define FLT_MIN 0x1p-126f
#define FLT_EPSILON 0x1p-23f
#define HALF_MAX 65504.0h
#define HALF_MIN 0x1p-14h
#define HALF_EPSILON 0x1p-10h
#define CHAR_BIT 8
#define SCHAR_MAX 127
#define SCHAR_MIN (-128)
#define UCHAR_MAX 255
#define CHAR_MAX SCHAR_MAX
#define CHAR_MIN SCHAR_MIN
#define SHRT_MAX 32767
#define SHRT_MIN (-32768)
#define USHRT_MAX 65535
#define INT_MAX 2147483647
#define INT_MIN (-2147483647 - 1)
#define UINT_MAX 4294967295u
#define LONG_MAX 9223372036854775807L
#define LONG_MIN (-9223372036854775807L - 1)
#define ULONG_MAX 18446744073709551615UL
#define M_E_F 2.71828182845904523536f
#define M_LOG2E_F 1.44269504088896340736f
#define M_LOG10E_F 0.434294481903251827651f
#define M_LN2_F 0.693147180559945309417f
#define M_LN10_F 2.30258509299404568402f
#define M_PI_F 3.14159265358979323846f
#define M_PI_2_F 1.57079632679489661923f
#define M_PI_4_F 0.785398163397448309616f
#define M_1_PI_F 0.318309886183790671538f
#define M_2_PI_F 0.636619772367581343076f
#define M_2_SQRTPI_F 1.12837916709551257390f
#define M_SQRT2_F 1.41421356237309504880f
#define M_SQRT1_2_F 0.707106781186547524401f

// ---------------------------------------------------------------------------------------------
// metal:: functions. Float functions have float and half overloads (half computes in float),
// elementwise vector versions, and take integer/double arguments as float.
// None takes a bfloat. MSL 3.1 lists no bfloat overloads of its math, relational or simd functions
// that we can find, and MLX's bf16_math.h defines its own because "the stdlib math/simd functions
// are not defined for bfloat" (a call then converts the argument to float and returns a float);
// where the specification is silent we assume there is none. So a bfloat argument stops the
// simulator build (TM_NO_BFLOAT), stricter than Apple in doubt: generated code writes
// bfloat(f(float(x))).
// ---------------------------------------------------------------------------------------------
namespace __tm {
// fmin/fmax without a libm call (x86 has no single instruction with these NaN rules):
// the non-NaN operand if one is NaN.
// x through one multiplication the optimiser cannot remove: flushed where arithmetic flushes subnormals.
inline float computed(float x) {
    float one = 1.0f;
    __asm__("" : "+m"(one));
    return x * one;
}
// When neither operand compares greater, they are equal, or both subnormal (or zero) with subnormals
// flushed: then the result is computed from one of them, so it is a result the MSL specification allows
// (8.5: the result for the flushed operands), not an unflushed subnormal that may be the smaller one.
inline float fmax(float x, float y) { return (x < y || x != x) ? y : (y < x || y != y) ? x : computed(x); }
inline float fmin(float x, float y) { return (y < x || x != x) ? y : (x < y || y != y) ? x : computed(x); }
// sin(pi x), cos(pi x), tan(pi x) within Metal's bounds (MSL Table 8.1: 4 and 6 ulp) near their zeros, where
// x * M_PI_F rounded to float would not be: the argument reduced exactly (r in [-1, 1]), then in double.
inline double pi_times_reduced(float x, double& r) {
    r = double(x) - 2.0 * __builtin_round(double(x) * 0.5);
    return r * 3.14159265358979323846;
}
inline float sinpi(float x) {
    double r, a = pi_times_reduced(x, r);
    return r == __builtin_trunc(r) ? __builtin_copysignf(0.0f, x) : float(__builtin_sin(a));
}
inline float cospi(float x) {
    double r, a = pi_times_reduced(x, r);
    return __builtin_fabs(r) == 0.5 ? 0.0f : float(__builtin_cos(a));
}
inline float tanpi(float x) {
    double r, a = pi_times_reduced(x, r);
    return r == __builtin_trunc(r) ? __builtin_copysignf(0.0f, x) : float(__builtin_tan(a));
}
// fma of halves, rounded once: a float fma rounded again to half could round twice, so the exact sum is
// rounded to odd in double (the product of two halves is exact there; two-sum gives the sum's error),
// then once to half (a direct, correctly rounded conversion).
inline half fma_half(double a, double b, double c) {
    const double p = a * b, s = p + c;
    const double t = s - p, e = (p - (s - t)) + (c - t);  // s + e == p + c exactly
    uint64_t bits = __builtin_bit_cast(uint64_t, s);
    if (e != 0.0 && __builtin_isfinite(s) && (bits & 1) == 0) bits += (e > 0) == (s > 0) ? 1 : uint64_t(-1);
    return half(__builtin_bit_cast(double, bits));
}
template <class... A> constexpr bool has_bfloat_v = (std::is_same<std::remove_cv_t<A>, bfloat>::value || ...);
}  // namespace __tm

// A call of `name` with a bfloat argument: a compile error that says what to write instead.
#define TM_NO_BFLOAT(name)                                                                           \
    template <class... A, std::enable_if_t<__tm::has_bfloat_v<A...>, int> = 0>                       \
    inline float name(A...) {                                                                        \
        static_assert(__tm::always_false_v<A...>, "MSL 3.1 has no bfloat overload of " #name         \
                      ": pass float(x), and convert a bfloat result back explicitly, bfloat(...)");   \
        return 0.0f;                                                                                 \
    }

namespace metal {

#define TM_VEC_UNARY(name)                                                                           \
    template <class T, int N> inline vec<T, N> name(const vec<T, N>& v) { TM_VEC_LOOP(name(v.__e[i])); }
#define TM_UNARY_F(name, expr)                                                                       \
    inline float name(float x) { return expr; }                                                      \
    inline half name(half h) {                                                                       \
        float x = float(h);                                                                          \
        return half(expr);                                                                           \
    }                                                                                                \
    TM_NO_BFLOAT(name)                                                                               \
    template <class I, std::enable_if_t<std::is_integral<I>::value || std::is_same<I, double>::value, int> = 0> \
    inline float name(I i) { return name(float(i)); }                                                \
    TM_VEC_UNARY(name)

TM_UNARY_F(exp, __builtin_expf(x))
TM_UNARY_F(exp2, __builtin_exp2f(x))
TM_UNARY_F(exp10, __builtin_powf(10.0f, x))
TM_UNARY_F(log, __builtin_logf(x))
TM_UNARY_F(log2, __builtin_log2f(x))
TM_UNARY_F(log10, __builtin_log10f(x))
TM_UNARY_F(sin, __builtin_sinf(x))
TM_UNARY_F(cos, __builtin_cosf(x))
TM_UNARY_F(tan, __builtin_tanf(x))
TM_UNARY_F(asin, __builtin_asinf(x))
TM_UNARY_F(acos, __builtin_acosf(x))
TM_UNARY_F(atan, __builtin_atanf(x))
TM_UNARY_F(sinh, __builtin_sinhf(x))
TM_UNARY_F(cosh, __builtin_coshf(x))
TM_UNARY_F(tanh, __builtin_tanhf(x))
TM_UNARY_F(asinh, __builtin_asinhf(x))
TM_UNARY_F(acosh, __builtin_acoshf(x))
TM_UNARY_F(atanh, __builtin_atanhf(x))
TM_UNARY_F(sqrt, __builtin_sqrtf(x))
TM_UNARY_F(rsqrt, float(1.0 / __builtin_sqrt(double(x))))  // one rounding to float (spec: correctly rounded)
TM_UNARY_F(fabs, __builtin_fabsf(x))
TM_UNARY_F(floor, __builtin_floorf(x))
TM_UNARY_F(ceil, __builtin_ceilf(x))
TM_UNARY_F(round, __builtin_roundf(x))  // halfway cases away from zero
TM_UNARY_F(rint, __builtin_rintf(x))    // halfway cases to even
TM_UNARY_F(trunc, __builtin_truncf(x))
TM_UNARY_F(fract, __tm::fmin(x - __builtin_floorf(x), 0x1.fffffep-1f))
TM_UNARY_F(sign, x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : x == x ? x : 0.0f)
TM_UNARY_F(saturate, __tm::fmin(__tm::fmax(x, 0.0f), 1.0f))
TM_UNARY_F(cospi, __tm::cospi(x))
TM_UNARY_F(sinpi, __tm::sinpi(x))
TM_UNARY_F(tanpi, __tm::tanpi(x))
#undef TM_UNARY_F

// abs: fabs for floating point, the integer abs for integers.
inline float abs(float x) { return __builtin_fabsf(x); }
inline half abs(half x) { return half(__builtin_fabsf(float(x))); }
TM_NO_BFLOAT(abs)
template <class I, std::enable_if_t<std::is_integral<I>::value, int> = 0> inline I abs(I x) {
    return std::is_signed<I>::value && x < 0 ? I(-x) : x;
}
TM_VEC_UNARY(abs)

template <class I, std::enable_if_t<std::is_integral<I>::value, int> = 0> inline I popcount(I x) {
    return I(__builtin_popcountll(uint64_t(std::make_unsigned_t<I>(x))));
}
template <class I, std::enable_if_t<std::is_integral<I>::value, int> = 0> inline I clz(I x) {
    using U = std::make_unsigned_t<I>;
    constexpr int bits = 8 * sizeof(I);
    return x == 0 ? I(bits) : I(__builtin_clzll(uint64_t(U(x))) - (64 - bits));
}
template <class I, std::enable_if_t<std::is_integral<I>::value, int> = 0> inline I ctz(I x) {
    return x == 0 ? I(8 * sizeof(I)) : I(__builtin_ctzll(uint64_t(std::make_unsigned_t<I>(x))));
}
template <class I, std::enable_if_t<std::is_integral<I>::value && sizeof(I) <= 4, int> = 0>
inline I mulhi(I a, I b) {
    using W = std::conditional_t<std::is_signed<I>::value, int64_t, uint64_t>;
    return I((W(a) * W(b)) >> (8 * sizeof(I)));
}
TM_VEC_UNARY(popcount)
TM_VEC_UNARY(clz)
TM_VEC_UNARY(ctz)
#undef TM_VEC_UNARY

#define TM_VEC_BINARY(name)                                                                          \
    template <class T, int N> inline vec<T, N> name(const vec<T, N>& a, const vec<T, N>& b) {        \
        TM_VEC_LOOP(name(a.__e[i], b.__e[i]));                                                       \
    }                                                                                                \
    template <class T, int N, class S, std::enable_if_t<__tm::is_num_v<S>, int> = 0>                 \
    inline vec<T, N> name(const vec<T, N>& a, S b) {                                                 \
        TM_VEC_LOOP(name(a.__e[i], T(b)));                                                           \
    }
#define TM_BINARY_F(name, expr)                                                                      \
    inline float name(float x, float y) { return expr; }                                             \
    inline half name(half hx, half hy) {                                                             \
        float x = float(hx), y = float(hy);                                                          \
        return half(expr);                                                                           \
    }                                                                                                \
    TM_NO_BFLOAT(name)                                                                               \
    TM_VEC_BINARY(name)

TM_BINARY_F(pow, __builtin_powf(x, y))
TM_BINARY_F(powr, __builtin_powf(x, y))
TM_BINARY_F(fmin, __tm::fmin(x, y))  // the non-NaN operand, as Metal
TM_BINARY_F(fmax, __tm::fmax(x, y))
TM_BINARY_F(fmod, __builtin_fmodf(x, y))
TM_BINARY_F(atan2, __builtin_atan2f(x, y))
TM_BINARY_F(copysign, __builtin_copysignf(x, y))
TM_BINARY_F(fdim, __builtin_fdimf(x, y))
TM_BINARY_F(step, y < x ? 0.0f : 1.0f)  // step(edge, x)
TM_BINARY_F(divide, x / y)
#undef TM_BINARY_F

// min/max: fmin/fmax semantics for floating point, the usual ones for integers.
inline float min(float x, float y) { return __tm::fmin(x, y); }
inline float max(float x, float y) { return __tm::fmax(x, y); }
inline half min(half x, half y) { return half(__tm::fmin(float(x), float(y))); }
inline half max(half x, half y) { return half(__tm::fmax(float(x), float(y))); }
TM_NO_BFLOAT(min)
TM_NO_BFLOAT(max)
template <class I, std::enable_if_t<std::is_integral<I>::value, int> = 0> inline I min(I x, I y) { return y < x ? y : x; }
template <class I, std::enable_if_t<std::is_integral<I>::value, int> = 0> inline I max(I x, I y) { return x < y ? y : x; }
TM_VEC_BINARY(min)
TM_VEC_BINARY(max)
#undef TM_VEC_BINARY

#define TM_TERNARY_F(name, expr)                                                                     \
    inline float name(float x, float y, float z) { return expr; }                                    \
    inline half name(half hx, half hy, half hz) {                                                    \
        float x = float(hx), y = float(hy), z = float(hz);                                           \
        return half(expr);                                                                           \
    }                                                                                                \
    TM_NO_BFLOAT(name)                                                                               \
    template <class T, int N>                                                                        \
    inline vec<T, N> name(const vec<T, N>& a, const vec<T, N>& b, const vec<T, N>& c) {              \
        TM_VEC_LOOP(name(a.__e[i], b.__e[i], c.__e[i]));                                             \
    }
TM_TERNARY_F(mix, x + (y - x) * z)
#undef TM_TERNARY_F

// fma: x*y+z rounded once (MSL spec Tables 8.1 and 8.3: correctly rounded in float and half).
inline float fma(float x, float y, float z) { return __builtin_fmaf(x, y, z); }
inline half fma(half x, half y, half z) { return __tm::fma_half(double(x), double(y), double(z)); }
TM_NO_BFLOAT(fma)
template <class T, int N> inline vec<T, N> fma(const vec<T, N>& a, const vec<T, N>& b, const vec<T, N>& c) {
    TM_VEC_LOOP(fma(a.__e[i], b.__e[i], c.__e[i]));
}
template <class T, int N, class S, std::enable_if_t<__tm::is_num_v<S>, int> = 0>
inline vec<T, N> mix(const vec<T, N>& a, const vec<T, N>& b, S t) {
    TM_VEC_LOOP(mix(a.__e[i], b.__e[i], T(t)));
}

// MSL declares clamp once per type: a float x takes float bounds (a literal converts), but an integer
// clamp of two types (clamp(long, int, int)) matches two overloads equally well, which Apple's compiler
// rejects as ambiguous; here the three integers must have one type (as min and max above).
template <class T, std::enable_if_t<__tm::is_plain_v<T> && !std::is_integral<T>::value, int> = 0>
inline T clamp(T x, __tm::id_t<T> lo, __tm::id_t<T> hi) {
    return min(max(x, lo), hi);
}
template <class I, std::enable_if_t<std::is_integral<I>::value, int> = 0> inline I clamp(I x, I lo, I hi) {
    return min(max(x, lo), hi);
}
TM_NO_BFLOAT(clamp)
template <class T, int N> inline vec<T, N> clamp(const vec<T, N>& x, const vec<T, N>& lo, const vec<T, N>& hi) {
    return min(max(x, lo), hi);
}
template <class T, int N> inline vec<T, N> clamp(const vec<T, N>& x, __tm::id_t<T> lo, __tm::id_t<T> hi) {
    return min(max(x, vec<T, N>(lo)), vec<T, N>(hi));
}

// Geometric functions.
template <class T, int N> inline T dot(const vec<T, N>& a, const vec<T, N>& b) {
    T s = a.__e[0] * b.__e[0];
    for (int i = 1; i < N; ++i) s = T(s + a.__e[i] * b.__e[i]);
    return s;
}
template <class T, int N> inline T length(const vec<T, N>& a) { return sqrt(dot(a, a)); }
template <class T, int N> inline T length_squared(const vec<T, N>& a) { return dot(a, a); }
template <class T, int N> inline T distance(const vec<T, N>& a, const vec<T, N>& b) { return length(a - b); }
template <class T, int N> inline vec<T, N> normalize(const vec<T, N>& a) { return a * rsqrt(dot(a, a)); }
template <class T> inline vec<T, 3> cross(const vec<T, 3>& a, const vec<T, 3>& b) {
    return vec<T, 3>(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x);
}

// Relational functions.
#define TM_PREDICATE(name, expr)                                                                     \
    inline bool name(float x) { return expr; }                                                       \
    inline bool name(half h) {                                                                       \
        float x = float(h);                                                                          \
        return expr;                                                                                 \
    }                                                                                                \
    TM_NO_BFLOAT(name)                                                                               \
    template <class T, int N> inline vec<bool, N> name(const vec<T, N>& v) {                         \
        vec<bool, N> r;                                                                              \
        for (int i = 0; i < N; ++i) r.__e[i] = name(v.__e[i]);                                       \
        return r;                                                                                    \
    }
TM_PREDICATE(isnan, __builtin_isnan(x))
TM_PREDICATE(isinf, __builtin_isinf(x))
TM_PREDICATE(isfinite, __builtin_isfinite(x))
TM_PREDICATE(isnormal, __builtin_isnormal(x))
TM_PREDICATE(signbit, __builtin_signbit(x) != 0)
#undef TM_PREDICATE

inline bool all(bool b) { return b; }
inline bool any(bool b) { return b; }
template <int N> inline bool all(const vec<bool, N>& v) {
    for (int i = 0; i < N; ++i)
        if (!v.__e[i]) return false;
    return true;
}
template <int N> inline bool any(const vec<bool, N>& v) {
    for (int i = 0; i < N; ++i)
        if (v.__e[i]) return true;
    return false;
}

// select(a, b, c): c ? b : a, elementwise for vectors.
template <class T, std::enable_if_t<!__tm::has_bfloat_v<T>, int> = 0> inline T select(T a, T b, bool c) {
    return c ? b : a;
}
TM_NO_BFLOAT(select)
template <class T, int N> inline vec<T, N> select(const vec<T, N>& a, const vec<T, N>& b, const vec<bool, N>& c) {
    TM_VEC_LOOP(c.__e[i] ? b.__e[i] : a.__e[i]);
}

// as_type<T>(x): reinterpret the bits.
template <class T, class U> inline T as_type(const U& u) {
    static_assert(sizeof(T) == sizeof(U), "as_type<T>(x): T and x must have the same size");
    return __builtin_bit_cast(T, u);
}
#undef TM_VEC_LOOP

// Every metal:: math function again in metal::precise and metal::fast (the CPU has one kind).
#define TM_MATH_NAMES(X)                                                                             \
    X(exp) X(exp2) X(exp10) X(log) X(log2) X(log10) X(sin) X(cos) X(tan) X(asin) X(acos) X(atan)    \
    X(sinh) X(cosh) X(tanh) X(asinh) X(acosh) X(atanh) X(sqrt) X(rsqrt) X(fabs) X(abs) X(floor)      \
    X(ceil) X(round) X(rint) X(trunc) X(fract) X(sign) X(saturate) X(cospi) X(sinpi) X(tanpi) X(pow) \
    X(powr) X(fmin) X(fmax) X(min) X(max) X(fmod) X(atan2) X(copysign) X(fdim) X(step) X(divide)    \
    X(fma) X(mix) X(clamp) X(dot) X(length) X(distance) X(normalize) X(isnan) X(isinf) X(isfinite)
#define TM_USING(name) using metal::name;
namespace precise {
TM_MATH_NAMES(TM_USING)
}
namespace fast {
TM_MATH_NAMES(TM_USING)
}
#undef TM_USING
#undef TM_MATH_NAMES
#undef TM_NO_BFLOAT

// numeric_limits for the scalar types.
template <class T> struct numeric_limits;
#define TM_LIMITS(T, lo, hi, low, eps, inf, nan)                                                     \
    template <> struct numeric_limits<T> {                                                           \
        static constexpr bool is_specialized = true;                                                 \
        static constexpr T min() { return lo; }                                                      \
        static constexpr T max() { return hi; }                                                      \
        static constexpr T lowest() { return low; }                                                  \
        static constexpr T epsilon() { return eps; }                                                 \
        static constexpr T infinity() { return inf; }                                                \
        static constexpr T quiet_NaN() { return nan; }                                               \
    };
TM_LIMITS(float, FLT_MIN, FLT_MAX, -FLT_MAX, FLT_EPSILON, __builtin_inff(), __builtin_nanf(""))
TM_LIMITS(half, HALF_MIN, HALF_MAX, -HALF_MAX, HALF_EPSILON, half(__builtin_inff()), half(__builtin_nanf("")))
TM_LIMITS(bool, false, true, false, false, false, false)
TM_LIMITS(signed char, SCHAR_MIN, SCHAR_MAX, SCHAR_MIN, 0, 0, 0)
TM_LIMITS(char, CHAR_MIN, CHAR_MAX, CHAR_MIN, 0, 0, 0)
TM_LIMITS(uchar, 0, UCHAR_MAX, 0, 0, 0, 0)
TM_LIMITS(short, SHRT_MIN, SHRT_MAX, SHRT_MIN, 0, 0, 0)
TM_LIMITS(ushort, 0, USHRT_MAX, 0, 0, 0, 0)
TM_LIMITS(int, INT_MIN, INT_MAX, INT_MIN, 0, 0, 0)
TM_LIMITS(uint, 0, UINT_MAX, 0, 0, 0, 0)
TM_LIMITS(long, LONG_MIN, LONG_MAX, LONG_MIN, 0, 0, 0)
TM_LIMITS(ulong, 0, ULONG_MAX, 0, 0, 0, 0)
#undef TM_LIMITS
template <> struct numeric_limits<bfloat> {
    static constexpr bool is_specialized = true;
    static bfloat min() { return bfloat(0x1p-126f); }
    static bfloat max() { return bfloat(0x1.fep+127f); }
    static bfloat lowest() { return bfloat(-0x1.fep+127f); }
    static bfloat epsilon() { return bfloat(0x1p-7f); }
    static bfloat infinity() { return bfloat(__builtin_inff()); }
    static bfloat quiet_NaN() { return bfloat(__builtin_nanf("")); }
};

// ---------------------------------------------------------------------------------------------
// Atomics: real CPU atomics, since threadgroups run on parallel OS threads.
// ---------------------------------------------------------------------------------------------
// The orders MSL 3.2 has (6.15.4.2): atomic functions take relaxed only, atomic_thread_fence also
// seq_cst; acquire/release/acq_rel arrive with Metal 4.1, which we do not target.
enum memory_order {
    memory_order_relaxed,
    memory_order_seq_cst
};

template <class T> struct _atomic {
    // MSL's atomic types are atomic_int, atomic_uint, atomic_bool, atomic_float and atomic_ulong (2.6).
    static_assert(std::is_same<T, int>::value || std::is_same<T, uint>::value || std::is_same<T, bool>::value ||
                      std::is_same<T, float>::value || std::is_same<T, ulong>::value,
                  "Metal's atomic types are atomic<int>, <uint>, <bool>, <float> and <ulong> (no atomic<long>, "
                  "<half>, <bfloat>, 8- or 16-bit atomics)");
    T __v;
};
template <class T> using atomic = _atomic<T>;
typedef _atomic<int> atomic_int;
typedef _atomic<uint> atomic_uint;
typedef _atomic<float> atomic_float;
typedef _atomic<bool> atomic_bool;
typedef _atomic<ulong> atomic_ulong;

namespace __atomic_impl {
constexpr int order(memory_order o) { return o == memory_order_relaxed ? __ATOMIC_RELAXED : __ATOMIC_SEQ_CST; }

// Read-modify-write by compare-exchange: for floats and for min/max.
template <class T, class F> inline T rmw(volatile _atomic<T>* o, F f, memory_order mo) {
    T old;
    __atomic_load(&o->__v, &old, __ATOMIC_RELAXED);
    T next;
    do {
        next = f(old);
    } while (!__atomic_compare_exchange(&o->__v, &old, &next, true, order(mo), __ATOMIC_RELAXED));
    return old;
}
// atomic_ulong has atomic_max_explicit and atomic_min_explicit only (MSL 6.15.4.6, below).
template <class T> constexpr bool general = !std::is_same<T, ulong>::value;
#define TM_NOT_ULONG(T)                                                                              \
    static_assert(__atomic_impl::general<T>, "Metal's atomic_ulong has atomic_max_explicit and "     \
                                             "atomic_min_explicit only (MSL 6.15.4.6)")
}  // namespace __atomic_impl

template <class T> inline void atomic_store_explicit(volatile _atomic<T>* o, __tm::id_t<T> v, memory_order mo) {
    TM_NOT_ULONG(T);
    __atomic_store(&o->__v, &v, __atomic_impl::order(mo));
}
template <class T> inline T atomic_load_explicit(const volatile _atomic<T>* o, memory_order mo) {
    TM_NOT_ULONG(T);
    T r;
    __atomic_load(&o->__v, &r, __atomic_impl::order(mo));
    return r;
}
template <class T> inline T atomic_exchange_explicit(volatile _atomic<T>* o, __tm::id_t<T> v, memory_order mo) {
    TM_NOT_ULONG(T);
    T r;
    __atomic_exchange(&o->__v, &v, &r, __atomic_impl::order(mo));
    return r;
}
template <class T>
inline bool atomic_compare_exchange_weak_explicit(volatile _atomic<T>* o, T* expected, __tm::id_t<T> desired,
                                                  memory_order success, memory_order failure) {
    TM_NOT_ULONG(T);
    return __atomic_compare_exchange(&o->__v, expected, &desired, false, __atomic_impl::order(success),
                                     __atomic_impl::order(failure) == __ATOMIC_SEQ_CST ? __ATOMIC_SEQ_CST
                                                                                       : __ATOMIC_RELAXED);
}
template <class T>
inline bool atomic_compare_exchange_strong_explicit(volatile _atomic<T>* o, T* expected, __tm::id_t<T> desired,
                                                    memory_order success, memory_order failure) {
    return atomic_compare_exchange_weak_explicit(o, expected, desired, success, failure);
}

#define TM_ATOMIC_INT_OR_CAS(name, builtin, expr)                                                    \
    template <class T> inline T name(volatile _atomic<T>* o, __tm::id_t<T> v, memory_order mo) {     \
        TM_NOT_ULONG(T);                                                                             \
        if constexpr (std::is_integral<T>::value) {                                                  \
            return builtin(&o->__v, v, __atomic_impl::order(mo));                                    \
        } else {                                                                                     \
            return __atomic_impl::rmw(o, [v](T a) { return T(expr); }, mo);                          \
        }                                                                                            \
    }
TM_ATOMIC_INT_OR_CAS(atomic_fetch_add_explicit, __atomic_fetch_add, a + v)
TM_ATOMIC_INT_OR_CAS(atomic_fetch_sub_explicit, __atomic_fetch_sub, a - v)
TM_ATOMIC_INT_OR_CAS(atomic_fetch_and_explicit, __atomic_fetch_and, a & v)
TM_ATOMIC_INT_OR_CAS(atomic_fetch_or_explicit, __atomic_fetch_or, a | v)
TM_ATOMIC_INT_OR_CAS(atomic_fetch_xor_explicit, __atomic_fetch_xor, a ^ v)
#undef TM_ATOMIC_INT_OR_CAS
template <class T> inline T atomic_fetch_max_explicit(volatile _atomic<T>* o, __tm::id_t<T> v, memory_order mo) {
    TM_NOT_ULONG(T);
    return __atomic_impl::rmw(o, [v](T a) { return max(a, v); }, mo);
}
template <class T> inline T atomic_fetch_min_explicit(volatile _atomic<T>* o, __tm::id_t<T> v, memory_order mo) {
    TM_NOT_ULONG(T);
    return __atomic_impl::rmw(o, [v](T a) { return min(a, v); }, mo);
}
#undef TM_NOT_ULONG
// Metal's only 64-bit atomics (MSL 6.15.4.6 "Atomic Modify Functions (64 Bits)"): unsigned max and min
// returning nothing; Apple8 (M2) and later. Which families may call them is codegen's check (its refusal);
// that they take device memory only is the front-end check's (metal_check).
inline void atomic_max_explicit(volatile _atomic<ulong>* o, ulong v, memory_order mo) {
    __atomic_impl::rmw(o, [v](ulong a) { return a > v ? a : v; }, mo);
}
inline void atomic_min_explicit(volatile _atomic<ulong>* o, ulong v, memory_order mo) {
    __atomic_impl::rmw(o, [v](ulong a) { return a < v ? a : v; }, mo);
}

// ---------------------------------------------------------------------------------------------
// Barriers
// ---------------------------------------------------------------------------------------------
enum class mem_flags : uint32_t {
    mem_none = 0,
    mem_device = 1,
    mem_threadgroup = 2,
    mem_texture = 4,
    mem_threadgroup_imageblock = 8,
    mem_object_data = 16,
};
constexpr mem_flags operator|(mem_flags a, mem_flags b) { return mem_flags(uint32_t(a) | uint32_t(b)); }
constexpr mem_flags operator&(mem_flags a, mem_flags b) { return mem_flags(uint32_t(a) & uint32_t(b)); }

// The call into the runtime is opaque to the compiler, so it also orders memory accesses.
inline void threadgroup_barrier(mem_flags = mem_flags::mem_none, uint32_t __line = __builtin_LINE()) {
    TM_KEEP_SITE(tm_rt_barrier(__line));
}

// Fences (MSL 3.2, 6.15.3). Threadgroups run on parallel OS threads, so a real CPU fence is the
// faithful model of a device-scope one; a relaxed fence orders nothing (6.15.4.2).
enum thread_scope {
    thread_scope_thread = 0,
    thread_scope_threadgroup = 1,
    thread_scope_device = 2,
    thread_scope_simdgroup = 4,
};
inline void atomic_thread_fence(mem_flags, memory_order order, thread_scope = thread_scope_device) {
    if (order != memory_order_relaxed) __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

// ---------------------------------------------------------------------------------------------
// SIMD-group collectives (32 lanes). Each call is a rendezvous of the simdgroup's active lanes
// at the same call site (operation + source line); the values come back in a snapshot.
// Reductions are computed once per group, in lane order, and cached in the snapshot.
// ---------------------------------------------------------------------------------------------
struct simd_vote {
    typedef uint64_t vote_t;
    vote_t v;
    explicit constexpr simd_vote(vote_t x = 0) : v(x) {}
    explicit constexpr operator vote_t() const { return v; }
    constexpr bool all() const { return v == 0xffffffffu; }
    constexpr bool any() const { return v != 0; }
};

namespace __simd {
enum op : uint32_t {
    kSum = 1, kProduct, kMin, kMax, kAnd, kOr, kXor, kAll, kAny, kBallot, kActive, kIsFirst,
    kPrefixIncSum, kPrefixExcSum, kPrefixIncProd, kPrefixExcProd, kShuffle, kShuffleXor, kShuffleUp,
    kShuffleDown, kRotateUp, kRotateDown, kBroadcast, kBroadcastFirst, kBarrier
};

template <class T> inline tm_simd_snapshot* enter(const T& x, op o, uint32_t line, uint32_t* lane) {
    static_assert(sizeof(T) <= 16, "simd collectives take values of at most 16 bytes");
    // MSL 3.1's simd_* functions (sum, min, max, prefix scans, shuffles, broadcast) have no bfloat
    // overloads; MLX's bf16_math.h adds its own, through float or ushort, for that reason.
    static_assert(!std::is_same<typename __tm::vec_info<std::remove_cv_t<T>>::elem, bfloat>::value,
                  "MSL 3.1 has no bfloat overload of the simd_* functions: pass float(x) and convert the "
                  "result back explicitly, bfloat(simd_sum(float(x)))");
    alignas(16) unsigned char buf[16] = {};
    __builtin_memcpy(buf, &x, sizeof(T));
    tm_simd_snapshot* s;
    TM_KEEP_SITE(s = tm_rt_simd_exchange(buf, (uint64_t(o) << 32) | line, lane));
    return s;
}
// A kernel split into phases deposits a collective's value at the end of the phase before it.
template <class T> inline void deposit(const T& x) {
    alignas(16) unsigned char buf[16] = {};
    __builtin_memcpy(buf, &x, sizeof(T));
    tm_rt_simd_deposit(buf);
}
template <class T> inline T get(const unsigned char* p) {
    T v;
    __builtin_memcpy(&v, p, sizeof(T));
    return v;
}
template <class T> inline void set(unsigned char* p, const T& v) { __builtin_memcpy(p, &v, sizeof(T)); }

// Metal's integer simd sums and products wrap; C++'s signed `+` and `*` overflow undefined, so
// signed integers combine in their unsigned type (the simulator builds without -fwrapv).
template <class T> inline T add(T a, T b) {
    if constexpr (std::is_integral<T>::value && std::is_signed<T>::value) {
        using U = typename std::make_unsigned<T>::type;
        return T(U(U(a) + U(b)));
    } else {
        return T(a + b);
    }
}
template <class T> inline T mul(T a, T b) {
    if constexpr (std::is_integral<T>::value && std::is_signed<T>::value) {
        using U = typename std::make_unsigned<T>::type;
        return T(U(U(a) * U(b)));
    } else {
        return T(a * b);
    }
}

// The group's reduction, folded in lane order over the lanes that took part.
template <class T, class F> inline T reduce(const T& x, op o, uint32_t line, F f) {
    uint32_t lane;
    tm_simd_snapshot* s = enter(x, o, line, &lane);
    if (!s->cached) {
        uint32_t m = s->mask;
        T acc = get<T>(s->v[__builtin_ctz(m)]);
        for (m &= m - 1; m; m &= m - 1) acc = f(acc, get<T>(s->v[__builtin_ctz(m)]));
        set(s->res[0], acc);
        s->cached = 1;
    }
    return get<T>(s->res[0]);
}

// Inclusive or exclusive scan in lane order over the lanes that took part.
template <class T, class F> inline T scan(const T& x, op o, uint32_t line, bool inclusive, T identity, F f) {
    uint32_t lane;
    tm_simd_snapshot* s = enter(x, o, line, &lane);
    if (!s->cached) {
        T acc = identity;
        for (uint32_t m = s->mask; m; m &= m - 1) {
            const int l = __builtin_ctz(m);
            const T v = get<T>(s->v[l]);
            if (!inclusive) set(s->res[l], acc);
            acc = f(acc, v);
            if (inclusive) set(s->res[l], acc);
        }
        s->cached = 1;
    }
    return get<T>(s->res[lane]);
}

// The value of lane `src`, or x itself when that lane is not active (undefined on Metal).
template <class T> inline T from_lane(const T& x, op o, uint32_t line, uint32_t (*pick)(uint32_t, uint32_t),
                                      uint32_t arg) {
    uint32_t lane;
    tm_simd_snapshot* s = enter(x, o, line, &lane);
    const uint32_t src = pick(lane, arg);
    return src < 32 && (s->mask >> src & 1u) ? get<T>(s->v[src]) : x;
}
}  // namespace __simd

#define TM_LINE uint32_t __line = __builtin_LINE()
template <class T> inline T simd_sum(T x, TM_LINE) {
    return __simd::reduce(x, __simd::kSum, __line, __simd::add<T>);
}
template <class T> inline T simd_product(T x, TM_LINE) {
    return __simd::reduce(x, __simd::kProduct, __line, __simd::mul<T>);
}
template <class T> inline T simd_min(T x, TM_LINE) {
    return __simd::reduce(x, __simd::kMin, __line, [](T a, T b) { return min(a, b); });
}
template <class T> inline T simd_max(T x, TM_LINE) {
    return __simd::reduce(x, __simd::kMax, __line, [](T a, T b) { return max(a, b); });
}
template <class T> inline T simd_and(T x, TM_LINE) {
    return __simd::reduce(x, __simd::kAnd, __line, [](T a, T b) { return T(a & b); });
}
template <class T> inline T simd_or(T x, TM_LINE) {
    return __simd::reduce(x, __simd::kOr, __line, [](T a, T b) { return T(a | b); });
}
template <class T> inline T simd_xor(T x, TM_LINE) {
    return __simd::reduce(x, __simd::kXor, __line, [](T a, T b) { return T(a ^ b); });
}
inline bool simd_all(bool x, TM_LINE) {
    return __simd::reduce(x, __simd::kAll, __line, [](bool a, bool b) { return a && b; });
}
inline bool simd_any(bool x, TM_LINE) {
    return __simd::reduce(x, __simd::kAny, __line, [](bool a, bool b) { return a || b; });
}
template <class T> inline T simd_prefix_inclusive_sum(T x, TM_LINE) {
    return __simd::scan(x, __simd::kPrefixIncSum, __line, true, T(0), __simd::add<T>);
}
template <class T> inline T simd_prefix_exclusive_sum(T x, TM_LINE) {
    return __simd::scan(x, __simd::kPrefixExcSum, __line, false, T(0), __simd::add<T>);
}
template <class T> inline T simd_prefix_inclusive_product(T x, TM_LINE) {
    return __simd::scan(x, __simd::kPrefixIncProd, __line, true, T(1), __simd::mul<T>);
}
template <class T> inline T simd_prefix_exclusive_product(T x, TM_LINE) {
    return __simd::scan(x, __simd::kPrefixExcProd, __line, false, T(1), __simd::mul<T>);
}

template <class T> inline T simd_shuffle(T x, uint32_t src, TM_LINE) {
    return __simd::from_lane(x, __simd::kShuffle, __line, [](uint32_t, uint32_t s) { return s; }, src);
}
template <class T> inline T simd_broadcast(T x, uint32_t src, TM_LINE) {
    return __simd::from_lane(x, __simd::kBroadcast, __line, [](uint32_t, uint32_t s) { return s; }, src);
}
template <class T> inline T simd_shuffle_xor(T x, uint32_t mask, TM_LINE) {
    return __simd::from_lane(x, __simd::kShuffleXor, __line, [](uint32_t l, uint32_t m) { return (l ^ m) & 31u; },
                             mask);
}
template <class T> inline T simd_shuffle_up(T x, uint32_t delta, TM_LINE) {  // lower lanes keep x
    return __simd::from_lane(x, __simd::kShuffleUp, __line,
                             [](uint32_t l, uint32_t d) { return l >= d ? l - d : 32u; }, delta);
}
template <class T> inline T simd_shuffle_down(T x, uint32_t delta, TM_LINE) {  // upper lanes keep x
    return __simd::from_lane(x, __simd::kShuffleDown, __line, [](uint32_t l, uint32_t d) { return l + d; }, delta);
}
template <class T> inline T simd_shuffle_rotate_up(T x, uint32_t delta, TM_LINE) {
    return __simd::from_lane(x, __simd::kRotateUp, __line, [](uint32_t l, uint32_t d) { return (l - d) & 31u; },
                             delta);
}
template <class T> inline T simd_shuffle_rotate_down(T x, uint32_t delta, TM_LINE) {
    return __simd::from_lane(x, __simd::kRotateDown, __line, [](uint32_t l, uint32_t d) { return (l + d) & 31u; },
                             delta);
}
template <class T> inline T simd_broadcast_first(T x, TM_LINE) {
    uint32_t lane;
    tm_simd_snapshot* s = __simd::enter(x, __simd::kBroadcastFirst, __line, &lane);
    return __simd::get<T>(s->v[__builtin_ctz(s->mask)]);
}
inline simd_vote simd_ballot(bool x, TM_LINE) {
    uint32_t lane;
    tm_simd_snapshot* s = __simd::enter(x, __simd::kBallot, __line, &lane);
    uint64_t v = 0;
    for (uint32_t m = s->mask; m; m &= m - 1)
        if (__simd::get<bool>(s->v[__builtin_ctz(m)])) v |= uint64_t(1) << __builtin_ctz(m);
    return simd_vote(v);
}
inline simd_vote simd_active_threads_mask(TM_LINE) {
    uint32_t lane;
    return simd_vote(__simd::enter(0, __simd::kActive, __line, &lane)->mask);
}
inline bool simd_is_first(TM_LINE) {
    uint32_t lane;
    tm_simd_snapshot* s = __simd::enter(0, __simd::kIsFirst, __line, &lane);
    return lane == uint32_t(__builtin_ctz(s->mask));
}
inline void simdgroup_barrier(mem_flags = mem_flags::mem_none, TM_LINE) {
    uint32_t lane;
    __simd::enter(0, __simd::kBarrier, __line, &lane);
}
#undef TM_LINE

}  // namespace metal

#include "metal_simdgroup_matrix.h"  // simdgroup_matrix (8x8), shared by the lanes of a simdgroup
#ifdef TM_SIM_INSTRUMENT
#include "tm_instrument.h"  // strict mode and traffic counters: checked device/threadgroup pointers
#endif

// ---------------------------------------------------------------------------------------------
// Helpers for the generated dispatch trampoline (see trampoline.py).
// ---------------------------------------------------------------------------------------------
namespace __tm {
template <size_t I, class... A> struct nth;
template <class H, class... T> struct nth<0, H, T...> { using type = H; };
template <size_t I, class H, class... T> struct nth<I, H, T...> { using type = typename nth<I - 1, T...>::type; };
template <class F, size_t I> struct param;
template <class R, class... A, size_t I> struct param<R (*)(A...), I> { using type = typename nth<I, A...>::type; };
// The type of parameter I of function pointer type F, exactly as the kernel declares it.
template <class F, size_t I> using param_t = typename param<F, I>::type;

// A [[buffer(i)]] argument: a pointer, or a reference to (or copy of) the buffer's contents.
#ifndef TM_SIM_INSTRUMENT  // (tm_instrument.h has the instrumented version)
template <class P> inline P buffer_arg(void* p, int32_t /*slot*/) {
    if constexpr (std::is_pointer<P>::value) {
        return static_cast<P>(p);
    } else {
        return *static_cast<std::remove_reference_t<P>*>(p);
    }
}
// A [[threadgroup(i)]] argument: a pointer into the threadgroup's memory.
template <class P> inline P threadgroup_arg(void* p) { return static_cast<P>(p); }
#endif
// A builtin argument from its (x, y, z) value: scalars take x, vectors their first components.
template <class P> inline P builtin_arg(uint32_t x, uint32_t y, uint32_t z) {
    using D = std::remove_cv_t<std::remove_reference_t<P>>;
    if constexpr (vec_info<D>::n == 1) {
        return D(x);
    } else if constexpr (vec_info<D>::n == 2) {
        return D(x, y);
    } else {
        return D(x, y, z);
    }
}
}  // namespace __tm

// ---------------------------------------------------------------------------------------------
// MSL keywords, last: address spaces are empty (one flat address space on the CPU) and a kernel
// is an ordinary function that the trampoline calls.
// ---------------------------------------------------------------------------------------------
#define device
#define constant
#define threadgroup
#define thread
#define kernel static
// `coherent(device) device T*` (MSL 3.2, 4.8 Memory Coherency): CPU memory is coherent already.
#define coherent(scope)

#endif  // TM_METAL_SHIM_H
