"""tl.device_print and tl.device_assert on the host: the device-print buffer of a launch.

A kernel that prints or asserts takes one hidden buffer after its own arguments (layout:
``triton_metal.abi``; device side: ``triton_metal.codegen.ops.lower_debug_ops``; its sites, which say
what each record is: the kernel's metadata, ``device_print_sites``). The launcher binds it (``DevicePrintBuffer.bind``),
and after the launch waits for the kernel, reads the buffer back, prints the records to stdout in
Triton's CUDA format and raises ``DeviceAssertionError`` when an assertion failed
(``DevicePrintBuffer.report``). Every runtime whose ``Capabilities.device_print`` is set shares all of it.

Output, as CUDA's ``printf`` lowering writes it (one line per element)::

    pid (<x>, <y>, <z>) idx (<i>, <j>, ...)<prefix>[(operand <n>) ]<value>

with each index padded to the digits of its dimension, ``%f`` for floats, C's ``%a`` for floats
with ``hex=True``, ``0x`` and the type's width in hex digits for integers with ``hex=True``.
Unlike CUDA, every element is printed exactly once (copies held by several threads are skipped,
scalars are printed by one thread per program) and the lines are sorted: by program id, then
execution order within the program, then operand, then element index, so the output is the same
on every run.
"""
from __future__ import annotations

import math
import os
import struct
import sys

import numpy as np

from triton_metal import abi
from triton_metal.errors import MetalError

RECORDS_ENV = "TRITON_METAL_DIAGNOSTIC_RECORDS"
DEFAULT_RECORDS = 1 << 16  # 2 MiB of records per kernel that prints or asserts
MAX_RECORDS = 1 << 22  # 128 MiB; also keeps record offsets within the kernel's 32-bit arithmetic
ASSERT_EXAMPLES = 8  # failing elements named per assertion in the error message


class DeviceAssertionError(MetalError, AssertionError):
    """A tl.device_assert failed in a kernel compiled with debug=True (raised after the launch)."""


def record_capacity() -> int:
    text = os.environ.get(RECORDS_ENV, "").strip()
    if not text:
        return DEFAULT_RECORDS
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_RECORDS:
        raise MetalError(f"{RECORDS_ENV}={text!r}: give the number of device_print/device_assert records a launch "
                         f"may keep, an integer from 1 to {MAX_RECORDS} (default {DEFAULT_RECORDS})")
    return value


# ---- formatting ---------------------------------------------------------------------------------

BITS = {"i1": 1, "i8": 8, "i16": 16, "i32": 32, "i64": 64, "f16": 16, "bf16": 16, "f32": 32}
FLOAT_FROM_BITS = {
    "f32": lambda b: struct.unpack("<f", struct.pack("<I", b))[0],
    "f16": lambda b: struct.unpack("<e", struct.pack("<H", b))[0],
    "bf16": lambda b: struct.unpack("<f", struct.pack("<I", b << 16))[0],
}


def c_hex_float(value: float) -> str:
    """C's ``printf("%a", value)`` (glibc): ``0x1.8p+0``, ``0x0p+0``, ``-inf``, ``nan``."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    mantissa, _, exponent = value.hex().partition("p")
    return f"{mantissa.rstrip('0').rstrip('.')}p{exponent}"


def format_value(bits: int, dtype: str, signed: bool, hex: bool) -> str:
    if dtype == "ptr":  # C's %p (glibc), whatever `hex` says, as on CUDA
        return f"0x{bits:x}" if bits else "(nil)"
    if dtype in FLOAT_FROM_BITS:
        value = FLOAT_FROM_BITS[dtype](bits & ((1 << BITS[dtype]) - 1))
        return c_hex_float(value) if hex else f"{value:f}"
    width = BITS[dtype]
    unsigned = bits & ((1 << width) - 1)
    if hex:
        return f"0x{unsigned:0{max(width // 4, 1)}x}"
    if signed and unsigned >> (width - 1):
        return str(unsigned - (1 << width))
    return str(unsigned)


def index_widths(shape) -> list:
    """Digits CUDA pads each index to: ceil(log10(dim)), 0 for dims of 0 or 1."""
    return [len(str(d - 1)) if d > 1 else 0 for d in shape]


def format_index(index: int, shape) -> str:
    coords = []
    for d in reversed(shape):
        coords.append(index % d if d else 0)
        index = index // d if d else 0
    return ", ".join(f"{c:{w}d}" if w else str(c) for c, w in zip(reversed(coords), index_widths(shape)))


def format_pid(pid) -> str:
    return f"pid ({pid[0]}, {pid[1]}, {pid[2]})"


def format_print(site: dict, operand: int, pid, index: int, bits: int) -> str:
    if not site["operands"]:
        return f"{format_pid(pid)}{site['prefix']}"
    spec = site["operands"][operand]
    text = f"{format_pid(pid)} idx ({format_index(index, spec['shape'])}){site['prefix']}"
    if len(site["operands"]) > 1:
        text += f"(operand {operand}) "
    return text + format_value(bits, spec["dtype"], spec["signed"], site["hex"])


# ---- the buffer ---------------------------------------------------------------------------------

def decode(records: np.ndarray) -> list:
    """Records as (pid, sequence, operand, index, site, bits) tuples, in output order."""
    rows = records.reshape(-1, abi.PRINT_RECORD_WORDS).astype(np.uint64)
    out = [((int(r[1]), int(r[2]), int(r[3])), int(r[4]), int(r[0]) >> 16, int(r[5]), int(r[0]) & 0xFFFF,
            int(r[6]) | int(r[7]) << 32) for r in rows]
    out.sort(key=lambda r: r[:4])
    return out


def _dropped_line(kernel: str, attempted: int, capacity: int) -> str:
    suggestion = min(MAX_RECORDS, 1 << (attempted - 1).bit_length())
    return (f"[triton-metal] kernel '{kernel}': {attempted - capacity} of {attempted} device_print/device_assert "
            f"records did not fit in the diagnostics buffer ({capacity} records) and were dropped; set "
            f"{RECORDS_ENV}={suggestion} to keep them")


def _assert_error(kernel: str, sites: list, failed: list, failures: int, failed_site: int) -> str:
    by_site: dict = {}
    for pid, _, _, index, site, _ in failed:
        by_site.setdefault(site, []).append((pid, index))
    if not by_site:  # every failure record was dropped: the header still names one failing site
        by_site[failed_site - 1] = []
    lines = []
    for site, elements in sorted(by_site.items()):
        s = sites[site]
        lines.append(f"device-side assertion failed in kernel '{kernel}' at {s['location']}: {s['message']}")
        for pid, index in elements[:ASSERT_EXAMPLES]:
            lines.append(f"  {format_pid(pid)} idx ({format_index(index, s['shape'])})")
        if elements:
            programs = len({pid for pid, _ in elements})
            more = f" (first {ASSERT_EXAMPLES} shown)" if len(elements) > ASSERT_EXAMPLES else ""
            lines.append(f"  {len(elements)} failing element(s) in {programs} program(s){more}")
    if failures > len(failed):
        lines.append(f"{failures - len(failed)} more failing element(s) were not recorded: the diagnostics buffer "
                     f"was full (set {RECORDS_ENV} to a larger number)")
    lines.append("The kernel ran to completion (Metal cannot stop a kernel at a failed assertion): its outputs "
                 "may hold values computed past the failed check.")
    return "\n".join(lines)


def report(kernel: str, sites: list, header, records: np.ndarray, out=None) -> None:
    """Prints the records of one launch; raises DeviceAssertionError when an assertion failed."""
    out = out or sys.stdout
    attempted, capacity = int(header[abi.PRINT_HEADER_COUNT]), int(header[abi.PRINT_HEADER_CAPACITY])
    decoded = decode(records)
    lines = [format_print(sites[site], operand, pid, index, bits)
             for pid, _, operand, index, site, bits in decoded if sites[site]["kind"] == "print"]
    if attempted > capacity:
        lines.append(_dropped_line(kernel, attempted, capacity))
    if lines:
        out.write("\n".join(lines) + "\n")
        out.flush()
    failures = int(header[abi.PRINT_HEADER_FAILURES])
    if failures:
        failed = [r for r in decoded if sites[r[4]]["kind"] == "assert"]
        failed_site = int(header[abi.PRINT_HEADER_FAILED_SITE])
        raise DeviceAssertionError(_assert_error(kernel, sites, failed, failures, failed_site))


def device_print_sites(metadata) -> list:
    """The device-print sites of a compiled kernel (empty when it neither prints nor asserts)."""
    return list(metadata.device_print_sites or [])


def _is_numpy(value) -> bool:
    return type(value).__module__ == "numpy"


class DevicePrintBuffer:
    """The diagnostics buffer of one compiled kernel, bound at every launch and read back after it.

    One buffer per kernel, reused: each launch is read back (and so waited for) before the next.
    It is a numpy array when the launch passes numpy arrays (the Metal runtime cannot order numpy
    and torch buffers in one launch), else a torch tensor on the runtime's device."""

    def __init__(self, kernel_name: str, sites: list, runtime):
        self.kernel_name = kernel_name
        self.sites = [dict(s) for s in sites]
        self.runtime = runtime
        self._buffers: dict = {}
        self._bound = None
        self._capacity = 0

    def bind(self, buffers: dict):
        """The buffer to pass as the kernel's last argument, its header reset for a new launch."""
        if not self.runtime.capabilities.device_print:
            raise MetalError(f"kernel '{self.kernel_name}' uses tl.device_print/tl.device_assert, which need the "
                             f"sim or metal runtime (the {self.runtime.name} runtime cannot return the diagnostics "
                             "buffer)")
        capacity = record_capacity()
        kind = "numpy" if any(_is_numpy(v) for v in buffers.values()) else "torch"
        key = (kind, capacity)
        if key not in self._buffers:
            self._buffers = {key: self._allocate(kind, abi.PRINT_HEADER_WORDS + capacity * abi.PRINT_RECORD_WORDS)}
        buffer = self._buffers[key]
        header = np.zeros(abi.PRINT_HEADER_WORDS, dtype=np.uint32)
        header[abi.PRINT_HEADER_CAPACITY] = capacity
        if kind == "numpy":
            buffer[:abi.PRINT_HEADER_WORDS] = header
        else:
            import torch
            buffer[:abi.PRINT_HEADER_WORDS] = torch.from_numpy(header.view(np.int32)).to(buffer.device)
        self._bound, self._capacity = buffer, capacity
        return buffer

    def _allocate(self, kind: str, words: int):
        if kind == "numpy":
            if self.runtime.capabilities.shared_memory_arrays:  # the GPU uses them without copies
                return self.runtime.empty(words, "uint32")
            return np.zeros(words, dtype=np.uint32)
        import torch
        return torch.zeros(words, dtype=torch.int32, device=self.runtime.capabilities.torch_device)

    def _read(self, start: int, stop: int) -> np.ndarray:
        part = self._bound[start:stop]
        if not _is_numpy(part):
            part = part.cpu().numpy()
        return np.ascontiguousarray(part).view(np.uint32)

    def report(self) -> None:
        """After the launch: print its records, raise DeviceAssertionError for failed assertions."""
        self.runtime.synchronize()
        header = self._read(0, abi.PRINT_HEADER_WORDS)
        kept = min(int(header[abi.PRINT_HEADER_COUNT]), self._capacity)
        records = self._read(abi.PRINT_HEADER_WORDS, abi.PRINT_HEADER_WORDS + kept * abi.PRINT_RECORD_WORDS)
        report(self.kernel_name, self.sites, header, records)
