"""TTGIR -> Metal Shading Language.

``generate_msl`` reads the module (ir_reader), writes the kernel's signature (the argument kinds of
abi's signature record, the builtins of own_names.BUILTINS) and lowers its body op by op: each op
with its one lowering in ``emitter.LOWERINGS``, registered by the modules of ``codegen.ops``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from triton_metal import __version__, abi
from triton_metal.codegen import memory_model
from triton_metal.codegen.emitter import MSL_RESERVED, KernelEmitter, Var, source_line
from triton_metal.codegen.ir_reader import ModuleReader, kernel_ops
from triton_metal.codegen.msl_text import check_generated, identifier
from triton_metal.codegen.ops import (  # the package registers every lowering when imported
    lower_contraction,
    lower_control,
    lower_debug_ops,
)
from triton_metal.codegen.own_names import ARENA, ARENA_STORAGE, BUILTINS, SCALARS
from triton_metal.codegen.threadgroup_arena import Arena
from triton_metal.errors import ThreadgroupMemoryError, UnsupportedOperationError
from triton_metal.numerics import MathMode
from triton_metal.refusals import refuse


@dataclass
class MslKernel:
    name: str
    source: str
    threadgroup_memory_bytes: int
    arg_kinds: list  # the signature record: abi.KernelArgument(...).to_json() per MSL parameter, in slot order
    device_print_sites: list = field(default_factory=list)  # tl.device_print/device_assert sites (lower_debug_ops)


def msl_kernel_name(name: str) -> str:
    """The MSL function name of a Triton kernel: Triton allows names that are MSL keywords, contain Metal
    attribute names or non-ASCII letters (msl_text.identifier spells them; the launcher looks kernels up by
    this name, in the metadata)."""
    return identifier(name, MSL_RESERVED, default="triton")


def used_values(func) -> set:
    """Ids of the values some op reads, in the kernel and the functions it calls."""
    used = set()
    for op in kernel_ops(func):
        used.update(v.id for v in op.operands)
        for _, operands in op.successors:  # the values a branch hands to its target's arguments
            used.update(v.id for v in operands)
    return used


def generate_msl(mod, options) -> MslKernel:
    func = ModuleReader(mod).read()
    name = msl_kernel_name(mod.get_entry_func_name())
    try:
        return _emit_kernel(func, name, options, stream_dot_operands=False)
    except ThreadgroupMemoryError:
        # Over Apple's 32 KiB: once more with the dots staging their operands from registers in K chunks
        # (threadgroup_arena), slower but smaller; the error stands if that does not fit either.
        return _emit_kernel(func, name, options, stream_dot_operands=True)


def _emit_kernel(func, name: str, options, stream_dot_operands: bool) -> MslKernel:
    em = KernelEmitter(name, options)
    em.fresh(name)  # no local may shadow the kernel
    scalars_struct = em.fresh_own(f"{name}_scalars")  # the struct of its scalar arguments, when they are packed
    em.used_values = used_values(func)
    em.arena = Arena.of_function(func, [op for op in kernel_ops(func) if op.name == "ttg.local_alloc"],
                                 stream_dot_operands)
    em.fusion = lower_contraction.plan(func, getattr(options, "enable_fp_fusion", False))  # a*b+c -> fma()
    em.observes_other_programs = memory_model.observes_other_programs(func, em.used_values)
    em.device_space = memory_model.device_space(func, options, em.used_values)  # before any pointer is spelled
    params, arg_kinds, unpack = [], [], []
    args = func.regions[0].args
    # One buffer slot per argument reads best; a kernel with more arguments than Metal has slots
    # (tensor descriptors expand to 2 + 4 x rank) gets its scalars in one struct instead.
    packed = len(args) >= abi.BUFFER_SLOTS
    n_pointers = sum(arg.type.is_pointer for arg in args)
    if packed and n_pointers + 1 > abi.BUFFER_SLOTS:
        raise UnsupportedOperationError(
            f"kernel with {n_pointers} pointer arguments", "",
            f"Metal binds at most {abi.BUFFER_SLOTS} buffers per kernel (scalars share one)",
            "pass fewer tensors, e.g. one tensor holding several")
    fields = []
    for idx, arg in enumerate(args):
        em.last_location = arg.location
        pname = em.fresh(arg.name_hint or f"arg{idx}")
        if arg.type.element in ("f64", "!tt.ptr<f64>"):
            raise refuse("fp64_argument", source_line(arg.location), name=arg.name_hint or f"arg{idx}")
        ctype = em.ctype(arg)
        if arg.type.is_pointer:
            params.append(f"{ctype} {pname} [[buffer({len(params)})]]")
            arg_kinds.append(abi.KernelArgument(pname, abi.BUFFER, arg.type.pointee).to_json())
        elif packed:
            fields.append(f"    {ctype} {pname};")
            unpack.append(f"    const {ctype} {pname} = {SCALARS}.{pname};")
            arg_kinds.append(abi.KernelArgument(pname, abi.PACKED_SCALAR, arg.type.element).to_json())
        else:
            params.append(f"constant {ctype}& {pname} [[buffer({len(params)})]]")
            arg_kinds.append(abi.KernelArgument(pname, abi.SCALAR, arg.type.element).to_json())
        em.vars[arg.id] = Var(pname, ctype)
    if fields:
        em.helpers.insert(0, "\n".join([f"struct {scalars_struct} {{  // the scalar arguments, packed in order"] +
                                        fields + ["};"]))
        params.append(f"constant {scalars_struct}& {SCALARS} [[buffer({len(params)})]]")
    lower_control.lower_body(em, func.regions[0])  # straight-line, or branches of early returns
    hidden = lower_debug_ops.device_print_parameter(em, len(params), abi.BUFFER_SLOTS)  # prints/asserts: one buffer
    if hidden is not None:
        params.append(hidden.param)
        arg_kinds.append(hidden.arg_kind)

    threads = options.num_warps * abi.SIMD_WIDTH
    out = [
        f"// {name}: generated by triton-metal {__version__} from Triton IR",
        f"// threadgroup: {options.num_warps} simdgroups x {abi.SIMD_WIDTH} lanes = {threads} threads{_ARENA_BYTES}",
        "#include <metal_stdlib>",
        "using namespace metal;",
        *MathMode.of_options(options).pragmas(),  # the kernel's math mode, whatever the runtime's options
        "",
    ]
    for helper in em.helpers:
        out += [helper, ""]
    signature = ",\n".join("    " + p for p in params + list(BUILTINS))
    out.append(f"kernel void {name}(\n{signature})\n{{")
    out.append(_ARENA_DECLARATION)
    out += unpack
    out += em.prologue
    out += em.lines
    out.append("}")
    source, arena_bytes = em.arena.finish("\n".join(out) + "\n", "threadgroup_barrier(mem_flags::mem_threadgroup);")
    source = source.replace(_ARENA_BYTES, f", {arena_bytes} bytes of threadgroup memory" if arena_bytes else "")
    source = source.replace(_ARENA_DECLARATION + "\n", _arena_declaration(arena_bytes))
    check_generated(source, name, em.allocated_names, em.static_helpers)
    return MslKernel(name, source, arena_bytes, arg_kinds, lower_debug_ops.sites(em))


# Placeholders for what the arena's size decides (threadgroup_arena.Arena.finish places the last blocks).
_ARENA_BYTES = "@arena_bytes@"
_ARENA_DECLARATION = "@arena_declaration@"


def _arena_declaration(nbytes: int) -> str:
    """The kernel's threadgroup memory: one array (float4, so 16-byte aligned) seen as bytes."""
    if not nbytes:
        return ""
    return (f"    threadgroup float4 {ARENA_STORAGE}[{nbytes // 16}];  // the threadgroup arena: {nbytes} bytes\n"
            f"    threadgroup uchar* {ARENA} = (threadgroup uchar*){ARENA_STORAGE};  "
            "// buffers and scratch at byte offsets, shared by liveness\n")
