// simdgroup_matrix for the simulator: 8x8 matrices owned jointly by the 32 lanes of a simdgroup.
//
// What MSL guarantees, and all this models: simdgroup_load / simdgroup_store / the multiply
// functions are executed by every lane of the simdgroup with the same (uniform) arguments, and
// the simdgroup as a whole holds one 8x8 matrix. Which lane holds which element is not part of
// the language (thread_elements() exposes a hardware-specific distribution), so it is not
// provided here: code that depends on it fails to compile instead of silently assuming a layout.
//
// Representation: every lane keeps a full copy of the matrix. With uniform arguments all copies
// are equal, so loads and stores are done by each lane by itself.
// Products are computed in float and each result element is rounded once to the destination
// type (an 8-deep multiply-accumulate, as the hardware does for float, half and bfloat).
#ifndef TM_METAL_SIMDGROUP_MATRIX_H
#define TM_METAL_SIMDGROUP_MATRIX_H

namespace metal {

template <class T, int Cols, int Rows = Cols> struct simdgroup_matrix {
    static_assert(Cols == 8 && Rows == 8, "Metal's simdgroup_matrix is 8x8");
    static_assert(std::is_same<T, float>::value || std::is_same<T, half>::value ||
                      std::is_same<T, bfloat>::value,
                  "simdgroup_matrix elements are float, half or bfloat");
    T __e[Rows][Cols];  // row-major; the simulator's private representation

    simdgroup_matrix() = default;
    // MSL: a diagonal matrix with `dval` on the diagonal.
    explicit simdgroup_matrix(T dval) {
        for (int r = 0; r < Rows; ++r)
            for (int c = 0; c < Cols; ++c) __e[r][c] = r == c ? dval : T(0);
    }
};

typedef simdgroup_matrix<float, 8, 8> simdgroup_float8x8;
typedef simdgroup_matrix<half, 8, 8> simdgroup_half8x8;
typedef simdgroup_matrix<bfloat, 8, 8> simdgroup_bfloat8x8;

template <class T, int Cols, int Rows = Cols>
inline simdgroup_matrix<T, Cols, Rows> make_filled_simdgroup_matrix(const T value) {
    simdgroup_matrix<T, Cols, Rows> m;
    for (int r = 0; r < Rows; ++r)
        for (int c = 0; c < Cols; ++c) m.__e[r][c] = value;
    return m;
}

namespace __sgm {
constexpr uint32_t kMultiplyAccumulate = 0x100;  // collective site kind, apart from the simd_* ones
// Element (row, col) of the matrix read at `origin` (x = column, y = row) with row stride `epr`.
template <class P> inline P* at(P* base, ulong epr, ulong2 origin, int row, int col) {
    return base + (origin.y + ulong(row)) * epr + origin.x + ulong(col);
}
// Instrumented builds count each operation once per simdgroup (traffic counters: tm_rt_event).
inline void count([[maybe_unused]] uint32_t event) {
#ifdef TM_SIM_INSTRUMENT
    tm_rt_event(event);
#endif
}
}  // namespace __sgm

// Loads from device or threadgroup memory (one flat address space here). With
// transpose_matrix, element (r, c) of the result is element (c, r) of the matrix in memory.
template <class T, int Cols, int Rows>
inline void simdgroup_load(simdgroup_matrix<T, Cols, Rows>& d, const T* src, ulong elements_per_row = Cols,
                           ulong2 matrix_origin = ulong2(0), bool transpose_matrix = false) {
    __sgm::count(TM_EVENT_SIMDGROUP_LOAD);
    for (int r = 0; r < Rows; ++r)
        for (int c = 0; c < Cols; ++c)
            d.__e[r][c] = transpose_matrix ? *__sgm::at(src, elements_per_row, matrix_origin, c, r)
                                           : *__sgm::at(src, elements_per_row, matrix_origin, r, c);
}

template <class T, int Cols, int Rows>
inline void simdgroup_store(const simdgroup_matrix<T, Cols, Rows>& a, T* dst, ulong elements_per_row = Cols,
                            ulong2 matrix_origin = ulong2(0), bool transpose_matrix = false) {
    __sgm::count(TM_EVENT_SIMDGROUP_STORE);
    for (int r = 0; r < Rows; ++r)
        for (int c = 0; c < Cols; ++c) {
            T* p = transpose_matrix ? __sgm::at(dst, elements_per_row, matrix_origin, c, r)
                                    : __sgm::at(dst, elements_per_row, matrix_origin, r, c);
            *p = a.__e[r][c];
        }
}

// d = a * b + c. The operand types may differ (half or bfloat inputs, float accumulator).
// The lanes meet (as at any simd collective, so a call from divergent code is caught as on a
// GPU it is undefined); the first lane released computes the product once for the simdgroup
// into the shared snapshot and every lane copies it.
template <class TD, class TA, class TB, class TC, int N>
inline void simdgroup_multiply_accumulate(simdgroup_matrix<TD, N, N>& d, const simdgroup_matrix<TA, N, N>& a,
                                          const simdgroup_matrix<TB, N, N>& b,
                                          const simdgroup_matrix<TC, N, N>& c,
                                          uint32_t __line = __builtin_LINE()) {
    static_assert(sizeof(d.__e) <= sizeof(tm_simd_snapshot::res), "the product must fit the snapshot");
    __sgm::count(TM_EVENT_SIMDGROUP_MULTIPLY_ACCUMULATE);
    uint32_t lane;
    tm_simd_snapshot* s = __simd::enter(0, __simd::op(__sgm::kMultiplyAccumulate), __line, &lane);
    if (!s->cached) {
        TD out[N][N];
        for (int r = 0; r < N; ++r)
            for (int col = 0; col < N; ++col) {
                float acc = float(c.__e[r][col]);
                for (int k = 0; k < N; ++k) acc += float(a.__e[r][k]) * float(b.__e[k][col]);
                out[r][col] = TD(acc);
            }
        __builtin_memcpy(s->res, out, sizeof out);
        s->cached = 1;
    }
    __builtin_memcpy(d.__e, s->res, sizeof d.__e);  // d may alias a, b or c: written last
}

// d = a * b
template <class TD, class TA, class TB, int N>
inline void simdgroup_multiply(simdgroup_matrix<TD, N, N>& d, const simdgroup_matrix<TA, N, N>& a,
                               const simdgroup_matrix<TB, N, N>& b, uint32_t __line = __builtin_LINE()) {
    simdgroup_multiply_accumulate(d, a, b, make_filled_simdgroup_matrix<TD, N, N>(TD(0)), __line);
}

}  // namespace metal

#endif  // TM_METAL_SIMDGROUP_MATRIX_H
