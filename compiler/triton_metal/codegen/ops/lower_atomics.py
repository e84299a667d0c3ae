"""Atomics (tt.atomic_rmw, tt.atomic_cas) and tl.debug_barrier (ttg.barrier).

Each element is updated once, by the thread that owns it (as stores are, see lower_memory), and
the old value reaches every thread holding a copy of the element through threadgroup memory.
Metal's atomic functions take ``memory_order_relaxed`` only; the ``sem`` and ``scope`` of an atomic
add fences around it (memory_model: device-scope fences and coherent buffers on Metal 3.2 for gpu
scope, the threadgroup barriers alone for cta scope, a refusal where the version cannot order).
Float max/min arrive as integer max/umin (Triton's frontend rewrites them), so only integer and
float add/exchange are needed from Metal.

Metal's atomics are 32-bit: on 8- and 16-bit elements (i8, i16, f16, bf16) each atomic is a helper
function (msl_helpers.subword_atomic) that runs a compare-and-swap loop on the aligned 32-bit word
holding the element, with the same barriers and fences around it. Triton 3.9's frontend itself only
emits tl.atomic_add on f16/bf16, tl.atomic_cas on 16-bit elements and tl.atomic_load/store on any
width; the other 8/16-bit integer kinds are lowered the same way when the IR holds them.

Metal's only 64-bit atomics are `void atomic_max_explicit / atomic_min_explicit(device atomic_ulong*,
ulong, memory_order_relaxed)` (MSL specification 6.15.4.6 "Atomic Modify Functions (64 Bits)", MSL 2.4+),
on GPU families Apple8 (with Mac2: every M2 Mac) and Apple9+ (abi.ATOMIC_ULONG_MIN_MAX_FAMILIES). So
tl.atomic_max / tl.atomic_min on uint64 (umax/umin in the IR) whose old value nobody reads lower to them;
signed int64 max/min (no atomic_long, and unsigned order is not signed order), a used old value, every
other 64-bit kind (add, xchg, cas, and/or/xor, load, store, float64) and families without them (Apple7,
M1) are refused, each naming what Metal lacks.
"""
from __future__ import annotations

import re

from triton_metal import abi
from triton_metal.codegen import msl_helpers
from triton_metal.codegen.emitter import Var, lowers
from triton_metal.codegen.layout import linear_index, redundant_bits
from triton_metal.codegen.memory_model import Ordering, ordering, sem_and_scope
from triton_metal.codegen.ops.lower_memory import owner_condition
from triton_metal.codegen.own_names import POLL, POLLS, REG
from triton_metal.codegen.types import msl_scalar, sizeof, threadgroup_pointer

# tt.atomic_rmw kind -> (Metal function, unsigned operands)
RMW = {
    "add": ("atomic_fetch_add_explicit", False), "fadd": ("atomic_fetch_add_explicit", False),
    "and": ("atomic_fetch_and_explicit", False), "or": ("atomic_fetch_or_explicit", False),
    "xor": ("atomic_fetch_xor_explicit", False),
    "max": ("atomic_fetch_max_explicit", False), "min": ("atomic_fetch_min_explicit", False),
    "umax": ("atomic_fetch_max_explicit", True), "umin": ("atomic_fetch_min_explicit", True),
    "exch": ("atomic_exchange_explicit", False),
}
ATOMIC_TYPES = {"int": "atomic_int", "uint": "atomic_uint", "float": "atomic_float"}
# Elements with no Metal atomic, updated through their 32-bit word (msl_helpers.subword_atomic); floats
# take add and exchange only (and cas, on the bits), as 32-bit floats do.
SUBWORD_ELEMENTS = {"i8", "i16", "f16", "bf16"}
SUBWORD_FLOAT_KINDS = {"fadd", "exch", "cas", "load", "store"}
# The 64-bit kinds Metal has (see the module docstring): unsigned max/min, returning nothing.
ULONG_MIN_MAX = {"umax": "atomic_max_explicit", "umin": "atomic_min_explicit"}
SIGNED_MIN_MAX = {"max", "min"}
_RMW_TEXT = re.compile(r"tt\.atomic_rmw\s+(\w+),\s*(\w+),\s*(\w+)")


def _owned_registers(em, op, ptr, mask, value_layout, body, order: Ordering):
    """Runs `body(i)` (one statement) for each register this thread owns and the mask allows.

    Barriers before and after (see _share_old_values) order the atomic against the accesses of
    every thread of the program, as one program's atomic is ordered on other GPUs: a lock taken
    with tl.atomic_cas and released with tl.atomic_xchg then guards the whole program's accesses.
    A release (memory_model) adds a device-scope fence in every thread after the first barrier.
    """
    em.emit("threadgroup_barrier(mem_flags::mem_device | mem_flags::mem_threadgroup);")
    if order.release:
        em.emit(order.release + "  // release")
    owner = owner_condition(value_layout)
    reg_mask = redundant_bits(value_layout.reg_bases) if value_layout is not None else 0
    n = max(ptr.nregs, 1)

    def text(i):
        conds = [c for c in (mask.at(i) if mask is not None else "",
                             f"({i} & {reg_mask}) == 0" if reg_mask and i == REG else "") if c]
        return f"if ({' && '.join(conds)}) {body(i)}" if conds else body(i)
    if owner:
        em.emit(f"if ({owner}) {{")
        em.depth += 1
    em.emit_loop(n, text)
    if owner:
        em.depth -= 1
        em.emit("}")


def _acquire(em, order: Ordering) -> None:
    if order.acquire:
        em.emit(order.acquire + "  // acquire")


def _share_old_values(em, result, old: Var, order: Ordering):
    """Copies of an element in other threads (or registers) receive the owner's old value; then the
    acquire fence of `order` (every thread, after the barrier that follows the atomic)."""
    layout = result.layout
    redundant = layout is None or owner_condition(layout) or redundant_bits(layout.reg_bases)
    # An atomic whose old values nobody reads (tl.atomic_add(ptr, v) as a statement) shares nothing.
    if not redundant or result.id not in em.used_values:
        em.emit("threadgroup_barrier(mem_flags::mem_device | mem_flags::mem_threadgroup);")
        _acquire(em, order)
        return em.alias(result, old)
    shape = result.type.shape if layout is not None else (1,)
    numel = result.type.numel if layout is not None else 1
    ptr = em.fresh_own("old_values")
    em.emit(f"{threadgroup_pointer(old.ctype)} {ptr} = {em.scratch(old.ctype, numel * sizeof(old.ctype))};")
    owner = owner_condition(layout)
    reg_mask = redundant_bits(layout.reg_bases) if layout is not None else 0

    def index(i):
        if layout is None:
            return "0"
        return linear_index(shape, [em.coord_expr(layout, d, i) for d in range(len(shape))])
    if owner:
        em.emit(f"if ({owner}) {{")
        em.depth += 1
    em.emit_loop(max(old.nregs, 1), lambda i: (f"if (({i} & {reg_mask}) == 0) " if reg_mask and i == REG else "")
                 + f"{ptr}[{index(i)}] = {old.at(i)};")
    if owner:
        em.depth -= 1
        em.emit("}")
    em.emit("threadgroup_barrier(mem_flags::mem_device | mem_flags::mem_threadgroup);")
    _acquire(em, order)
    var = em.define(result, lambda i: f"{ptr}[{index(i)}]") if layout is not None else em.define(result, f"{ptr}[0]")
    em.barrier()
    return var


def _atomic_pointer(em, op, element: str, kind: str, unsigned: bool) -> str:
    """The atomic pointer type, e.g. `device atomic_int*` (`coherent(device) device atomic_int*` when the
    kernel's buffers are coherent: the same address space as the pointer it is cast from)."""
    ctype = msl_scalar(element, unsigned)
    if ctype not in ATOMIC_TYPES:
        raise em.refuse("atomic_dtype", op, kind=kind, dtype=element)
    if ctype == "float" and kind in ("and", "or", "xor", "max", "min", "umax", "umin"):
        raise em.refuse("atomic_float_bitwise", op, kind=kind, dtype=element)
    return f"{em.device_space} {ATOMIC_TYPES[ctype]}*"


def _ordering(em, op) -> Ordering:
    return ordering(em, op, *sem_and_scope(op.text))


def _declare_old_values(em, op, ctype):
    """The variable receiving the values an atomic returns, and its element for register `i`."""
    result = op.results[0]
    old = Var(em.fresh(result.name_hint or "old"), ctype, em.nregs(result))
    em.emit(f"{ctype} {old.name}[{max(old.nregs, 1)}] = {{}};" if old.nregs else f"{ctype} {old.name} = {ctype}(0);")
    return old, ((lambda i: f"{old.name}[{i}]") if old.nregs else (lambda i: old.name))


def _subword_function(em, op, kind: str, element: str) -> str:
    """The helper that performs atomic `kind` on an 8/16-bit `element`, added to the kernel; its name."""
    ctype = msl_scalar(element)
    if element in ("f16", "bf16") and kind not in SUBWORD_FLOAT_KINDS:
        raise em.refuse("atomic_float_bitwise", op, kind=kind, dtype=element)
    if kind == "fadd":
        em.add_helper(msl_helpers.SUBWORD_ROUNDING_TEXTS[ctype])
    if kind == "load":
        name, text = msl_helpers.subword_atomic_load(ctype, em.device_space)
    else:
        name, text = msl_helpers.subword_atomic("exch" if kind == "store" else kind, ctype, em.device_space)
    em.add_helper(text)
    return name


def _subword_atomic(em, op, kind: str, element: str, ptr, args, mask, result=None) -> Ordering:
    """An 8/16-bit atomic: `helper(ptr, *args)` for each owned register, between the barriers and fences
    of the op's sem/scope as a 32-bit atomic; the old values reach every holder of `result` (if any)."""
    order = _ordering(em, op)
    helper = _subword_function(em, op, kind, element)

    def call(i):
        return f"{helper}({', '.join([ptr.at(i)] + [a.at(i) for a in args])})"
    if result is None:
        _owned_registers(em, op, ptr, mask, op.operands[0].layout, lambda i: f"{call(i)};", order)
        return order
    old, target = _declare_old_values(em, op, em.ctype(result))
    _owned_registers(em, op, ptr, mask, op.operands[0].layout, lambda i: f"{target(i)} = {call(i)};", order)
    _share_old_values(em, result, old, order)
    return order


def _is_subword(em, op, element: str, kind: str) -> bool:
    """True for elements updated through their word; other widths Metal has no atomics for are refused."""
    if element in SUBWORD_ELEMENTS:
        return True
    if element not in ("i32", "f32"):
        raise em.refuse("atomic_dtype", op, kind=kind, dtype=element)
    return False


def _ulong_function(em, op, kind: str) -> str:
    """The Metal function of a 64-bit integer atomic `kind`, or the refusal naming what Metal lacks."""
    if kind in SIGNED_MIN_MAX:
        raise em.refuse("atomic_64bit_signed", op, kind=kind)
    if kind not in ULONG_MIN_MAX:
        raise em.refuse("atomic_dtype", op, kind=kind, dtype="i64")
    if op.results[0].id in em.used_values:
        raise em.refuse("atomic_64bit_result", op, kind=kind.removeprefix("u"))
    family = getattr(em.options, "metal_family", "")
    if family not in abi.ATOMIC_ULONG_MIN_MAX_FAMILIES:
        raise em.refuse("atomic_64bit_family", op, kind=kind.removeprefix("u"),
                        arch=getattr(em.options, "arch", "this target"), family=family or "unknown")
    return ULONG_MIN_MAX[kind]


def _ulong_atomic(em, op, kind: str, ptr, val, mask) -> None:
    """A 64-bit max/min: Metal's void atomic on `device atomic_ulong`, between the same barriers and fences
    as a 32-bit atomic; there is no old value to share."""
    fn = _ulong_function(em, op, kind)
    order = _ordering(em, op)
    atomic = f"{em.device_space} atomic_ulong*"
    _owned_registers(em, op, ptr, mask, op.operands[0].layout, lambda i: (
        f"{fn}(({atomic})({ptr.at(i)}), ulong({val.at(i)}), memory_order_relaxed);"), order)
    em.emit("threadgroup_barrier(mem_flags::mem_device | mem_flags::mem_threadgroup);")
    _acquire(em, order)


@lowers("tt.atomic_rmw")
def lower_atomic_rmw(em, op):
    m = _RMW_TEXT.search(op.text)
    if not m:
        raise em.unsupported(op, "the kind of tt.atomic_rmw could not be read from the IR")
    kind = m.group(1)
    if kind not in RMW:
        raise em.unsupported(op, f"atomic kind '{kind}' has no Metal equivalent")
    fn, unsigned = RMW[kind]
    ptr, val = em.var(op.operands[0]), em.var(op.operands[1])
    mask = em.var(op.operands[2]) if len(op.operands) > 2 else None
    result = op.results[0]
    element = result.type.element
    ctype = em.ctype(result)
    if element == "i64":
        _ulong_atomic(em, op, kind, ptr, val, mask)
        return
    if _is_subword(em, op, element, kind):
        _subword_atomic(em, op, kind, element, ptr, [val], mask, result)
        return
    atomic = _atomic_pointer(em, op, element, kind, unsigned)
    order = _ordering(em, op)
    utype = msl_scalar(element, unsigned)
    old, target = _declare_old_values(em, op, ctype)
    _owned_registers(em, op, ptr, mask, op.operands[0].layout, lambda i: (
        f"{target(i)} = {ctype}({fn}(({atomic})({ptr.at(i)}), {utype}({val.at(i)}), memory_order_relaxed));"), order)
    _share_old_values(em, result, old, order)


@lowers("tt.atomic_cas")
def lower_atomic_cas(em, op):
    ptr, cmp, val = (em.var(v) for v in op.operands[:3])
    result = op.results[0]
    element = result.type.element
    ctype = em.ctype(result)
    if _is_subword(em, op, element, "cas"):
        _subword_atomic(em, op, "cas", element, ptr, [cmp, val], None, result)
        return
    # Compared bit for bit, as CUDA's atom.cas: floats go through their uint bits.
    bits_type = "uint" if ctype == "float" else ctype
    atomic = _atomic_pointer(em, op, element if ctype != "float" else "i32", "cas", ctype == "float")
    order = _ordering(em, op)
    em.add_helper(msl_helpers.ATOMIC_CAS.format(T=bits_type, A=atomic))
    conv = (lambda e: f"as_type<uint>({e})") if ctype == "float" else (lambda e: e)
    back = (lambda e: f"as_type<float>({e})") if ctype == "float" else (lambda e: e)
    old, target = _declare_old_values(em, op, ctype)
    _owned_registers(em, op, ptr, None, op.operands[0].layout, lambda i: (
        f"{target(i)} = {back(f'tm_atomic_cas(({atomic})({ptr.at(i)}), {conv(cmp.at(i))}, {conv(val.at(i))})')};"),
        order)
    _share_old_values(em, result, old, order)


@lowers("tt.atomic_load")
def lower_atomic_load(em, op):
    """tl.atomic_load(ptr, mask, sem="acquire"): Metal's relaxed atomic load, then the acquire fence."""
    ptr = em.var(op.operands[0])
    mask = em.var(op.operands[1]) if len(op.operands) > 1 else None
    result = op.results[0]
    if _is_subword(em, op, result.type.element, "load"):
        _subword_atomic(em, op, "load", result.type.element, ptr, [], mask, result)
        return
    atomic = _atomic_pointer(em, op, result.type.element, "load", False)
    order = _ordering(em, op)
    ctype = em.ctype(result)
    old, target = _declare_old_values(em, op, ctype)
    _owned_registers(em, op, ptr, mask, op.operands[0].layout, lambda i: (
        f"{target(i)} = {ctype}(atomic_load_explicit(({atomic})({ptr.at(i)}), memory_order_relaxed));"), order)
    _share_old_values(em, result, old, order)


@lowers("tt.atomic_store")
def lower_atomic_store(em, op):
    """tl.atomic_store(ptr, val, mask, sem="release"): the release fence, then Metal's relaxed atomic store."""
    ptr, val = em.var(op.operands[0]), em.var(op.operands[1])
    mask = em.var(op.operands[2]) if len(op.operands) > 2 else None
    element = op.operands[1].type.element
    if _is_subword(em, op, element, "store"):  # an exchange whose old value nobody reads
        order = _subword_atomic(em, op, "store", element, ptr, [val], mask)
    else:
        atomic = _atomic_pointer(em, op, element, "store", False)
        order = _ordering(em, op)
        _owned_registers(em, op, ptr, mask, op.operands[0].layout, lambda i: (
            f"atomic_store_explicit(({atomic})({ptr.at(i)}), {msl_scalar(element)}({val.at(i)}), "
            "memory_order_relaxed);"), order)
    em.emit("threadgroup_barrier(mem_flags::mem_device | mem_flags::mem_threadgroup);")
    _acquire(em, order)


@lowers("ttg.barrier", "gpu.barrier")
def lower_debug_barrier(em, op):
    em.emit("threadgroup_barrier(mem_flags::mem_device | mem_flags::mem_threadgroup);")


# Metal has no device clock, so a timeout is a bound on the number of polls: one poll per
# POLL_NS nanoseconds of the timeout, and always at least one.
POLL_NS = 100


@lowers("tt.atomic_poll")
def lower_atomic_poll(em, op):
    """tl.atomic_poll(ptr, value, timeout_ns=None): spin until *ptr == value (True) or the timeout."""
    ptr_value, expected = op.operands[0], em.var(op.operands[1])
    if ptr_value.type.is_tensor:
        raise em.unsupported(op, "tl.atomic_poll of a tensor of pointers", "poll one scalar flag")
    ptr = em.var(ptr_value)
    element = op.operands[1].type.element
    ctype = em.ctype(op.operands[1])
    order = _ordering(em, op)
    # 32-bit flags are read with Metal's atomic load, 16-bit ones with the atomic load of their word;
    # 64-bit ones with a volatile load (Metal has no 64-bit atomic load), which re-reads device memory
    # on every poll all the same.
    if ctype in ("int", "uint"):
        read = f"atomic_load_explicit(({em.device_space} {ATOMIC_TYPES[ctype]}*)({ptr.name}), memory_order_relaxed)"
    elif element in SUBWORD_ELEMENTS:
        read = f"{_subword_function(em, op, 'load', element)}({ptr.name})"
    else:
        read = f"*(volatile {em.device_space} {msl_scalar(element)}*)({ptr.name})"
    matched = em.fresh(op.results[0].name_hint or "matched")
    em.emit(f"bool {matched} = false;")
    if len(op.operands) > 2:
        timeout = em.var(op.operands[2]).at(0)
        em.emit(f"for (long {POLL} = 0, {POLLS} = max(1L, long({timeout}) / {POLL_NS}); {POLL} < {POLLS}; "
                f"++{POLL}) {{")
    else:
        em.emit("for (;;) {")
    em.emit(f"    if ({read} == {expected.at(0)}) {{ {matched} = true; break; }}")
    em.emit("}")
    _acquire(em, order)  # each thread polled the flag itself: its fence follows its own read
    em.emit("threadgroup_barrier(mem_flags::mem_device);")
    em.alias(op.results[0], Var(matched, "bool"))
