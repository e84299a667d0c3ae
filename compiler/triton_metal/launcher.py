"""Turns a Triton launch (grid, Python arguments) into a runtime dispatch.

Triton calls the launcher with the original Python objects, constexprs included; the MSL kernel
takes the remaining arguments in order, each in its own buffer slot: pointers as the runtime binds
them, scalars as the bytes of a small constant buffer (``triton_metal.arguments``).
"""
from __future__ import annotations

import time

from triton_metal import abi
from triton_metal.arg_checks import LaunchChecks
from triton_metal.arguments import bind_arguments, flatten_arguments
from triton_metal.debug import log
from triton_metal.device_print import DevicePrintBuffer, device_print_sites
from triton_metal.runtime import get_runtime


class MetalLauncher:

    def __init__(self, src, metadata):
        self.runtime = get_runtime()
        self.signature = dict(src.signature)
        self.threadgroup = (metadata.threadgroup_size, 1, 1)
        self.name = metadata.name
        self.check = LaunchChecks(self.name, self.signature, self.runtime)  # triton_metal.arg_checks
        # Kernels with more arguments than buffer slots take their scalars in one struct (codegen).
        self.packed_scalars = abi.packs_scalars(abi.signature_of(metadata))
        sites = device_print_sites(metadata)  # tl.device_print/device_assert: a hidden last buffer
        self.device_print = DevicePrintBuffer(self.name, sites, self.runtime) if sites else None

    def __call__(self, grid_x, grid_y, grid_z, stream, function, packed_metadata, launch_metadata,
                 enter_hook, exit_hook, *args):
        self.check((grid_x, grid_y, grid_z), args)
        if enter_hook is not None:
            enter_hook(launch_metadata)
        buffers = bind_arguments(flatten_arguments(self.signature, args), self.runtime.buffer_argument,
                                 self.packed_scalars)
        launched = grid_x * grid_y * grid_z > 0
        if self.device_print is not None:
            buffers[len(buffers)] = self.device_print.bind(buffers)
        if launched:  # an empty grid launches nothing, as on CUDA
            start = time.perf_counter()
            self.runtime.launch(function, (grid_x, grid_y, grid_z), self.threadgroup, buffers)
            log(1, "launched %s grid=(%d, %d, %d) threadgroup=%s on %s: %.3f ms", self.name, grid_x, grid_y, grid_z,
                self.threadgroup, self.runtime.name, (time.perf_counter() - start) * 1e3)
        if exit_hook is not None:
            exit_hook(launch_metadata)
        if launched and self.device_print is not None:
            self.device_print.report()  # waits, prints; raises DeviceAssertionError (triton_metal.device_print)
