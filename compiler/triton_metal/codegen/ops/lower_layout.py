"""Ops that move elements between layouts or shapes: expand_dims, broadcast, convert_layout.

All use one mechanism. `project` maps a coordinate of the result to the coordinate of the source
element it takes. When every lane and simdgroup of the result holds (after projection) what it
held in the source, the op is a compile-time renaming of registers; otherwise the elements go
through threadgroup memory.
"""
from __future__ import annotations

from triton_metal.abi import MAX_THREADGROUP_MEMORY
from triton_metal.codegen.emitter import lowers
from triton_metal.codegen.layout import bits_expr, linear_index
from triton_metal.codegen.own_names import AT, REG, ROUND
from triton_metal.codegen.types import sizeof, threadgroup_pointer


def _register_map(src_layout, dst_layout, project):
    """For each result register, the source register holding its element, or None if impossible."""
    for dst_bases, src_bases in ((dst_layout.lane_bases, src_layout.lane_bases),
                                 (dst_layout.warp_bases, src_layout.warp_bases)):
        if len(dst_bases) != len(src_bases):
            return None
        if any(project(d) != tuple(s) for d, s in zip(dst_bases, src_bases)):
            return None
    index = {c: r for r, c in reversed(list(enumerate(src_layout.reg_coords)))}
    mapping = [index.get(project(c)) for c in dst_layout.reg_coords]
    return None if None in mapping else mapping


def _index_expr(mapping) -> str | None:
    """`mapping` as an expression of the register index REG when it is linear over its bits, else None."""
    n = len(mapping)
    bits = n.bit_length() - 1
    bases = [(mapping[1 << b],) for b in range(bits)]
    for i, m in enumerate(mapping):
        x = 0
        for b in range(bits):
            if i >> b & 1:
                x ^= bases[b][0]
        if x != m:
            return None
    return bits_expr(REG, bases, 0)


def relayout(em, src_value, dst_value, project):
    src = em.var(src_value)
    if not src.is_array:
        return em.alias(dst_value, type(src)(src.name, src.ctype, em.nregs(dst_value), uniform=True))
    src_layout, dst_layout = src_value.layout, dst_value.layout
    mapping = _register_map(src_layout, dst_layout, project)
    if mapping is not None:
        expr = _index_expr(mapping)
        if expr is not None:
            return em.define(dst_value, lambda i: f"{src.name}[{expr if i == REG else mapping[int(i)]}]")
        var = em.declare_array(dst_value)
        for r, s in enumerate(mapping):
            em.emit(f"{var.name}[{r}] = {src.name}[{s}];")
        return em.alias(dst_value, var)
    return _through_threadgroup_memory(em, src, src_value, dst_value, project)


MIN_ROUND_BYTES = 1024  # a conversion in rounds needs at least this much threadgroup memory left


def _through_threadgroup_memory(em, src, src_value, dst_value, project):
    numel, size = src_value.type.numel, sizeof(src.ctype)
    budget = MAX_THREADGROUP_MEMORY - em.shared_bytes
    if numel * size > budget >= MIN_ROUND_BYTES:  # (with less room left, the error below names the total)
        return _through_threadgroup_memory_in_rounds(em, src, src_value, dst_value, project, budget // size)
    src_layout, dst_layout = src_value.layout, dst_value.layout
    shape = src_value.type.shape
    ctype = src.ctype
    ptr = em.fresh_own("staging")
    em.emit(f"{threadgroup_pointer(ctype)} {ptr} = {em.scratch(ctype, numel * sizeof(ctype))};")
    em.emit_loop(src.nregs, lambda i: f"{ptr}[{linear_index(shape, [em.coord_expr(src_layout, d, i) for d in range(len(shape))])}] = {src.at(i)};")
    em.barrier()

    def read(i):
        dst_coord = [em.coord_expr(dst_layout, d, i) for d in range(dst_layout.rank)]
        src_coord = project_exprs(project, dst_coord, len(shape))
        return f"{ptr}[{linear_index(shape, src_coord)}]"
    var = em.define(dst_value, read)
    em.barrier()
    return var


def _through_threadgroup_memory_in_rounds(em, src, src_value, dst_value, project, capacity: int):
    """A conversion larger than threadgroup memory, a slab of the tensor (row-major) per round, as
    CUDA's conversions through shared memory repeat: each side moves the elements in the slab."""
    src_layout, dst_layout = src_value.layout, dst_value.layout
    shape, ctype = src_value.type.shape, src.ctype
    slab = 1 << (capacity.bit_length() - 1)  # a power of two, so a round is a shift of the index
    rounds = -(-src_value.type.numel // slab)
    ptr = em.fresh_own("staging")
    em.emit(f"{threadgroup_pointer(ctype)} {ptr} = {em.scratch(ctype, slab * sizeof(ctype))};")
    var = em.declare_array(dst_value)
    # AT wraps around (unsigned) below the slab, so one comparison tells whether it is in this round.
    em.emit(f"for (uint {ROUND} = 0; {ROUND} < {rounds}; ++{ROUND}) {{  "
            f"// {slab} of {src_value.type.numel} elements per round")
    em.depth += 1
    em.emit_loop(src.nregs, lambda i: in_window(
        linear_index(shape, [em.coord_expr(src_layout, d, i) for d in range(len(shape))]), f"{ROUND} * {slab}", slab,
        f"{ptr}[{AT}] = {src.at(i)};"))
    em.barrier()

    def read(i):
        src_coord = project_exprs(project, [em.coord_expr(dst_layout, d, i) for d in range(dst_layout.rank)], len(shape))
        return in_window(linear_index(shape, src_coord), f"{ROUND} * {slab}", slab, f"{var.name}[{i}] = {ptr}[{AT}];")
    em.emit_loop(var.nregs, read)
    em.barrier()
    em.depth -= 1
    em.emit("}")
    return em.alias(dst_value, var)


def in_window(index: str, start: str, length: int, statement: str) -> str:
    """`statement` (which names the offset own_names.AT) when `index` is in [start, start + length): the
    offset wraps around, unsigned, below the window, so one comparison tells. For what passes through
    threadgroup memory a round at a time."""
    return f"{{ uint {AT} = uint({index}) - {start}; if ({AT} < {length}) {statement} }}"


def project_exprs(project, coord_exprs, src_rank):
    """Apply `project` (defined on integer coordinates) to coordinate expressions.

    Projections here only drop, zero or keep dimensions, so probing with unit vectors tells
    which result dimension each source dimension comes from.
    """
    rank = len(coord_exprs)
    out = ["0"] * src_rank
    for d in range(rank):
        probe = tuple(1 if k == d else 0 for k in range(rank))
        image = project(probe)
        for s, v in enumerate(image):
            if v:
                out[s] = coord_exprs[d]
    return out


@lowers("tt.expand_dims")
def lower_expand_dims(em, op):
    axis = op.int_attr("axis")
    relayout(em, op.operands[0], op.results[0], lambda c: tuple(c[:axis]) + tuple(c[axis + 1:]))


@lowers("tt.broadcast")
def lower_broadcast(em, op):
    src_shape = op.operands[0].type.shape
    relayout(em, op.operands[0], op.results[0],
             lambda c: tuple(0 if n == 1 else x for x, n in zip(c, src_shape)))


@lowers("ttg.convert_layout")
def lower_convert_layout(em, op):
    relayout(em, op.operands[0], op.results[0], tuple)
