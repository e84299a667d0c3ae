"""Threadgroup-memory tensors (`!ttg.memdesc`): local_alloc / local_load / local_store / dealloc.

Each ``ttg.local_alloc`` buffer is a typed pointer into the kernel's threadgroup arena, at the offset
codegen.threadgroup_arena gave it by liveness (buffers that are never live at once share bytes).
A memdesc value is a ``SharedBuffer``: the pointer plus a row-major view (shape, strides, offset),
so transposes and sub-views are index arithmetic. Elements are stored in logical order: the
shared encoding's swizzling is for bank conflicts on NVIDIA and is not reproduced.

Async copies (only produced by software pipelining) are plain loads, stores and a barrier.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from triton_metal.codegen.emitter import Var, lowers
from triton_metal.codegen.msl_text import paren
from triton_metal.codegen.own_names import ARENA, REG
from triton_metal.codegen.threadgroup_arena import element_bytes, memdesc_type
from triton_metal.codegen.types import msl_scalar, threadgroup_pointer
from triton_metal.errors import UnsupportedOperationError

__all__ = ["SharedBuffer", "Streamed", "allocate", "element_bytes", "load_registers", "memdesc_type", "row_major_strides",
           "shared_source", "store_registers"]


@dataclass
class SharedBuffer(Var):
    """A view of a threadgroup array: element (c0, c1, ...) is at offset + sum(c_d * strides[d])."""
    shape: tuple = ()
    strides: tuple = ()
    offset: str = "0"

    def element(self, coords) -> str:
        terms = [self.offset] if self.offset != "0" else []
        for c, s in zip(coords, self.strides):
            if c == "0" or s == 0:
                continue
            terms.append(c if s == 1 else f"{paren(c)} * {s}")
        return f"{self.name}[{' + '.join(terms) or '0'}]"

    @property
    def is_row_major(self) -> bool:
        return self.strides == row_major_strides(self.shape)


def row_major_strides(shape) -> tuple:
    strides, stride = [], 1
    for n in reversed(shape):
        strides.append(stride)
        stride *= n
    return tuple(reversed(strides))


def allocate(em, element: str, shape, hint: str, value=None, note: str = "") -> SharedBuffer:
    """A threadgroup buffer for a tensor of `shape`: the arena's block of local_alloc result `value`
    (placed by liveness), or, without one, bytes of its own for the whole kernel."""
    numel = 1
    for n in shape:
        numel *= n
    ctype = msl_scalar(element)
    name = em.fresh_own(hint)
    nbytes = numel * element_bytes(element)
    offset = em.arena.buffer_offset(value.id) if value is not None else None
    live = em.arena.buffer_range(value.id) if value is not None else None
    if offset is None:
        offset, where = em.arena.own_buffer(name, nbytes), "for the whole kernel"
    elif live is None:
        where = "for the whole kernel"
    else:
        where = f"live {_where(em, live.start)} to {_where(em, live.end)}"
    em.prologue.append(f"    {threadgroup_pointer(ctype)} {name} = ({threadgroup_pointer(ctype)})({ARENA} + "
                       f"{offset});  // {'x'.join(map(str, shape))} {element}, {where}{note}")
    return SharedBuffer(name, ctype, shape=tuple(shape), strides=row_major_strides(shape))


def _where(em, index: int) -> str:
    """A point of the op order, for a comment: the op and its source line."""
    order = em.arena.order
    op = order.ops[index] if order is not None and index < len(order.ops) else None
    if op is None:
        return "the end"
    line = op.location.rsplit(":", 2)[-2] if op.location.count(":") >= 2 else "?"
    return f"{op.name} (line {line})"


def coords(em, layout, reg=REG) -> list:
    return [em.coord_expr(layout, d, reg) for d in range(layout.rank)]


def store_registers(em, buf: SharedBuffer, value) -> None:
    """Every register of tensor `value` to its element of `buf` (copies write the same value)."""
    src = em.var(value)
    n = max(em.nregs(value), 1)
    em.emit_loop(n, lambda i: f"{buf.element(coords(em, value.layout, i))} = {src.at(i)};")


def load_registers(em, buf: SharedBuffer, result) -> Var:
    return em.define(result, lambda i: buf.element(coords(em, result.layout, i)))


def _loaded_from(em) -> dict:
    """value id of a local_load result -> the SharedBuffer it read (tt.dot reads the buffer)."""
    return em.__dict__.setdefault("_tm_loaded_from", {})


def shared_source(em, value) -> SharedBuffer | None:
    return _loaded_from(em).get(value.id)


@dataclass
class Rematerialized(Var):
    """A buffer the arena writes again before each local_load of it (threadgroup_arena.rematerialize):
    the registers it holds (`value`, an IR value) stand in for it until then."""
    value: object = None


@dataclass
class Streamed(Var):
    """A buffer that gets no threadgroup memory (threadgroup_arena, stream_dot_operands): the tt.dot
    reading it stages the registers it holds (`value`, an IR value) K chunk by K chunk (lower_dot)."""
    value: object = None


@lowers("ttg.local_alloc")
def lower_local_alloc(em, op):
    result = op.results[0]
    if result.id in em.arena.streamed:
        em.alias(result, Streamed(em.var(op.operands[0]).name, "", value=op.operands[0]))
        return
    if result.id in em.arena.rematerialized:
        em.alias(result, Rematerialized(em.var(op.operands[0]).name, "", value=op.operands[0]))
        return
    shape, element = memdesc_type(result)
    buf = allocate(em, element, shape, (result.name_hint or "smem") + "_smem", result)
    if op.operands:
        # In a loop the previous iteration may still read the buffer: barrier, write, barrier.
        em.barrier()
        store_registers(em, buf, op.operands[0])
        em.barrier()
    em.alias(result, buf)


@lowers("ttg.local_store")
def lower_local_store(em, op):
    buf = em.var(op.operands[1])
    em.barrier()
    store_registers(em, buf, op.operands[0])
    em.barrier()


@lowers("ttg.local_load")
def lower_local_load(em, op):
    buf = em.var(op.operands[0])
    if isinstance(buf, Streamed):  # only tt.dot reads it: the dot stages the registers
        em.alias(op.results[0], buf)
        return
    if isinstance(buf, Rematerialized):  # written here, just before its reader, from the registers
        shape, element = memdesc_type(op.operands[0])
        registers = buf.value
        buf = allocate(em, element, shape, (op.operands[0].name_hint or "smem") + "_smem", op.results[0],
                       "; written again from registers before each read, as it does not fit for the whole loop")
        em.barrier()
        store_registers(em, buf, registers)
        em.barrier()
    start = len(em.lines)
    var = load_registers(em, buf, op.results[0])
    _loaded_from(em)[op.results[0].id] = buf
    _load_lines(em)[op.results[0].id] = (var.name, em.lines[start:])


def _load_lines(em) -> dict:
    return em.__dict__.setdefault("_tm_load_lines", {})


def drop_unread_load(em, value) -> None:
    """Remove the register copy a local_load made of `value` when nothing has read it.

    tt.dot reads its operands from the threadgroup buffer, so the copy of a dot operand (often
    hundreds of registers in a #ttg.dot_op layout) is dead. A later reader gets a clear error.
    """
    name, lines = _load_lines(em).pop(value.id, (None, None))
    if not lines:
        return
    first = next((k for k, line in enumerate(em.lines) if line is lines[0]), None)
    if first is None or em.lines[first:first + len(lines)] != lines:
        return
    used = re.compile(rf"\b{re.escape(name)}\b")
    if any(used.search(line) for line in em.lines[first + len(lines):]):
        return
    del em.lines[first:first + len(lines)]
    em.vars.pop(value.id, None)


@lowers("ttg.local_dealloc")
def lower_local_dealloc(em, op):
    pass  # the buffer's live range ends at its last use (threadgroup_arena); nothing to free


@lowers("ttg.memdesc_trans")
def lower_memdesc_trans(em, op):
    src = em.var(op.operands[0])
    order = order_attr(op, len(src.shape))
    em.alias(op.results[0], SharedBuffer(src.name, src.ctype, shape=tuple(src.shape[d] for d in order),
                                         strides=tuple(src.strides[d] for d in order), offset=src.offset))


@lowers("ttg.memdesc_index")
def lower_memdesc_index(em, op):
    src = em.var(op.operands[0])
    index = em.var(op.operands[1]).at(0)
    offset = f"{paren(index)} * {src.strides[0]}"
    if src.offset != "0":
        offset = f"{src.offset} + {offset}"
    em.alias(op.results[0], SharedBuffer(src.name, src.ctype, shape=src.shape[1:], strides=src.strides[1:],
                                         offset=offset))


_ORDER = re.compile(r"order = array<i32:\s*([\d,\s]+)>")


def order_attr(op, rank: int) -> list:
    """The permutation of a transpose: result dim d is source dim order[d] (from the op's text)."""
    m = _ORDER.search(getattr(op, "text", "") or "")
    if m:
        return [int(v) for v in m.group(1).split(",")]
    if rank == 2:  # identity permutations are folded away: a rank-2 transpose is [1, 0]
        return [1, 0]
    raise UnsupportedOperationError(f"{op.name} of rank {rank}", op.location,
                                    "the permutation could not be read from the IR",
                                    "transpose the tensor before storing it to shared memory")


# ---- async copies: global -> threadgroup without the asynchrony ------------------------------
_TOKEN = Var("0", "int")


@lowers("ttg.async_copy_global_to_local")
def lower_async_copy(em, op):
    ptrs, buf = em.var(op.operands[0]), em.var(op.operands[1])
    mask = em.var(op.operands[2]) if len(op.operands) > 2 else None
    other = em.var(op.operands[3]) if len(op.operands) > 3 else None
    layout = op.operands[0].layout
    zero = f"{buf.ctype}(0)"
    em.barrier()

    def text(i):
        load = f"*{ptrs.at(i)}"
        if mask is not None:
            load = f"{mask.at(i)} ? {load} : {other.at(i) if other else zero}"
        return f"{buf.element(coords(em, layout, i))} = {load};"
    em.emit_loop(max(ptrs.nregs, 1), text)
    for r in op.results:
        em.alias(r, _TOKEN)


@lowers("ttg.async_commit_group")
def lower_async_commit(em, op):
    for r in op.results:
        em.alias(r, _TOKEN)


@lowers("ttg.async_wait")
def lower_async_wait(em, op):
    em.barrier()  # the copies were plain stores: a barrier makes them visible to the threadgroup
    for r in op.results:
        em.alias(r, _TOKEN)
