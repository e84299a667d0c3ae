"""Shape ops: tt.join, tt.split, tt.reshape (reshape / view), tt.trans (trans / permute), tt.cat.

Each is a map from a result coordinate to (source operand, source coordinate). When every thread
already holds the elements it needs (the map moves nothing across lanes or simdgroups), the op
renames registers; otherwise the sources go through threadgroup memory, stacked one after the
other in row-major order, and each thread reads its result elements back.
"""
from __future__ import annotations

import re
from dataclasses import replace

from triton_metal.codegen.emitter import lowers
from triton_metal.codegen.layout import LinearLayout, linear_index
from triton_metal.codegen.msl_text import comment
from triton_metal.codegen.ops.lower_layout import relayout
from triton_metal.codegen.own_names import BIN, COUNT, PART
from triton_metal.codegen.types import sizeof, threadgroup_pointer


def _xor(a, b):
    return (a[0] ^ b[0], tuple(x ^ y for x, y in zip(a[1], b[1])))


def _register_map(sources, dst_layout, project):
    """[(source, register)] per result register, or None when elements must cross threads."""
    src_layout = sources[0].layout
    zero = project((0,) * dst_layout.rank)
    for dst_bases, src_bases in ((dst_layout.lane_bases, src_layout.lane_bases),
                                 (dst_layout.warp_bases, src_layout.warp_bases)):
        if len(dst_bases) != len(src_bases):
            return None
        for d, s in zip(dst_bases, src_bases):
            k, c = _xor(project(d), zero)
            if k != 0 or c != tuple(s):
                return None
    index = {c: r for r, c in reversed(list(enumerate(src_layout.reg_coords)))}
    out = []
    for coord in dst_layout.reg_coords:
        k, c = project(coord)
        if c not in index:
            return None
        out.append((k, index[c]))
    return out


def gather(em, sources, dst, project, stacked_index):
    """Define `dst` from `sources` (values of one shape and layout).

    project(result coordinate) -> (source number, source coordinate), on integers;
    stacked_index(result coordinate expressions) -> index into the sources stacked row-major.
    """
    srcs = [em.var(s) for s in sources]
    if all(not s.is_array for s in srcs) and len({s.name for s in srcs}) == 1:
        return em.alias(dst, type(srcs[0])(srcs[0].name, srcs[0].ctype, em.nregs(dst), uniform=True))
    mapping = _register_map(sources, dst.layout, project) if sources[0].layout else None
    if mapping is not None:
        var = em.declare_array(dst)
        for r, (k, s) in enumerate(mapping):
            em.emit(f"{var.name}[{r}] = {srcs[k].at(s)};")
        return em.alias(dst, var)
    shape = sources[0].type.shape
    numel = sources[0].type.numel
    ctype = srcs[0].ctype
    ptr = em.fresh_own("staging")
    em.emit(f"{threadgroup_pointer(ctype)} {ptr} = {em.scratch(ctype, len(sources) * numel * sizeof(ctype))};")
    layout = sources[0].layout
    for k, s in enumerate(srcs):
        base = f"{k * numel} + " if k else ""
        em.emit_loop(em.nregs(sources[k]), lambda i, s=s, base=base: f"{ptr}[{base}{linear_index(shape, [em.coord_expr(layout, d, i) for d in range(len(shape))])}] = {s.at(i)};")
    em.barrier()
    var = em.define(dst, lambda i: f"{ptr}[{stacked_index([em.coord_expr(dst.layout, d, i) for d in range(dst.layout.rank)])}]")
    em.barrier()
    return var


def _unflatten(index: int, shape) -> tuple:
    out = []
    for n in reversed(shape):
        out.append(index % n)
        index //= n
    return tuple(reversed(out))


def _flatten(coord, shape) -> int:
    index = 0
    for c, n in zip(coord, shape):
        index = index * n + c
    return index


@lowers("tt.join")
def lower_join(em, op):
    shape = op.operands[0].type.shape
    gather(em, op.operands, op.results[0], lambda c: (c[-1], tuple(c[:-1])),
           lambda e: f"{paren_mul(e[-1], _numel(shape))} + {linear_index(shape, e[:-1])}" if e[-1] != "0" else linear_index(shape, e[:-1]))


@lowers("tt.split")
def lower_split(em, op):
    shape = op.operands[0].type.shape
    for k, res in enumerate(op.results):
        gather(em, op.operands, res, lambda c, k=k: (0, tuple(c) + (k,)), lambda e, k=k: linear_index(shape, [*e, str(k)]))


@lowers("tt.reshape")
def lower_reshape(em, op):
    src, dst = op.operands[0], op.results[0]
    src_shape, dst_shape = src.type.shape, dst.type.shape

    def project(c):
        return (0, _unflatten(_flatten(c, dst_shape), src_shape))
    # Row-major order on both sides whenever that is a renaming of registers. When it is not, a reshape
    # that may reorder (`allow_reorder`: tl.sum/tl.max ... without an axis, `tl.view`,
    # reshape(can_reorder=True)) whose layouts hold the same elements per thread keeps every thread's
    # registers as they are, as Triton's own lowering does: the element the result layout puts at
    # (register r, lane l, simdgroup w) is the one the source layout put there. No threadgroup memory
    # (a 1-D block of 32768 went through 128 KiB of it before); the result is a permutation of the source.
    if (_ALLOW_REORDER.search(op.text) and src.layout and dst.layout and em.var(src).is_array
            and _register_map(op.operands, dst.layout, project) is None
            and registers_permute(src.layout, dst.layout)):
        em.emit(comment(f"{dst.name_hint or 'reshape'}: reshape that may reorder, each thread keeps its registers"))
        em.register_orders[dst.id] = src
        return em.alias(dst, em.var(src))
    gather(em, op.operands, dst, project, lambda e: linear_index(dst_shape, e))


_ALLOW_REORDER = re.compile(r"\ballow_reorder\b")


def paired_operands(em, values) -> list:
    """The Vars of `values` (a multi-operand tt.reduce's, of one layout and shape), their k-th registers
    holding elements of one row-major index. Each operand of an axis-less tl.reduce((x, i), None, f) is
    reshaped on its own, and a reshape that kept registers leaves them in its source layout's order:
    the operands whose order differs from the first one's are converted to it first (a layout
    conversion: registers renamed when possible, else through threadgroup memory, in rounds when large)."""
    held = [em.register_orders.get(v.id, v) for v in values]  # whose layout says what each register holds
    orders = [_flat_bases(h.layout) for h in held]
    if all(o == orders[0] for o in orders) or None in orders:
        return [em.var(v) for v in values]
    first = held[0].layout
    return [em.var(v) if o == orders[0] else _in_layout(em, h, _reexpressed(first, h.type.shape))
            for v, h, o in zip(values, held, orders)]


def _reexpressed(layout, shape):
    """`layout` on a tensor of `shape` of as many elements: each register, lane and simdgroup holds the
    element of the same row-major index."""
    def bases(bs):
        return [_unflatten(_flatten(b, layout.shape), shape) for b in bs]
    return LinearLayout.from_bases(shape, bases(layout.reg_bases), bases(layout.lane_bases), bases(layout.warp_bases))


def _in_layout(em, value, layout):
    """The Var of `value` converted to `layout` (`value` keeps its own Var for its other users)."""
    copy = replace(value, id=-1 - value.id, layout=layout)
    var = relayout(em, value, copy, tuple)
    del em.vars[copy.id]
    return var


def _flat_bases(layout) -> list | None:
    """Row-major index of each register, lane and simdgroup basis; None unless every dimension is a power
    of two (then the index of an XOR of coordinates is the XOR of their indices)."""
    if any(n & (n - 1) for n in layout.shape):
        return None
    return [_flatten(b, layout.shape) for b in (*layout.reg_bases, *layout.lane_bases, *layout.warp_bases)]


def _rank(vectors) -> int:
    """Rank over GF(2) of integers taken as bit vectors."""
    basis = []
    for v in vectors:
        for b in basis:
            v = min(v, v ^ b)
        if v:
            basis.append(v)
    return len(basis)


def registers_permute(src_layout, dst_layout) -> bool:
    """Whether taking each thread's registers as they are, from `src_layout` to `dst_layout` (same
    number of elements), maps the source's elements one to one onto the result's: the same number of
    register, lane and simdgroup bits, and the same (register, lane, simdgroup) indices holding copies of
    one element on both sides (equal kernels: rank of each map = rank of both side by side)."""
    if tuple(map(len, (src_layout.reg_bases, src_layout.lane_bases, src_layout.warp_bases))) != \
            tuple(map(len, (dst_layout.reg_bases, dst_layout.lane_bases, dst_layout.warp_bases))):
        return False
    src, dst = _flat_bases(src_layout), _flat_bases(dst_layout)
    if src is None or dst is None:
        return False
    width = max(src + dst + [0]).bit_length()
    rank = _rank(src)
    return rank == _rank(dst) == _rank([s << width | d for s, d in zip(src, dst)])


_ORDER = re.compile(r"order = array<i32:\s*([\d,\s]+)>")


@lowers("tt.trans")
def lower_trans(em, op):
    m = _ORDER.search(op.text)
    if not m:
        raise em.unsupported(op, "the permutation of tt.trans could not be read from the IR")
    order = [int(v) for v in m.group(1).split(",")]
    src_shape = op.operands[0].type.shape

    def project(c):
        src = [0] * len(order)
        for i, o in enumerate(order):
            src[o] = c[i]
        return (0, tuple(src))

    def index(e):
        src = ["0"] * len(order)
        for i, o in enumerate(order):
            src[o] = e[i]
        return linear_index(src_shape, src)
    gather(em, op.operands, op.results[0], project, index)


@lowers("tt.cat")
def lower_cat(em, op):
    n = op.operands[0].type.shape[0]
    dst_shape = op.results[0].type.shape
    # Concatenating along dim 0 of row-major blocks is stacking them: the result's own row-major index.
    gather(em, op.operands, op.results[0], lambda c: (c[0] // n, (c[0] % n, *c[1:])), lambda e: linear_index(dst_shape, e))


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def paren_mul(expr: str, k: int) -> str:
    return f"({expr}) * {k}" if not expr.isidentifier() else f"{expr} * {k}"


def _stage(em, value, hint: str, offset: int = 0):
    """Writes every element of `value` to threadgroup memory in row-major order, `offset` bytes into
    the scratch area; returns the pointer."""
    src = em.var(value)
    shape, layout = value.type.shape, value.layout
    ptr = em.fresh_own(hint)
    nbytes = offset + value.type.numel * sizeof(src.ctype)
    em.emit(f"{threadgroup_pointer(src.ctype)} {ptr} = {em.scratch(src.ctype, nbytes, offset)};")
    em.emit_loop(em.nregs(value), lambda i: f"{ptr}[{linear_index(shape, [em.coord_expr(layout, d, i) for d in range(len(shape))])}] = {src.at(i)};")
    em.barrier()
    return ptr


@lowers("tt.gather")
def lower_gather(em, op):
    axis = op.int_attr("axis")
    src_value, index_value = op.operands[0], op.operands[1]
    shape = src_value.type.shape
    index = em.var(index_value)
    result = op.results[0]
    ptr = _stage(em, src_value, "gather_source")

    def read(i):
        coord = [em.coord_expr(result.layout, d, i) for d in range(result.layout.rank)]
        coord[axis] = index.at(i)
        return f"{ptr}[{linear_index(shape, coord)}]"
    em.define(result, read)
    em.barrier()


@lowers("tt.histogram")
def lower_histogram(em, op):
    # Every thread counts its own bins over the whole (staged) input: no atomics needed.
    src_value = op.operands[0]
    result = op.results[0]
    ptr = _stage(em, src_value, "histogram_input")
    numel = src_value.type.numel
    # tl.histogram(x, bins, mask=m): masked-off elements are not counted (the mask is staged after x).
    mask_offset = (numel * sizeof(em.var(src_value).ctype) + 15) // 16 * 16
    counted = f"{_stage(em, op.operands[1], 'histogram_mask', mask_offset)}[{PART}] && " if len(op.operands) > 1 else ""
    var = em.declare_array(result)
    ctype = var.ctype
    em.emit_loop(var.nregs, lambda i: f"{{ {ctype} {COUNT} = 0; int {BIN} = {em.coord_expr(result.layout, 0, i)}; "
                 f"for (uint {PART} = 0; {PART} < {numel}; ++{PART}) {COUNT} += {counted}{ptr}[{PART}] == {BIN}; "
                 f"{var.name}[{i}] = {COUNT}; }}")
    em.alias(result, var)
    em.barrier()
