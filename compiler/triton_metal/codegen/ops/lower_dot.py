"""tt.dot: simdgroup_matrix 8x8 multiply-accumulate, or a per-thread FMA loop.

Triton's accelerate_matmul is NVIDIA-only, so `tt.dot` reaches us on the accumulator's blocked
layout, its operands in `#ttg.dot_op` layouts, usually read from threadgroup memory by
`ttg.local_load` (see lower_shared). Both paths read A and B from threadgroup memory: the
buffer the operand was loaded from when there is one, else a copy staged in the scratch.

* simdgroup_matrix path (M, N, K multiples of 8; f32/f16/bf16 inputs; f32 or f16 accumulator):
  the accumulator is staged in threadgroup memory (or filled from a uniform initial value),
  each simdgroup computes 8x8 output tiles with `simdgroup_load` /
  `simdgroup_multiply_accumulate` / `simdgroup_store`, then every thread reads its registers
  back in the accumulator's layout. f16 inputs stay half fragments with a float accumulator
  (mixed-precision multiply-accumulate); bf16 inputs are staged as float, which is exact.
* FMA path (any shape, int8 -> int32, batched dots, or when threadgroup memory is short): each
  thread computes its accumulator registers with a K loop of fused multiply-adds.

Precision: Apple GPUs have no TF32, so `input_precision` "tf32" and "tf32x3" compute the same
IEEE f32 products as "ieee", and so do "bf16x3" / "bf16x6" (f32 emulated with 3 or 6 bf16 products
elsewhere; here the f32 products themselves, at least as precise). `max_num_imprecise_acc` is an allowance to accumulate (fp8) in
lower precision; we always accumulate at full precision of the accumulator type.
"""
from __future__ import annotations

from triton_metal.abi import MAX_THREADGROUP_MEMORY
from triton_metal.codegen.emitter import lowers
from triton_metal.codegen.ops.lower_shared import (
    SharedBuffer,
    coords,
    drop_unread_load,
    element_bytes,
    row_major_strides,
    shared_source,
    store_registers,
)
from triton_metal.codegen.own_names import REG, SIMD
from triton_metal.codegen.types import msl_scalar, threadgroup_pointer

SIMDGROUP_ACCUMULATORS = {"f32": "float", "f16": "half"}
# Operand element -> (threadgroup element the fragments load, fragment element type).
SIMDGROUP_OPERANDS = {"f32": "f32", "f16": "f16", "bf16": "f32"}
TILE = 8


def _align(n: int) -> int:
    return (n + 15) // 16 * 16


def _free_threadgroup_bytes(em) -> int:
    return MAX_THREADGROUP_MEMORY - em.shared_bytes


class _Scratch:
    """Consecutive regions of the scratch memory used by one dot."""

    def __init__(self, em):
        self.em, self.end = em, 0

    def buffer(self, element: str, shape, hint: str) -> SharedBuffer:
        ctype = msl_scalar(element)
        numel = 1
        for n in shape:
            numel *= n
        offset, self.end = self.end, _align(self.end + numel * element_bytes(element))
        name = self.em.fresh_own(hint)
        self.em.emit(f"{threadgroup_pointer(ctype)} {name} = {self.em.scratch(ctype, self.end, offset)};")
        return SharedBuffer(name, ctype, shape=tuple(shape), strides=row_major_strides(shape))


def _operand_buffer(em, value, element: str, scratch: _Scratch | None, hint: str) -> SharedBuffer:
    """Threadgroup memory holding operand `value` with elements of type `element`."""
    buf = shared_source(em, value)
    if buf is not None and buf.ctype == msl_scalar(element):
        return buf
    return _stage(em, value, element, scratch, hint)


def _needs_staging(em, value, element: str) -> bool:
    buf = shared_source(em, value)
    return buf is None or buf.ctype != msl_scalar(element)


def _bytes(element: str, shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return _align(n * element_bytes(element))


def _simdgroup_plan(em, op):
    """The threadgroup bytes the simdgroup_matrix path needs, or None when it does not apply."""
    a, b = op.operands[:2]
    d = op.results[0]
    if d.type.element not in SIMDGROUP_ACCUMULATORS or a.type.element not in SIMDGROUP_OPERANDS:
        return None
    if len(d.type.shape) != 2 or any(n % TILE for n in (*a.type.shape, *b.type.shape)):
        return None
    if d.type.element == "f16" and a.type.element != "f16":
        return None
    need = _bytes(d.type.element, d.type.shape)  # the result tile, also when the accumulator starts uniform
    for v in (a, b):
        element = SIMDGROUP_OPERANDS[v.type.element]
        if _needs_staging(em, v, element) or _fragment_view(shared_source(em, v)) is None:
            need += _bytes(element, v.type.shape)
    return need if need <= _free_threadgroup_bytes(em) else None


def _fragment_view(buf: SharedBuffer | None):
    """(elements per row, transpose) for simdgroup_load of `buf`, or None if it cannot."""
    if buf is None:
        return None
    s0, s1 = buf.strides
    if s1 == 1:
        return s0, False
    if s0 == 1:
        return s1, True
    return None


@lowers("tt.dot")
def lower_dot(em, op):
    a, b = op.operands[:2]
    if a.type.element != b.type.element:
        raise em.unsupported(op, f"operands of different types ({a.type.element} x {b.type.element})",
                             "cast both operands to the same type before tl.dot")
    em.barrier()  # the scratch may still be read by the op before
    if _simdgroup_plan(em, op) is not None:
        _lower_simdgroup(em, op)
    else:
        _lower_fma(em, op)
    for operand in (a, b):
        drop_unread_load(em, operand)


def _lower_fma(em, op):
    a, b, c = op.operands
    d = op.results[0]
    acc_ctype = em.ctype(d)
    rank = len(d.type.shape)
    k_size = a.type.shape[-1]
    scratch = _Scratch(em)
    abuf = _operand_buffer(em, a, a.type.element, scratch, "dot_a")
    bbuf = _operand_buffer(em, b, b.type.element, scratch, "dot_b")
    if scratch.end:
        em.barrier()
    cvar = em.var(c)
    out = em.declare_array(d)
    n = max(em.nregs(d), 1)
    em.emit(f"// tt.dot {'x'.join(map(str, a.type.shape[-2:]))} x {'x'.join(map(str, b.type.shape[-2:]))}: "
            f"FMA loop over K = {k_size} per accumulator register")
    em.emit(f"for (uint {REG} = 0; {REG} < {n}; ++{REG}) {{")
    em.depth += 1
    names = []
    for dim in range(rank):
        name = em.fresh_own(("dot_b", "dot_m", "dot_n")[dim - rank + 3])
        em.emit(f"const int {name} = {em.coord_expr(d.layout, dim, REG)};")
        names.append(name)
    batch, m, nn = names[:-2], names[-2], names[-1]
    acc = em.fresh_own("dot_acc")
    k = em.fresh_own("dot_k")
    # A half / bfloat accumulator is carried in float over the K loop and rounded once, as matrix
    # units do inside one instruction: rounding after every k step drifts on long K.
    sum_ctype = "float" if acc_ctype in ("half", "bfloat") else acc_ctype
    em.emit(f"{sum_ctype} {acc} = {cvar.at(REG)};")
    x = f"{sum_ctype}({abuf.element([*batch, m, k])})"
    y = f"{sum_ctype}({bbuf.element([*batch, k, nn])})"
    if d.type.is_float:
        step = f"{acc} = fma({x}, {y}, {acc});"
    else:  # integer dots wrap (signed overflow is undefined in MSL): accumulate in the unsigned type
        u = msl_scalar(d.type.element, unsigned=True)
        step = f"{acc} = as_type<{sum_ctype}>({u}({acc}) + {u}({x}) * {u}({y}));"
    em.emit(f"for (int {k} = 0; {k} < {k_size}; ++{k}) {step}")
    em.emit(f"{out.name}[{REG}] = {acc_ctype}({acc});" if sum_ctype != acc_ctype else f"{out.name}[{REG}] = {acc};")
    em.depth -= 1
    em.emit("}")
    em.alias(d, out)
    if scratch.end:
        em.barrier()


def _lower_simdgroup(em, op):
    a, b, c = op.operands
    d = op.results[0]
    m_size, k_size = a.type.shape
    n_size = b.type.shape[1]
    acc_elem = d.type.element
    acc_ctype = SIMDGROUP_ACCUMULATORS[acc_elem]
    cvar = em.var(c)
    scratch = _Scratch(em)
    em.emit(f"// tt.dot {m_size}x{k_size} x {k_size}x{n_size} on simdgroup_matrix: 8x8 tiles over "
            f"{em.options.num_warps} simdgroups, accumulator through threadgroup memory")
    tile_buf = scratch.buffer(acc_elem, (m_size, n_size), "dot_tile")
    if cvar.is_array:
        store_registers(em, tile_buf, c)
    views = []
    for v, hint in ((a, "dot_a"), (b, "dot_b")):
        element = SIMDGROUP_OPERANDS[v.type.element]
        buf = shared_source(em, v)
        if _needs_staging(em, v, element) or _fragment_view(buf) is None:
            buf = _stage(em, v, element, scratch, hint)
        views.append((buf, *_fragment_view(buf)))
    em.barrier()
    (abuf, a_ld, a_t), (bbuf, b_ld, b_t) = views
    tiles_n = n_size // TILE
    t, tm, tn, kk = (em.fresh_own(h) for h in ("tile", "tile_m", "tile_n", "dot_k"))
    frag = lambda buf: f"simdgroup_matrix<{buf.ctype}, 8, 8>"
    acc = em.fresh_own("acc_frag")
    fa, fb = em.fresh_own("a_frag"), em.fresh_own("b_frag")
    em.emit(f"for (uint {t} = {SIMD}; {t} < {m_size // TILE * tiles_n}; {t} += {em.options.num_warps}) {{")
    em.depth += 1
    em.emit(f"const uint {tm} = {t} / {tiles_n} * 8, {tn} = {t} % {tiles_n} * 8;")
    tile_ptr = f"&{tile_buf.element([tm, tn])}"
    if cvar.is_array:
        em.emit(f"simdgroup_matrix<{acc_ctype}, 8, 8> {acc};")
        em.emit(f"simdgroup_load({acc}, {tile_ptr}, {n_size});")
    else:
        em.emit(f"simdgroup_matrix<{acc_ctype}, 8, 8> {acc} = "
                f"make_filled_simdgroup_matrix<{acc_ctype}, 8, 8>({acc_ctype}({cvar.at(0)}));")
    em.emit(f"for (uint {kk} = 0; {kk} < {k_size}; {kk} += 8) {{")
    em.depth += 1
    em.emit(f"{frag(abuf)} {fa};")
    em.emit(f"{frag(bbuf)} {fb};")
    em.emit(f"simdgroup_load({fa}, &{abuf.element([tm, kk])}, {a_ld}, ulong2(0), {str(a_t).lower()});")
    em.emit(f"simdgroup_load({fb}, &{bbuf.element([kk, tn])}, {b_ld}, ulong2(0), {str(b_t).lower()});")
    em.emit(f"simdgroup_multiply_accumulate({acc}, {fa}, {fb}, {acc});")
    em.depth -= 1
    em.emit("}")
    em.emit(f"simdgroup_store({acc}, {tile_ptr}, {n_size});")
    em.depth -= 1
    em.emit("}")
    em.barrier()
    em.define(d, lambda i: tile_buf.element(coords(em, d.layout, i)))
    em.barrier()


def _stage(em, value, element, scratch, hint):
    """A row-major copy of `value`'s registers in the scratch, converted to `element`."""
    staged = scratch.buffer(element, value.type.shape, hint)
    src = em.var(value)
    em.emit_loop(max(src.nregs, 1),
                 lambda i: f"{staged.element(coords(em, value.layout, i))} = {msl_scalar(element)}({src.at(i)});")
    return staged
