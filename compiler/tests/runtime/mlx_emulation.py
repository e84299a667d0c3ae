"""What ``mx.fast.metal_kernel`` compiles for a body, emulated from MLX's source (read, not run):
``metal_kernel`` and ``write_signature`` in mlx/backend/metal/custom_kernel.cpp (ml-explore/mlx).

MLX writes ``[[kernel]] void <name>(`` then, per input, ``const <device|constant> T* name`` (``T&``
for 0-d arrays; ``constant`` below 8 elements) followed by ``name_shape`` / ``name_strides`` /
``name_ndim`` parameters when the body contains those strings; then ``device T* name`` per output;
then one parameter per Metal attribute whose name occurs anywhere in the body (``source.find``), in
the order of its table. The header goes before, unscanned.
"""
from __future__ import annotations

import numpy as np
from triton_metal.runtime.mlx_runtime import MLX_ATTRIBUTE_TYPES, input_name, mlx_body, output_name
from triton_metal.sim import build_kernel

_SHAPE_INFOS = (("_shape", "const constant int*"), ("_strides", "const constant int64_t*"),
                ("_ndim", "const constant int&"))


def mlx_signature(name, inputs, outputs, source):
    """The kernel MLX compiles for ``source``: inputs (name, MSL type, 0-d?, size), outputs (name, MSL type)."""
    params = []

    def add(text):
        params.append(text.replace("#", str(len(params))))
    for in_name, ctype, scalar, size in inputs:
        space = "constant" if size < 8 else "device"
        add(f"  const {space} {ctype}{'&' if scalar else '*'} {in_name} [[buffer(#)]]")
        for suffix, decl in () if scalar else _SHAPE_INFOS:
            if in_name + suffix in source:
                add(f"  {decl} {in_name}{suffix} [[buffer(#)]]")
    for out_name, ctype in outputs:
        add(f"  device {ctype}* {out_name} [[buffer(#)]]")
    params += [f"  {ty} {attr} [[{attr}]]" for attr, ty in MLX_ATTRIBUTE_TYPES.items() if attr in source]
    return f"[[kernel]] void {name}(\n" + ",\n".join(params) + ") {\n" + source + "\n}\n"


def parameter_names(kernel_source: str) -> list:
    """The names of the parameters of a signature mlx_signature wrote."""
    head = kernel_source[kernel_source.index("(") + 1:kernel_source.index(") {")]
    return [p.split("[[")[0].split()[-1].lstrip("*&") for p in head.split(",\n")]


def wrapped_kernel(kernel, values: dict, output_slots: tuple, name: str = "custom_kernel_wrapped"):
    """(MSL source MLX would compile, {buffer index: value}) for our SplitKernel ``kernel`` launched with
    ``values`` ({slot: numpy array, or bytes for scalars}); the arrays of ``output_slots`` are outputs."""
    params = {p.slot: p for p in kernel.params if p.attribute == "buffer"}
    body = mlx_body(kernel, output_slots)
    inputs, outputs, order = [], [], []
    for slot in sorted(params):
        if slot in output_slots:
            continue
        value, scalar = values[slot], isinstance(values[slot], bytes)
        inputs.append((input_name(slot), params[slot].element_type, scalar, 1 if scalar else value.size))
        order.append(slot)
    for slot in output_slots:
        outputs.append((output_name(slot), params[slot].element_type))
        order.append(slot)
    source = kernel.header + mlx_signature(name, inputs, outputs, body)
    by_index = {index: values[slot] if isinstance(values[slot], bytes) else values[slot].ctypes.data
                for index, slot in enumerate(order)}
    return source, by_index


# numpy dtype -> the MSL type our emulated signature declares (MLX spells some differently, e.g.
# int32_t or float16_t; the types are the same).
_MSL_TYPES = {"float32": "float", "float16": "half", "int32": "int", "uint32": "uint", "int16": "short",
              "int8": "char", "uint8": "uchar", "bool": "bool", "int64": "long"}


class EmulatedMetalKernel:
    """What ``mx.fast.metal_kernel(...)`` returns, emulated: called with MLX arrays, it builds the source
    MLX would compile (``mlx_signature``), runs it on the Metal simulator and returns the outputs as new
    arrays. MLX's grid counts threads: the simulator is given grid / threadgroup threadgroups."""

    def __init__(self, mx, name, input_names, output_names, source, header=""):
        self.mx, self.name, self.input_names, self.output_names = mx, name, input_names, output_names
        self.source, self.header = source, header
        self.calls = []

    def __call__(self, inputs, grid, threadgroup, output_shapes, output_dtypes, init_value=None):
        arrays = [np.array(a) for a in inputs]
        outputs = [np.full(shape, init_value or 0, dtype=np.array(self.mx.zeros((1,), dtype=dtype)).dtype)
                   for shape, dtype in zip(output_shapes, output_dtypes)]
        self.calls.append([(a.dtype.name, a.ndim) for a in arrays])
        signature = mlx_signature(
            f"custom_kernel_{self.name}",
            [(n, _MSL_TYPES[a.dtype.name], a.ndim == 0, a.size) for n, a in zip(self.input_names, arrays)],
            [(n, _MSL_TYPES[o.dtype.name]) for n, o in zip(self.output_names, outputs)], self.source)
        kernel = build_kernel(self.header + signature, f"custom_kernel_{self.name}")
        buffers = {i: a.tobytes() if a.ndim == 0 else a.ctypes.data for i, a in enumerate(arrays + outputs)}
        kernel.dispatch(tuple(g // t for g, t in zip(grid, threadgroup)), tuple(threadgroup), buffers)
        return [self.mx.array(o) for o in outputs]


class MlxWithMetal:
    """``mlx.core`` (mlx[cpu] on Linux) as if it had its Metal back end on an Apple M2: MLXRuntime can be
    created, and ``fast.metal_kernel`` returns EmulatedMetalKernel (``kernels`` keeps each one made)."""

    def __init__(self, mx):
        self._mx = mx
        self.kernels = []

        class metal:
            @staticmethod
            def is_available():
                return True

            @staticmethod
            def device_info():
                return {"device_name": "Apple M2"}

        def metal_kernel(**kwargs):
            self.kernels.append(EmulatedMetalKernel(mx, **kwargs))
            return self.kernels[-1]

        self.metal, self.device_info = metal, metal.device_info
        self.fast = type("fast", (), {"metal_kernel": staticmethod(metal_kernel)})

    def __getattr__(self, name):
        return getattr(self._mx, name)
