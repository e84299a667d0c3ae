"""Metal's facts and the kernel ABI: the one place they are written down.

The bottom floor of the package: it imports nothing of ours, and the compiler (codegen), the
simulator (sim), the runtimes and the front-end check all read it. What lives here:

* **Limits** every Apple GPU family shares (Metal Feature Set Tables): threads per threadgroup,
  threadgroup memory, SIMD width, argument table sizes.
* **Kernel builtin attributes**: every ``[[attribute]]`` a Metal kernel parameter may carry that
  is not a resource binding, with the MSL type we declare it with. The simulator's trampoline
  provides exactly these; MLX's ``metal_kernel`` declares them by name (see ``MLX_ATTRIBUTE_ORDER``).
* **The kernel signature record** the compiler writes into a kernel's metadata (``arg_kinds``): the
  kind of each MSL parameter, in slot order. Launchers and runtimes read it instead of the MSL text.
* **The device-print buffer**: the hidden last buffer of a kernel that calls ``tl.device_print`` /
  ``tl.device_assert`` (written by codegen/lower_debug_ops.py, read by device_print.py).
"""
from __future__ import annotations

from dataclasses import dataclass

# --- Limits (Metal Feature Set Tables; the same on Apple7 ... Apple10) ---------------------------

MAX_THREADS_PER_THREADGROUP = 1024
MAX_THREADGROUP_MEMORY = 32 * 1024  # bytes
SIMD_WIDTH = 32
BUFFER_SLOTS = 31  # buffer argument table entries: [[buffer(0)]] ... [[buffer(30)]]
THREADGROUP_SLOTS = 31  # threadgroup memory argument table entries: [[threadgroup(0)]] ... [[threadgroup(30)]]

# --- Kernel builtin attributes -------------------------------------------------------------------

# name -> the MSL type a kernel declares it with (MSL specification, "Attributes for kernel function
# input arguments"). Vector-valued ones are uint3; MLX declares them with these same types.
KERNEL_BUILTINS = {
    "thread_position_in_grid": "uint3",
    "thread_position_in_threadgroup": "uint3",
    "thread_index_in_threadgroup": "uint",
    "threadgroup_position_in_grid": "uint3",
    "threadgroups_per_grid": "uint3",
    "threads_per_threadgroup": "uint3",
    "threads_per_grid": "uint3",
    "thread_index_in_simdgroup": "uint",
    "simdgroup_index_in_threadgroup": "uint",
    "simdgroups_per_threadgroup": "uint",
    "threads_per_simdgroup": "uint",
    "thread_execution_width": "uint",
    "dispatch_threads_per_threadgroup": "uint3",
    "dispatch_simdgroups_per_threadgroup": "uint",
    "grid_size": "uint3",
    "grid_origin": "uint3",
    "thread_index_in_quadgroup": "uint",
    "quadgroup_index_in_threadgroup": "uint",
    "quadgroups_per_threadgroup": "uint",
}

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


def has_packed_scalars(metadata) -> bool:
    return any(arg.kind == PACKED_SCALAR for arg in signature_of(metadata))


# --- The device-print buffer (32-bit words) -------------------------------------------------------

# header: [0] records attempted (atomic; beyond the capacity they are counted, not written),
# [1] capacity in records (written by the host), [2] elements that failed an assertion,
# [3] 1 + the site of one of them. Records: [0] site | operand << 16, [1..3] program id x, y, z,
# [4] sequence, [5] row-major element index, [6..7] value bits, low word first.
PRINT_HEADER_WORDS = 8
PRINT_RECORD_WORDS = 8
PRINT_HEADER_COUNT, PRINT_HEADER_CAPACITY, PRINT_HEADER_FAILURES, PRINT_HEADER_FAILED_SITE = 0, 1, 2, 3
