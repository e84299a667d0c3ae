"""MLIR type strings of TTGIR, and their Metal Shading Language spellings."""
from __future__ import annotations

from dataclasses import dataclass

# Element type -> MSL scalar type. Integers are signless in MLIR; ops that care about the sign
# (divui, shrui, cmpi ult, uitofp, ...) cast to the unsigned spelling themselves.
MSL_SCALAR = {
    "i1": "bool", "i8": "char", "i16": "short", "i32": "int", "i64": "long",
    "f16": "half", "bf16": "bfloat", "f32": "float", "index": "long",
}
MSL_UNSIGNED = {"i1": "bool", "i8": "uchar", "i16": "ushort", "i32": "uint", "i64": "ulong", "index": "ulong"}
# fp8 is a storage type on Apple GPUs (no 8-bit float): its codes live in uchar and convert with the
# helpers of codegen/fp8_msl.py; emitter.FP8_STORAGE_OPS are the ops that may touch them.
FP8 = ("f8E4M3FN", "f8E5M2", "f8E4M3FNUZ", "f8E5M2FNUZ")
MSL_SCALAR.update({f8: "uchar" for f8 in FP8})
MSL_UNSIGNED.update({f8: "uchar" for f8 in FP8})
BITWIDTH = {"i1": 1, "i8": 8, "i16": 16, "i32": 32, "i64": 64, "f16": 16, "bf16": 16, "f32": 32, "f64": 64,
            "index": 64, **{f8: 8 for f8 in FP8}}
FLOATS = {"f16", "bf16", "f32", "f64"}
# MSL scalar type -> its size in bytes (pointers: 8).
SIZES = {"bool": 1, "char": 1, "uchar": 1, "short": 2, "ushort": 2, "half": 2, "bfloat": 2,
         "int": 4, "uint": 4, "float": 4, "long": 8, "ulong": 8}


@dataclass(frozen=True)
class TensorType:
    """A scalar (shape ``()``) or a ranked tensor; ``element`` is e.g. ``f32`` or ``!tt.ptr<f16>``."""
    shape: tuple
    element: str
    encoding: str = ""
    is_tensor: bool = False

    @property
    def is_pointer(self) -> bool:
        return self.element.startswith("!tt.ptr<")

    @property
    def pointee(self) -> str:
        inner = self.element[len("!tt.ptr<"):-1]
        return inner.split(",")[0].strip()

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def is_float(self) -> bool:
        return self.element in FLOATS


def _split_top(text: str, sep: str) -> list:
    """Split at ``sep`` outside <> and {} brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "<{[(":
            depth += 1
        elif ch in ">}])":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def parse_type(text: str) -> TensorType:
    text = text.strip()
    if not text.startswith("tensor<"):
        return TensorType((), text)
    body = text[len("tensor<"):-1]
    pieces = _split_top(body, ",")
    dims_and_elem, encoding = pieces[0].strip(), ",".join(pieces[1:]).strip()
    shape = []
    rest = dims_and_elem
    while True:
        head, _, tail = rest.partition("x")
        if head.isdigit() and tail:
            shape.append(int(head))
            rest = tail
        else:
            break
    return TensorType(tuple(shape), rest, encoding, True)


def msl_scalar(element: str, unsigned: bool = False, address_space: str = "device") -> str:
    if element.startswith("!tt.ptr<"):
        return f"{address_space} {msl_scalar(TensorType((), element).pointee)}*"
    table = MSL_UNSIGNED if unsigned else MSL_SCALAR
    if element not in table:
        raise KeyError(element)
    return table[element]


def msl_type_of_signature(ty: str) -> str:
    """Triton signature type (``*fp32``, ``i32``, ...) -> MSL type, for ``map_python_to_cpp_type``."""
    names = {"fp16": "half", "bf16": "bfloat", "fp32": "float", "i1": "bool", "i8": "char", "u8": "uchar",
             "i16": "short", "u16": "ushort", "i32": "int", "u32": "uint", "i64": "long", "u64": "ulong",
             **{name: "uchar" for name in ("fp8e4nv", "fp8e5", "fp8e4b8", "fp8e5b16", "fp8e4b15")}}
    if ty.startswith("*"):
        return f"device {msl_type_of_signature(ty[1:])}*"
    return names[ty]


def sizeof(ctype: str) -> int:
    """The size in bytes of a value of MSL type `ctype` (a scalar or a pointer)."""
    return 8 if ctype.endswith("*") else SIZES[ctype]


def threadgroup_pointer(ctype: str) -> str:
    """The type of a pointer to threadgroup memory holding `ctype` values. For a pointer element
    (`device float*`, when a tensor of pointers is staged) the address space must follow it: in
    `threadgroup device float**` both qualifiers would apply to `float`, which clang rejects."""
    return f"{ctype} threadgroup*" if ctype.endswith("*") else f"threadgroup {ctype}*"
