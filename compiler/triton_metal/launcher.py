"""Turns a Triton launch (grid, Python arguments) into a runtime dispatch.

Triton calls the launcher with the original Python objects, constexprs included; the MSL kernel
takes the remaining arguments in order, each in its own buffer slot: pointers as device
addresses, scalars as the bytes of a small constant buffer.
"""
from __future__ import annotations

import struct
import time

from triton_metal.arg_checks import LaunchChecks
from triton_metal.debug import log

# struct formats of scalar arguments, by Triton type name.
SCALAR_FORMATS = {
    "i1": "<?", "i8": "<b", "u8": "<B", "i16": "<h", "u16": "<H", "i32": "<i", "u32": "<I",
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


def _flatten(signature: dict, args) -> list:
    """(name, type, value) of every argument, tuples flattened as Triton does."""
    out = []

    def visit(name, ty, value):
        if isinstance(ty, tuple):
            for i, (t, v) in enumerate(zip(ty, value)):
                visit(f"{name}[{i}]", t, v)
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

    def __call__(self, grid_x, grid_y, grid_z, stream, function, packed_metadata, launch_metadata,
                 enter_hook, exit_hook, *args):
        self.check((grid_x, grid_y, grid_z), args)
        if enter_hook is not None:
            enter_hook(launch_metadata)
        buffers = {}
        slot = 0
        for name, ty, value in _flatten(self.signature, args):
            if ty == "constexpr":
                continue
            if ty.startswith("*"):
                buffers[slot] = self.runtime.buffer_argument(value, name)  # what this runtime's launch binds
            else:
                buffers[slot] = pack_scalar(value, ty, name)
            slot += 1
        if grid_x * grid_y * grid_z > 0:  # an empty grid launches nothing, as on CUDA
            start = time.perf_counter()
            self.runtime.launch(function, (grid_x, grid_y, grid_z), self.threadgroup, buffers)
            log(1, "launched %s grid=(%d, %d, %d) threadgroup=%s on %s: %.3f ms", self.name, grid_x, grid_y, grid_z,
                self.threadgroup, self.runtime.name, (time.perf_counter() - start) * 1e3)
        if exit_hook is not None:
            exit_hook(launch_metadata)
