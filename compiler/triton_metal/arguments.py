"""A kernel's arguments as a runtime binds them: one buffer slot each, scalars as bytes.

Used by every path that launches a compiled kernel: the Triton launcher (``launcher.MetalLauncher``)
and ``mlx_runtime.run``. The kernel's MSL signature is the compiler's (codegen/__init__.py); what
it decided is in the kernel's signature record (``triton_metal.abi``, ``metadata.arg_kinds``):

- each pointer argument in its own ``[[buffer(i)]]``, bound as the runtime's ``buffer_argument``
  returns it (a tensor, an array, a null placeholder);
- each scalar as its own little ``constant T&`` buffer holding its bytes, or, in kernels with more
  arguments than Metal has buffer slots (``abi.PACKED_SCALAR``), all scalars in one C struct after
  the pointers;
- tuples and tensor descriptors flattened as Triton flattens them for the kernel.
"""
from __future__ import annotations

import re
import struct

# struct formats of scalar arguments, by Triton type name.
SCALAR_FORMATS = {
    "i1": "<?", "u1": "<?", "i8": "<b", "u8": "<B", "i16": "<h", "u16": "<H", "i32": "<i", "u32": "<I",
    "i64": "<q", "u64": "<Q", "fp16": "<e", "fp32": "<f",
}


def pack_scalar(value, ty: str, arg_name: str) -> bytes:
    """The bytes of scalar argument ``arg_name`` of Triton type ``ty`` as the kernel reads them."""
    if ty == "bf16":
        return struct.pack("<I", struct.unpack("<I", struct.pack("<f", float(value)))[0])[2:]
    if ty == "fp64":
        # Apple GPUs have no fp64: the kernel was compiled with fp32 for this argument.
        return struct.pack("<f", float(value))
    try:
        return struct.pack(SCALAR_FORMATS[ty], value)
    except KeyError:
        raise TypeError(f"argument '{arg_name}' has Triton type {ty}, which the Metal backend cannot pass") from None
    except struct.error as e:
        raise ValueError(f"argument '{arg_name}' = {value!r} does not fit Triton type {ty}: {e}") from None


def pack_struct(fields: list[bytes]) -> bytes:
    """Scalars laid out as the C struct of them that the kernel declares: each at a multiple of its
    size (the alignment of Metal's scalar types), the whole padded to the largest."""
    out = bytearray()
    for field in fields:
        out += bytes(-len(out) % len(field)) + field
    return bytes(out + bytes(-len(out) % max(map(len, fields))))


_DESCRIPTOR = re.compile(r"tensordesc<(\w+)\[([^\]]*)\]")


def descriptor_arguments(name: str, ty: str, desc) -> list:
    """A host TensorDescriptor as the kernel receives it once Triton rewrote descriptors to pointers:
    base, shape (i64), strides (i64), padding-is-nan, round-f32-to-tf32, then shape (i32) and strides again."""
    m = _DESCRIPTOR.match(ty)
    if m is None or not hasattr(desc, "base"):
        raise TypeError(f"argument '{name}' has Triton type {ty}: pass a triton.tools.tensor_descriptor.TensorDescriptor")
    element, rank = m.group(1), len(m.group(2).split(","))
    types = [f"*{element}"] + ["i64"] * 2 * rank + ["i1", "i1"] + ["i32"] * rank + ["i64"] * rank
    values = [desc.base, *desc.shape, *desc.strides, desc.padding == "nan", desc.round_f32_to_tf32,
              *desc.shape, *desc.strides]
    parts = ["base"] + [f"shape[{d}]" for d in range(rank)] + [f"stride[{d}]" for d in range(rank)] + \
        ["padding", "round_f32_to_tf32"] + [f"shape[{d}]" for d in range(rank)] + [f"stride[{d}]" for d in range(rank)]
    return [(f"{name}.{part}", t, v) for part, t, v in zip(parts, types, values)]


def flatten_arguments(signature: dict, args) -> list:
    """(name, Triton type, value) of every argument, tuples and tensor descriptors flattened as Triton does."""
    out = []

    def visit(name, ty, value):
        if isinstance(ty, tuple):
            for i, (t, v) in enumerate(zip(ty, value)):
                visit(f"{name}[{i}]", t, v)
        elif ty.startswith("tensordesc"):
            out.extend(descriptor_arguments(name, ty, value))
        else:
            out.append((name, ty, value))

    for (name, ty), value in zip(signature.items(), args):
        visit(name, ty, value)
    return out


def bind_arguments(arguments, buffer_argument, packed_scalars: bool) -> dict:
    """``{slot: value}`` for flattened ``(name, Triton type, value)`` arguments (constexprs are skipped):
    pointers as ``buffer_argument(value, name)`` returns them, scalars as their bytes, each in its own
    slot, or, when the kernel packs its scalars, all in one struct after the pointers."""
    buffers, scalars = {}, []
    for name, ty, value in arguments:
        if ty == "constexpr":
            continue
        if ty.startswith("*"):
            buffers[len(buffers)] = buffer_argument(value, name)
        elif packed_scalars:
            scalars.append(pack_scalar(value, ty, name))
        else:
            buffers[len(buffers)] = pack_scalar(value, ty, name)
    if scalars:
        buffers[len(buffers)] = pack_struct(scalars)
    return buffers

