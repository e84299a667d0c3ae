"""tl.device_print (tt.print) and tl.device_assert (tt.assert) through a device-print buffer.

Metal has no printf that a host program can read, so a kernel containing either op gets one
hidden argument after its own: the *device-print buffer* (argument kind ``abi.DEVICE_PRINT``). Every
element printed, and every element whose assertion fails, appends one fixed-size record to it with a
relaxed atomic; the launcher reads the buffer back after the launch, prints the records in Triton's
CUDA format and raises for failed assertions (``triton_metal.device_print``). The simulator and Metal
run the same code.

The buffer's layout, in 32-bit words, is the host's and the kernel's contract: ``abi.PRINT_*`` (a
header, then records: site | operand << 16, program id x, y, z, the how-manieth print/assert this
thread executed, the row-major element index, the value's bits). The MSL that writes a record is
``msl_helpers.DEVICE_PRINT``.

The *sites* (one per tt.print / tt.assert, numbered in program order) hold everything known at
compile time (prefix, hex, operand dtypes and shapes, message, source line); they travel to the
launcher in the kernel metadata (``MslKernel.diagnostics``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from triton_metal import abi
from triton_metal.codegen import msl_helpers
from triton_metal.codegen.emitter import lowers
from triton_metal.codegen.layout import linear_index, redundant_bits
from triton_metal.codegen.msl_text import own
from triton_metal.codegen.ops import lower_calls
from triton_metal.codegen.ops.lower_memory import owner_condition
from triton_metal.codegen.own_names import PROGRAM_ID, REG
from triton_metal.errors import UnsupportedOperationError

MAX_SITES = 1 << 16
MAX_OPERANDS = 1 << 8

BUFFER = own("diag")  # the hidden parameter
lower_calls.KERNEL_SCOPE_PARAMS.append(f"device uint* {BUFFER}")  # noinline functions that print get it too
SEQUENCE = own("diag_seq")

# MSL scalar type -> expression of its bits as a ulong (integers sign- or zero-extend; the host
# masks them to their width and reads them with the operand's signedness).
VALUE_BITS = {
    "float": "ulong(as_type<uint>({}))", "half": "ulong(as_type<ushort>({}))",
    "bfloat": "ulong(as_type<ushort>({}))", "bool": "ulong({})",
    "char": "ulong({})", "short": "ulong({})", "int": "ulong({})", "long": "ulong({})",
    "uchar": "ulong({})", "ushort": "ulong({})", "uint": "ulong({})", "ulong": "ulong({})",
}
POINTER_BITS = "(ulong)({})"  # the address, printed as %p

_IS_SIGNED = re.compile(r"isSigned = array<i32(?::\s*([-\d,\s]*))?>")


@dataclass
class DevicePrintParameter:
    """The hidden kernel parameter, for generate_msl."""
    param: str
    arg_kind: list  # its entry of the kernel's signature record (abi.KernelArgument.to_json())


def sites(em) -> list:
    """The device-print sites of the kernel being generated (JSON-ready dicts, in program order)."""
    if not hasattr(em, "device_print_sites"):
        em.device_print_sites = []
    return em.device_print_sites


def device_print_parameter(em, slot: int, max_buffers: int) -> DevicePrintParameter | None:
    """The device-print buffer parameter at `slot`, when the kernel printed or asserted."""
    if not sites(em):
        return None
    if slot + 1 > max_buffers:
        raise UnsupportedOperationError(
            f"tl.device_print / tl.device_assert in a kernel with {slot} arguments", "",
            f"printing and assertions take one hidden buffer argument, and Metal binds at most {max_buffers} "
            "buffers per kernel", "pass fewer arguments, e.g. pack scalars into one tensor")
    return DevicePrintParameter(f"device uint* {BUFFER} [[buffer({slot})]]",
                                abi.KernelArgument(BUFFER, abi.DEVICE_PRINT, "u32").to_json())


def _location(op) -> str:
    """`file:line` of the op (the column is noise in a message)."""
    return re.sub(r":\d+$", "", op.location or "") or "<unknown location>"


def _add_site(em, op, site: dict) -> int:
    table = sites(em)
    if len(table) >= MAX_SITES:
        raise em.unsupported(op, f"a kernel may hold at most {MAX_SITES} device_print/device_assert calls",
                             "print fewer values, or print them from fewer places")
    if not table:
        em.add_helper(msl_helpers.DEVICE_PRINT)
        em.prologue.append(f"    uint {SEQUENCE} = 0;  // prints and asserts this thread executed")
    table.append(site)
    return len(table) - 1


def _each_element(em, value, body) -> None:
    """Emits `body(i, index_expr)` once per element of `value` (a tensor; a scalar or None: once),
    in one thread and one register only, as stores are (copies in other lanes or registers are skipped)."""
    layout = value.layout if value is not None and value.type.is_tensor else None
    owner = owner_condition(layout)
    if owner:
        em.emit(f"if ({owner}) {{")
        em.depth += 1
    if layout is None:
        em.emit(body("0", "0"))
    else:
        shape = value.type.shape
        reg_mask = redundant_bits(layout.reg_bases)

        def text(i):
            index = linear_index(shape, [em.coord_expr(layout, d, i) for d in range(len(shape))])
            skip = f"if (({i} & {reg_mask}) == 0) " if reg_mask and i == REG else ""
            return skip + body(i, f"uint({index})")
        em.emit_loop(layout.num_regs, text)
    if owner:
        em.depth -= 1
        em.emit("}")


def _signedness(em, op) -> list:
    m = _IS_SIGNED.search(op.text or "")
    if m is None:
        raise em.unsupported(op, "the isSigned attribute of tt.print could not be read from the IR")
    return [int(s) != 0 for s in (m.group(1) or "").replace(",", " ").split()]


@lowers("tt.print")
def lower_print(em, op):
    signed = _signedness(em, op)
    operands = []
    for k, value in enumerate(op.operands):
        operands.append({"dtype": "ptr" if value.type.is_pointer else value.type.element,
                         "signed": signed[k] if k < len(signed) else False, "shape": list(value.type.shape)})
    if len(operands) > MAX_OPERANDS:
        raise em.unsupported(op, f"tl.device_print takes at most {MAX_OPERANDS} values here", "split the call")
    site = _add_site(em, op, {"kind": "print", "location": _location(op), "prefix": op.str_attr("prefix"),
                              "hex": bool(op.bool_attr("hex")), "operands": operands})
    if not op.operands:  # prefix only: one line per program
        _each_element(em, None, lambda i, index: (
            f"tm_diag_record({BUFFER}, {site}u, {PROGRAM_ID}, {SEQUENCE}, 0u, 0ul);"))
    for k, value in enumerate(op.operands):
        var = em.var(value)
        bits = POINTER_BITS if value.type.is_pointer else VALUE_BITS[var.ctype]
        _each_element(em, value, lambda i, index, var=var, bits=bits, k=k: (
            f"tm_diag_record({BUFFER}, {site | k << 16}u, {PROGRAM_ID}, {SEQUENCE}, {index}, "
            f"{bits.format(var.at(i))});"))
    em.emit(f"++{SEQUENCE};")


@lowers("tt.assert")
def lower_assert(em, op):
    cond = op.operands[0]
    site = _add_site(em, op, {"kind": "assert", "location": _location(op), "message": op.str_attr("message"),
                              "shape": list(cond.type.shape)})
    var = em.var(cond)
    _each_element(em, cond, lambda i, index: (
        f"if (!{var.at(i)}) tm_diag_fail({BUFFER}, {site}u, {PROGRAM_ID}, {SEQUENCE}, {index});"))
    em.emit(f"++{SEQUENCE};")

