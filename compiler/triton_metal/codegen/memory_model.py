"""What Triton's ``sem`` and ``scope`` of an atomic become in the Metal Shading Language version we target.

Triton (``triton/language/core.py``): ``sem`` is relaxed, acquire, release or acq_rel (the default of
atomic_rmw/cas; atomic_poll and atomic_load default to acquire, atomic_store to release); ``scope`` is
cta (the program), gpu (the default: every program of the launch) or sys (the CPU and other devices too).

Apple's MSL specification:
- Atomic functions take ``memory_order_relaxed`` only: "For atomic operations other than
  atomic_thread_fence, memory_order_relaxed is the only enumeration value" (6.15.4.2 in the 3.2
  edition, 6.16.1 in the 4.1 one), and
  "The only supported value for order is memory_order_relaxed" (fetch-and-modify, 6.15.4.5). Metal 4.1
  adds ordered overloads; we target 3.0 to 3.2.
- ``threadgroup_barrier(mem_flags::mem_device)`` "ensures the GPU correctly orders the memory operations
  to device memory for threads in the threadgroup" (6.9.1, Table 6.13): one threadgroup, not the device.
- Metal 3.2 adds ``atomic_thread_fence(mem_flags, memory_order, thread_scope = thread_scope_device)``,
  whose orders are relaxed and ``memory_order_seq_cst`` ("In Metal 3.2 and later, you can use
  memory_order_seq_cst on atomic_thread_fence", 6.15.4.2), and device coherence: "By default, memory in
  the device address space has threadgroup coherence. Metal 3.2 and later support the coherent(device)
  qualifiers for buffers [...] memory operations are visible across threads on the device if you
  properly synchronize them" (4.8 Memory Coherency). Apple's note on it: threads of different
  threadgroups "must still be properly synchronized using device atomics and the new
  atomic_thread_fence with thread_scope_device". No public ``thread_scope`` reaches the CPU.

So on Metal 3.2 an acquire/release at gpu scope is a relaxed atomic between sequentially consistent
device-scope fences, with every buffer of the kernel ``coherent(device)``; before 3.2 it cannot be
expressed and is refused. cta scope needs no fence: the threadgroup barriers around every atomic
(lower_atomics) order the program's memory accesses for its own threads in every version.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

from triton_metal import abi
from triton_metal.codegen.ir_reader import kernel_ops

SEMS = ("relaxed", "acquire", "release", "acq_rel")
SCOPES = ("cta", "gpu", "sys")
# Triton's ops with a `sem, scope` attribute pair, in their TTIR text (`tt.atomic_rmw fadd, acq_rel, gpu, ...`).
ORDERED_OPS = ("tt.atomic_rmw", "tt.atomic_cas", "tt.atomic_poll", "tt.atomic_load", "tt.atomic_store")
_SEM_SCOPE = re.compile(r"tt\.atomic_\w+\s+(?:[a-z]+,\s*)?(relaxed|acquire|release|acq_rel),\s*"
                        r"(cta|gpu|sys)\b")  # after atomic_rmw's kind

# Every thread runs it (after the barrier before the atomic, for release; after the barrier after it,
# for acquire): each thread's own accesses are ordered at device scope, not only the thread that
# performs the atomic. seq_cst is the only ordered memory_order a Metal 3.2 fence takes.
DEVICE_FENCE = "atomic_thread_fence(mem_flags::mem_device, memory_order_seq_cst, thread_scope_device);"
COHERENT_DEVICE = "coherent(device) device"  # 4.8: the address space of every buffer of such a kernel

# sem -> (fence before the atomic, fence after it)
SEM_FENCES = {"relaxed": (False, False), "acquire": (False, True), "release": (True, False),
              "acq_rel": (True, True)}


@dataclass(frozen=True)
class MslVersion:
    name: str              # "3.2"
    macos: str             # the macOS that brings it
    device_fences: bool    # atomic_thread_fence(..., thread_scope_device) and coherent(device) buffers


# The versions our runtimes compile with (abi.MSL_VERSION_BY_MACOS), oldest first.
MSL_VERSIONS = {v.name: v for v in (MslVersion("3.0", "13", False), MslVersion("3.1", "14", False),
                                    MslVersion("3.2", "15", True))}
NEWEST = abi.NEWEST_MSL_VERSION
VERSION_ENV = "TRITON_METAL_MSL_VERSION"


def target_msl_version() -> str:
    """The MSL version generated code may use: ``TRITON_METAL_MSL_VERSION`` if set; on macOS, the version
    the Metal runtime compiles with there; elsewhere (the simulator) the newest we target."""
    chosen = os.environ.get(VERSION_ENV, "").strip()
    if chosen:
        if chosen not in MSL_VERSIONS:
            raise ValueError(f"{VERSION_ENV}={chosen!r}: use one of {', '.join(MSL_VERSIONS)}")
        return chosen
    macos = abi.macos_version()
    if macos == (0, 0):  # not macOS: the simulator, which models the newest version
        return NEWEST
    return abi.msl_version_for_macos(macos)


def msl_version(options) -> MslVersion:
    """The version of the compile options (``MetalOptions.msl_version``; target_msl_version() when unset)."""
    name = getattr(options, "msl_version", "") or target_msl_version()
    if name not in MSL_VERSIONS:
        raise ValueError(f"msl_version={name!r}: the Metal backend targets MSL {', '.join(MSL_VERSIONS)}")
    return MSL_VERSIONS[name]


def sem_and_scope(op_text: str) -> tuple:
    m = _SEM_SCOPE.search(op_text)
    if m is None:
        raise ValueError(f"no memory semantics and scope in {op_text!r}")
    return m.group(1), m.group(2)


@dataclass(frozen=True)
class Ordering:
    """What an atomic of some (sem, scope) adds to the relaxed atomic and its threadgroup barriers."""
    release: str = ""  # statement every thread runs before the atomic (after the barrier before it)
    acquire: str = ""  # statement every thread runs after the atomic (after the barrier after it)


def ordering(em, op, sem: str, scope: str) -> Ordering:
    """The fences for `sem`/`scope` at the MSL version of em.options, or the catalog's refusal."""
    version = msl_version(em.options)
    if scope == "sys":
        raise em.refuse("atomic_scope_sys", op, sem=sem)
    if scope == "cta" or sem == "relaxed" or not em.observes_other_programs:
        return Ordering()
    if not version.device_fences:
        raise em.refuse("atomic_order_needs_msl32", op, sem=sem, version=version.name, macos=version.macos)
    before, after = SEM_FENCES[sem]
    return Ordering(DEVICE_FENCE if before else "", DEVICE_FENCE if after else "")


# Ops through which a program can see what another program of the same launch wrote: an atomic whose
# result is read, atomic loads and polls, and volatile loads (spin-waits on a flag).
def _reads_other_programs(op, used: set) -> bool:
    if op.name in ("tt.atomic_poll", "tt.atomic_load"):
        return True
    if op.name in ("tt.atomic_rmw", "tt.atomic_cas"):
        return any(r.id in used for r in op.results)
    return op.name == "tt.load" and bool(op.bool_attr("isVolatile"))


def observes_other_programs(func, used: set) -> bool:
    """True if a program of `func` can observe another program's writes during the launch.

    Ordering is only observable that way: when every atomic is a blind update (`tl.atomic_add(p, x)`
    with its result unused: sums, counts, histograms) and nothing polls, no program can tell in which
    order other programs' accesses happened, and the launch's end makes everything visible. Such
    kernels keep relaxed atomics and plain buffers in every MSL version, whatever their `sem`.
    """
    return any(_reads_other_programs(op, used) for op in kernel_ops(func))


def needs_device_coherence(func, options, used: set) -> bool:
    """True if an atomic of `func` orders memory at gpu scope: the kernel's buffers must then be
    coherent(device), else its plain loads and stores stay threadgroup coherent (4.8) and the fences
    would order nothing another program can see."""
    if not msl_version(options).device_fences or not observes_other_programs(func, used):
        return False
    for op in kernel_ops(func):
        if op.name in ORDERED_OPS:
            sem, scope = sem_and_scope(op.text)
            if sem != "relaxed" and scope == "gpu":
                return True
    return False


def device_space(func, options, used: set) -> str:
    """How the kernel spells the address space of its device pointers."""
    return COHERENT_DEVICE if needs_device_coherence(func, options, used) else "device"


def meaning(sem: str, scope: str, version: MslVersion) -> str:
    """One cell of docs/compatibility.md: what an atomic of (sem, scope) is on Metal `version`."""
    if scope == "sys":
        return "refused ([atomic_scope_sys](#refused-atomic_scope_sys))"
    if scope == "cta":
        return "relaxed atomic; the threadgroup barriers around it order the program"
    if sem == "relaxed":
        return "relaxed atomic (atomic; orders no other access)"
    if not version.device_fences:
        return "refused ([atomic_order_needs_msl32](#refused-atomic_order_needs_msl32))"
    before, after = SEM_FENCES[sem]
    fences = " and ".join(w for w, f in (("before", before), ("after", after)) if f)
    return f"relaxed atomic, device fence {fences}, `coherent(device)` buffers"
