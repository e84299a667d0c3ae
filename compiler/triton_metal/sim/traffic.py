"""Memory-traffic counters of the Metal simulator.

    from triton_metal.sim import count_traffic
    with count_traffic() as traffic:
        kernel[grid](...)
    stats = traffic.launches[0]          # one TrafficStats per dispatch made inside the block
    stats.global_bytes_read, stats.coalescing_efficiency, stats.sites[line].transactions

Inside the block kernels run from their instrumented build (a second library per kernel, cached
on disk like the first; outside the block nothing is counted and nothing slows down). Every
load or store of device memory is attributed to the MSL line of its statement (the generated
MSL has a ``// file.py:LINE: source`` comment on the line before each access).

Transactions: the k-th execution of an access site by each lane of a simdgroup forms one
simdgroup access (lanes are matched by how often each has executed that site in the
threadgroup). Its transactions are the distinct 32-byte segments its lanes touch
(``transactions_by_segment`` also has 64 and 128 bytes); its ideal is ceil(distinct bytes / 32).
``coalescing_efficiency`` = ideal / actual 32-byte transactions (1.0 = perfectly coalesced).
Atomics are counted in ``atomics`` (and in their site's ``accesses``), not in the byte totals.

Work counters: ``barriers`` (threadgroup_barrier calls completed, once per threadgroup; see
``barriers_per_program``), simdgroup_matrix operations once per simdgroup (``simdgroup_matrix_loads``,
``_stores``, ``_multiply_accumulates``), ``fmas`` (8*8*8 per simdgroup multiply-accumulate: the FMAs of
dots on simdgroup matrices; dots lowered to scalar FMAs are not counted), ``threadgroup_bytes_read_per_fma``
and ``threadgroup_memory_bytes``: the threadgroup memory one threadgroup allocated (its kernel-scope
threadgroup arrays as the simulator allocated them, plus [[threadgroup(i)]] lengths), the most over the
launch's threadgroups.
Counts depend only on the kernel, its launch and its inputs: they are deterministic.
"""
from __future__ import annotations

import contextlib
import ctypes
import threading
from dataclasses import dataclass, field

SEGMENT_BYTES = (32, 64, 128)
SIMDGROUP_MATRIX_FMAS = 8 * 8 * 8  # FMAs of one 8x8x8 simdgroup_multiply_accumulate
MAX_SITES = 4096
_KIND_BITS = {1: "load", 2: "store", 4: "atomic"}  # TM_ACCESS_*


class CSiteStats(ctypes.Structure):
    _fields_ = [("line", ctypes.c_uint32), ("kinds", ctypes.c_uint32), ("bytes_read", ctypes.c_uint64),
                ("bytes_written", ctypes.c_uint64), ("accesses", ctypes.c_uint64),
                ("transactions", ctypes.c_uint64 * 3), ("ideal_transactions", ctypes.c_uint64)]


class CStats(ctypes.Structure):
    _fields_ = [("global_bytes_read", ctypes.c_uint64), ("global_bytes_written", ctypes.c_uint64),
                ("transactions", ctypes.c_uint64 * 3), ("ideal_transactions", ctypes.c_uint64),
                ("threadgroup_bytes_read", ctypes.c_uint64), ("threadgroup_bytes_written", ctypes.c_uint64),
                ("atomics", ctypes.c_uint64), ("barriers", ctypes.c_uint64),
                ("simdgroup_matrix_loads", ctypes.c_uint64), ("simdgroup_matrix_stores", ctypes.c_uint64),
                ("simdgroup_matrix_multiply_accumulates", ctypes.c_uint64),
                ("threadgroup_memory_bytes", ctypes.c_uint64), ("n_sites", ctypes.c_uint32), ("max_sites", ctypes.c_uint32),
                ("sites", ctypes.POINTER(CSiteStats))]


def _efficiency(ideal: int, actual: int) -> float:
    return 1.0 if actual == 0 else ideal / actual


@dataclass(frozen=True)
class SiteStats:
    """Device-memory traffic of one MSL line. ``kind`` is 'load', 'store' or 'atomic' ('+'-joined
    when one line does several, e.g. ``a[i] += x``)."""

    kind: str
    bytes: int
    accesses: int
    transactions: int
    ideal_transactions: int
    bytes_read: int = 0
    bytes_written: int = 0
    transactions_by_segment: dict = field(default_factory=dict)

    @property
    def coalescing_efficiency(self) -> float:
        return _efficiency(self.ideal_transactions, self.transactions)


@dataclass(frozen=True)
class TrafficStats:
    """What one dispatch did to memory (simulator counts, not a GPU measurement)."""

    kernel: str
    global_bytes_read: int
    global_bytes_written: int
    global_transactions: int  # distinct 32-byte segments per simdgroup access, summed
    ideal_transactions: int
    threadgroup_bytes_read: int
    threadgroup_bytes_written: int
    atomics: int
    sites: dict  # MSL line -> SiteStats
    transactions_by_segment: dict = field(default_factory=dict)  # segment bytes -> transactions
    grid: tuple = ()
    threadgroup: tuple = ()
    barriers: int = 0  # threadgroup_barrier calls completed, summed over the threadgroups
    simdgroup_matrix_loads: int = 0  # per simdgroup, summed
    simdgroup_matrix_stores: int = 0
    simdgroup_matrix_multiply_accumulates: int = 0
    threadgroup_memory_bytes: int = 0  # the most one threadgroup allocated

    @property
    def coalescing_efficiency(self) -> float:
        return _efficiency(self.ideal_transactions, self.global_transactions)

    @property
    def programs(self) -> int:
        n = 1
        for d in self.grid:
            n *= d
        return n

    @property
    def barriers_per_program(self) -> float:
        return self.barriers / self.programs if self.programs else 0.0

    @property
    def fmas(self) -> int:
        """FMAs of simdgroup-matrix dots: an 8x8x8 multiply-accumulate is 512."""
        return SIMDGROUP_MATRIX_FMAS * self.simdgroup_matrix_multiply_accumulates

    @property
    def threadgroup_bytes_read_per_fma(self) -> float | None:
        """Threadgroup bytes read per simdgroup-matrix FMA (None without any): what a dot's operand
        staging costs against the work it feeds."""
        return self.threadgroup_bytes_read / self.fmas if self.fmas else None

    def as_dict(self) -> dict:
        return {
            "kernel": self.kernel, "grid": list(self.grid), "threadgroup": list(self.threadgroup),
            "global_bytes_read": self.global_bytes_read, "global_bytes_written": self.global_bytes_written,
            "global_transactions": self.global_transactions, "ideal_transactions": self.ideal_transactions,
            "coalescing_efficiency": self.coalescing_efficiency,
            "transactions_by_segment": {str(k): v for k, v in self.transactions_by_segment.items()},
            "threadgroup_bytes_read": self.threadgroup_bytes_read,
            "threadgroup_bytes_written": self.threadgroup_bytes_written, "atomics": self.atomics,
            "barriers": self.barriers, "barriers_per_program": self.barriers_per_program,
            "simdgroup_matrix_loads": self.simdgroup_matrix_loads,
            "simdgroup_matrix_stores": self.simdgroup_matrix_stores,
            "simdgroup_matrix_multiply_accumulates": self.simdgroup_matrix_multiply_accumulates,
            "fmas": self.fmas, "threadgroup_bytes_read_per_fma": self.threadgroup_bytes_read_per_fma,
            "threadgroup_memory_bytes": self.threadgroup_memory_bytes,
            "sites": {str(line): {"kind": s.kind, "bytes": s.bytes, "accesses": s.accesses,
                                  "transactions": s.transactions, "ideal_transactions": s.ideal_transactions,
                                  "coalescing_efficiency": s.coalescing_efficiency}
                      for line, s in sorted(self.sites.items())},
        }


def new_c_stats() -> tuple:
    """A zeroed tm_stats for one launch, and the site array it points to (keep both alive)."""
    sites = (CSiteStats * MAX_SITES)()
    stats = CStats()
    stats.max_sites = MAX_SITES
    stats.sites = ctypes.cast(sites, ctypes.POINTER(CSiteStats))
    return stats, sites


def from_c_stats(kernel: str, c: CStats, grid: tuple, threadgroup: tuple) -> TrafficStats:
    sites = {}
    for i in range(c.n_sites):
        s = c.sites[i]
        kind = "+".join(name for bit, name in _KIND_BITS.items() if s.kinds & bit)
        by_segment = dict(zip(SEGMENT_BYTES, s.transactions))
        sites[s.line] = SiteStats(kind, s.bytes_read + s.bytes_written, s.accesses, s.transactions[0],
                                  s.ideal_transactions, s.bytes_read, s.bytes_written, by_segment)
    return TrafficStats(kernel, c.global_bytes_read, c.global_bytes_written, c.transactions[0],
                        c.ideal_transactions, c.threadgroup_bytes_read, c.threadgroup_bytes_written, c.atomics,
                        dict(sorted(sites.items())), dict(zip(SEGMENT_BYTES, c.transactions)), tuple(grid),
                        tuple(threadgroup), c.barriers, c.simdgroup_matrix_loads, c.simdgroup_matrix_stores,
                        c.simdgroup_matrix_multiply_accumulates, c.threadgroup_memory_bytes)


class Traffic:
    """What ``count_traffic()`` yields: ``launches`` fills in as kernels are dispatched."""

    def __init__(self):
        self.launches: list = []

    def __repr__(self) -> str:
        return f"Traffic({len(self.launches)} launches)"


_active: list = []
_lock = threading.Lock()


def collecting() -> bool:
    return bool(_active)


def record(stats: TrafficStats) -> None:
    with _lock:
        for traffic in _active:
            traffic.launches.append(stats)


@contextlib.contextmanager
def count_traffic():
    """Count the memory traffic of every simulator dispatch in this process while the block runs."""
    traffic = Traffic()
    with _lock:
        _active.append(traffic)
    try:
        yield traffic
    finally:
        with _lock:
            _active.remove(traffic)
