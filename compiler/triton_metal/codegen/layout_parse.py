"""Linear layouts of blocked and slice encodings, computed from the encoding text.

Gluon's builder gives the same answer for every layout, but calling it leaves objects alive
in Triton's bindings that nanobind reports as leaks at interpreter exit. Blocked and slice
layouts (all that elementwise kernels and reductions produce) are simple enough to compute
here; other encodings still go through the builder. A unit test checks that both agree.
"""
from __future__ import annotations

import re

from triton_metal.codegen.layout import LinearLayout

_LIST = r"\[([0-9, ]*)\]"


def _ints(text: str) -> list:
    return [int(x) for x in text.split(",") if x.strip()]


def _log2(n: int) -> int:
    return n.bit_length() - 1


def blocked_layout(size_per_thread, threads_per_warp, warps_per_cta, order, shape) -> LinearLayout:
    rank = len(shape)

    def unit(d, v):
        return tuple(v if k == d else 0 for k in range(rank))

    levels = []  # bases of registers, lanes, warps: the tile of each level is the product of the sizes so far
    tile = [1] * rank
    for sizes in (size_per_thread, threads_per_warp, warps_per_cta):
        bases = []
        for d in order:
            bases += [unit(d, tile[d] << k) for k in range(_log2(sizes[d]))]
        for d in range(rank):
            tile[d] *= sizes[d]
        levels.append(bases)
    regs, lanes, warps = levels
    fits = lambda b: all(v < s for v, s in zip(b, shape))
    # Past the tensor's extent: registers disappear, lanes and warps hold copies (zero bases).
    regs = [b for b in regs if fits(b)]
    lanes = [b if fits(b) else unit(0, 0) for b in lanes]
    warps = [b if fits(b) else unit(0, 0) for b in warps]
    # A tensor larger than the tile repeats it in more registers.
    for d in order:
        size = tile[d]
        while size < shape[d]:
            regs.append(unit(d, size))
            size *= 2
    return LinearLayout.from_bases(shape, regs, lanes, warps)


def slice_layout(dim: int, parent: LinearLayout) -> LinearLayout:
    drop = lambda b: tuple(v for k, v in enumerate(b) if k != dim)
    regs = [drop(b) for b in parent.reg_bases if any(drop(b))]
    shape = drop(parent.shape)
    return LinearLayout.from_bases(shape, regs, [drop(b) for b in parent.lane_bases],
                                   [drop(b) for b in parent.warp_bases])


_BLOCKED = re.compile(r"^#ttg\.blocked<\{sizePerThread = " + _LIST + r", threadsPerWarp = " + _LIST +
                      r", warpsPerCTA = " + _LIST + r", order = " + _LIST + r"\}>$")
_SLICE = re.compile(r"^#ttg\.slice<\{dim = (\d+), parent = (.*)\}>$")


def layout_from_encoding(encoding: str, shape) -> LinearLayout | None:
    """The linear layout of a blocked or slice encoding, or None for any other encoding."""
    shape = tuple(shape)
    m = _BLOCKED.match(encoding)
    if m:
        spt, tpw, wpc, order = (_ints(g) for g in m.groups())
        return blocked_layout(spt, tpw, wpc, order, shape)
    m = _SLICE.match(encoding)
    if m:
        dim = int(m.group(1))
        parent = layout_from_encoding(m.group(2), shape[:dim] + (1,) + shape[dim:])
        return None if parent is None else slice_layout(dim, parent)
    return None
