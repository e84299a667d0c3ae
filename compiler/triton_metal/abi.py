"""Metal's facts and the kernel ABI: the one place they are written down.

The bottom floor of the package: it imports nothing of ours, and the compiler (codegen), the
simulator (sim), the runtimes and the front-end check all read it. What lives here:

* **Limits** every Apple GPU family shares (Metal Feature Set Tables): threads per threadgroup,
  threadgroup memory, SIMD width, argument table sizes.
* **Kernel builtin attributes**: every ``[[attribute]]`` a Metal kernel parameter may carry that
  is not a resource binding, with the MSL type we declare it with. The simulator's trampoline
  provides exactly these; MLX's ``metal_kernel`` declares them by name (``MLX_KERNEL_ATTRIBUTES``).
* **The kernel signature record** the compiler writes into a kernel's metadata (``arg_kinds``): the
  kind of each MSL parameter, in slot order. Launchers and runtimes read it instead of the MSL text.
* **The device-print buffer**: the hidden last buffer of a kernel that calls ``tl.device_print`` /
  ``tl.device_assert`` (written by codegen/ops/lower_debug_ops.py, read by device_print.py).
"""
from __future__ import annotations

import platform
from dataclasses import dataclass

# --- Limits (Metal Feature Set Tables; the same on Apple7 ... Apple10) ---------------------------

MAX_THREADS_PER_THREADGROUP = 1024
MAX_THREADGROUP_MEMORY = 32 * 1024  # bytes
SIMD_WIDTH = 32
BUFFER_SLOTS = 31  # buffer argument table entries: [[buffer(0)]] ... [[buffer(30)]]
THREADGROUP_SLOTS = 31  # threadgroup memory argument table entries: [[threadgroup(0)]] ... [[threadgroup(30)]]
ARGUMENT_TABLE_SLOTS = {"buffer": BUFFER_SLOTS, "threadgroup": THREADGROUP_SLOTS}  # by binding attribute

# --- 64-bit atomics -------------------------------------------------------------------------------
# Metal's only 64-bit atomics (MSL specification 3.1/3.2, 6.15.4.6 "Atomic Modify Functions (64 Bits)",
# available from MSL 2.4): `void atomic_max_explicit(device atomic_ulong* object, ulong operand,
# memory_order_relaxed)` and `atomic_min_explicit` alike -- unsigned (ulong, no atomic_long), device
# memory only, no value returned; no 64-bit add, exchange, compare-exchange, and/or/xor, load or store.
# GPU families (Metal Feature Set Tables, footnote on 64-bit atomics): Apple9 and later, and Apple8 on
# devices that are also Mac2 -- every Apple8 Mac (M2); not Apple7 (M1). Our MSL versions (3.0+) all have them.
ATOMIC_ULONG_MIN_MAX_FAMILIES = ("apple8", "apple9", "apple10")

# --- Kernel builtin attributes -------------------------------------------------------------------

_SCALAR = ("uint", "ushort")
_VECTOR = ("uint", "uint2", "uint3", "ushort", "ushort2", "ushort3")
_GRID = ("uint", "uint2", "uint3")

# name -> the parameter types the MSL specification accepts for it (MSL 3.1, 5.2.3.6 "Kernel Function
# Input Attributes", Table 5.8). The front-end check (metal_check/attributes.py) holds kernels to it.
KERNEL_BUILTIN_TYPES = {
    "dispatch_quadgroups_per_threadgroup": _SCALAR,
    "dispatch_simdgroups_per_threadgroup": _SCALAR,
    "dispatch_threads_per_threadgroup": _VECTOR,
    "grid_origin": _GRID,
    "grid_size": _GRID,
    "quadgroup_index_in_threadgroup": _SCALAR,
    "quadgroups_per_threadgroup": _SCALAR,
    "simdgroup_index_in_threadgroup": _SCALAR,
    "simdgroups_per_threadgroup": _SCALAR,
    "thread_execution_width": _SCALAR,
    "thread_index_in_quadgroup": _SCALAR,
    "thread_index_in_simdgroup": _SCALAR,
    "thread_index_in_threadgroup": _SCALAR,
    "thread_position_in_grid": _VECTOR,
    "thread_position_in_threadgroup": _VECTOR,
    "threadgroup_position_in_grid": _VECTOR,
    "threadgroups_per_grid": _VECTOR,
    "threads_per_grid": _VECTOR,
    "threads_per_simdgroup": _SCALAR,
    "threads_per_threadgroup": _VECTOR,
}

# name -> the MSL type a kernel declares it with: the widest it accepts (uint3 for the vector-valued
# ones, uint for the others). MLX declares them with these same types (MLX_KERNEL_ATTRIBUTES).
KERNEL_BUILTINS = {name: "uint3" if "uint3" in types else "uint" for name, types in KERNEL_BUILTIN_TYPES.items()}

# The attributes mx.fast.metal_kernel declares, in its order and with its types: one parameter
# `type name [[name]]` for each whose name occurs in the kernel body *as a substring* (comments
# included). MLX's fact, copied from the `metal_attributes` table of `metal_kernel` in
# mlx/backend/common/metal_kernel.cpp (ml-explore/mlx, MLX 0.32; mlx/fast.cpp in earlier releases).
MLX_KERNEL_ATTRIBUTES = (
    ("dispatch_quadgroups_per_threadgroup", "uint"), ("dispatch_simdgroups_per_threadgroup", "uint"),
    ("dispatch_threads_per_threadgroup", "uint3"), ("grid_origin", "uint3"), ("grid_size", "uint3"),
    ("quadgroup_index_in_threadgroup", "uint"), ("quadgroups_per_threadgroup", "uint"),
    ("simdgroup_index_in_threadgroup", "uint"), ("simdgroups_per_threadgroup", "uint"),
    ("thread_execution_width", "uint"), ("thread_index_in_quadgroup", "uint"),
    ("thread_index_in_simdgroup", "uint"), ("thread_index_in_threadgroup", "uint"),
    ("thread_position_in_grid", "uint3"), ("thread_position_in_threadgroup", "uint3"),
    ("threadgroup_position_in_grid", "uint3"), ("threadgroups_per_grid", "uint3"),
    ("threads_per_grid", "uint3"), ("threads_per_simdgroup", "uint"), ("threads_per_threadgroup", "uint3"),
)

# The names the MLX runtime gives its inputs and outputs (mlx_in<slot>, mlx_out<slot>). MLX also adds
# `<input>_shape`, `<input>_strides` and `<input>_ndim` parameters when the body contains those
# strings: no name the code generator emits may contain these prefixes (codegen/msl_words.py).
MLX_INPUT_PREFIX = "mlx_in"
MLX_OUTPUT_PREFIX = "mlx_out"

# The builtins the code generator gives every kernel, and the type it declares each with: ushort
# where the value is small, so index arithmetic stays in 16-bit registers.
GENERATED_BUILTINS = (
    ("threadgroup_position_in_grid", "uint3"),
    ("threadgroups_per_grid", "uint3"),
    ("thread_index_in_simdgroup", "ushort"),
    ("simdgroup_index_in_threadgroup", "ushort"),
)

# --- The kernel signature record (metadata["arg_kinds"]) ------------------------------------------

BUFFER = "buffer"  # a pointer argument: its own [[buffer(i)]] slot, `device T*`
SCALAR = "scalar"  # a scalar argument: its own slot, `constant T&`
PACKED_SCALAR = "packed scalar"  # a scalar inside the one struct of scalars (kernels with > BUFFER_SLOTS - 1 args)
DEVICE_PRINT = "device print"  # the hidden device-print buffer, after every argument
ARG_KINDS = (BUFFER, SCALAR, PACKED_SCALAR, DEVICE_PRINT)


@dataclass(frozen=True)
class KernelArgument:
    """One entry of a kernel's signature record: its MSL name, kind and Triton element type."""
    name: str
    kind: str
    element: str

    def __post_init__(self):
        if self.kind not in ARG_KINDS:
            raise ValueError(f"argument kind {self.kind!r} is not one of {ARG_KINDS}")

    def to_json(self) -> list:
        return [self.name, self.kind, self.element]

    @classmethod
    def from_json(cls, entry) -> KernelArgument:
        return cls(*entry)


def signature_of(metadata) -> list[KernelArgument]:
    """A compiled kernel's signature record, from its metadata (``metadata.arg_kinds``)."""
    return [KernelArgument.from_json(entry) for entry in metadata.arg_kinds]


def packs_scalars(record: list[KernelArgument]) -> bool:
    """Whether the kernel takes its scalars in one struct (more arguments than buffer slots)."""
    return any(arg.kind == PACKED_SCALAR for arg in record)


# --- The device-print buffer (32-bit words) -------------------------------------------------------

# header: [0] records attempted (atomic; beyond the capacity they are counted, not written),
# [1] capacity in records (written by the host), [2] elements that failed an assertion,
# [3] 1 + the site of one of them. Records: [0] site | operand << 16, [1..3] program id x, y, z,
# [4] sequence, [5] row-major element index, [6..7] value bits, low word first.
PRINT_HEADER_WORDS = 8
PRINT_RECORD_WORDS = 8
PRINT_HEADER_COUNT, PRINT_HEADER_CAPACITY, PRINT_HEADER_FAILURES, PRINT_HEADER_FAILED_SITE = 0, 1, 2, 3


# --- Metal Shading Language versions --------------------------------------------------------------

# (first macOS, MSL version) the Metal runtime compiles with, oldest first: MTLLanguageVersion3_0 on
# macOS 13, 3_1 on 14, 3_2 on 15. Codegen targets the version; the Metal runtime passes it to Apple.
MSL_VERSION_BY_MACOS = (((13, 0), "3.0"), ((14, 0), "3.1"), ((15, 0), "3.2"))
NEWEST_MSL_VERSION = MSL_VERSION_BY_MACOS[-1][1]


def macos_version() -> tuple:
    """(major, minor) of this host's macOS; (0, 0) elsewhere."""
    release = platform.mac_ver()[0]
    return tuple(int(p) for p in release.split(".")[:2]) if release else (0, 0)


def msl_version_for_macos(macos: tuple) -> str:
    """The MSL version Metal compiles with on ``macos`` (the oldest we target below macOS 13)."""
    chosen = MSL_VERSION_BY_MACOS[0][1]
    for minimum, version in MSL_VERSION_BY_MACOS:
        if macos >= minimum:
            chosen = version
    return chosen
