"""The MLX runtime: our MSL run on the Apple GPU through ``mx.fast.metal_kernel``, with ``mx.array``s.

``mx.fast.metal_kernel(name, input_names, output_names, source, header)`` writes the kernel's
signature itself (inputs ``const device T* name [[buffer(i)]]``, 0-d inputs ``const constant T&``,
inputs of fewer than 8 elements in the ``constant`` address space, then outputs ``device T*``, then
the Metal attributes whose names appear in ``source``) and takes only the body. So a kernel is
split: everything before ``kernel void <name>(`` becomes the header, and the body is prefixed with
one line per parameter that rebinds our parameter names to MLX's (``split_kernel`` /
``mlx_body``). MLX dispatches ``grid`` *threads*, so a Triton grid of G programs of T threads is
passed as grid = G x T, threadgroup = T.

MLX compiles every library with fast math off (``Device::build_library_``: ``setFastMathEnabled(false)``,
i.e. safe mode and precise functions) and takes no options of ours: the kernel's own
``#pragma METAL fp math_mode`` (MSL 3.2 and later, in the header) and its explicit ``precise::`` /
``fast::`` function names make it compute as compiled (triton_metal/numerics.py).

MLX arrays are immutable: the pointer arguments a kernel writes must be named as outputs; they come
back as new arrays (initialised to ``init_value`` when given, else uninitialised: a kernel that reads
an output before writing it needs ``init_value`` or the metal runtime with torch tensors).

``run`` compiles a ``@triton.jit`` function and launches it with MLX arrays. It binds the arguments
as the Triton launcher does (``triton_metal.arguments``) and reads what each one is from the kernel's
signature record (``triton_metal.abi``, ``metadata.arg_kinds``); only the parameter declarations the
body re-states are read from the MSL (``split_kernel``).
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

from triton_metal import abi, msl_signature
from triton_metal.arguments import bind_arguments
from triton_metal.errors import MetalError, MLXNotFoundError, ThreadsPerThreadgroupError
from triton_metal.runtime.base import Capabilities, Runtime
from triton_metal.runtime.chips import detect_chip

MLX_MIN_DEVICE_ELEMENTS = 8  # MLX passes inputs smaller than this in the `constant` address space

# MSL scalar type -> MLX dtype name.
MLX_DTYPES = {
    "float": "float32", "half": "float16", "bfloat": "bfloat16", "bool": "bool_",
    "char": "int8", "uchar": "uint8", "short": "int16", "ushort": "uint16",
    "int": "int32", "uint": "uint32", "long": "int64", "ulong": "uint64",
}

# Element type of the signature record (abi.KernelArgument.element, Triton IR's names) -> MLX dtype name.
# Triton IR integers are signless: a u32 argument is recorded as i32, and its bytes are the same.
RECORD_DTYPES = {
    "f32": "float32", "f16": "float16", "bf16": "bfloat16", "i1": "bool_",
    "i8": "int8", "i16": "int16", "i32": "int32", "i64": "int64",
}

# The Metal attributes MLX declares, with their types, when their names occur in the body (MLX's
# table, abi.MLX_KERNEL_ATTRIBUTES): our builtin parameters are bound from them. The code generator
# guarantees that no other name or comment in the body contains one (codegen/msl_text.py).
MLX_ATTRIBUTE_TYPES = dict(abi.MLX_KERNEL_ATTRIBUTES)

_PARAM = re.compile(r"^(?P<type>.+?)\s*\b(?P<name>\w+)\s*\[\[(?P<attr>\w+)(?:\((?P<index>\d+)\))?\]\]$")


def import_mlx():
    try:
        import mlx.core as mx
    except ImportError:
        raise MLXNotFoundError("TRITON_METAL_DEVICE=mlx needs MLX: pip install mlx (macOS on Apple Silicon). On "
                               "Linux, mlx[cpu] has no Metal back end: use TRITON_METAL_DEVICE=sim.") from None
    return mx


@dataclass(frozen=True)
class KernelParam:
    name: str
    type: str       # as written in our MSL, e.g. "device float*", "constant int&", "uint3"
    attribute: str  # "buffer" or a Metal builtin attribute
    slot: int | None

    @property
    def is_pointer(self) -> bool:
        return self.attribute == "buffer" and self.type.endswith("*")

    @property
    def element_type(self) -> str:
        """``float`` of ``device float*`` / ``constant float&``."""
        return self.type.split()[-1].rstrip("*&")


@dataclass(frozen=True)
class SplitKernel:
    name: str
    header: str
    params: tuple
    body: str


def split_kernel(msl: str, kernel_name: str) -> SplitKernel:
    """Split one of our generated kernels into header, parameter declarations and body (the kernel is
    found and its parameter list split by ``triton_metal.msl_signature``, the MSL reader every part shares)."""
    masked = msl_signature.mask(msl)  # no `kernel void f(` or bracket inside a comment counts
    signature = next((s for s in msl_signature.kernel_signatures(masked) if s.name == kernel_name), None)
    if signature is None:
        raise MetalError(f"the MSL has no 'kernel void {kernel_name}(': cannot wrap it for mx.fast.metal_kernel")
    open_brace = masked.find("{", signature.close_paren) if signature.close_paren is not None else -1
    if open_brace < 0 or masked[signature.close_paren + 1:open_brace].strip():
        raise MetalError(f"kernel '{kernel_name}': cannot find the end of its parameter list")
    end = msl.rindex("}")
    params = []
    for start, stop in msl_signature.split_top_level(masked, signature.open_paren + 1, signature.close_paren):
        text = " ".join(msl[start:stop].split())
        pm = _PARAM.match(text)
        if pm is None:
            raise MetalError(f"kernel '{kernel_name}': cannot read parameter '{text}' for mx.fast.metal_kernel")
        index = pm.group("index")
        params.append(KernelParam(pm.group("name"), pm.group("type"), pm.group("attr"),
                                  int(index) if index is not None else None))
    for p in params:
        if p.attribute not in ("buffer",) and p.attribute not in MLX_ATTRIBUTE_TYPES:
            raise MetalError(f"kernel '{kernel_name}': parameter '{p.name}' uses [[{p.attribute}]], which "
                             "mx.fast.metal_kernel cannot provide: use the metal runtime")
    return SplitKernel(kernel_name, msl[:signature.start], tuple(params), msl[open_brace + 1:end])


def input_name(slot: int) -> str:
    return f"{abi.MLX_INPUT_PREFIX}{slot}"  # a prefix no generated name contains (codegen/msl_words.py)


def output_name(slot: int) -> str:
    return f"{abi.MLX_OUTPUT_PREFIX}{slot}"


def mlx_body(kernel: SplitKernel, output_slots) -> str:
    """The body MLX wraps: our parameter names bound to MLX's inputs, outputs and attributes."""
    lines = []
    for p in kernel.params:
        if p.attribute != "buffer":
            lines.append(f"    const {p.type} {p.name} = {p.attribute};")
        elif p.is_pointer:
            source = output_name(p.slot) if p.slot in output_slots else input_name(p.slot)
            lines.append(f"    {p.type} {p.name} = ({p.type}){source};")
        else:  # a scalar, passed as a 0-d array: MLX's type name may differ (bfloat16_t), the bytes do not
            t = p.element_type
            lines.append(f"    const {t} {p.name} = *(const constant {t}*)&{input_name(p.slot)};")
    return "\n".join(lines) + "\n" + kernel.body


@dataclass
class MLXPipeline:
    name: str
    msl: str
    kernel: SplitKernel
    mx_kernels: dict = field(default_factory=dict)  # output slots -> mx.fast.metal_kernel


@dataclass(frozen=True)
class Output:
    """A pointer argument the kernel writes: MLX returns it as a new array of this shape and dtype."""
    shape: tuple
    dtype: object  # an mx.Dtype


class MLXRuntime(Runtime):
    name = "mlx"

    def __init__(self, mx=None):
        self.mx = mx if mx is not None else import_mlx()
        if not self.mx.metal.is_available():
            raise MLXNotFoundError("MLX is installed but has no Metal back end here (mlx[cpu], or no Apple GPU): "
                                   "mx.fast.metal_kernel cannot run. Use TRITON_METAL_DEVICE=sim, or install mlx "
                                   "on macOS on Apple Silicon.")
        device_info = getattr(self.mx, "device_info", None) or self.mx.metal.device_info
        detected = detect_chip(device_name=str(device_info().get("device_name", "")))
        # torch_device: MLX shares no memory with torch tensors; results come back as mx.arrays.
        self.capabilities = Capabilities(
            simulated=False, torch_device="cpu", chip=detected.chip, gpu_cores=detected.gpu_cores, fork_safe=False,
            immutable_outputs=True, device_print=False)
        self._pipelines: dict = {}

    @classmethod
    def available(cls) -> bool:
        try:
            mx = import_mlx()
        except MLXNotFoundError:
            return False
        return bool(mx.metal.is_available())

    def compile(self, msl: str, kernel_name: str) -> MLXPipeline:
        key = (msl, kernel_name)
        if key not in self._pipelines:
            self._pipelines[key] = MLXPipeline(kernel_name, msl, split_kernel(msl, kernel_name))
        return self._pipelines[key]

    def release(self) -> int:
        """Forget the wrapped kernels (and MLX's compiled ``metal_kernel``s we hold); returns how many."""
        released = len(self._pipelines)
        self._pipelines.clear()
        return released

    def buffer_argument(self, value, arg_name: str):
        if value is None:
            raise MetalError(f"argument '{arg_name}' is None: the mlx runtime cannot pass null pointers")
        if isinstance(value, (Output, self.mx.array)):
            return value
        raise MetalError(f"argument '{arg_name}' is a {type(value).__name__}: the mlx runtime takes mx.array inputs "
                         "and mlx_runtime.Output(shape, dtype) for the arrays a kernel writes")

    def launch(self, pipeline: MLXPipeline, grid, threadgroup, buffers, threadgroup_lengths=None, init_value=None):
        """Run the kernel; returns the new arrays of the ``Output`` slots, in slot order."""
        mx = self.mx
        if threadgroup_lengths:
            raise MetalError(f"kernel '{pipeline.name}': mx.fast.metal_kernel cannot set threadgroup memory lengths")
        threads = threadgroup[0] * threadgroup[1] * threadgroup[2]
        if threads > self.chip.max_threads_per_threadgroup:
            raise ThreadsPerThreadgroupError(threads, self.chip.max_threads_per_threadgroup)
        params = {p.slot: p for p in pipeline.kernel.params if p.attribute == "buffer"}
        if set(params) != set(buffers):
            raise MetalError(f"kernel '{pipeline.name}' has buffer slots {sorted(params)}, the launch gave "
                             f"{sorted(buffers)}")
        output_slots = tuple(s for s in sorted(buffers) if isinstance(buffers[s], Output))
        if not output_slots:
            raise MetalError(f"kernel '{pipeline.name}': name at least one output (mlx_runtime.Output(shape, dtype)): "
                             "MLX arrays are immutable, results come back as new arrays")
        inputs, input_names = [], []
        for slot in sorted(buffers):
            if slot in output_slots:
                continue
            inputs.append(self._input(buffers[slot], params[slot], pipeline.name))
            input_names.append(input_name(slot))
        kernel = pipeline.mx_kernels.get(output_slots)
        if kernel is None:
            kernel = mx.fast.metal_kernel(name=pipeline.name, input_names=input_names,
                                          output_names=[output_name(s) for s in output_slots],
                                          source=mlx_body(pipeline.kernel, output_slots), header=pipeline.kernel.header)
            pipeline.mx_kernels[output_slots] = kernel
        return kernel(inputs=inputs, grid=tuple(g * t for g, t in zip(grid, threadgroup)),
                      threadgroup=tuple(threadgroup), output_shapes=[buffers[s].shape for s in output_slots],
                      output_dtypes=[buffers[s].dtype for s in output_slots], init_value=init_value)

    def _input(self, value, param: KernelParam, kernel_name: str):
        mx = self.mx
        dtype = getattr(mx, MLX_DTYPES[param.element_type])
        if isinstance(value, (bytes, bytearray)):
            return scalar_array(mx, bytes(value), dtype)
        if not param.is_pointer:
            if value.ndim == 0 and value.itemsize == dtype.size:  # a scalar run() made from the signature record
                return value
            raise MetalError(f"kernel '{kernel_name}': buffer {param.slot} ('{param.name}') is a scalar; pass its "
                             "bytes or a 0-d array")
        if value.itemsize != dtype.size:
            raise MetalError(f"kernel '{kernel_name}': '{param.name}' points to {param.element_type}, but the array "
                             f"has dtype {value.dtype}")
        flat = value.reshape(-1)
        if flat.size < MLX_MIN_DEVICE_ELEMENTS:  # keep it in the device address space our code expects
            flat = mx.concatenate([flat, mx.zeros((MLX_MIN_DEVICE_ELEMENTS - flat.size,), dtype=value.dtype)])
        return flat

    def synchronize(self) -> None:
        self.mx.synchronize()


_UINT_FORMATS = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}


def scalar_array(mx, data: bytes, dtype):
    """A 0-d array holding exactly ``data`` (a scalar argument's bytes) as ``dtype``."""
    if len(data) != dtype.size:
        raise MetalError(f"a scalar of {len(data)} bytes cannot be passed as {dtype}")
    bits = struct.unpack(_UINT_FORMATS[len(data)], data)[0]
    unsigned = {1: mx.uint8, 2: mx.uint16, 4: mx.uint32, 8: mx.uint64}[len(data)]
    return mx.array(bits, dtype=unsigned).view(dtype)


def run(fn, grid, *args, outputs, num_warps: int = 4, runtime: MLXRuntime | None = None, init_value=None,
        **constexprs):
    """Compile the ``@triton.jit`` function ``fn`` for the chip and run it with MLX arrays.

    ``args`` are the non-constexpr arguments in order: ``mx.array`` for pointers the kernel only reads,
    ``Output(shape, dtype)`` for those it writes (also listed by name in ``outputs``), Python ints and
    floats for scalars (i32 / fp32). Returns the output arrays in argument order."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    runtime = runtime or MLXRuntime()
    names = [n for n in fn.arg_names if n not in constexprs]
    if len(names) != len(args):
        raise TypeError(f"{fn.__name__} takes {len(names)} non-constexpr arguments ({', '.join(names)}), got {len(args)}")
    signature = {name: _triton_type(runtime, name, value, outputs) for name, value in zip(names, args)}
    signature.update({k: "constexpr" for k in constexprs})
    compiled = triton.compile(ASTSource(fn, signature, constexprs),
                              target=GPUTarget("metal", runtime.chip.id, 32), options={"num_warps": num_warps})
    name, record = compiled.metadata.name, abi.signature_of(compiled.metadata)
    check_runnable(name, record)
    buffers = bind_arguments([(n, signature[n], value) for n, value in zip(names, args)], runtime.buffer_argument,
                             packed_scalars=False)
    for slot, arg in enumerate(record):
        if arg.kind == abi.SCALAR:  # a 0-d array of the type the kernel declares, holding the packed bytes
            buffers[slot] = scalar_array(runtime.mx, buffers[slot], record_dtype(runtime.mx, arg.element))
    msl = compiled.asm["msl"]
    pipeline = runtime.compile(msl.decode() if isinstance(msl, bytes) else msl, name)
    grid = tuple(grid) + (1,) * (3 - len(tuple(grid)))
    return runtime.launch(pipeline, grid, (compiled.metadata.threadgroup_size, 1, 1), buffers, init_value=init_value)


def _triton_type(runtime: MLXRuntime, name: str, value, outputs) -> str:
    """The Triton signature type ``run`` compiles argument ``name`` with, from its value."""
    if isinstance(value, (Output, runtime.mx.array)):
        if isinstance(value, Output) != (name in outputs):
            raise MetalError(f"argument '{name}': pass Output(shape, dtype) for exactly the arguments listed in "
                             f"outputs={tuple(outputs)}")
        return "*" + triton_dtype_name(value.dtype)
    return "fp32" if isinstance(value, float) else "i1" if isinstance(value, bool) else "i32"


def check_runnable(kernel_name: str, record) -> None:
    """Refuse what ``run`` cannot launch, from the kernel's signature record."""
    if any(arg.kind == abi.DEVICE_PRINT for arg in record):
        raise MetalError(f"kernel '{kernel_name}' uses tl.device_print/tl.device_assert, whose diagnostics "
                         "buffer mlx_runtime.run cannot read back: launch it through Triton with "
                         "TRITON_METAL_DEVICE=metal (or sim)")
    if abi.packs_scalars(record):
        raise MetalError(f"kernel '{kernel_name}' has more arguments than Metal's {abi.BUFFER_SLOTS} buffer slots, "
                         "so its scalars are packed into one struct, which mlx_runtime.run does not build: pass "
                         "fewer arguments, or launch it through Triton")


def record_dtype(mx, element: str):
    """The MLX dtype of a signature-record element type (``i32`` -> ``mx.int32``)."""
    try:
        return getattr(mx, RECORD_DTYPES[element])
    except KeyError:
        raise MetalError(f"a kernel argument of type {element} has no MLX dtype") from None


_TRITON_DTYPES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "int32": "i32", "uint32": "u32",
                  "int16": "i16", "uint16": "u16", "int8": "i8", "uint8": "u8", "int64": "i64", "uint64": "u64",
                  "bool": "i1"}


def triton_dtype_name(dtype) -> str:
    key = str(dtype).removeprefix("mlx.core.")
    try:
        return _TRITON_DTYPES[key]
    except KeyError:
        raise MetalError(f"dtype {dtype} has no Triton pointer type on the Metal backend") from None


__all__ = ["MLXRuntime", "Output", "mlx_body", "run", "split_kernel"]
