"""The catalog of everything the Metal backend refuses: one entry per cause, with the reason and
what to do instead. The code generator raises from it (``refuse(key, ...)``), the op table tests
the exact messages, and ``docs/compatibility.md`` is generated from it, so the three never drift.
"""
from __future__ import annotations

from dataclasses import dataclass

from triton_metal.errors import UnsupportedOperationError


@dataclass(frozen=True)
class Refusal:
    op: str  # what the user wrote, as the message names it; may hold {placeholders}
    reason: str
    alternative: str

    def message(self, **fields) -> str:
        """The first line of the error, without the source location."""
        return str(UnsupportedOperationError(self.op.format(**fields), "", self.reason.format(**fields),
                                             self.alternative.format(**fields)))


CATALOG: dict[str, Refusal] = {
    "fp64": Refusal(
        "fp64 arithmetic", "Apple GPUs have no 64-bit floating point",
        "use float32 tensors (x.to(torch.float32))"),
    "fp64_argument": Refusal(
        "fp64 argument '{name}'", "Apple GPUs have no 64-bit floating point",
        "pass it as float32: {name}.to(torch.float32)"),
    "fp8": Refusal(
        "{kind} on {dtype} values", "Apple GPUs have no 8-bit floating point arithmetic: the Metal backend keeps "
        "fp8 as a storage type (loads, stores, bitcasts, conversions, tl.dot operands)",
        "convert to float16 or float32 first (x.to(tl.float32)) and compute there"),
    "inline_asm": Refusal(
        "tt.elementwise_inline_asm", "inline assembly is target-specific (PTX/AMDGPU) and cannot run on Apple GPUs",
        "write the computation with triton.language operations"),
    "extern_elementwise": Refusal(
        "extern function {symbol}", "it is not a function of the Metal backend's libdevice (calls into CUDA/HIP "
        "device libraries cannot run on Apple GPUs)",
        "call it as libdevice.<name> after `from triton.language.extra import libdevice`, or use tl.math"),
    "libdevice_rounding_mode": Refusal(
        "libdevice.{name}", "Apple GPUs round float arithmetic and conversions to nearest even only: the "
        "directed rounding modes (_rz, _rd, _ru) have no Metal equivalent", "use the _rn variant"),
    "libdevice_missing": Refusal(
        "libdevice.{name}", "the Metal backend's libdevice does not implement the Bessel functions, lgamma "
        "and tgamma", "compute it with triton.language operations (a series or rational approximation)"),
    "dense_constant": Refusal(
        "non-splat tensor constant", "constant tensors whose elements differ are not lowered yet",
        "build the values with tl.arange and arithmetic"),
    "atomic_dtype": Refusal(
        "atomic {kind} on {dtype}", "Metal's only 64-bit atomics are max and min of unsigned 64-bit integers "
        "whose old value is not used (atomic_max_explicit / atomic_min_explicit on atomic_ulong, MSL 6.15.4.6): "
        "no 64-bit add, exchange, compare-and-swap, and/or/xor, load or store, and the Metal backend does not "
        "emulate them (8- and 16-bit atomics run as compare-and-swap on their 32-bit word)",
        "accumulate in int32/uint32/float32"),
    "atomic_64bit_signed": Refusal(
        "atomic {kind} on int64", "Metal's 64-bit max/min compare unsigned values (atomic_ulong; there is no "
        "atomic_long), which orders negative int64 values after positive ones",
        "use uint64 values (e.g. add 2**63 to map int64 order onto uint64 order) or int32"),
    "atomic_64bit_result": Refusal(
        "the old value of atomic {kind} on uint64", "Metal's 64-bit atomic_max_explicit / atomic_min_explicit "
        "return nothing (MSL 6.15.4.6)",
        "do not use the result (call tl.atomic_max / tl.atomic_min as a statement), or use 32-bit values"),
    "atomic_64bit_family": Refusal(
        "atomic {kind} on uint64 for {arch}", "Metal's 64-bit atomics (max/min on atomic_ulong) need GPU family "
        "Apple8 (M2) or later, and {arch} is of family {family}",
        "run on an M2 or later Mac (simulator: TRITON_METAL_SIM_CHIP=apple-m2 or newer), or use 32-bit values"),
    "atomic_float_bitwise": Refusal(
        "atomic {kind} on {dtype}", "Metal has no floating-point bitwise atomics", "bitcast to int32 first"),
    "atomic_order_needs_msl32": Refusal(
        "atomic with sem='{sem}' at scope 'gpu'", "Metal {version} (macOS {macos}) orders memory across "
        "threadgroups in no way: its atomics are relaxed only and it has no device-scope fence or coherent "
        "buffers (both Metal 3.2, macOS 15)",
        "pass sem='relaxed' if nothing depends on the atomic ordering other memory accesses (sums, counts), "
        "or run on macOS 15 or later"),
    "atomic_scope_sys": Refusal(
        "atomic with scope='sys'", "no Metal memory scope reaches the CPU or another device during a dispatch "
        "(the widest is thread_scope_device)", "use scope='gpu' (the default)"),
    "branch_cycle": Refusal(
        "cf.br / cf.cond_br forming a cycle", "MSL has no goto: only acyclic branch graphs (the early returns "
        "Triton emits) are rebuilt as nested ifs", "write loops with `for` / `while` (scf ops)"),
}


def refusal(key: str) -> Refusal:
    return CATALOG[key]


def refuse(key: str, location: str = "", **fields) -> UnsupportedOperationError:
    """The error to raise for catalog entry `key` (the caller raises it, so tracebacks point there)."""
    entry = CATALOG[key]
    return UnsupportedOperationError(entry.op.format(**fields), location, entry.reason.format(**fields),
                                     entry.alternative.format(**fields))
