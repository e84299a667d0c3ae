"""The fixed names of the code generator's own variables and parameters, one table for all lowerings.

Each is spelled by msl_text.own (`tm_<word>`), the namespace no user's name can be spelled in, so a
lowering may declare them in any scope that holds user's names. They are reused by every lowering:
a lowering declaring one must not enclose code that declares the same one (each is a loop index or a
scratch local of one lowering, or a parameter). Names a lowering needs once per kernel (a scratch
pointer, an accumulator array, a helper function) are allocated instead: KernelEmitter.fresh_own.
"""
from __future__ import annotations

from triton_metal import abi
from triton_metal.codegen.msl_text import own

# Kernel parameters (BUILTINS) and kernel-scope state.
PROGRAM_ID = own("program_id")      # [[threadgroup_position_in_grid]]
NUM_PROGRAMS = own("num_programs")  # [[threadgroups_per_grid]]
LANE = own("lane")                  # [[thread_index_in_simdgroup]]
SIMD = own("simd")                  # [[simdgroup_index_in_threadgroup]]
ARENA = own("arena")                # the threadgroup arena (bytes): buffers and scratch (codegen.threadgroup_arena)
ARENA_STORAGE = own("arena_storage")  # its storage, a float4 array (16-byte aligned)
SCALARS = own("scalars")            # the struct of scalar arguments, when they are packed

# Loop indices and loop-local scratch.
REG = own("i")         # the register of a per-register loop (KernelEmitter.emit_loop)
GROUP = own("g")       # reductions: the group of registers folded together
ELEMENT = own("j")     # reductions and scans: the element along the axis
PART = own("k")        # reductions across simdgroups (the partial folded in); histograms (the element counted)
COMPONENT = own("c")   # vectorised global accesses: the register of a vector group (codegen/vector_access)
LANE_BIT = own("m")    # reduction butterflies: the lane bit exchanged
LINE = own("line")     # scans: the line along the axis this thread scans
BASE = own("base")     # scans: the first element of that line
AT = own("at")         # scans, conversions in rounds: an element's index in threadgroup memory
ROUND = own("round")   # conversions in rounds: the round
COUNT = own("count")   # histograms: the count of one bin
BIN = own("bin")       # histograms: the bin this register counts
POLL = own("poll")     # tl.atomic_poll: the poll
POLLS = own("polls")   # tl.atomic_poll: the polls the timeout allows

# Parameters of the functions the code generator writes (numbered: tm_acc0, tm_x0, ...).
ACC = own("acc")  # combine functions: the accumulators, folded into in place
X = own("x")      # combine and map functions: the operands
R = own("r")      # map functions: the results

# The builtin parameters every kernel receives (abi.GENERATED_BUILTINS: attribute and type), by the
# names the generated code reads them with, as the kernel's signature declares them.
BUILTIN_NAMES = {
    "threadgroup_position_in_grid": PROGRAM_ID,
    "threadgroups_per_grid": NUM_PROGRAMS,
    "thread_index_in_simdgroup": LANE,
    "simdgroup_index_in_threadgroup": SIMD,
}
BUILTINS = tuple(f"{ctype} {BUILTIN_NAMES[attribute]} [[{attribute}]]" for attribute, ctype in abi.GENERATED_BUILTINS)
