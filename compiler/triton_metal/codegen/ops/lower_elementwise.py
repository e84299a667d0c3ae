"""Elementwise ops: arithmetic, math, comparisons, casts, constants, splat, program ids."""
from __future__ import annotations

import math
import re
import struct

from triton_metal.codegen import msl_ops
from triton_metal.codegen.emitter import Var, lowers
from triton_metal.codegen.fp8_msl import FP8_SIGN_OPS, encode_constant, fp8_format
from triton_metal.codegen.own_names import NUM_PROGRAMS, PROGRAM_ID
from triton_metal.codegen.types import BITWIDTH, FLOATS, msl_scalar


def render(em, op, template: str, in_float: bool | None = None) -> None:
    """Render `template` per register over the op's operands into its (single) result (the elementwise
    lowerings of msl_ops' tables, lower_numeric, lower_rounding, lower_contraction and lower_extern).
    `{f}` in the template is the math namespace of the op's type (KernelEmitter.math_prefix).

    An op on bf16 values that MSL has no bfloat version of (every op but those in
    msl_ops.BFLOAT_AS_WRITTEN, or as `in_float` says) computes in float: its bf16 operands are
    converted with float(x) and its bf16 result back with bfloat(...)."""
    result = op.results[0]
    operands = [em.var(v) for v in op.operands]
    element = op.operands[0].type.element if op.operands else result.type.element
    unsigned = [msl_scalar(v.type.element, unsigned=True) if not v.type.is_pointer and v.type.element
                not in FLOATS else "" for v in op.operands]
    if in_float is None:
        in_float = op.name not in msl_ops.BFLOAT_AS_WRITTEN
    widen = [in_float and v.type.element == "bf16" for v in op.operands]
    narrow = in_float and result.type.element == "bf16"
    prefix = em.math_prefix("f32" if any(widen) or narrow else element)

    def text(i):
        args = [msl_ops.as_float(o.at(i)) if w else o.at(i) for o, w in zip(operands, widen)]
        uargs = {f"u{k}": f"{u}({a})" if u else a for k, (u, a) in enumerate(zip(unsigned, args))}
        out = template.format(*args, f=prefix, **uargs)
        return f"bfloat({out})" if narrow else out

    if all(not o.is_array for o in operands):
        em.define(result, text(0))
    else:
        em.define(result, text)


def _lower_table(table):
    def lower(em, op):
        element = op.results[0].type.element
        if (fmt := fp8_format(element)) and op.name in FP8_SIGN_OPS:  # exact on the fp8 codes themselves
            render(em, op, FP8_SIGN_OPS[op.name][fmt.specials == "fnuz"])
        elif element == "i1" and op.name in msl_ops.BOOL_BINARY:
            render(em, op, msl_ops.BOOL_BINARY[op.name])
        elif op.name in msl_ops.WRAPPING and element not in FLOATS and (
                wrapped := msl_ops.wrapping(op.name, em.ctype(op.results[0]), BITWIDTH[element])):
            render(em, op, wrapped)
        else:
            render(em, op, table[op.name])
    return lower


lowers(*(name for name in msl_ops.BINARY if name not in msl_ops.CONTRACTIBLE))(_lower_table(msl_ops.BINARY))
lowers(*msl_ops.UNARY)(_lower_table(msl_ops.UNARY))
lowers(*msl_ops.TERNARY)(_lower_table(msl_ops.TERNARY))


@lowers("arith.cmpi")
def lower_cmpi(em, op):
    render(em, op, msl_ops.CMPI[op.int_attr("predicate")])


@lowers("arith.cmpf")
def lower_cmpf(em, op):
    template = msl_ops.CMPF[op.int_attr("predicate")]
    # Comparisons take bfloat operands as written; isnan (ord, uno) has no bfloat overload.
    render(em, op, template, in_float="isnan(" in template)


@lowers(*msl_ops.CASTS)
def lower_cast(em, op):
    src, dst = op.operands[0], op.results[0]
    template = msl_ops.CASTS[op.name]
    if op.name == "arith.extui" and src.type.element == "i1":
        template = "{T}({0})"
    unsigned = msl_scalar(src.type.element, unsigned=True) if src.type.element not in FLOATS else ""
    template = template.replace("{T}", em.ctype(dst)).replace("{U}", unsigned)
    if dst.type.element == "i1" and op.name == "arith.trunci":
        template = "bool({0} & 1)"
    if dst.type.is_pointer:  # as_type reinterprets values, not pointers (MSL 2.19): a pointer cast
        template = "({T}){0}".replace("{T}", em.ctype(dst))
    render(em, op, template)


# ---- constants -----------------------------------------------------------------------------
_DENSE = re.compile(r"^dense<(.+)>\s*:")


def _float_literal(value: float, element: str) -> str:
    if math.isnan(value):
        return "NAN"
    if math.isinf(value):
        return "INFINITY" if value > 0 else "-INFINITY"
    text = repr(float(value))
    return f"{text}f" if element == "f32" else f"{text}"


def constant_literal(text: str, element: str) -> str:
    """MSL literal of one MLIR constant attribute value (`1.000000e+00`, `0xFF800000`, `true`)."""
    text = text.strip()
    if element == "i1":
        return "true" if text in ("true", "1") else "false"
    if element in FLOATS:
        if text.startswith("0x"):
            bits = int(text, 16)
            width = BITWIDTH[element]
            if width == 32:
                value = struct.unpack("<f", struct.pack("<I", bits))[0]
            elif element == "f16":
                value = struct.unpack("<e", struct.pack("<H", bits))[0]
            else:  # bf16: the top half of an f32
                value = struct.unpack("<f", struct.pack("<I", bits << 16))[0]
        else:
            value = float(text)
        return _float_literal(value, element)
    if fmt := fp8_format(element):  # an fp8 constant is its code (uchar): the bits, or the value rounded
        return str(int(text, 16) if text.startswith("0x") else encode_constant(float(text), fmt))
    return _integer_literal(int(text, 0), element)


def _integer_literal(value: int, element: str) -> str:
    """An integer literal whose MSL type is the element's own, as the builtins need: MSL declares
    `min`, `max`, `clamp`, `mulhi`, ... once per type, so `min(long, int)` matches two overloads
    equally well and Apple's compiler rejects it as ambiguous. A 64-bit constant is `8L` (a long,
    never the int `8`); the most negative value is written as a subtraction, because C++ reads
    `-2147483648` as the negation of the long 2147483648 (and 9223372036854775808 fits no signed type)."""
    bits = BITWIDTH[element]
    value = (value + (1 << (bits - 1))) % (1 << bits) - (1 << (bits - 1))  # a hex (unsigned) spelling, as signed
    suffix = "L" if bits == 64 else ""
    if value == -(1 << (bits - 1)) and bits >= 32:
        return f"({value + 1}{suffix} - 1)"
    return f"{value}{suffix}"


@lowers("arith.constant")
def lower_constant(em, op):
    result = op.results[0]
    element = result.type.element
    text = op.constant_text
    m = _DENSE.match(text)
    if m:
        payload = m.group(1).strip()
        if payload.startswith("["):
            raise em.refuse("dense_constant", op)
        literal = constant_literal(payload.strip('"'), element)
    else:
        literal = constant_literal(text.split(":")[0], element)
    ctype = em.ctype(result)
    # Constants are inlined as literals: `pid * 256` reads better than a named variable.
    literal = literal if ctype in ("float", "int", "bool", "long") else f"{ctype}({literal})"
    em.alias(result, Var(literal, ctype, em.nregs(result), uniform=result.type.is_tensor))


@lowers("tt.splat")
def lower_splat(em, op):
    src = em.var(op.operands[0])
    em.alias(op.results[0], type(src)(src.name, src.ctype, em.nregs(op.results[0]), uniform=True))


@lowers("tt.get_program_id")
def lower_program_id(em, op):
    em.define(op.results[0], f"int({PROGRAM_ID}.{'xyz'[op.int_attr('axis')]})", op.results[0].name_hint or "pid")


@lowers("tt.get_num_programs")
def lower_num_programs(em, op):
    em.define(op.results[0], f"int({NUM_PROGRAMS}.{'xyz'[op.int_attr('axis')]})",
              op.results[0].name_hint or "num_pids")


@lowers("tt.make_range")
def lower_make_range(em, op):
    result = op.results[0]
    start = op.int_attr("start")
    layout = result.layout

    def text(i):
        coord = em.coord_expr(layout, 0, i)
        return coord if start == 0 else f"{start} + {coord}"
    em.define(result, text)


# ---- refused with a catalog entry (triton_metal.refusals) -----------------------------------------
@lowers("tt.elementwise_inline_asm")
def refuse_inline_asm(em, op):
    raise em.refuse("inline_asm", op)


@lowers("llvm.intr.assume")
def lower_assume(em, op):
    # `tl.assume` only informs the optimiser; dropping it never changes a result.
    em.emit(f"// tl.assume({em.var(op.operands[0]).at(0)})")
