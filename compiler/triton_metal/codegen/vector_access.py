"""Vectorised global accesses: a thread's consecutive registers moved by one vector load or store.

When a thread holds n consecutive elements along its layout's lowest register bits (a blocked layout
with sizePerThread=[4] holds four), tt.load and tt.store move each group of n registers with one
``float4`` (``half4``, ``long2``, ...) access instead of n scalar ones: a simdgroup's scalar access
then touches 32 elements 16 bytes apart, its vector access 512 consecutive bytes.

Whether a group's n pointers really are consecutive and its first one is aligned to the vector's size
is checked at run time (``tm_consecutive``, ``tm_aligned``: msl_helpers), with the n mask bits. A group
that fails the check (the mask edge, an unaligned base such as ``x[1:]``, a strided tensor) takes the
scalar path, register by register, as before. So the result never depends on an analysis of the
pointers being right: the layout only says where a vector access is worth trying. Metal requires a
vector access of device memory to be aligned to the vector's size, which the check guarantees.

An unaligned group is not moved as a packed vector (packed_float4: aligned to its element): code
choosing between an aligned and a packed load of the same address lets g++ merge the two into one
aligned load, which faults in the simulator; and a packed load may be split into scalar ones on the GPU.
"""
from __future__ import annotations

from triton_metal.codegen import msl_helpers
from triton_metal.codegen.own_names import COMPONENT, REG
from triton_metal.codegen.types import SIZES

MAX_VECTOR_BYTES = 16  # the widest access a lane makes at once (a float4)
MAX_COMPONENTS = 4  # MSL vectors have 2, 3 or 4 components

# Element type -> (vector element type, the expression of an element read from it, of one written to it).
# bfloat vectors are spelled as ushort vectors (the same bits): the front-end model has no bfloat4.
VECTOR_ELEMENTS = {
    **{t: (t, "{}", "{}") for t in ("char", "uchar", "short", "ushort", "half", "int", "uint", "float",
                                    "long", "ulong")},
    "bfloat": ("ushort", "as_type<bfloat>({})", "as_type<ushort>({})"),
}


def vector_type(ctype: str, width: int) -> str:
    """The MSL type one access of `width` elements moves: `float4`; more than 4 one- or two-byte elements
    (8 halves, 16 chars: 16 bytes) move as a vector of 32-bit words, each holding 4 / size of them."""
    if width <= MAX_COMPONENTS:
        return f"{VECTOR_ELEMENTS[ctype][0]}{width}"
    return f"uint{width * SIZES[ctype] // 4}"


def read_component(ctype: str, width: int, vector: str, k: str) -> str:
    """Element `k` (an MSL index expression) of the loaded `vector` (vector_type(ctype, width)), as `ctype`."""
    element, read, _ = VECTOR_ELEMENTS[ctype]
    if width <= MAX_COMPONENTS:
        return read.format(f"{vector}[{k}]")
    per_word = 4 // SIZES[ctype]
    return read.format(f"as_type<{element}{per_word}>({vector}[{k} / {per_word}])[{k} % {per_word}]")


def build_vector(ctype: str, width: int, values: list) -> list:
    """Lines of the expression of the vector_type(ctype, width) value holding `values` (`ctype` MSL
    expressions): one line, or one line per 32-bit word."""
    element, _, write = VECTOR_ELEMENTS[ctype]
    parts = [write.format(v) for v in values]
    if width <= MAX_COMPONENTS:
        return [f"{element}{width}({', '.join(parts)})"]
    per_word = 4 // SIZES[ctype]
    words = [f"    as_type<uint>({element}{per_word}({', '.join(parts[w:w + per_word])}))"
             for w in range(0, width, per_word)]
    return [f"{vector_type(ctype, width)}("] + [w + "," for w in words[:-1]] + [words[-1] + ")"]


def contiguous_registers(layout) -> int:
    """How many of a thread's registers, from each multiple of that count, hold consecutive elements of
    one dimension: 2**k for the k lowest register bits whose bases are 1, 2, 4 ... along one dimension."""
    if layout is None:
        return 1
    count, dim = 1, None
    for bit, base in enumerate(layout.reg_bases):
        nonzero = [d for d, v in enumerate(base) if v]
        if len(nonzero) != 1 or base[nonzero[0]] != 1 << bit or dim not in (None, nonzero[0]):
            break
        dim, count = nonzero[0], count * 2
    return count


def vector_width(layout, ctype: str) -> int:
    """The registers one vector access moves (up to 16 bytes of them), or 1: none (a scalar tensor, a
    pointer or bool element, a layout whose lowest registers are not consecutive elements)."""
    if ctype not in VECTOR_ELEMENTS:
        return 1
    width = min(contiguous_registers(layout), MAX_VECTOR_BYTES // SIZES[ctype])
    return width if width >= 2 else 1


def _index(group: str, k: str) -> str:
    """Register expression `k` registers after `group` (an array index)."""
    if group == "0":
        return k
    return group if k == "0" else f"{group} + {k}"


def _vector_condition(em, ptr, mask, group: str, width: int, ctype: str) -> str:
    """When the group moves as one vector: consecutive pointers, the first aligned to the vector's size,
    all unmasked."""
    em.add_helper(msl_helpers.CONSECUTIVE)
    array = lambda var: var.name if group == "0" else f"{var.name} + {group}"
    terms = [f"tm_consecutive({array(ptr)}, {width})", _aligned(em, ptr, group, width, ctype)]
    if mask is not None and mask.is_array:
        em.add_helper(msl_helpers.ALL_SET)
        terms.append(f"tm_all_set({array(mask)}, {width})")
    elif mask is not None:
        terms.append(mask.at(0))
    return " && ".join(terms)


def _aligned(em, ptr, group: str, width: int, ctype: str) -> str:
    em.add_helper(msl_helpers.ALIGNED)
    return f"tm_aligned({ptr.at(group)}, {width * SIZES[ctype]})"


def _vector_pointer(em, ptr, group: str, vector: str) -> str:
    return f"*({em.device_space} {vector}*){ptr.at(group)}"


def _each(group: str, width: int, statement) -> str:
    """A loop running ``statement(i)`` for the registers ``i`` of the group starting at `group`."""
    first = group
    last = str(width) if group == "0" else f"{group} + {width}"
    return f"for (uint {COMPONENT} = {first}; {COMPONENT} < {last}; ++{COMPONENT}) {statement(COMPONENT)}"


def _branch(em, condition: str, vector_lines, scalar_lines) -> None:
    em.emit(f"if ({condition}) {{")
    em.depth += 1
    for line in vector_lines:
        em.emit(line)
    em.depth -= 1
    em.emit("} else {")
    em.depth += 1
    for line in scalar_lines:
        em.emit(line)
    em.depth -= 1
    em.emit("}")


def emit_load(em, result, ptr, mask, scalar_text, width: int) -> None:
    """Defines `result` (a register array) from `ptr`, `width` registers at a time (see the module's
    doc); ``scalar_text(i)`` is the scalar path's expression of register expression ``i``."""
    var = em.declare_array(result)
    ctype = var.ctype
    vector = vector_type(ctype, width)

    def body(group):
        name = em.fresh_own("vector")
        component = lambda c: f"{var.at(_index(group, c))} = {read_component(ctype, width, name, c)};"
        loaded = [f"const {vector} {name} = {_vector_pointer(em, ptr, group, vector)};", _each("0", width, component)]
        scalar = [_each(group, width, lambda i: f"{var.at(i)} = {scalar_text(i)};")]
        _branch(em, _vector_condition(em, ptr, mask, group, width, ctype), loaded, scalar)
    em.emit_block_loop(REG, var.nregs, body, step=width)
    em.alias(result, var)


def emit_store(em, ptr, value, mask, scalar_text, width: int, nregs: int, group_guard) -> None:
    """Stores `value` through `ptr`, `width` registers at a time; ``scalar_text(i)`` is the scalar path's
    statement for register expression ``i``; ``group_guard(group)`` is a condition a whole group is
    stored under (the owner rule of redundant registers), or ''."""
    ctype = value.ctype
    vector = vector_type(ctype, width)

    def body(group):
        stored = build_vector(ctype, width, [value.at(_index(group, str(k))) for k in range(width)])
        stored[0] = f"{_vector_pointer(em, ptr, group, vector)} = {stored[0]}"
        stored[-1] += ";"
        scalar = [_each(group, width, scalar_text)]
        guard = group_guard(group)
        if guard:
            em.emit(f"if ({guard}) {{")
            em.depth += 1
        _branch(em, _vector_condition(em, ptr, mask, group, width, ctype), stored, scalar)
        if guard:
            em.depth -= 1
            em.emit("}")
    em.emit_block_loop(REG, nregs, body, step=width)
