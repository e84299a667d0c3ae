"""Turns a Triton launch (grid, Python arguments) into a runtime dispatch.

Triton calls the launcher with the original Python objects, constexprs included; the MSL kernel
takes the remaining arguments in order, each in its own buffer slot: pointers as device
addresses, scalars as the bytes of a small constant buffer.
"""
from __future__ import annotations

import re
import struct
import time

from triton_metal.arg_checks import LaunchChecks
from triton_metal.debug import log
from triton_metal.device_print import DevicePrintBuffer

# struct formats of scalar arguments, by Triton type name.
SCALAR_FORMATS = {
    "i1": "<?", "u1": "<?", "i8": "<b", "u8": "<B", "i16": "<h", "u16": "<H", "i32": "<i", "u32": "<I",
    "i64": "<q", "u64": "<Q", "fp16": "<e", "fp32": "<f",
}


def pack_scalar(value, ty: str, arg_name: str) -> bytes:
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


def _descriptor_arguments(name: str, ty: str, desc) -> list:
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


def _flatten(signature: dict, args) -> list:
    """(name, type, value) of every argument, tuples and tensor descriptors flattened as Triton does."""
    out = []

    def visit(name, ty, value):
        if isinstance(ty, tuple):
            for i, (t, v) in enumerate(zip(ty, value)):
                visit(f"{name}[{i}]", t, v)
        elif ty.startswith("tensordesc"):
            out.extend(_descriptor_arguments(name, ty, value))
        else:
            out.append((name, ty, value))

    for (name, ty), value in zip(signature.items(), args):
        visit(name, ty, value)
    return out


class MetalLauncher:

    def __init__(self, src, metadata):
        from triton_metal.runtime import get_runtime
        self.runtime = get_runtime()
        self.signature = dict(src.signature)
        self.threadgroup = (metadata.threadgroup_size, 1, 1)
        self.name = metadata.name
        self.check = LaunchChecks(self.name, self.signature, self.runtime)  # triton_metal.arg_checks
        # Kernels with more arguments than buffer slots take their scalars in one struct (codegen).
        self.packed_scalars = any(kind == "packed scalar" for _, kind, _ in metadata.arg_kinds)
        sites = getattr(metadata, "diagnostics", None)  # tl.device_print/device_assert: a hidden last buffer
        self.diagnostics = DevicePrintBuffer(self.name, sites, self.runtime) if sites else None

    def __call__(self, grid_x, grid_y, grid_z, stream, function, packed_metadata, launch_metadata,
                 enter_hook, exit_hook, *args):
        self.check((grid_x, grid_y, grid_z), args)
        if enter_hook is not None:
            enter_hook(launch_metadata)
        buffers, scalars = {}, []
        slot = 0
        for name, ty, value in _flatten(self.signature, args):
            if ty == "constexpr":
                continue
            if ty.startswith("*"):
                buffers[slot] = self.runtime.buffer_argument(value, name)  # what this runtime's launch binds
            elif self.packed_scalars:
                scalars.append(pack_scalar(value, ty, name))
                continue
            else:
                buffers[slot] = pack_scalar(value, ty, name)
            slot += 1
        if scalars:
            buffers[slot] = pack_struct(scalars)
            slot += 1
        launched = grid_x * grid_y * grid_z > 0
        if self.diagnostics is not None:
            buffers[slot] = self.diagnostics.bind(buffers)
        if launched:  # an empty grid launches nothing, as on CUDA
            start = time.perf_counter()
            self.runtime.launch(function, (grid_x, grid_y, grid_z), self.threadgroup, buffers)
            log(1, "launched %s grid=(%d, %d, %d) threadgroup=%s on %s: %.3f ms", self.name, grid_x, grid_y, grid_z,
                self.threadgroup, self.runtime.name, (time.perf_counter() - start) * 1e3)
        if exit_hook is not None:
            exit_hook(launch_metadata)
        if launched and self.diagnostics is not None:
            self.diagnostics.report()  # waits, prints; raises DeviceAssertionError (triton_metal.device_print)
