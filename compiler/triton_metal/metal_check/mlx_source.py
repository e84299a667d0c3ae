"""The complete MSL source ``mx.fast.metal_kernel`` builds from one of our kernels: emulated from
MLX's own code (ml-explore/mlx, mlx/backend/common/metal_kernel.cpp in MLX 0.32, mlx/fast.cpp before:
``metal_kernel`` and ``write_signature``), so the front-end check sees what Apple's compiler gets under MLX.

MLX takes only a body and a header (our runtime splits the kernel: runtime/mlx_runtime.py) and
writes the signature itself:

    <header>[[kernel]] void custom_kernel_<name>_<dtypes>(
      const device T* in [[buffer(0)]],          // an input array (``constant`` if < 8 elements)
      const constant T& s [[buffer(1)]],         // a 0-d input
      device T* out [[buffer(2)]],               // each output
      uint3 thread_position_in_grid [[thread_position_in_grid]], ...) {
    <body>
    }

- one attribute parameter for **every Metal attribute name found in the body by substring**
  (``source.find(attr)``), comments and longer identifiers included: a body that mentions
  ``grid_size`` anywhere gets a ``uint3 grid_size`` parameter, and a variable of that name in the
  body's outermost block is then a redefinition;
- ``<input>_shape`` / ``_strides`` / ``_ndim`` parameters when those names appear in the body;
- MLX's own preamble (``metal::utils()``: its utils.h, bf16.h, ...) is prepended at compile
  time. It is not reproduced; only the two type names the signature uses are declared
  (``MLX_PREAMBLE``). So a clash of our helpers with names MLX's preamble defines is not seen.
"""
from __future__ import annotations

from triton_metal.abi import MLX_KERNEL_ATTRIBUTES
from triton_metal.errors import MetalError
from triton_metal.runtime import mlx_runtime

MLX_MAX_CONSTANT_ARRAY_SIZE = 8  # inputs with fewer elements are `constant` (mlx_runtime pads to 8)

# MLX's get_type_string (mlx/backend/common/compiled.cpp), by MLX dtype name.
MLX_TYPE_STRINGS = {
    "float32": "float", "float16": "float16_t", "bfloat16": "bfloat16_t", "bool_": "bool",
    "int8": "int8_t", "int16": "int16_t", "int32": "int32_t", "int64": "int64_t",
    "uint8": "uint8_t", "uint16": "uint16_t", "uint32": "uint32_t", "uint64": "uint64_t",
}

# The part of MLX's preamble the generated signature relies on (its utils.h / bf16.h).
MLX_PREAMBLE = ("#include <metal_stdlib>\n"
                "typedef half float16_t;\n"
                "#if __METAL_VERSION__ >= 310\ntypedef bfloat bfloat16_t;\n#endif\n")


def type_string(msl_type: str) -> str:
    if msl_type not in mlx_runtime.MLX_DTYPES:  # e.g. the packed scalar struct, which mlx_runtime refuses
        raise MetalError(f"mx.fast.metal_kernel has no array type for '{msl_type}'")
    return MLX_TYPE_STRINGS[mlx_runtime.MLX_DTYPES[msl_type]]


def default_output_slots(kernel) -> tuple:
    """Which pointer arguments a launch names as outputs: every pointer but the first when there
    are several (so both the input and the output bindings of mlx_body are checked)."""
    pointers = [p.slot for p in kernel.params if p.is_pointer]
    return tuple(pointers[1:] if len(pointers) > 1 else pointers)


def mlx_attributes(body: str) -> list:
    """MLX's attribute parameters for ``body``: one per attribute whose name occurs in it (abi's table)."""
    return [f"  {dtype} {attr} [[{attr}]]" for attr, dtype in MLX_KERNEL_ATTRIBUTES if attr in body]


def write_signature(name: str, header: str, body: str, inputs: list, outputs: list) -> str:
    """MLX's write_signature. ``inputs``: (name, type string, ndim, size); ``outputs``: (name, type
    string). Separators and all, as MLX writes them."""
    attributes = mlx_attributes(body)
    text = header + "[[kernel]] void " + name + "(\n"
    index = 0
    for input_name, dtype, ndim, size in inputs:
        location = "constant" if size < MLX_MAX_CONSTANT_ARRAY_SIZE else "device"
        ref = "&" if ndim == 0 else "*"
        text += f"  const {location} {dtype}{ref} {input_name} [[buffer({index})]],\n"
        index += 1
        if ndim > 0:
            for suffix, ctype in (("_shape", "const constant int*"), ("_strides", "const constant int64_t*"),
                                  ("_ndim", "const constant int&")):
                if input_name + suffix in body:
                    text += f"  {ctype} {input_name}{suffix} [[buffer({index})]],\n"
                    index += 1
    for k, (output_name, dtype) in enumerate(outputs):
        text += f"  device {dtype}* {output_name} [[buffer({index})]]"
        text += ",\n" if index < len(inputs) + len(outputs) - 1 or attributes else ") {\n"
        index += 1
    for k, attr in enumerate(attributes):
        text += attr + (",\n" if k < len(attributes) - 1 else ") {\n")
    return text + body + "\n}\n"


def kernel_name(name: str, inputs: list, outputs: list) -> str:
    """MLX's kernel name: custom_kernel_<name>, then each input's and output's type string."""
    text = "custom_kernel_" + name
    for _, dtype, ndim, size in inputs:
        text += "_" + dtype + ("s" if ndim == 0 else "c" if size < MLX_MAX_CONSTANT_ARRAY_SIZE else "")
    for _, dtype in outputs:
        text += "_" + dtype
    return text


def mlx_kernel_source(msl: str, name: str, output_slots=None) -> str:
    """The source ``mx.fast.metal_kernel`` compiles for our kernel ``name`` (without MLX's preamble
    beyond ``MLX_PREAMBLE``). Raises MetalError when the MLX runtime cannot wrap the kernel."""
    kernel = mlx_runtime.split_kernel(msl, name)
    if output_slots is None:
        output_slots = default_output_slots(kernel)
    body = mlx_runtime.mlx_body(kernel, output_slots)
    inputs, outputs = [], []
    for p in sorted((p for p in kernel.params if p.attribute == "buffer"), key=lambda p: p.slot):
        dtype = type_string(p.element_type)
        if p.slot in output_slots:
            outputs.append((mlx_runtime.output_name(p.slot), dtype))
        else:  # a pointer: a flat array of >= 8 elements; a scalar: a 0-d array
            ndim, size = (1, MLX_MAX_CONSTANT_ARRAY_SIZE) if p.is_pointer else (0, 1)
            inputs.append((mlx_runtime.input_name(p.slot), dtype, ndim, size))
    header = MLX_PREAMBLE + kernel.header
    return write_signature(kernel_name(name, inputs, outputs), header, body, inputs, outputs)
