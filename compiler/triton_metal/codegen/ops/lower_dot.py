"""tt.dot: simdgroup_matrix 8x8 multiply-accumulate, or a per-thread FMA loop.

Triton's accelerate_matmul is NVIDIA-only, so `tt.dot` reaches us on the accumulator's blocked
layout, its operands in `#ttg.dot_op` layouts, usually read from threadgroup memory by
`ttg.local_load` (see lower_shared). Both paths read A and B from threadgroup memory: the
buffer the operand was loaded from when there is one, else a copy staged in the scratch.

* simdgroup_matrix path (M, N, K multiples of 8; f32/f16/bf16 inputs; f32 or f16 accumulator):
  register blocking as MLX's steel GEMM and ggml-metal's kernel_mul_mm do it. The 8x8 output
  tiles are cut into one rectangular block per simdgroup (`Blocking`); a simdgroup keeps its
  block as an array of `simdgroup_matrix` accumulators and, per 8-deep K step, loads tm A and
  tn B fragments once for tm * tn multiply-accumulates. The accumulator enters the fragments
  from a uniform value (`make_filled_simdgroup_matrix`) or through threadgroup memory, and
  leaves them through threadgroup memory into the blocked layout's registers.
  In an scf.for whose iter_arg is only a tt.dot's accumulator (the matmul K loop), the
  fragments are the loop-carried value itself (`Fragments`, see `carried_accumulators`): they
  are filled before the loop and converted once after it (through scratch counted as the next
  op's, so it reuses the dead operand tiles' bytes), so a K step touches threadgroup memory only
  to read operand tiles. Elementwise ops on the accumulator inside the loop (attention's rescale)
  keep it in registers between the dots (no `thread_elements()`: the simulator does not model it).
  f16 inputs stay half fragments with a float accumulator (mixed-precision multiply-accumulate);
  bf16 inputs are staged as float, which is exact.
* FMA path (any shape, int8 -> int32, batched dots, or when threadgroup memory is short): each
  thread computes its accumulator registers with a K loop of fused multiply-adds.

Precision: Apple GPUs have no TF32, so `input_precision` "tf32" and "tf32x3" compute the same
IEEE f32 products as "ieee", and so do "bf16x3" / "bf16x6" (f32 emulated with 3 or 6 bf16 products
elsewhere; here the f32 products themselves, at least as precise). `max_num_imprecise_acc` is an allowance to accumulate (fp8) in
lower precision; we always accumulate at full precision of the accumulator type.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

from triton_metal.abi import MAX_THREADGROUP_MEMORY
from triton_metal.codegen.emitter import Var, lowers
from triton_metal.codegen.fp8_msl import widen
from triton_metal.codegen.ops.lower_shared import (
    SharedBuffer,
    coords,
    drop_unread_load,
    element_bytes,
    memdesc_type,
    row_major_strides,
    shared_source,
    store_registers,
)
from triton_metal.codegen.own_names import REG, SIMD
from triton_metal.codegen.types import FP8, msl_scalar, threadgroup_pointer

SIMDGROUP_ACCUMULATORS = {"f32": "float", "f16": "half"}
# Operand element -> (threadgroup element the fragments load, fragment element type).
SIMDGROUP_OPERANDS = {"f32": "f32", "f16": "f16", "bf16": "f32"}
# fp8 operands (storage only on Apple GPUs) are decoded into half when staged: exact for every fp8 format.
SIMDGROUP_OPERANDS.update({f8: "f16" for f8 in FP8})
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


# ---- register blocking ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Blocking:
    """The 8x8 output tiles of an m x n accumulator cut into a wm x wn grid of simdgroups, each owning
    a tm x tn block of tiles (simdgroups past wm * wn, when there are more, own none)."""
    m: int
    n: int
    wm: int
    wn: int
    tm: int
    tn: int
    num_warps: int

    @property
    def fragments(self) -> int:
        return self.tm * self.tn

    @property
    def owners(self) -> int:
        return self.wm * self.wn


def blocking(m: int, n: int, num_warps: int) -> Blocking:
    """Fewest tiles per simdgroup (every simdgroup busy when the tiles divide), then the squarest
    block: a tm x tn block reads tm + tn fragments per K step for tm * tn multiply-accumulates."""
    tiles_m, tiles_n = m // TILE, n // TILE
    grids = [(wm, wn) for wm in range(1, num_warps + 1) for wn in range(1, num_warps // wm + 1)
             if tiles_m % wm == 0 and tiles_n % wn == 0]
    wm, wn = min(grids, key=lambda g: ((tiles_m // g[0]) * (tiles_n // g[1]), tiles_m // g[0] + tiles_n // g[1]))
    return Blocking(m, n, wm, wn, tiles_m // wm, tiles_n // wn, num_warps)


@dataclass
class Fragments(Var):
    """A tt.dot accumulator held as each simdgroup's block of `simdgroup_matrix` tiles, `name[tm * tn]`
    (tile (i, j) of the block at i * tn + j), not as registers of a layout: only tt.dot reads it."""
    blocking: Blocking | None = None
    dot: object = None  # the loop's tt.dot, for a loop-carried accumulator

    def at(self, i) -> str:
        raise TypeError(f"{self.name} is a simdgroup_matrix accumulator: only tt.dot reads it "
                        "(lower_dot.carried_accumulators admits no other reader)")


@contextmanager
def _owner_block(em, blk: Blocking, origin: bool = True):
    """A block run by the simdgroups owning tiles; yields the names of this simdgroup's first row and column
    (declared when `origin`)."""
    em.emit(f"if ({SIMD} < {blk.owners}) {{" if blk.owners < blk.num_warps else "{")
    em.depth += 1
    if not origin:
        yield None, None
        em.depth -= 1
        em.emit("}")
        return
    # Simdgroup s owns grid cell (s / wn, s % wn); a one-wide grid needs no division.
    rows = "0" if blk.wm == 1 else f"{SIMD}{f' / {blk.wn}' if blk.wn > 1 else ''} * {blk.tm * TILE}"
    cols = "0" if blk.wn == 1 else f"{SIMD}{f' % {blk.wn}' if blk.wm > 1 else ''} * {blk.tn * TILE}"
    names = []
    for hint, expr in (("sg_row", rows), ("sg_col", cols)):
        names.append(em.fresh_own(hint) if expr != "0" else "0")
        if expr != "0":
            em.emit(f"const uint {names[-1]} = {expr};")
    yield tuple(names)
    em.depth -= 1
    em.emit("}")


def _sum(*terms) -> str:
    return " + ".join(t for t in terms if t and t != "0") or "0"


def _tile_loops(em, blk: Blocking) -> tuple:
    """(loop header over the block's tile rows, over its tile columns, fragment index, tile row index, tile
    column index); a loop over one tile is left out. Constant bounds: Apple's compiler unrolls them."""
    i = em.fresh_own("ti") if blk.tm > 1 else ""
    j = em.fresh_own("tj") if blk.tn > 1 else ""
    i_loop = f"for (uint {i} = 0; {i} < {blk.tm}; ++{i}) " if i else ""
    j_loop = f"for (uint {j} = 0; {j} < {blk.tn}; ++{j}) " if j else ""
    return i_loop, j_loop, _sum(f"{i} * {blk.tn}" if i and blk.tn > 1 else i, j), i, j


def _at(origin: str, index: str) -> str:
    """Row or column of tile `index` of a block starting at `origin`."""
    return _sum(origin, f"{index} * {TILE}" if index else "")


def _each_tile(em, blk: Blocking, row: str, col: str, statement) -> None:
    """`statement(fragment index, tile row, tile column)` for every tile of this simdgroup's block."""
    i_loop, j_loop, f, i, j = _tile_loops(em, blk)
    em.emit(i_loop + j_loop + statement(f, _at(row, i), _at(col, j)))


def _fill_fragments(em, frags: Fragments, tile: SharedBuffer | None, init) -> None:
    """Accumulator fragments from `init`: a uniform value, or the registers already stored in `tile`."""
    blk, ctype = frags.blocking, frags.ctype
    ivar = em.var(init)
    with _owner_block(em, blk, origin=tile is not None) as (row, col):
        if tile is None:
            i_loop, j_loop, f, _, _ = _tile_loops(em, blk)
            em.emit(f"{i_loop}{j_loop}{frags.name}[{f}] = "
                    f"make_filled_simdgroup_matrix<{ctype}, 8, 8>({ctype}({ivar.at(0)}));")
        else:
            _each_tile(em, blk, row, col,
                       lambda f, r, c: f"simdgroup_load({frags.name}[{f}], &{tile.element([r, c])}, {blk.n});")


def _store_fragments(em, frags: Fragments, tile: SharedBuffer) -> None:
    blk = frags.blocking
    with _owner_block(em, blk) as (row, col):
        _each_tile(em, blk, row, col,
                   lambda f, r, c: f"simdgroup_store({frags.name}[{f}], &{tile.element([r, c])}, {blk.n});")


def _multiply_accumulate(em, frags: Fragments, views, k_size: int) -> None:
    """frags += A x B, A and B read from threadgroup memory as 8x8 fragments, each once per K step."""
    (abuf, a_ld, a_t), (bbuf, b_ld, b_t) = views
    blk = frags.blocking
    with _owner_block(em, blk) as (row, col):
        kk, fa, fb = em.fresh_own("dot_k"), em.fresh_own("a_frag"), em.fresh_own("b_frag")
        i_loop, j_loop, f, i, j = _tile_loops(em, blk)
        em.emit(f"for (uint {kk} = 0; {kk} < {k_size}; {kk} += 8) {{")
        em.depth += 1
        em.emit(f"simdgroup_matrix<{abuf.ctype}, 8, 8> {fa}[{blk.tm}];")
        em.emit(f"simdgroup_matrix<{bbuf.ctype}, 8, 8> {fb}[{blk.tn}];")
        em.emit(f"{i_loop}simdgroup_load({fa}[{i or 0}], &{abuf.element([_at(row, i), kk])}, {a_ld}, ulong2(0), "
                f"{str(a_t).lower()});")
        em.emit(f"{j_loop}simdgroup_load({fb}[{j or 0}], &{bbuf.element([kk, _at(col, j)])}, {b_ld}, ulong2(0), "
                f"{str(b_t).lower()});")
        acc = f"{frags.name}[{f}]"
        em.emit(f"{i_loop}{j_loop}simdgroup_multiply_accumulate({acc}, {fa}[{i or 0}], {fb}[{j or 0}], {acc});")
        em.depth -= 1
        em.emit("}")


def _declare_fragments(em, element: str, blk: Blocking, hint: str) -> Fragments:
    ctype = SIMDGROUP_ACCUMULATORS[element]
    name = em.fresh_own(hint)
    em.emit(f"simdgroup_matrix<{ctype}, 8, 8> {name}[{blk.fragments}];  // {blk.tm}x{blk.tn} 8x8 tiles "
            f"per simdgroup, {blk.wm}x{blk.wn} simdgroups")
    return Fragments(name, ctype, blocking=blk)


# ---- when the simdgroup path applies --------------------------------------------------------------

def _simdgroup_types(op) -> bool:
    """Element types and shapes simdgroup_matrix computes (any threadgroup memory aside)."""
    a, b = op.operands[:2]
    d = op.results[0]
    if d.type.element not in SIMDGROUP_ACCUMULATORS or a.type.element not in SIMDGROUP_OPERANDS:
        return False
    if a.type.element != b.type.element or len(d.type.shape) != 2:
        return False
    if any(n % TILE for n in (*a.type.shape, *b.type.shape)):
        return False
    return not (d.type.element == "f16" and a.type.element != "f16")


def _simdgroup_plan(em, op):
    """The threadgroup bytes the simdgroup_matrix path needs, or None when it does not apply."""
    if not _simdgroup_types(op):
        return None
    a, b = op.operands[:2]
    d = op.results[0]
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


# ---- loop-carried accumulators (lower_control.lower_for) --------------------------------------------

def _ops_within(block):
    for op in block.ops:
        yield op
        for region in op.regions:
            yield from _ops_within(region)


def carried_accumulators(em, loop) -> dict:
    """Position -> tt.dot of the scf.for iter_args that stay simdgroup_matrix fragments for the whole loop.

    An iter_arg qualifies when a top-level tt.dot of the body takes it as its accumulator, that dot's
    result is what the loop yields at the same position, neither has another reader in the loop, the
    dot is one the simdgroup path computes, and threadgroup memory holds what it stages (operands not
    read from a matching `ttg.local_load`, and the result tile that converts the fragments after the loop).
    """
    body = loop.regions[0]
    *ops, terminator = body.ops
    uses: dict = {}
    for op in _ops_within(body):
        for v in op.operands:
            uses[v.id] = uses.get(v.id, 0) + 1
    producers = {r.id: op for op in ops for r in op.results}
    found = {}
    for pos, (arg, yielded) in enumerate(zip(body.args[1:], terminator.operands)):
        dot = producers.get(yielded.id)
        if dot is None or dot.name != "tt.dot" or dot.operands[2].id != arg.id:
            continue
        if uses.get(arg.id) != 1 or uses.get(yielded.id) != 1 or not _simdgroup_types(dot):
            continue
        staged = 0
        for v in dot.operands[:2]:
            element = SIMDGROUP_OPERANDS[v.type.element]
            source = producers.get(v.id)
            if source is None or source.name != "ttg.local_load" or memdesc_type(source.operands[0])[1] != element:
                staged += _bytes(element, v.type.shape)
        d = dot.results[0]
        after = _op_after(em, loop) or dot  # where the fragments are converted (leave_loop)
        if (staged <= MAX_THREADGROUP_MEMORY - em.arena.bytes_live(dot)
                and _bytes(d.type.element, d.type.shape) <= MAX_THREADGROUP_MEMORY - em.arena.bytes_live(after)):
            found[pos] = dot
    return found


def enter_loop(em, dot, init) -> Fragments:
    """The fragments of `dot`'s loop-carried accumulator, holding the loop's initial value `init`."""
    d = dot.results[0]
    m, n = d.type.shape
    blk = blocking(m, n, em.options.num_warps)
    em.emit("// the accumulator of tt.dot stays in simdgroup_matrix registers across the loop")
    frags = _declare_fragments(em, d.type.element, blk, (init.name_hint or "acc") + "_frags")
    tile = None
    if em.var(init).is_array:
        with _scratch_of(em, dot):
            tile = _Scratch(em).buffer(d.type.element, (m, n), "dot_tile")
        em.barrier()  # the scratch may still be read by the op before
        store_registers(em, tile, init)
        em.barrier()
    _fill_fragments(em, frags, tile, init)
    if tile is not None:
        em.barrier()  # the loop body may overwrite the scratch
    frags.dot = dot
    return frags


def leave_loop(em, loop, frags: Fragments, result) -> None:
    """Defines the `loop`'s `result` in its blocked layout from the accumulator fragments."""
    if result.id not in em.used_values:
        return
    with _scratch_of(em, _op_after(em, loop) or frags.dot):
        tile = _Scratch(em).buffer(result.type.element, result.type.shape, "dot_tile")
    em.barrier()  # the scratch may still be read by the op before
    _fragments_to_registers(em, frags, result, tile)


def _op_after(em, op):
    """The op after `op` in its block (the arena's op order), or None."""
    order = em.arena.order
    ops = order.siblings.get(id(op), []) if order is not None else []
    at = next((k for k, o in enumerate(ops) if o is op), None)
    return ops[at + 1] if at is not None and at + 1 < len(ops) else None


@contextmanager
def _scratch_of(em, op):
    """Scratch taken just before or after a loop, counted as `op`'s (its tt.dot's before it, the next op's
    after it, when the operand buffers of the loop are dead): the arena keeps an op's scratch for the op's
    whole span, and the scf.for's span is the whole loop body."""
    em.op_stack.append(op)
    try:
        yield
    finally:
        em.op_stack.pop()


def _fragments_to_registers(em, frags: Fragments, value, tile: SharedBuffer) -> None:
    """Defines `value` in its layout from the fragments, through `tile` (free for this simdgroup's tiles)."""
    _store_fragments(em, frags, tile)
    em.barrier()
    em.define(value, lambda i: tile.element(coords(em, value.layout, i)))
    em.barrier()  # the next op may overwrite the scratch


# ---- tt.dot ---------------------------------------------------------------------------------------

@lowers("tt.dot")
def lower_dot(em, op):
    a, b = op.operands[:2]
    if a.type.element != b.type.element:
        raise em.unsupported(op, f"operands of different types ({a.type.element} x {b.type.element})",
                             "cast both operands to the same type before tl.dot")
    if isinstance(em.var(op.operands[2]), Fragments):
        _lower_simdgroup(em, op)  # carried_accumulators checked it applies
    elif _simdgroup_plan(em, op) is not None:
        _lower_simdgroup(em, op)
    else:
        em.barrier()  # the scratch may still be read by the op before
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
    x = widen(em, a.type.element, sum_ctype, abuf.element([*batch, m, k]))  # fp8: decoded (fp8_msl)
    y = widen(em, b.type.element, sum_ctype, bbuf.element([*batch, k, nn]))
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
    cvar = em.var(c)
    carried = isinstance(cvar, Fragments)
    blk = cvar.blocking if carried else blocking(m_size, n_size, em.options.num_warps)
    scratch = _Scratch(em)
    em.emit(f"// tt.dot {m_size}x{k_size} x {k_size}x{n_size} on simdgroup_matrix: {blk.wm}x{blk.wn} simdgroups, "
            f"each {blk.tm}x{blk.tn} 8x8 accumulator tiles in registers"
            + (" across the loop" if carried else ""))
    staged = [_needs_staging(em, v, SIMDGROUP_OPERANDS[v.type.element])
              or _fragment_view(shared_source(em, v)) is None for v in (a, b)]
    tile = None if carried else scratch.buffer(d.type.element, (m_size, n_size), "dot_tile")
    if not carried or any(staged):
        em.barrier()  # the scratch may still be read by the op before
    if tile is not None and cvar.is_array:
        store_registers(em, tile, c)
    views = []
    for v, hint, stage in ((a, "dot_a", staged[0]), (b, "dot_b", staged[1])):
        buf = _stage(em, v, SIMDGROUP_OPERANDS[v.type.element], scratch, hint) if stage else shared_source(em, v)
        views.append((buf, *_fragment_view(buf)))
    if any(staged) or (tile is not None and cvar.is_array):
        em.barrier()
    if carried:
        frags = cvar
    else:
        frags = _declare_fragments(em, d.type.element, blk, "acc_frags")
        _fill_fragments(em, frags, tile if cvar.is_array else None, c)
    _multiply_accumulate(em, frags, views, k_size)
    if carried:
        em.alias(d, frags)
        if any(staged):
            em.barrier()  # the next op may overwrite the staged operands
        return
    _fragments_to_registers(em, frags, d, tile)


def _stage(em, value, element, scratch, hint):
    """A row-major copy of `value`'s registers in the scratch, converted to `element`."""
    staged = scratch.buffer(element, value.type.shape, hint)
    src = em.var(value)
    em.emit_loop(max(src.nregs, 1),
                 lambda i: f"{staged.element(coords(em, value.layout, i))} = "
                           f"{widen(em, value.type.element, msl_scalar(element), src.at(i))};")
    return staged
