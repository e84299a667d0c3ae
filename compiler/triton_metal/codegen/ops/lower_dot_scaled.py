"""tt.dot_scaled (``tl.dot_scaled``): microscaled operands dequantised to float, then an FMA dot.

Apple GPUs have neither the microscaling formats nor scaled matrix instructions, so each operand is
dequantised exactly into float32 and multiplied as an ordinary float dot:

* e2m1 (mxfp4): two values per byte, packed along K (Triton's ``k_pack``), the low nibble first
  (the even K index); 1 sign, 2 exponent bits (bias 1), 1 mantissa bit: 0, 0.5, 1, 1.5, 2, 3, 4, 6.
* e4m3 / e5m2: fp8 codes (float8e4nv / float8e5, codegen/fp8_msl.py).
* bf16 / fp16: the values themselves (no scale).
* a scale operand (e8m0, one byte per 32 consecutive K elements: ``[M, K/32]`` for the lhs,
  ``[N, K/32]`` for the rhs) multiplies by 2^(byte - 127); byte 255 is NaN.

The dequantised value is exact in float32 (a 4-bit significand times a power of two; at worst a
float subnormal, which Apple's fast math may flush), the products are exact, and the sum is
accumulated in float32 in K order. Triton's GPUs decompose the op into bf16/fp16 operands (the
"compute type") and an f32-accumulating MMA: the same values where they fit the compute type;
where a scaled fp16-computed operand would overflow fp16, Triton gives inf and this lowering the
finite value.

Threadgroup memory: the scales are staged whole (bytes), the dequantised operands in K chunks of
float tiles ([M, KC] and [KC, N], KC a power of two sized to the memory left), so any tile shape
tl.dot_scaled accepts fits Apple's 32 KiB.
"""
from __future__ import annotations

import re

from triton_metal.codegen import fp8_msl
from triton_metal.codegen.emitter import lowers
from triton_metal.codegen.own_names import REG
from triton_metal.codegen.types import msl_scalar

SCALE_GROUP = 32  # K elements per e8m0 scale byte (the MX formats' block size)
TILE_BUDGET = 16384  # bytes of float tiles per K chunk (at most; less when other buffers live)
_FORMATS = re.compile(r"\blhs\s*=\s*(\w+)\s+rhs\s*=\s*(\w+)")

E2M1 = """// e2m1 (mxfp4: 1 sign, 2 exponent bits with bias 1, 1 mantissa bit) -> float, exactly:
// 0, 0.5, 1, 1.5, 2, 3, 4, 6 and their negatives.
inline float tm_e2m1_to_float(uint nibble) {
    uint exponent = (nibble >> 1) & 3u, mantissa = nibble & 1u;
    float magnitude = exponent == 0u ? 0.5f * float(mantissa)
                                     : (1.0f + 0.5f * float(mantissa)) * float(1u << (exponent - 1u));
    return (nibble & 8u) != 0u ? -magnitude : magnitude;
}
"""
E8M0 = """// e8m0 (an MX scale: 8 exponent bits, bias 127, no sign or mantissa) -> float: 2^(s - 127), exactly
// (s = 0: the float subnormal 2^-127); s = 255 is NaN.
inline float tm_e8m0_to_float(uchar s) {
    if (s == 255) return as_type<float>(0x7FC00000u);
    return s == 0 ? as_type<float>(0x00400000u) : as_type<float>(uint(s) << 23);
}
"""
# Triton's format name -> the fp8 element it holds (decoded by fp8_msl).
FP8_OF = {"e4m3": "f8E4M3FN", "e5m2": "f8E5M2"}
FLOAT_FORMATS = ("bf16", "fp16")


def _parse(em, op):
    """(lhs format, rhs format, a, a scale or None, b, b scale or None, c)."""
    text = op.text or ""
    m = _FORMATS.search(text)
    if m is None:
        raise em.unsupported(op, "its lhs/rhs formats could not be read from the IR")
    if re.search(r"\b(lhs|rhs)_k_pack\s*=\s*false", text):
        raise em.unsupported(op, "e2m1 operands packed along M or N (k_pack=False) are not lowered",
                             "pack the e2m1 values along K (Triton's default)")
    lhs_scaled = re.search(r"tt\.dot_scaled\s+%[\w.#]+\s+scale\b", text) is not None
    # The op's operands: a, b, c, then the optional a_scale and b_scale (the text prints them beside a and b).
    a, b, c, *scales = op.operands
    a_scale = scales.pop(0) if lhs_scaled else None
    b_scale = scales.pop(0) if scales else None
    return m.group(1), m.group(2), a, a_scale, b, b_scale, c


def _decode_expr(em, fmt: str, element: str, code: str) -> str:
    """The float value of one (unpacked) element `code` of format `fmt`."""
    if fmt == "e2m1":
        em.add_helper(E2M1)
        return f"tm_e2m1_to_float({code})"
    if fmt in FP8_OF:
        name, text = fp8_msl.decode_helper(fp8_msl.FORMATS[FP8_OF[fmt]])
        em.add_helper(text)
        return f"{name}(uchar({code}))"
    if fmt in FLOAT_FORMATS:
        return f"float({code})"
    raise em.unsupported(f"tt.dot_scaled with {fmt} operands", "", "use e2m1, e4m3, e5m2, bf16 or fp16")


def _stage_scale(em, value, ptr: str) -> None:
    """Every scale byte of `value` ([rows, K/32]) to threadgroup memory at `ptr`, row-major."""
    src = em.var(value)
    cols = value.type.shape[1]
    em.emit_loop(max(src.nregs, 1), lambda i: f"{ptr}[({em.coord_expr(value.layout, 0, i)}) * {cols} + "
                                              f"({em.coord_expr(value.layout, 1, i)})] = uchar({src.at(i)});")


def _stage_operand(em, value, fmt, scale_ptr, scale_cols, k_dim, tile, k0, kc, row_stride, col_stride):
    """Dequantise the registers of `value` whose K index falls in [k0, k0 + kc) into the float `tile`.

    `k_dim` is the operand's K axis (1 for the lhs [M, K], 0 for the rhs [K, N]); the element at K index
    k and other index x goes to tile[(k - k0) * col_stride + x * row_stride] (with the strides set by
    the caller); its scale, if any, is scale[x][k / 32]."""
    src = em.var(value)
    other = 1 - k_dim
    packed = fmt == "e2m1"
    k_var, x_var, code = em.fresh_own("ds_k"), em.fresh_own("ds_x"), em.fresh_own("ds_code")
    n = max(src.nregs, 1)
    reg = "0" if n == 1 else REG
    if n > 1:
        em.emit(f"for (uint {REG} = 0; {REG} < {n}; ++{REG}) {{")
        em.depth += 1
    else:
        em.emit("{")
        em.depth += 1
    em.emit(f"const int {x_var} = {em.coord_expr(value.layout, other, reg)};")
    em.emit(f"const int {k_var} = {'2 * ' if packed else ''}({em.coord_expr(value.layout, k_dim, reg)}) - {k0};")
    em.emit(f"const uint {code} = uint(as_type<{msl_scalar(value.type.element, unsigned=True)}>({src.at(reg)}));"
            if packed or fmt in FP8_OF else f"const float {code} = float({src.at(reg)});")
    halves = [("0", f"{code} & 0xFu"), ("1", f"{code} >> 4")] if packed else [("0", code)]
    em.emit(f"if ({k_var} >= 0 && {k_var} < {kc}) {{")
    em.depth += 1
    for offset, part in halves:
        k = f"{k_var} + {offset}" if offset != "0" else k_var
        value_expr = _decode_expr(em, fmt, value.type.element, part)
        if scale_ptr is not None:
            value_expr = (f"{value_expr} * tm_e8m0_to_float({scale_ptr}[{x_var} * {scale_cols} + "
                          f"({k} + {k0}) / {SCALE_GROUP}])")
        em.emit(f"{tile}[({k}) * {col_stride} + {x_var} * {row_stride}] = {value_expr};")
    em.depth -= 1
    em.emit("}")
    em.depth -= 1
    em.emit("}")


def _chunk(k_size: int, m: int, n: int, budget: int) -> int:
    """The K chunk: the largest power of two dividing K whose float tiles fit `budget` (at least 2)."""
    kc = k_size
    while kc > 2 and (kc * (m + n) * 4 > budget or k_size % kc):
        kc //= 2
    return kc


@lowers("tt.dot_scaled")
def lower_dot_scaled(em, op):
    lhs, rhs, a, a_scale, b, b_scale, c = _parse(em, op)
    d = op.results[0]
    if len(d.type.shape) != 2:
        raise em.unsupported(op, "batched (3-D) tl.dot_scaled is not lowered", "loop over the batch")
    m_size, n_size = d.type.shape
    k_size = a.type.shape[1] * (2 if lhs == "e2m1" else 1)
    scales = [(v, f"ds_{side}_scale") for v, side in ((a_scale, "a"), (b_scale, "b")) if v is not None]
    scale_bytes = sum(v.type.numel for v, _ in scales)
    free = em.arena.free_bytes(op)
    kc = _chunk(k_size, m_size, n_size, min(TILE_BUDGET, free - (scale_bytes + 15) // 16 * 16))
    if kc * (m_size + n_size) * 4 + scale_bytes > free:
        raise em.unsupported(op, f"its {m_size}x{n_size} float tiles do not fit the threadgroup memory left",
                             "use smaller BLOCK_M / BLOCK_N")
    em.emit(f"// tt.dot_scaled {m_size}x{k_size} ({lhs}) x {k_size}x{n_size} ({rhs}): operands dequantised to "
            f"float in K chunks of {kc}, FMA per accumulator register")
    em.barrier()  # the scratch may still be read by the op before
    offset, pointers = 0, {}
    a_tile, b_tile = em.fresh_own("ds_a"), em.fresh_own("ds_b")
    for name, nbytes, ctype in ((a_tile, m_size * kc * 4, "float"), (b_tile, kc * n_size * 4, "float"),
                                *((em.fresh_own(hint), v.type.numel, "uchar") for v, hint in scales)):
        em.emit(f"threadgroup {ctype}* {name} = {em.scratch(ctype, offset + nbytes, offset)};")
        pointers[name] = name
        offset = (offset + nbytes + 15) // 16 * 16
    scale_ptrs = list(pointers)[2:]
    a_scale_ptr = scale_ptrs.pop(0) if a_scale is not None else None
    b_scale_ptr = scale_ptrs.pop(0) if b_scale is not None else None
    if a_scale is not None or b_scale is not None:
        em.add_helper(E8M0)
    for value, ptr in ((a_scale, a_scale_ptr), (b_scale, b_scale_ptr)):
        if value is not None:
            _stage_scale(em, value, ptr)
    cvar = em.var(c)
    out = em.declare_array(d)
    n_regs = max(em.nregs(d), 1)
    em.emit_loop(n_regs, lambda i: f"{out.name}[{i}] = {cvar.at(i)};")
    k0 = em.fresh_own("ds_k0")
    em.emit(f"for (int {k0} = 0; {k0} < {k_size}; {k0} += {kc}) {{")
    em.depth += 1
    em.barrier()  # the tiles of the previous chunk are read; the scales are written
    # A chunk: a_tile[m][k - k0] (row-major [M, KC]); B chunk: b_tile[k - k0][n] (row-major [KC, N]).
    _stage_operand(em, a, lhs, a_scale_ptr, a_scale.type.shape[1] if a_scale is not None else 0, 1,
                   a_tile, k0, kc, kc, 1)
    _stage_operand(em, b, rhs, b_scale_ptr, b_scale.type.shape[1] if b_scale is not None else 0, 0,
                   b_tile, k0, kc, 1, n_size)
    em.barrier()
    mi, ni, kk = em.fresh_own("ds_m"), em.fresh_own("ds_n"), em.fresh_own("ds_kk")
    em.emit(f"for (uint {REG} = 0; {REG} < {n_regs}; ++{REG}) {{")
    em.depth += 1
    em.emit(f"const int {mi} = {em.coord_expr(d.layout, 0, REG)};")
    em.emit(f"const int {ni} = {em.coord_expr(d.layout, 1, REG)};")
    em.emit(f"for (int {kk} = 0; {kk} < {kc}; ++{kk}) {out.name}[{REG}] = "
            f"fma({a_tile}[{mi} * {kc} + {kk}], {b_tile}[{kk} * {n_size} + {ni}], {out.name}[{REG}]);")
    em.depth -= 1
    em.emit("}")
    em.depth -= 1
    em.emit("}")
    em.barrier()  # the next op may reuse the scratch
    em.alias(d, out)
