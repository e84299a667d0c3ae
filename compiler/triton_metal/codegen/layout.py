"""Linear layouts: which tensor element each (register, lane, simdgroup) of a thread holds.

For every distributed layout (blocked, slice, dot operand) the coordinate of an element is the
XOR of the bases selected by the set bits of its register, lane and warp (simdgroup) index.
Codegen therefore handles all layouts the same way: a compile-time part per register, and a
per-thread part computed once from ``lane`` and ``simd`` at the top of the kernel.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from triton_metal.codegen.msl_text import paren


@dataclass(frozen=True)
class LinearLayout:
    shape: tuple
    reg_bases: tuple
    lane_bases: tuple
    warp_bases: tuple

    @staticmethod
    def from_bases(shape, reg, lane, warp) -> LinearLayout:
        t = lambda bases: tuple(tuple(b) for b in bases)
        return LinearLayout(tuple(shape), t(reg), t(lane), t(warp))

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def num_regs(self) -> int:
        return 1 << len(self.reg_bases)

    @cached_property
    def reg_coords(self) -> tuple:
        """Compile-time coordinate part of each register."""
        return tuple(self._combine(self.reg_bases, r) for r in range(self.num_regs))

    def _combine(self, bases, index: int) -> tuple:
        coord = [0] * self.rank
        for bit, base in enumerate(bases):
            if index >> bit & 1:
                coord = [c ^ b for c, b in zip(coord, base)]
        return tuple(coord)

    def thread_coord(self, lane: int, warp: int) -> tuple:
        a, b = self._combine(self.lane_bases, lane), self._combine(self.warp_bases, warp)
        return tuple(x ^ y for x, y in zip(a, b))

    def same_threads(self, other: LinearLayout) -> bool:
        return self.lane_bases == other.lane_bases and self.warp_bases == other.warp_bases


def redundant_bits(bases) -> int:
    """Mask of the index bits whose basis is zero: they select copies of the same element."""
    return sum(1 << b for b, base in enumerate(bases) if not any(base))


def linear_index(shape, coord_exprs) -> str:
    """MSL expression of the row-major index in a tensor of `shape` of the element at `coord_exprs`
    (one MSL expression per dimension); dimensions of size 1 are left out."""
    terms, stride = [], 1
    for dim in reversed(range(len(shape))):
        if shape[dim] > 1:
            terms.append(coord_exprs[dim] if stride == 1 else f"{paren(coord_exprs[dim])} * {stride}")
        stride *= shape[dim]
    return " + ".join(reversed(terms)) or "0"


def bits_expr(var: str, bases: tuple, dim: int) -> str:
    """MSL expression: XOR of ``bases[i][dim]`` over the set bits ``i`` of ``var``.

    Runs of consecutive bits that map to consecutive powers of two become a single
    mask-and-shift, so blocked layouts read naturally (``(lane & 31) << 2``).
    """
    terms = []
    runs = []  # (first bit, length, first power)
    for bit, base in enumerate(bases):
        value = base[dim]
        if value == 0:
            continue
        power = value.bit_length() - 1
        if value == 1 << power and runs and runs[-1][0] + runs[-1][1] == bit and \
                runs[-1][2] + runs[-1][1] == power:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1, runs[-1][2])
        elif value == 1 << power:
            runs.append((bit, 1, power))
        else:
            terms.append(f"(({var} >> {bit} & 1) * {value})")
    for bit, length, power in runs:
        expr = var if bit == 0 else f"({var} >> {bit})"
        expr = f"({expr} & {(1 << length) - 1})"
        terms.append(f"({expr} << {power})" if power else expr)
    if not terms:
        return "0"
    return " ^ ".join(terms)
