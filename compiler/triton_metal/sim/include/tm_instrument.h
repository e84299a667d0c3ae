// Instrumented builds (-DTM_SIM_INSTRUMENT): strict mode and traffic counters.
//
// msl_prepass.py rewrites `device T*` to __tm::ptr<T, TM_SPACE_DEVICE> and `threadgroup T*` (and
// kernel-scope threadgroup arrays) to __tm::ptr<T, TM_SPACE_THREADGROUP>, and puts a marker
// `__TM_SITE(line);` before every statement of the kernel. Dereferencing a ptr gives a ref: reading
// it is a load, assigning it a store, and each is reported to the runtime (tm_rt_access) with the
// MSL line of the statement and the [[buffer(i)]] the pointer was derived from. The address
// spaces are distinct types, so code that mixes device, threadgroup and constant pointers does not
// compile, as with Apple's compiler; `constant` pointers and references are read-only. Normal
// builds use plain pointers and none of this.
#ifndef TM_INSTRUMENT_H
#define TM_INSTRUMENT_H

namespace __tm {

template <class T, uint32_t Space> struct ptr;
template <class T, uint32_t Space> struct ref;

template <class T> struct unref { using type = T; };
template <class T, uint32_t S> struct unref<ref<T, S>> { using type = std::remove_cv_t<T>; };
// A ref as the value it holds (a load); anything else unchanged.
template <class U> inline typename unref<U>::type value(const U& u) { return u; }

// One element of device or threadgroup memory as an lvalue: reading it is a load, assigning it
// a store.
template <class T, uint32_t Space> struct ref {
    using V = std::remove_cv_t<T>;
    T* p;
    int32_t slot;

    // The alignment the type requires goes along (strict mode checks it: a float4 access must be
    // 16-byte aligned on Metal, a packed_float4 one 4-byte aligned).
    void note(uint32_t kind) const {
        constexpr uint32_t align_log2 = __builtin_ctz(alignof(T));
        tm_rt_access(p, sizeof(T), kind | align_log2 << TM_ACCESS_ALIGN_SHIFT, Space, slot, site_line);
    }
    operator V() const {
        note(TM_ACCESS_LOAD);
        return *p;
    }
    // An explicit conversion of the loaded value, e.g. float(p[i]) of a bfloat element (C++ does not
    // chain the element's own conversion after operator V()).
    template <class U, std::enable_if_t<!std::is_same<U, V>::value && std::is_constructible<U, V>::value, int> = 0>
    explicit operator U() const {
        return U(V(*this));
    }
    template <class U> const ref& operator=(const U& v) const {
        // The right side first (it may load from the same place), converted implicitly as a plain
        // `*p = v` would be: no bfloat element from a float.
        const V x = value(v);
        // A store of the value already there is flagged: threads that write the same value (as
        // replicated threads of a layout do) do not race in any way that matters.
        const bool same = Space == TM_SPACE_THREADGROUP && __builtin_memcmp(p, &x, sizeof(V)) == 0;
        note(TM_ACCESS_STORE | (same ? TM_ACCESS_SAME_VALUE : 0u));
        *p = x;
        return *this;
    }
    const ref& operator=(const ref& o) const { return *this = V(o); }
    ptr<T, Space> operator&() const { return ptr<T, Space>(p, slot); }
#define TM_REF_COMPOUND(op)                                                                          \
    template <class U> const ref& operator op##=(const U& v) const {                                 \
        V x = *this;                                                                                 \
        x op##= value(v);                                                                            \
        return *this = x;                                                                            \
    }
    TM_REF_COMPOUND(+)
    TM_REF_COMPOUND(-)
    TM_REF_COMPOUND(*)
    TM_REF_COMPOUND(/)
    TM_REF_COMPOUND(%)
    TM_REF_COMPOUND(&)
    TM_REF_COMPOUND(|)
    TM_REF_COMPOUND(^)
    TM_REF_COMPOUND(<<)
    TM_REF_COMPOUND(>>)
#undef TM_REF_COMPOUND
    const ref& operator++() const { return *this += 1; }
    const ref& operator--() const { return *this -= 1; }
    V operator++(int) const {
        V x = *this;
        *this = x + 1;
        return x;
    }
    V operator--(int) const {
        V x = *this;
        *this = x - 1;
        return x;
    }
};

template <class I> using if_index = std::enable_if_t<std::is_integral<I>::value, int>;

// 8- and 16-bit atomics (msl_helpers.subword_atomic): Metal has none, so the generated helper takes the
// aligned 32-bit word holding the element, `(device atomic_uint*)((ulong)p & ~3ul)`, and
// compare-and-swaps it whole. Strict mode checks that word access as an access to the element only:
// the word's other bytes are written back with the values the exchange compared, and the word of the
// last element of a buffer whose size is not a multiple of 4 reaches up to 3 bytes past the buffer's
// end, memory that exists on Metal (buffers are page-granular) and that the kernel does not change.
// So `(ulong)p` of a pointer to a 1- or 2-byte element remembers the element here, and a pointer to a
// 32-bit type made from an integer whose word holds it takes the element (and its buffer) along.
struct narrow_address {
    const void* p = nullptr;
    uint32_t bytes = 0;
    int32_t slot = -1;
};
static thread_local narrow_address last_narrow_address;

// A device or threadgroup pointer that remembers the buffer slot it was derived from.
template <class T, uint32_t Space> struct ptr {
    T* p = nullptr;
    int32_t slot = -1;
    const void* elem = nullptr;  // for a sub-word atomic's word: the element the access is checked as
    uint32_t elem_bytes = 0;

    ptr() = default;
    ptr(std::nullptr_t) {}
    explicit ptr(T* q, int32_t s = -1) : p(q), slot(s) {}
    // T* -> const T*, as for plain pointers
    template <class U, std::enable_if_t<std::is_convertible<U*, T*>::value && !std::is_same<U, T>::value, int> = 0>
    ptr(const ptr<U, Space>& o) : p(o.p), slot(o.slot) {}
    // Explicit casts within one address space: (device char*)p, (threadgroup float*)float4_ptr
    template <class U, std::enable_if_t<!std::is_convertible<U*, T*>::value, int> = 0>
    explicit ptr(const ptr<U, Space>& o) : p(reinterpret_cast<T*>(o.p)), slot(o.slot) {}
    // (ulong)p and (device T*)address: pointers as integers and back (see narrow_address).
    template <class I, if_index<I> = 0> explicit operator I() const {
        if (sizeof(T) < 4) last_narrow_address = {p, uint32_t(sizeof(T)), slot};
        return I(reinterpret_cast<uintptr_t>(p));
    }
    template <class I, if_index<I> = 0> explicit ptr(I a) : p(reinterpret_cast<T*>(uintptr_t(a))) {
        const narrow_address n = last_narrow_address;
        if (sizeof(T) == 4 && n.p != nullptr && reinterpret_cast<uintptr_t>(n.p) - uintptr_t(a) < 4) {
            elem = n.p;
            elem_bytes = n.bytes;
            slot = n.slot;
            last_narrow_address = {};
        }
    }

    template <class U = T> decltype(auto) operator*() const { return (*this)[0]; }
    template <class I, if_index<I> = 0> auto operator[](I i) const {
        if constexpr (std::is_array<T>::value) {  // a row of a multi-dimensional threadgroup array
            return ptr<std::remove_extent_t<T>, Space>(p[i], slot);
        } else {
            return ref<T, Space>{p + i, slot};
        }
    }
    T* operator->() const { return p; }  // member access is not checked or counted
    template <class I, if_index<I> = 0> ptr operator+(I i) const { return ptr(p + i, slot); }
    template <class I, if_index<I> = 0> ptr operator-(I i) const { return ptr(p - i, slot); }
    template <class I, if_index<I> = 0> friend ptr operator+(I i, const ptr& q) { return q + i; }
    ptrdiff_t operator-(const ptr& o) const { return p - o.p; }
    template <class I, if_index<I> = 0> ptr& operator+=(I i) { return *this = *this + i; }
    template <class I, if_index<I> = 0> ptr& operator-=(I i) { return *this = *this - i; }
    ptr& operator++() { return *this += 1; }
    ptr& operator--() { return *this -= 1; }
    ptr operator++(int) {
        ptr old = *this;
        ++*this;
        return old;
    }
    ptr operator--(int) {
        ptr old = *this;
        --*this;
        return old;
    }
    explicit operator bool() const { return p != nullptr; }
    friend bool operator==(const ptr& a, const ptr& b) { return a.p == b.p; }
    friend bool operator!=(const ptr& a, const ptr& b) { return a.p != b.p; }
    friend bool operator<(const ptr& a, const ptr& b) { return a.p < b.p; }
    friend bool operator<=(const ptr& a, const ptr& b) { return a.p <= b.p; }
    friend bool operator>(const ptr& a, const ptr& b) { return a.p > b.p; }
    friend bool operator>=(const ptr& a, const ptr& b) { return a.p >= b.p; }
};

template <class T> using device_ptr = ptr<T, TM_SPACE_DEVICE>;
template <class T> using threadgroup_ptr = ptr<T, TM_SPACE_THREADGROUP>;
// constant memory is read-only: a store through it does not compile (ref<const T>).
template <class T> using constant_ptr = ptr<const T, TM_SPACE_CONSTANT>;

// A kernel-scope `threadgroup T name[N]...;` (a pointer to its first row) or `threadgroup T name;`
// (a ref), from the address tm_rt_tg_alloc returned.
template <class A> inline auto threadgroup_decl(void* mem) {
    if constexpr (std::is_array<A>::value) {
        return threadgroup_ptr<std::remove_extent_t<A>>(static_cast<std::remove_extent_t<A>*>(mem));
    } else {
        return ref<A, TM_SPACE_THREADGROUP>{static_cast<A*>(mem), -1};
    }
}

// A [[buffer(i)]] argument of an instrumented kernel.
template <class P> inline P buffer_arg(void* p, int32_t slot);
template <class P> inline P threadgroup_arg(void* p);
template <class P> struct is_ptr : std::false_type {};
template <class T, uint32_t S> struct is_ptr<ptr<T, S>> : std::true_type {};
}  // namespace __tm

#define __TM_SITE(line) (__tm::site_line = (line))

namespace __tm {
template <class T> struct is_ref : std::false_type {};
template <class T, uint32_t S> struct is_ref<ref<T, S>> : std::true_type {};
template <class... A> constexpr bool any_ref_v = (is_ref<A>::value || ...);
}  // namespace __tm

// Generic metal:: functions given a ref (a load written inline, as in `select(p[i], 0.0f, c)`)
// deduce their template arguments from the loaded value instead.
namespace metal {
#define TM_UNREF(name)                                                                               \
    template <class... A, std::enable_if_t<__tm::any_ref_v<A...>, int> = 0>                          \
    inline auto name(const A&... a)->decltype(name(__tm::value(a)...)) {                             \
        return name(__tm::value(a)...);                                                              \
    }
TM_UNREF(select)
TM_UNREF(clamp)
TM_UNREF(mix)
TM_UNREF(dot)
TM_UNREF(abs)
TM_UNREF(min)
TM_UNREF(max)
#undef TM_UNREF
template <class T, class U, uint32_t S> inline T as_type(const __tm::ref<U, S>& r) {
    return as_type<T>(__tm::value(r));
}
// simd collectives keep the caller's line (their rendezvous site).
#define TM_UNREF_SIMD1(name)                                                                         \
    template <class T, uint32_t S> inline auto name(const __tm::ref<T, S>& x, uint32_t __line = __builtin_LINE()) { \
        return name(__tm::value(x), __line);                                                         \
    }
#define TM_UNREF_SIMD2(name)                                                                         \
    template <class T, uint32_t S>                                                                   \
    inline auto name(const __tm::ref<T, S>& x, uint32_t arg, uint32_t __line = __builtin_LINE()) {   \
        return name(__tm::value(x), arg, __line);                                                    \
    }
TM_UNREF_SIMD1(simd_sum)
TM_UNREF_SIMD1(simd_product)
TM_UNREF_SIMD1(simd_min)
TM_UNREF_SIMD1(simd_max)
TM_UNREF_SIMD1(simd_and)
TM_UNREF_SIMD1(simd_or)
TM_UNREF_SIMD1(simd_xor)
TM_UNREF_SIMD1(simd_prefix_inclusive_sum)
TM_UNREF_SIMD1(simd_prefix_exclusive_sum)
TM_UNREF_SIMD1(simd_prefix_inclusive_product)
TM_UNREF_SIMD1(simd_prefix_exclusive_product)
TM_UNREF_SIMD1(simd_broadcast_first)
TM_UNREF_SIMD2(simd_shuffle)
TM_UNREF_SIMD2(simd_broadcast)
TM_UNREF_SIMD2(simd_shuffle_xor)
TM_UNREF_SIMD2(simd_shuffle_up)
TM_UNREF_SIMD2(simd_shuffle_down)
TM_UNREF_SIMD2(simd_shuffle_rotate_up)
TM_UNREF_SIMD2(simd_shuffle_rotate_down)
#undef TM_UNREF_SIMD1
#undef TM_UNREF_SIMD2
}  // namespace metal

namespace __tm {
// The access an atomic through `o` reports: its element (a sub-word atomic's word), else *o.
template <class T, uint32_t S> inline void note_atomic(const ptr<metal::_atomic<T>, S>& o) {
    if (o.elem != nullptr)
        tm_rt_access(o.elem, o.elem_bytes, TM_ACCESS_ATOMIC, S, o.slot, site_line);
    else
        tm_rt_access(o.p, sizeof(T), TM_ACCESS_ATOMIC, S, o.slot, site_line);
}
}  // namespace __tm

namespace metal {
// Atomics through instrumented pointers: counted and checked, then done on the plain pointer.
#define TM_ATOMIC_RMW(name)                                                                          \
    template <class T, uint32_t S>                                                                   \
    inline T name(__tm::ptr<_atomic<T>, S> o, __tm::id_t<T> v, memory_order mo) {                    \
        __tm::note_atomic(o);                                                                        \
        return name(o.p, v, mo);                                                                     \
    }
TM_ATOMIC_RMW(atomic_exchange_explicit)
TM_ATOMIC_RMW(atomic_fetch_add_explicit)
TM_ATOMIC_RMW(atomic_fetch_sub_explicit)
TM_ATOMIC_RMW(atomic_fetch_and_explicit)
TM_ATOMIC_RMW(atomic_fetch_or_explicit)
TM_ATOMIC_RMW(atomic_fetch_xor_explicit)
TM_ATOMIC_RMW(atomic_fetch_max_explicit)
TM_ATOMIC_RMW(atomic_fetch_min_explicit)
#undef TM_ATOMIC_RMW
// The 64-bit max/min (void, atomic_ulong only: metal_shim.h).
template <uint32_t S> inline void atomic_max_explicit(__tm::ptr<_atomic<ulong>, S> o, ulong v, memory_order mo) {
    __tm::note_atomic(o);
    atomic_max_explicit(o.p, v, mo);
}
template <uint32_t S> inline void atomic_min_explicit(__tm::ptr<_atomic<ulong>, S> o, ulong v, memory_order mo) {
    __tm::note_atomic(o);
    atomic_min_explicit(o.p, v, mo);
}
template <class T, uint32_t S> inline void atomic_store_explicit(__tm::ptr<_atomic<T>, S> o, __tm::id_t<T> v,
                                                                 memory_order mo) {
    __tm::note_atomic(o);
    atomic_store_explicit(o.p, v, mo);
}
template <class T, uint32_t S> inline T atomic_load_explicit(__tm::ptr<_atomic<T>, S> o, memory_order mo) {
    __tm::note_atomic(o);
    return atomic_load_explicit(o.p, mo);
}
template <class T, uint32_t S>
inline bool atomic_compare_exchange_weak_explicit(__tm::ptr<_atomic<T>, S> o, T* expected, __tm::id_t<T> desired,
                                                  memory_order success, memory_order failure) {
    __tm::note_atomic(o);
    return atomic_compare_exchange_weak_explicit(o.p, expected, desired, success, failure);
}
template <class T, uint32_t S>
inline bool atomic_compare_exchange_strong_explicit(__tm::ptr<_atomic<T>, S> o, T* expected, __tm::id_t<T> desired,
                                                    memory_order success, memory_order failure) {
    return atomic_compare_exchange_weak_explicit(o, expected, desired, success, failure);
}

// simdgroup_load / simdgroup_store through instrumented pointers: each lane reports (and strict
// mode checks) its share of the 8x8 block, elements lane and lane + 32, as the simdgroup moves
// the block once between its lanes.
namespace __sgm {
template <class P, uint32_t S> inline void report_share(__tm::ptr<P, S> base, ulong epr, ulong2 origin, bool transpose,
                                                        uint32_t kind) {
    const uint32_t lane = tm_rt_thread_index() % 32u;
    for (uint32_t k = lane; k < 64; k += 32) {
        const int r = int(k / 8), c = int(k % 8);
        P* e = transpose ? at(base.p, epr, origin, c, r) : at(base.p, epr, origin, r, c);
        tm_rt_access(e, sizeof(P), kind, S, base.slot, __tm::site_line);
    }
}
}  // namespace __sgm

template <class T, int Cols, int Rows, class P, uint32_t S>
inline void simdgroup_load(simdgroup_matrix<T, Cols, Rows>& d, __tm::ptr<P, S> src, ulong elements_per_row = Cols,
                           ulong2 matrix_origin = ulong2(0), bool transpose_matrix = false) {
    __sgm::report_share(src, elements_per_row, matrix_origin, transpose_matrix, TM_ACCESS_LOAD);
    simdgroup_load(d, src.p, elements_per_row, matrix_origin, transpose_matrix);
}
template <class T, int Cols, int Rows, class P, uint32_t S>
inline void simdgroup_store(const simdgroup_matrix<T, Cols, Rows>& a, __tm::ptr<P, S> dst,
                            ulong elements_per_row = Cols, ulong2 matrix_origin = ulong2(0),
                            bool transpose_matrix = false) {
    __sgm::report_share(dst, elements_per_row, matrix_origin, transpose_matrix, TM_ACCESS_STORE);
    simdgroup_store(a, dst.p, elements_per_row, matrix_origin, transpose_matrix);
}
}  // namespace metal

template <class P> inline P __tm::buffer_arg(void* p, int32_t slot) {
    if constexpr (is_ptr<P>::value) {
        return P(static_cast<decltype(P::p)>(p), slot);
    } else if constexpr (std::is_pointer<P>::value) {
        return static_cast<P>(p);
    } else {
        return *static_cast<std::remove_reference_t<P>*>(p);
    }
}
template <class P> inline P __tm::threadgroup_arg(void* p) {
    if constexpr (is_ptr<P>::value) {
        return P(static_cast<decltype(P::p)>(p));
    } else {
        return static_cast<P>(p);
    }
}

#endif  // TM_INSTRUMENT_H
