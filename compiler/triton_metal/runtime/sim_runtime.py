"""The simulator runtime: MSL compiled as C++ and run on the CPU, torch CPU tensors as memory."""
from __future__ import annotations

import gc
import os

from triton_metal.runtime.base import Capabilities, Runtime
from triton_metal.runtime.chips import DEFAULT_SIMULATED_CHIP, chip
from triton_metal.sim import build_kernel, executor


class SimRuntime(Runtime):
    name = "sim"

    def __init__(self):
        self.capabilities = Capabilities(
            simulated=True, torch_device="cpu", chip=chip(os.environ.get("TRITON_METAL_SIM_CHIP", DEFAULT_SIMULATED_CHIP)),
            fork_safe=True)  # the simulator's worker threads are created per dispatch, in the process dispatching

    @classmethod
    def available(cls) -> bool:
        return True  # g++ is checked when the first kernel builds, with the fix in the error

    def compile(self, msl: str, kernel_name: str):
        return build_kernel(msl, kernel_name)

    def launch(self, pipeline, grid, threadgroup, buffers, threadgroup_lengths=None):
        pipeline.dispatch(grid=grid, threadgroup=threadgroup, buffers=buffers,
                          threadgroup_lengths=threadgroup_lengths or {})

    def buffer_argument(self, value, arg_name: str):
        """A pointer argument as the simulator binds it: the tensor itself once its device is checked
        (the executor takes its address, and its size for strict mode's bounds checks), 0 for None."""
        if value is None:
            return 0
        self.buffer_address(value, arg_name)
        return value

    def buffer_address(self, tensor, arg_name: str) -> int:
        if tensor.device.type != "cpu":
            raise ValueError(
                f"argument '{arg_name}' is a tensor on device '{tensor.device}', but the Metal simulator runs "
                "kernels on the CPU: pass CPU tensors (the device that "
                "triton.runtime.driver.active.get_active_torch_device() returns)")
        return tensor.data_ptr()

    def synchronize(self) -> None:
        pass  # dispatch() returns when the grid has finished.

    def release(self) -> int:
        """Forget the simulator's loaded kernels and unload (dlclose) the libraries nobody references any
        more; returns how many were unloaded. A kernel a caller still holds stays loaded: unloading it
        would make its next launch crash (each library goes with its kernel, SimKernel._load)."""
        before = executor.unloaded_count()
        executor.clear_memo()
        gc.collect()
        return executor.unloaded_count() - before
