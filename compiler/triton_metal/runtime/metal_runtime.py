"""The Metal runtime: MSL compiled and launched on an Apple GPU through PyObjC.

Compile: ``MTLDevice.newLibraryWithSource:options:error:`` with an explicit language version and the
math mode the MSL states (``numerics.MathMode.of_msl``: safe with precise functions unless the kernel was
compiled with fast math); pipelines are cached by (MSL, kernel). ``torch.mps.compile_shader`` takes no
options of ours (PyTorch compiles with safe math and precise functions unless ``PYTORCH_MPS_FAST_MATH=1``,
``MetalShaderLibrary::compileLibrary``): from MSL 3.2 the kernel's ``#pragma METAL fp math_mode`` decides
whatever it passes, and every float function whose variants differ is called as ``precise::`` or
``fast::`` (``check_torch_math_mode`` refuses the one combination that would change results).

Launch, by argument kind:
- **torch ``mps`` tensors** go through ``torch.mps.compile_shader``: PyTorch encodes the dispatch
  on its current MPS stream (``MetalKernelFunction::runCommandBlock`` runs on the stream's queue
  and encodes into the stream's compute encoder), so the kernel is ordered with every other
  PyTorch op, and each tensor is bound as ``setBuffer:(its MTLBuffer) offset:(storage offset)``
  without a copy. PyTorch exposes no Python handle to its command buffer, so a PyObjC dispatch on
  our own queue would need ``torch.mps.synchronize()`` before and a wait after every launch.
  PyTorch dispatches with ``dispatchThreads:threadsPerThreadgroup:``; we pass
  threads = grid x threadgroup, which yields exactly ``grid`` threadgroups of the kernel's size,
  i.e. the same dispatch as ``dispatchThreadgroups``. Scalars, and the struct of packed scalars of
  kernels with more than 31 arguments, are passed as lists of int64 holding their bytes, which
  PyTorch binds with ``setBytes`` (``torch_bytes_argument``).
- **numpy arrays** go through shared-storage MTLBuffers on our own command queue with
  ``dispatchThreadgroups:threadsPerThreadgroup:``. Arrays from ``MetalRuntime.empty()`` live in
  such a buffer (no copies); any other C-contiguous array is staged through one (copied in, and
  back out when the command buffer completes). Scalars are bound with ``setBytes``.

Everything here was written from Apple's and PyTorch's documentation and source and is tested on
Linux only against a recorded fake of the Metal API (compiler/tests/runtime/fake_metal.py); see
the README for what has run on real Apple hardware.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import re
import struct
from dataclasses import dataclass, field

from triton_metal import abi
from triton_metal.debug import dump_shader, log
from triton_metal.errors import (
    MetalCompileError,
    MetalError,
    MetalNotSupportedError,
    MetalOutOfMemoryError,
    ThreadsPerThreadgroupError,
)
from triton_metal.numerics import MathMode
from triton_metal.runtime.base import Capabilities, Runtime
from triton_metal.runtime.chips import DetectedChip, detect_chip

# ---- the Metal API (PyObjC), imported lazily so Linux never needs it ---------------------------

def _import_metal():
    try:
        import Metal
    except ImportError:
        raise MetalNotSupportedError(
            "the Metal runtime needs PyObjC's Metal bindings: pip install pyobjc-framework-Metal (macOS on Apple "
            "Silicon). Use TRITON_METAL_DEVICE=sim to run kernels on the CPU through the Metal simulator.") from None
    return Metal


def metal_device_available() -> bool:
    if platform.system() != "Darwin":
        return False
    try:
        import Metal
    except ImportError:
        return False
    return Metal.MTLCreateSystemDefaultDevice() is not None


def language_version_name(macos: tuple) -> str:
    """The MTLLanguageVersion the runtime compiles with on ``macos``: the MSL version of
    ``abi.MSL_VERSION_BY_MACOS`` (3.1 brings `bfloat`, 3.2 device-scope fences and coherent(device)
    buffers), which codegen generates for too. Pinned explicitly rather than left to the OS default, so a
    kernel means the same on every macOS; PyTorch and MLX pick 3.2 on macOS 15 too."""
    return "MTLLanguageVersion" + abi.msl_version_for_macos(macos).replace(".", "_")


TORCH_FAST_MATH_ENV = "PYTORCH_MPS_FAST_MATH"  # read by PyTorch's MetalShaderLibrary::compileLibrary


def check_torch_math_mode(msl: str, kernel_name: str, language_version: str, environ=os.environ) -> None:
    """Raise if ``torch.mps.compile_shader`` would compile this precise kernel with fast math: before MSL
    3.2 the kernel cannot state its math mode (numerics.MathMode.pragmas) and PyTorch's is fast when
    ``PYTORCH_MPS_FAST_MATH`` is set. (A fast kernel compiled safe computes within its own contract.)"""
    torch_fast = environ.get(TORCH_FAST_MATH_ENV, "0").strip() not in ("", "0")
    stated = tuple(int(n) for n in re.findall(r"\d+", language_version)) >= (3, 2)  # torch's is ours or newer
    if torch_fast and not stated and not MathMode.of_msl(msl).fast:
        raise MetalError(f"kernel '{kernel_name}' is compiled with precise math, but {TORCH_FAST_MATH_ENV} is set, "
                         "so torch.mps.compile_shader would compile it with fast math, and before MSL 3.2 "
                         f"(macOS 15) the kernel cannot say otherwise: unset {TORCH_FAST_MATH_ENV}, or compile "
                         "the kernel with fast_math=True (TRITON_METAL_FAST_MATH=1)")


def _error_text(error) -> str:
    if error is None:
        return "no error description"
    return str(error.localizedDescription())


# ---- pipelines and bindings ------------------------------------------------------------------

@dataclass
class MetalPipeline:
    name: str
    msl: str
    state: object  # id<MTLComputePipelineState>
    max_total_threads_per_threadgroup: int
    thread_execution_width: int
    static_threadgroup_memory_length: int
    fast_math: bool  # the math mode the MSL states, compiled with (numerics.MathMode)
    torch_kernel: object = field(default=None, repr=False)  # torch.mps.compile_shader(...).<name>, lazily


class SharedBuffer:
    """A shared-storage MTLBuffer that numpy arrays view without copies (``MetalRuntime.empty``)."""

    def __init__(self, mtl_buffer, nbytes: int):
        self.mtl_buffer = mtl_buffer
        self.nbytes = nbytes
        self._memory = mtl_buffer.contents().as_buffer(nbytes)  # writable memoryview of the contents
        self.address = ctypes.addressof(ctypes.c_char.from_buffer(self._memory))
        self.__array_interface__ = {"data": (self.address, False), "shape": (nbytes,), "typestr": "|u1",
                                    "version": 3}


def _shared_buffer_of(array):
    base = array
    while base is not None:
        if isinstance(base, SharedBuffer):
            return base
        base = getattr(base, "base", None)
    return None


def _is_torch_tensor(value) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "untyped_storage")


def _is_numpy_array(value) -> bool:
    return type(value).__module__ == "numpy" and hasattr(value, "__array_interface__")


MAX_SET_BYTES = 4096  # setBytes:length:atIndex: takes less than 4 KB (Apple's MTLComputeCommandEncoder docs)


def check_bytes_argument(data: bytes, slot: int) -> None:
    if len(data) >= MAX_SET_BYTES:
        raise MetalError(f"buffer {slot}: {len(data)} bytes of scalar arguments, but Metal binds at most "
                         f"{MAX_SET_BYTES - 1} bytes inline (setBytes): pass fewer scalar arguments, e.g. as a tensor")


def torch_bytes_argument(data: bytes) -> list:
    """``data`` (a scalar's bytes, or the struct of packed scalars) as the Python list of ints that
    ``torch.mps.compile_shader`` kernels bind with ``setBytes`` of exactly its bytes.

    PyTorch's kernel call (torch/csrc/mps/Module.cpp, ``OptionalArgCaster::setValue``, read at pytorch
    commit f3b72801) casts a list whose first element is an int to ``std::vector<int64_t>`` and calls
    ``MetalKernelFunction::setArg(idx, vector)``: ``setBytes:values.data() length:8 * len``
    (aten/src/ATen/native/mps/OperationUtils.mm). So the bytes go as little-endian int64 words, zero-padded
    to a multiple of 8: the kernel's ``constant T&`` or struct reads its first ``sizeof`` bytes. (A 0-d
    CPU tensor would be bound with ``setBytes`` of one element only, a Python int as one int64, a float
    as one float: none of them can carry a 12-byte struct.)"""
    padded = bytes(data) + bytes(-len(data) % 8)
    return list(struct.unpack(f"<{len(padded) // 8}q", padded))


def torch_launch_arguments(buffers: dict, grid, threadgroup, null_tensor=None):
    """(positional args, threads, group_size) for a ``torch.mps.compile_shader`` kernel call.

    PyTorch binds positional argument i at ``[[buffer(i)]]``: tensors with ``setBuffer`` at their
    storage offset, scalars and packed scalar structs (bytes) as lists of int64 (``torch_bytes_argument``)."""
    slots = sorted(buffers)
    if slots != list(range(len(slots))):
        raise MetalError(f"buffer slots {slots} are not 0..{len(slots) - 1}: PyTorch binds kernel arguments by position")
    args = []
    for slot in slots:
        value = buffers[slot]
        if isinstance(value, (bytes, bytearray)):
            check_bytes_argument(value, slot)
            args.append(torch_bytes_argument(value))
        elif value is None:
            args.append(null_tensor)
        else:
            args.append(value)
    threads = [g * t for g, t in zip(grid, threadgroup)]
    return args, threads, list(threadgroup)


class MetalRuntime(Runtime):
    name = "metal"

    @classmethod
    def available(cls) -> bool:
        return metal_device_available()

    def __init__(self, metal=None, chip_info: DetectedChip | None = None, macos: tuple | None = None):
        """``metal`` is the PyObjC ``Metal`` module (tests pass a fake); the rest is detected."""
        self._mtl = metal if metal is not None else _import_metal()
        self.device = self._mtl.MTLCreateSystemDefaultDevice()
        if self.device is None:
            raise MetalNotSupportedError(
                "Metal reports no GPU (MTLCreateSystemDefaultDevice() returned nil): the Metal runtime needs macOS "
                "13.5+ on Apple Silicon, outside a VM without GPU access. GitHub-hosted macOS runners have no usable "
                "Metal GPU. Use TRITON_METAL_DEVICE=sim to run kernels on the CPU.")
        detected = chip_info or detect_chip(device_name=str(self.device.name()))
        self.recommended_working_set_bytes = int(self.device.recommendedMaxWorkingSetSize())
        self.capabilities = Capabilities(
            simulated=False, torch_device="mps", chip=detected.chip, gpu_cores=detected.gpu_cores,
            device_memory_bytes=self.recommended_working_set_bytes, fork_safe=False, numpy_buffers=True,
            shared_memory_arrays=True)
        self.language_version = language_version_name(macos if macos is not None else abi.macos_version())
        self.queue = self.device.newCommandQueue()
        self._pipelines: dict = {}
        self._in_flight: list = []
        self._null_buffer = None
        self._null_tensor = None
        self._torch_used = False

    # ---- compile ---------------------------------------------------------------------------
    def compile(self, msl: str, kernel_name: str) -> MetalPipeline:
        # The kernel's math mode is the one its MSL states (decided once, in MetalOptions.fast_math).
        fast = MathMode.of_msl(msl).fast
        key = (hashlib.sha256(msl.encode()).hexdigest(), kernel_name)
        if key in self._pipelines:
            return self._pipelines[key]
        mtl = self._mtl
        options = mtl.MTLCompileOptions.alloc().init()
        options.setLanguageVersion_(getattr(mtl, self.language_version))
        if options.respondsToSelector_("setMathMode:"):  # macOS 15+; fastMathEnabled is deprecated there
            options.setMathMode_(mtl.MTLMathModeFast if fast else mtl.MTLMathModeSafe)
            options.setMathFloatingPointFunctions_(
                mtl.MTLMathFloatingPointFunctionsFast if fast else mtl.MTLMathFloatingPointFunctionsPrecise)
        else:
            options.setFastMathEnabled_(fast)
        library, error = self.device.newLibraryWithSource_options_error_(msl, options, None)
        if library is None:
            raise MetalCompileError(kernel_name, _error_text(error), dump_shader(kernel_name, msl))
        if error is not None:  # a library with an error object: the compiler's warnings
            log(1, "Metal compiler warnings for %s:\n%s", kernel_name, _error_text(error))
        function = library.newFunctionWithName_(kernel_name)
        if function is None:
            names = ", ".join(str(n) for n in (library.functionNames() or []))
            raise MetalCompileError(kernel_name, f"the compiled library has no kernel named '{kernel_name}' "
                                    f"(it has: {names or 'none'})", dump_shader(kernel_name, msl))
        state, error = self.device.newComputePipelineStateWithFunction_error_(function, None)
        if state is None:
            raise MetalCompileError(kernel_name, "creating the compute pipeline failed: " + _error_text(error),
                                    dump_shader(kernel_name, msl))
        pipeline = MetalPipeline(kernel_name, msl, state, int(state.maxTotalThreadsPerThreadgroup()),
                                 int(state.threadExecutionWidth()), int(state.staticThreadgroupMemoryLength()), fast)
        self._pipelines[key] = pipeline
        return pipeline

    def release(self) -> int:
        """Forget compiled pipelines (and PyTorch's copies of them); the next launch recompiles."""
        released = len(self._pipelines)
        self._pipelines.clear()
        return released

    # ---- arguments -------------------------------------------------------------------------
    def buffer_argument(self, value, arg_name: str):
        """What ``launch`` binds for a pointer argument: an mps tensor, a numpy array, or None (null)."""
        if value is None:
            return None
        if _is_torch_tensor(value):
            if value.device.type != "mps":
                raise MetalError(
                    f"argument '{arg_name}' is a tensor on device '{value.device}', but the Metal runtime runs kernels "
                    f"on the Apple GPU: move it with {arg_name}.to('mps')")
            return value
        if _is_numpy_array(value):
            return value
        raise MetalError(f"argument '{arg_name}' is a {type(value).__name__}: the Metal runtime takes torch 'mps' "
                         "tensors or numpy arrays for pointer arguments")

    def buffer_address(self, tensor, arg_name: str):
        return self.buffer_argument(tensor, arg_name)

    # ---- memory ----------------------------------------------------------------------------
    def _memory_state(self) -> str:
        return (f"{int(self.device.currentAllocatedSize())} bytes allocated by this process, recommended working "
                f"set {self.recommended_working_set_bytes} bytes, largest buffer {int(self.device.maxBufferLength())} "
                "bytes")

    def new_shared_buffer(self, nbytes: int, purpose: str):
        nbytes = max(int(nbytes), 16)  # Metal cannot make an empty buffer
        limit = int(self.device.maxBufferLength())
        if nbytes > limit:
            raise MetalOutOfMemoryError(f"{purpose} needs a buffer of {nbytes} bytes, more than the device's "
                                        f"maxBufferLength of {limit} bytes ({self._memory_state()})")
        buffer = self.device.newBufferWithLength_options_(nbytes, self._mtl.MTLResourceStorageModeShared)
        if buffer is None:
            raise MetalOutOfMemoryError(f"allocating {nbytes} bytes for {purpose} failed ({self._memory_state()})")
        return buffer

    def empty(self, shape, dtype="float32"):
        """A numpy array living in a shared MTLBuffer: kernels read and write it without copies."""
        import numpy as np
        dtype = np.dtype(dtype)
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        shared = SharedBuffer(self.new_shared_buffer(nbytes, f"an array of shape {shape} {dtype}"),
                              max(nbytes, 16))
        return np.asarray(shared)[:nbytes].view(dtype).reshape(shape)

    def _bind_numpy(self, array, slot: int, copy_back: list):
        """(MTLBuffer, offset) for a numpy argument; staged arrays are queued in ``copy_back``."""
        import numpy as np
        shared = _shared_buffer_of(array)
        if shared is not None:
            return shared.mtl_buffer, array.__array_interface__["data"][0] - shared.address
        if not array.flags.c_contiguous:
            raise MetalError(f"buffer {slot}: a non-contiguous numpy array cannot be staged for the GPU: pass "
                             "np.ascontiguousarray(x), or allocate it with MetalRuntime.empty()")
        staging = self.new_shared_buffer(array.nbytes, f"staging a numpy array of {array.nbytes} bytes (buffer {slot})")
        view = np.frombuffer(staging.contents().as_buffer(max(array.nbytes, 16)), dtype=np.uint8)[:array.nbytes]
        view[:] = array.reshape(-1).view(np.uint8)
        if array.flags.writeable:
            copy_back.append((array, view))
        return staging, 0

    def _null(self):
        if self._null_buffer is None:
            self._null_buffer = self.new_shared_buffer(16, "a null pointer argument")
        return self._null_buffer

    # ---- launch ----------------------------------------------------------------------------
    def launch(self, pipeline: MetalPipeline, grid, threadgroup, buffers, threadgroup_lengths=None):
        threads = threadgroup[0] * threadgroup[1] * threadgroup[2]
        if threads > pipeline.max_total_threads_per_threadgroup:
            # maxTotalThreadsPerThreadgroup can be below 1024 for kernels using many registers.
            raise ThreadsPerThreadgroupError(threads, pipeline.max_total_threads_per_threadgroup)
        if 0 in tuple(grid):
            return
        values = list(buffers.values())
        if any(_is_torch_tensor(v) for v in values):
            if any(_is_numpy_array(v) for v in values):
                raise MetalError(f"kernel '{pipeline.name}': torch tensors and numpy arrays in one launch cannot be "
                                 "ordered with each other: pass mps tensors only (torch.from_numpy(a).to('mps'))")
            return self._launch_torch(pipeline, grid, threadgroup, buffers, threadgroup_lengths)
        return self._launch_objc(pipeline, grid, threadgroup, buffers, threadgroup_lengths)

    def _launch_objc(self, pipeline, grid, threadgroup, buffers, threadgroup_lengths):
        mtl = self._mtl
        copy_back: list = []
        command_buffer = self.queue.commandBuffer()
        encoder = command_buffer.computeCommandEncoder()
        encoder.setComputePipelineState_(pipeline.state)
        for slot in sorted(buffers):
            value = buffers[slot]
            if isinstance(value, (bytes, bytearray)):
                check_bytes_argument(value, slot)
                encoder.setBytes_length_atIndex_(bytes(value), len(value), slot)
            elif value is None:
                encoder.setBuffer_offset_atIndex_(self._null(), 0, slot)
            elif _is_numpy_array(value):
                mtl_buffer, offset = self._bind_numpy(value, slot, copy_back)
                encoder.setBuffer_offset_atIndex_(mtl_buffer, offset, slot)
            else:
                raise MetalError(f"kernel '{pipeline.name}': buffer {slot} is a {type(value).__name__}; the Metal "
                                 "runtime binds bytes (scalars), numpy arrays and torch mps tensors")
        for slot, length in sorted((threadgroup_lengths or {}).items()):
            encoder.setThreadgroupMemoryLength_atIndex_(int(length), slot)
        encoder.dispatchThreadgroups_threadsPerThreadgroup_(mtl.MTLSizeMake(*grid), mtl.MTLSizeMake(*threadgroup))
        encoder.endEncoding()
        command_buffer.commit()
        if copy_back:  # staged numpy arrays: the caller reads them as soon as launch returns
            self._wait(command_buffer, pipeline.name)
            for array, view in copy_back:
                array.reshape(-1).view("uint8")[:] = view
        else:
            self._in_flight.append((command_buffer, pipeline.name))

    def _launch_torch(self, pipeline, grid, threadgroup, buffers, threadgroup_lengths):
        import torch
        if threadgroup_lengths:
            raise MetalError(f"kernel '{pipeline.name}': threadgroup memory lengths cannot be set through "
                             "torch.mps.compile_shader; declare threadgroup arrays inside the kernel")
        if pipeline.torch_kernel is None:
            check_torch_math_mode(pipeline.msl, pipeline.name, self.language_version)
            # PyTorch reads the source as ASCII: ours is (codegen/msl_text.py); MSL written elsewhere is made so.
            source = pipeline.msl.encode("ascii", "backslashreplace").decode("ascii")
            try:
                library = torch.mps.compile_shader(source)
            except SyntaxError as e:  # PyTorch's type for MTLLibraryErrorCompileFailure
                raise MetalCompileError(pipeline.name, str(e.msg if hasattr(e, "msg") else e),
                                        dump_shader(pipeline.name, pipeline.msl)) from None
            pipeline.torch_kernel = getattr(library, pipeline.name)
        if self._null_tensor is None and None in buffers.values():
            self._null_tensor = torch.empty(16, dtype=torch.uint8, device="mps")
        args, threads, group_size = torch_launch_arguments(buffers, grid, threadgroup, self._null_tensor)
        self._torch_used = True
        try:
            pipeline.torch_kernel(*args, threads=threads, group_size=group_size)
        except torch.OutOfMemoryError as e:
            raise MetalOutOfMemoryError(f"launching '{pipeline.name}': {e}") from None

    # ---- completion ------------------------------------------------------------------------
    def _wait(self, command_buffer, kernel_name: str) -> None:
        command_buffer.waitUntilCompleted()
        if command_buffer.status() != self._mtl.MTLCommandBufferStatusError:
            return
        error = command_buffer.error()
        if error is not None and error.code() == self._mtl.MTLCommandBufferErrorOutOfMemory:
            raise MetalOutOfMemoryError(f"the GPU ran out of memory running '{kernel_name}' ({self._memory_state()})")
        raise MetalError(f"Metal runtime error: the command buffer running '{kernel_name}' failed: "
                         f"{_error_text(error)}")

    def synchronize(self) -> None:
        """Wait for every kernel launched so far (ours and, once torch was used, PyTorch's MPS stream)."""
        in_flight, self._in_flight = self._in_flight, []
        for command_buffer, kernel_name in in_flight:
            self._wait(command_buffer, kernel_name)
        if self._torch_used:
            import torch
            torch.mps.synchronize()


if __name__ == "__main__":  # `python -m triton_metal.runtime.metal_runtime`: the chip id (for CI)
    print(detect_chip(device_name=None).id)
