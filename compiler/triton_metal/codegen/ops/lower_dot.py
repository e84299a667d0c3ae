"""tt.dot: simdgroup_matrix 8x8 multiply-accumulate, or a per-thread FMA loop.

Triton's accelerate_matmul is NVIDIA-only, so `tt.dot` reaches us on the accumulator's blocked
layout, its operands in `#ttg.dot_op` layouts, usually read from threadgroup memory by
`ttg.local_load` (see lower_shared). Both paths read A and B from threadgroup memory: the
buffer the operand was loaded from when there is one, else a copy staged in the scratch from
registers. A copy that does not fit whole (and every operand whose buffer the arena left out, see
threadgroup_arena's stream_dot_operands) is staged a K chunk at a time, inside a loop over K; a result
or accumulator tile that does not fit the memory left passes through it a band of rows per round.

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
from triton_metal.codegen.ops.lower_layout import in_window
from triton_metal.codegen.ops.lower_shared import (
    SharedBuffer,
    Streamed,
    coords,
    drop_unread_load,
    element_bytes,
    memdesc_type,
    row_major_strides,
    shared_source,
    store_registers,
)
from triton_metal.codegen.own_names import AT, REG, SIMD
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


def _bytes(element: str, shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return _align(n * element_bytes(element))


# ---- operands: read in place, or staged from registers (whole, or K chunk by K chunk) -------------------

@dataclass
class _Operand:
    """Where a dot reads operand `value` (its K along axis `k_dim`) as elements `element`: a threadgroup
    `buffer` in place (indexed by the absolute K), or the registers of `source` (an IR value: the operand
    itself, or what its streamed local_alloc stored) staged into the scratch, whole or a K chunk at a time
    (`chunk`, indexed by k - k0)."""
    value: object
    k_dim: int
    element: str
    buffer: SharedBuffer | None = None
    source: object = None
    chunk: SharedBuffer | None = None

    def chunk_shape(self, kc: int) -> tuple:
        return _k_sliced(self.value.type.shape, self.k_dim, kc)

    def chunk_bytes(self, kc: int) -> int:
        return 0 if self.buffer is not None else _bytes(self.element, self.chunk_shape(kc))


def _k_sliced(shape, k_dim: int, kc: int) -> tuple:
    """`shape` with its K axis `k_dim` cut to `kc`: the shape of a K chunk."""
    return tuple(kc if d == k_dim else n for d, n in enumerate(shape))


def _operands(em, op, simdgroup: bool) -> list:
    """A's and B's _Operand, as the simdgroup path (fragment elements, simdgroup_load-able views) or the
    FMA path (their own elements, any view) reads them."""
    a, b = op.operands[:2]
    rank = len(a.type.shape)
    return [_operand(em, v, k_dim, SIMDGROUP_OPERANDS[v.type.element] if simdgroup else v.type.element, simdgroup)
            for v, k_dim in ((a, rank - 1), (b, rank - 2))]


def _operand(em, value, k_dim: int, element: str, fragments: bool) -> _Operand:
    var = em.vars.get(value.id)  # (none when an earlier dot dropped the unread local_load copy)
    if isinstance(var, Streamed):
        return _Operand(value, k_dim, element, source=var.value)
    buf = shared_source(em, value)
    if buf is not None and buf.ctype == msl_scalar(element) and (not fragments or _fragment_view(buf) is not None):
        return _Operand(value, k_dim, element, buffer=buf)
    return _Operand(value, k_dim, element, source=value)


def _k_chunk(k_size: int, operands, room: int, multiple: int = 1) -> int | None:
    """The largest K chunk (a divisor of K and a multiple of `multiple`) whose staged operands fit `room`
    bytes: K itself when they fit whole."""
    for kc in range(k_size - k_size % multiple, 0, -multiple):
        if k_size % kc == 0 and sum(o.chunk_bytes(kc) for o in operands) <= room:
            return kc
    return None


def _stage(em, o: _Operand, scratch: _Scratch, hint: str) -> SharedBuffer:
    """A row-major copy of the whole operand in the scratch, from its source registers."""
    staged = scratch.buffer(o.element, o.value.type.shape, hint)
    src = em.var(o.source)
    em.emit_loop(max(src.nregs, 1),
                 lambda i: f"{staged.element(coords(em, o.source.layout, i))} = {_converted(em, o, src.at(i))};")
    return staged


def _converted(em, o: _Operand, register: str) -> str:
    """A source register as the staged element: as it is (the FMA path stages fp8 codes and decodes
    them when it multiplies), or widened (fp8 decoded to half, bf16 to float, for simdgroup_matrix)."""
    if o.element == o.source.type.element:
        return register
    return widen(em, o.source.type.element, msl_scalar(o.element), register)


def _stage_chunk(em, o: _Operand, k0: str, kc: int) -> None:
    """The source registers whose K index is in [k0, k0 + kc) into `o.chunk`, at K index k - k0."""
    src = em.var(o.source)

    def body(i):
        at = coords(em, o.source.layout, i)
        k = em.fresh_own("chunk_k")
        em.emit(f"const int {k} = int({at[o.k_dim]}) - int({k0});")
        at[o.k_dim] = k
        em.emit(f"if ({k} >= 0 && {k} < {kc}) {o.chunk.element(at)} = {_converted(em, o, src.at(i))};")
    em.emit_block_loop(REG, max(src.nregs, 1), body)


@contextmanager
def _k_chunks(em, operands, k_size: int, kc: int):
    """`for (k0 ...) { stage the chunks; ...body... }`, yielding k0's name (K is in one piece when kc == K:
    nothing is emitted, the operands are staged whole or read in place)."""
    if kc == k_size:
        yield ""
        return
    k0 = em.fresh_own("dot_k0")
    em.emit(f"for (uint {k0} = 0; {k0} < {k_size}; {k0} += {kc}) {{")
    em.depth += 1
    em.barrier()  # the previous chunk has been read
    for o in operands:
        if o.chunk is not None:
            _stage_chunk(em, o, k0, kc)
    em.barrier()
    yield k0
    em.depth -= 1
    em.emit("}")


def _place(em, operands, scratch: _Scratch, kc: int, k_size: int) -> None:
    """Scratch for what is staged: each whole operand (staged here, kc == K) or its chunk buffer."""
    for o, hint in zip(operands, ("dot_a", "dot_b")):
        if o.source is None:
            continue
        if kc == k_size:
            o.buffer = _stage(em, o, scratch, hint)
        else:
            o.chunk = scratch.buffer(o.element, o.chunk_shape(kc), hint + "_chunk")


def _read(o: _Operand, at: list, k: str, k0: str) -> str:
    """Element `at` (its K coordinate `k` within the chunk) of the operand."""
    at = list(at)
    at[o.k_dim] = k if o.chunk is not None else _sum(k0, k)
    return (o.chunk or o.buffer).element(at)


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


# ---- a result tile larger than the memory left: a band of rows per round ---------------------------------

@contextmanager
def _bands(em, rows: int, band: int):
    """`for (band0 ...) {` over the row bands of a `rows`-row tile, a barrier first (the previous round's
    reads); yields band0's name."""
    r0 = em.fresh_own("band0")
    em.emit(f"for (uint {r0} = 0; {r0} < {rows}; {r0} += {band}) {{  // {band} of {rows} rows per round")
    em.depth += 1
    em.barrier()
    yield r0
    em.depth -= 1
    em.emit("}")


def _tiles_in_band(em, frags: Fragments, r0: str, band: int, statement) -> None:
    """`statement(fragment, band row)` for the tiles of this simdgroup's block within rows [r0, r0 + band)."""
    blk = frags.blocking
    with _owner_block(em, blk) as (row, col):
        def guarded(f, r, c):
            return f"if (uint({r}) - {r0} < {band}) {statement(f, f'{r} - {r0}', c)}"
        _each_tile(em, blk, row, col, guarded)


def _registers_in_band(em, value, r0: str, band: int, statement) -> None:
    """`statement(register, band row, column)` for the registers of `value` within rows [r0, r0 + band)."""
    def text(i):
        row, col = coords(em, value.layout, i)
        return in_window(row, r0, band, statement(i, AT, col))
    em.emit_loop(max(em.nregs(value), 1), text)


def _fill_fragments_in_bands(em, frags: Fragments, tile: SharedBuffer, init, band: int) -> None:
    """Accumulator fragments from the registers of `init`, through `tile` (band rows) a round at a time."""
    src, n = em.var(init), frags.blocking.n
    with _bands(em, frags.blocking.m, band) as r0:
        _registers_in_band(em, init, r0, band, lambda i, r, c: f"{tile.element([r, c])} = {src.at(i)};")
        em.barrier()
        _tiles_in_band(em, frags, r0, band,
                       lambda f, r, c: f"simdgroup_load({frags.name}[{f}], &{tile.element([r, c])}, {n});")


def _fragments_to_registers_in_bands(em, frags: Fragments, value, tile: SharedBuffer, band: int) -> None:
    """Defines `value` in its layout from the fragments, through `tile` (band rows) a round at a time."""
    out, n = em.declare_array(value), frags.blocking.n
    with _bands(em, frags.blocking.m, band) as r0:
        _tiles_in_band(em, frags, r0, band,
                       lambda f, r, c: f"simdgroup_store({frags.name}[{f}], &{tile.element([r, c])}, {n});")
        em.barrier()
        _registers_in_band(em, value, r0, band, lambda i, r, c: f"{out.name}[{i}] = {tile.element([r, c])};")
    em.barrier()  # the next op may overwrite the scratch
    em.alias(value, out)


def _multiply_accumulate(em, frags: Fragments, views, k_size: int) -> None:
    """frags += A x B over `k_size` (from K index a_k0 / b_k0 of their views: "" for 0), A and B read from
    threadgroup memory as 8x8 fragments, each once per K step."""
    (abuf, a_ld, a_t, a_k0), (bbuf, b_ld, b_t, b_k0) = views
    blk = frags.blocking
    with _owner_block(em, blk) as (row, col):
        kk, fa, fb = em.fresh_own("dot_k"), em.fresh_own("a_frag"), em.fresh_own("b_frag")
        i_loop, j_loop, f, i, j = _tile_loops(em, blk)
        em.emit(f"for (uint {kk} = 0; {kk} < {k_size}; {kk} += 8) {{")
        em.depth += 1
        em.emit(f"simdgroup_matrix<{abuf.ctype}, 8, 8> {fa}[{blk.tm}];")
        em.emit(f"simdgroup_matrix<{bbuf.ctype}, 8, 8> {fb}[{blk.tn}];")
        em.emit(f"{i_loop}simdgroup_load({fa}[{i or 0}], &{abuf.element([_at(row, i), _sum(a_k0, kk)])}, {a_ld}, ulong2(0), "
                f"{str(a_t).lower()});")
        em.emit(f"{j_loop}simdgroup_load({fb}[{j or 0}], &{bbuf.element([_sum(b_k0, kk), _at(col, j)])}, {b_ld}, ulong2(0), "
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


def _simdgroup_plan(em, op) -> tuple | None:
    """(K chunk, rows of the result tile per round) of the simdgroup_matrix path, or None when it does not
    apply or not even an 8-row band of the result tile and an 8-deep chunk of the operands fit.

    The result tile whole (one round, as before K chunks) when it fits beside some K chunk; else half the
    memory left to the K chunks and the rest to the band of rows that converts the result a round at a time."""
    if not _simdgroup_types(op):
        return None
    d = op.results[0]
    m_size, n_size = d.type.shape
    k_size = op.operands[0].type.shape[1]
    free = _free_threadgroup_bytes(em)
    operands = _operands(em, op, True)
    kc = _k_chunk(k_size, operands, free - _bytes(d.type.element, (m_size, n_size)), TILE)
    if kc is not None:
        return kc, m_size
    kc = _k_chunk(k_size, operands, free // 2, TILE) or _k_chunk(
        k_size, operands, free - _bytes(d.type.element, (TILE, n_size)), TILE)
    if kc is None:
        return None
    band = _band_rows(em, op, d, free - sum(o.chunk_bytes(kc) for o in operands))
    return (kc, band) if band else None


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
        staged = 0  # the operands' bytes when staged in 8-deep K chunks (lower_dot stages larger ones if they fit)
        for v, k_dim in zip(dot.operands[:2], (1, 0)):
            element = SIMDGROUP_OPERANDS[v.type.element]
            source = producers.get(v.id)
            if (source is None or source.name != "ttg.local_load" or memdesc_type(source.operands[0])[1] != element
                    or source.operands[0].id in em.arena.streamed):
                staged += _bytes(element, _k_sliced(v.type.shape, k_dim, TILE))
        after = _op_after(em, loop) or dot  # where the fragments are converted (leave_loop)
        if (staged <= MAX_THREADGROUP_MEMORY - em.arena.bytes_live(dot)
                and _band_rows(em, after, dot.results[0]) and _band_rows(em, dot, dot.results[0])):
            found[pos] = dot
    return found


def _band_rows(em, op, value, room: int | None = None) -> int | None:
    """Rows of `value`'s tile that go through threadgroup memory per round at `op` (all of them when the
    tile fits the memory left, `room` if given), or None when not even 8 rows fit."""
    m, n = value.type.shape
    room = MAX_THREADGROUP_MEMORY - em.arena.bytes_live(op) if room is None else room
    bands = [rows for rows in range(m, 0, -TILE) if m % rows == 0 and _bytes(value.type.element, (rows, n)) <= room]
    return bands[0] if bands else None


def enter_loop(em, dot, init) -> Fragments:
    """The fragments of `dot`'s loop-carried accumulator, holding the loop's initial value `init`."""
    d = dot.results[0]
    m, n = d.type.shape
    blk = blocking(m, n, em.options.num_warps)
    em.emit("// the accumulator of tt.dot stays in simdgroup_matrix registers across the loop")
    frags = _declare_fragments(em, d.type.element, blk, (init.name_hint or "acc") + "_frags")
    tile, band = None, m
    if em.var(init).is_array:
        band = _band_rows(em, dot, d)
        with _scratch_of(em, dot):
            tile = _Scratch(em).buffer(d.type.element, (band, n), "dot_tile")
    if band < m:  # (each round starts with a barrier: the scratch may still be read by the op before)
        _fill_fragments_in_bands(em, frags, tile, init, band)
    else:
        if tile is not None:
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
    after = _op_after(em, loop) or frags.dot
    m, n = result.type.shape
    band = _band_rows(em, after, result)
    with _scratch_of(em, after):
        tile = _Scratch(em).buffer(result.type.element, (band, n), "dot_tile")
    if band < m:  # (each round starts with a barrier: the scratch may still be read by the op before)
        _fragments_to_registers_in_bands(em, frags, result, tile, band)
        return
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
    k_size, free = a.type.shape[-1], _free_threadgroup_bytes(em)
    if isinstance(em.var(op.operands[2]), Fragments):  # carried_accumulators checked 8-deep chunks fit
        _lower_simdgroup(em, op, _k_chunk(k_size, _operands(em, op, True), free, TILE) or k_size)
    elif (plan := _simdgroup_plan(em, op)) is not None:
        _lower_simdgroup(em, op, *plan)
    else:  # (K whole when not even one-deep chunks fit: the arena's error names the bytes)
        em.barrier()  # the scratch may still be read by the op before
        _lower_fma(em, op, _k_chunk(k_size, _operands(em, op, False), free) or k_size)
    for operand in (a, b):
        drop_unread_load(em, operand)


def _lower_fma(em, op, kc: int):
    a, b, c = op.operands
    d = op.results[0]
    acc_ctype = em.ctype(d)
    rank = len(d.type.shape)
    k_size = a.type.shape[-1]
    scratch = _Scratch(em)
    operands = _operands(em, op, False)
    _place(em, operands, scratch, kc, k_size)
    if scratch.end and kc == k_size:
        em.barrier()
    cvar = em.var(c)
    out = em.declare_array(d)
    n = max(em.nregs(d), 1)
    # A half / bfloat accumulator is carried in float over the K loop and rounded once, as matrix
    # units do inside one instruction: rounding after every k step drifts on long K.
    sum_ctype = "float" if acc_ctype in ("half", "bfloat") else acc_ctype
    chunked = kc < k_size
    sums = out
    if chunked:
        if sum_ctype != acc_ctype:
            sums = Var(em.fresh_own("dot_sums"), sum_ctype, n)
            em.emit(f"{sum_ctype} {sums.name}[{n}];")
        em.emit_loop(n, lambda i: f"{sums.name}[{i}] = {cvar.at(i)};")
    em.emit(f"// tt.dot {'x'.join(map(str, a.type.shape[-2:]))} x {'x'.join(map(str, b.type.shape[-2:]))}: "
            f"FMA loop over K = {k_size} per accumulator register"
            + (f", operands staged in K chunks of {kc}" if chunked else ""))
    with _k_chunks(em, operands, k_size, kc) as k0:
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
        em.emit(f"{sum_ctype} {acc} = {(sums if chunked else cvar).at(REG)};")
        x = widen(em, a.type.element, sum_ctype, _read(operands[0], [*batch, m, k], k, k0))  # fp8: decoded
        y = widen(em, b.type.element, sum_ctype, _read(operands[1], [*batch, k, nn], k, k0))
        if d.type.is_float:
            step = f"{acc} = fma({x}, {y}, {acc});"
        else:  # integer dots wrap (signed overflow is undefined in MSL): accumulate in the unsigned type
            u = msl_scalar(d.type.element, unsigned=True)
            step = f"{acc} = as_type<{sum_ctype}>({u}({acc}) + {u}({x}) * {u}({y}));"
        em.emit(f"for (int {k} = 0; {k} < {kc}; ++{k}) {step}")
        if chunked:
            em.emit(f"{sums.name}[{REG}] = {acc};")
        else:
            em.emit(f"{out.name}[{REG}] = {acc_ctype}({acc});" if sum_ctype != acc_ctype
                    else f"{out.name}[{REG}] = {acc};")
        em.depth -= 1
        em.emit("}")
    if sums is not out:
        em.emit_loop(n, lambda i: f"{out.name}[{i}] = {acc_ctype}({sums.name}[{i}]);")
    em.alias(d, out)
    if scratch.end:
        em.barrier()


def _lower_simdgroup(em, op, kc: int, band: int | None = None):
    a, b, c = op.operands
    d = op.results[0]
    m_size, k_size = a.type.shape
    n_size = b.type.shape[1]
    cvar = em.var(c)
    carried = isinstance(cvar, Fragments)
    blk = cvar.blocking if carried else blocking(m_size, n_size, em.options.num_warps)
    band = band or m_size
    scratch = _Scratch(em)
    em.emit(f"// tt.dot {m_size}x{k_size} x {k_size}x{n_size} on simdgroup_matrix: {blk.wm}x{blk.wn} simdgroups, "
            f"each {blk.tm}x{blk.tn} 8x8 accumulator tiles in registers"
            + (" across the loop" if carried else "") + (f", operands staged in K chunks of {kc}" if kc < k_size else "")
            + (f", the result through threadgroup memory {band} rows at a time" if band < m_size else ""))
    operands = _operands(em, op, True)
    staged = any(o.source is not None for o in operands)
    tile = None if carried else scratch.buffer(d.type.element, (band, n_size), "dot_tile")
    if not carried or staged:
        em.barrier()  # the scratch may still be read by the op before
    rounds = band < m_size
    init_whole = tile is not None and cvar.is_array and not rounds  # the accumulator into the tile, in one go
    if init_whole:
        store_registers(em, tile, c)
    _place(em, operands, scratch, kc, k_size)
    if (staged and kc == k_size) or init_whole:
        em.barrier()
    if carried:
        frags = cvar
    else:
        frags = _declare_fragments(em, d.type.element, blk, "acc_frags")
        if rounds and cvar.is_array:
            _fill_fragments_in_bands(em, frags, tile, c, band)
        else:
            _fill_fragments(em, frags, tile if cvar.is_array else None, c)
    with _k_chunks(em, operands, k_size, kc) as k0:
        _multiply_accumulate(em, frags, [_fragment_operand(o, k0) for o in operands], kc)
    if carried:
        em.alias(d, frags)
        if staged:
            em.barrier()  # the next op may overwrite the staged operands
        return
    if rounds:
        _fragments_to_registers_in_bands(em, frags, d, tile, band)
    else:
        _fragments_to_registers(em, frags, d, tile)


def _fragment_operand(o: _Operand, k0: str) -> tuple:
    """(buffer, elements per row, transposed, first K index) for _multiply_accumulate."""
    buf = o.chunk or o.buffer
    return (buf, *_fragment_view(buf), "" if o.chunk is not None else k0)
