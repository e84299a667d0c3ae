"""tt.scan (tl.cumsum, tl.cumprod, tl.associative_scan, forward or reverse) on any axis and layout.

The block goes through threadgroup memory (every thread writes its elements, a barrier), is scanned
in place there, and every thread reads its elements back: correct for any layout. The scan itself
runs across simd lanes, one element per lane (a `ScanPlan`):

1. across lanes: ``simd_prefix_inclusive_sum`` / ``simd_prefix_inclusive_product`` when the combine
   function is a single add or multiply of a type Metal's prefix functions take (`PREFIX_SCANS`),
   else a Hillis-Steele tree of ``simd_shuffle_up`` (log2(32) = 5 steps; any combine function,
   tuples included). A line shorter than 32 shares its simdgroup with other lines: the tree runs
   in segments of the line's length (log2(n) steps), which a prefix function cannot do;
2. across simdgroups, when a line is longer than 32 elements: up to num_warps simdgroups share a
   line, each writes its total to threadgroup memory (one barrier per chunk; the totals are
   double-buffered so the next chunk need not wait for the reads of this one), lane k of every
   simdgroup reads total k and the lanes scan the totals (``simd_prefix_exclusive_sum`` /
   ``_product``, or the same shuffle tree), and each simdgroup combines the totals before its own
   into its values;
3. across chunks, when a line is longer than 32 * num_warps: the chunks are scanned one after
   the other and the total of the previous ones is carried into the next (forward or reverse).

Lanes combine values in tree order, and the combine function is applied with the earlier element
on the left, so non-commutative combines see their operands in order; associativity is all the
reordering assumes (Triton's contract for associative_scan).

Rounding of 16-bit floats: a half or bfloat cumsum / cumprod (one operand, a combine that is a
single addf / mulf) is carried in float through all three steps and rounded once per output. The
float partials are formed in tree order (at most 5 + log2(num_warps) + chunks float roundings on the
way to an output, against n - 1 for a serial float sum), so each output is the exact prefix rounded
at float precision and then once to half/bfloat: within a unit in the last place of the 16-bit type
of the float result. Other 16-bit combine functions (max, tuples) run in the type as Triton wrote
them; a GPU's own tree rounds the same way.

Integers: an add or multiply of a 32-bit or narrower integer is scanned in uint (Metal's integer
prefix functions wrap, and so does uint arithmetic in the carries; signed overflow is undefined in
MSL) and converted back, which keeps the low bits Triton's wrapping arithmetic gives. 64-bit values,
bool, bfloat and char have no simd function overload: the tree exchanges them as a supported type
of the same bits (`SHUFFLE_CARRIERS`).
"""
from __future__ import annotations

from dataclasses import dataclass

from triton_metal.codegen.emitter import lowers
from triton_metal.codegen.layout import linear_index
from triton_metal.codegen.ops.lower_reduce import emit_combine_function, single_combine_op
from triton_metal.codegen.own_names import LANE, SIMD
from triton_metal.codegen.types import sizeof, threadgroup_pointer

SIMD_WIDTH = 32

# (combine op, element type) -> (prefix function, the type it runs in). Half and bfloat run in
# float (module docstring); integers in uint, where wrapping is defined.
_FLOAT_SCAN = {"float": "float", "half": "float", "bfloat": "float"}
_INT_SCAN = {"int": "uint", "short": "uint", "char": "uint"}
PREFIX_SCANS = {
    **{("arith.addf", t): ("simd_prefix_inclusive_sum", c) for t, c in _FLOAT_SCAN.items()},
    **{("arith.mulf", t): ("simd_prefix_inclusive_product", c) for t, c in _FLOAT_SCAN.items()},
    **{("arith.addi", t): ("simd_prefix_inclusive_sum", c) for t, c in _INT_SCAN.items()},
    **{("arith.muli", t): ("simd_prefix_inclusive_product", c) for t, c in _INT_SCAN.items()},
}
PREFIX_OPERATOR = {"simd_prefix_inclusive_sum": "+", "simd_prefix_inclusive_product": "*"}
# Across simdgroups: the exclusive scan of the simdgroups' totals, its identity, and the reduction.
PREFIX_TOTALS = {"simd_prefix_inclusive_sum": ("simd_prefix_exclusive_sum", "0", "simd_sum"),
                 "simd_prefix_inclusive_product": ("simd_prefix_exclusive_product", "1", "simd_product")}

# Element types the simd_* functions do not take (MSL 3.1: short, ushort, int, uint, half, float
# and their vectors only) -> (the type exchanged instead, to it, back). Bit-exact both ways.
SHUFFLE_CARRIERS = {
    "bfloat": ("ushort", "as_type<ushort>({})", "as_type<bfloat>({})"),
    "bool": ("ushort", "ushort({})", "bool({})"),
    "char": ("short", "short({})", "char({})"),
    "uchar": ("ushort", "ushort({})", "uchar({})"),
    "long": ("uint2", "as_type<uint2>({})", "as_type<long>({})"),
    "ulong": ("uint2", "as_type<uint2>({})", "as_type<ulong>({})"),
}


@dataclass(frozen=True)
class ScanPlan:
    """How the threads of a threadgroup share the lines of a scan: a *segment* of `width` lane slots
    scans one line, `width` elements (a chunk) at a time; `parallel` lines are scanned at once."""
    n: int       # elements per line
    lines: int   # lines in the block
    warps: int   # simdgroups in the threadgroup

    @property
    def width(self) -> int:  # lane slots per segment: the line, or as many whole simdgroups as it fills
        return min(self.n, SIMD_WIDTH * self.warps)

    @property
    def simdgroups(self) -> int:  # simdgroups sharing a line (0: a line is part of one simdgroup)
        return self.width // SIMD_WIDTH

    @property
    def parallel(self) -> int:
        return SIMD_WIDTH * self.warps // self.width

    @property
    def chunks(self) -> int:
        return self.n // self.width

    @property
    def line_rounds(self) -> int:
        return -(-self.lines // self.parallel)

    @property
    def tree_steps(self) -> list:  # shuffle distances of the tree within a simdgroup
        return [1 << s for s in range(min(self.width, SIMD_WIDTH).bit_length() - 1)]


@dataclass
class Operand:
    """One scanned value: its threadgroup buffer, MSL type, and the type it is carried in."""
    buffer: str
    ctype: str
    carried: str
    value: str = ""
    total: str = ""
    carry: str = ""


def prefix_scan(op, ctype: str):
    """(prefix function, carried type) when `op` is a cumsum / cumprod a simd prefix function computes."""
    if len(op.operands) != 1:
        return None
    return PREFIX_SCANS.get((single_combine_op(op), ctype))


class _Combiner:
    """Emits ``a = a (+) b`` for lists of names, with the user's combine function or an operator."""

    def __init__(self, em, function: str | None, operator: str | None):
        self.em, self.function, self.operator = em, function, operator

    def fold(self, accs, xs) -> None:
        if self.operator:
            for a, x in zip(accs, xs):
                self.em.emit(f"{a} = {a} {self.operator} {x};")
        else:
            self.em.emit(f"{self.function}({', '.join(list(accs) + list(xs))});")

    def prepend(self, prefix_exprs, operands) -> None:
        """value = prefix (+) value, for each operand (the prefix holds the earlier elements)."""
        if self.operator:
            for p, o in zip(prefix_exprs, operands):
                self.em.emit(f"{o.value} = {p} {self.operator} {o.value};")
            return
        temps = []
        for p, o in zip(prefix_exprs, operands):
            temps.append(self.em.fresh_own("earlier"))
            self.em.emit(f"{o.carried} {temps[-1]} = {p};")
        self.fold(temps, [o.value for o in operands])
        for t, o in zip(temps, operands):
            self.em.emit(f"{o.value} = {t};")


def _exchange(fn: str, o: Operand, *args, value: str = "") -> str:
    """`fn(value, args...)` (a simd shuffle) on `o`'s value (or `value`, of o's carried type), through
    its shuffle carrier if the type needs one."""
    value = value or o.value
    extra = "".join(f", {a}" for a in args)
    carrier = SHUFFLE_CARRIERS.get(o.carried)
    if carrier is None:
        return f"{fn}({value}{extra})"
    _, to, back = carrier
    return back.format(f"{fn}({to.format(value)}{extra})")


def _zero(ctype: str) -> str:
    """A zero of `ctype`: what a spare segment scans (its results are never stored)."""
    return f"{ctype}(0.0f)" if ctype in ("float", "half", "bfloat") else f"{ctype}(0)"


def _open(em, head: str | None, single: str | None = None) -> None:
    """A loop `head` when it runs more than once, else the declaration `single` if any (no loop, so
    the simulator can run the collectives phase by phase)."""
    if head:
        em.emit(head + " {")
        em.depth += 1
    elif single:
        em.emit(single)


def _close(em, looped: bool) -> None:
    if looped:
        em.depth -= 1
        em.emit("}")


@lowers("tt.scan")
def lower_scan(em, op):
    axis = op.int_attr("axis")
    reverse = bool(op.bool_attr("reverse"))
    src_values = op.operands
    layout = src_values[0].layout
    shape = src_values[0].type.shape
    srcs = [em.var(v) for v in src_values]
    hint = op.results[0].name_hint or "scan"

    numel = src_values[0].type.numel
    n = shape[axis]
    inner = numel // n
    for d in range(axis):
        inner //= shape[d]
    plan = ScanPlan(n, numel // n, em.options.num_warps)
    prefix = prefix_scan(op, srcs[0].ctype)
    if prefix:
        combiner = _Combiner(em, None, PREFIX_OPERATOR[prefix[0]])
    else:
        combiner = _Combiner(em, emit_combine_function(em, op, hint), None)

    # Threadgroup memory: the block (one array per operand), then the simdgroup totals (two rounds).
    operands, offset = [], 0
    for s in srcs:
        operands.append(Operand(em.fresh_own(f"{hint}_line"), s.ctype, prefix[1] if prefix else s.ctype))
        offset = (offset + numel * sizeof(s.ctype) + 15) // 16 * 16
    offsets = []
    for o in operands:
        offsets.append(offset)
        offset = (offset + (2 * plan.warps * sizeof(o.carried) if plan.simdgroups > 1 else 0) + 15) // 16 * 16
    block_offset = 0
    for o, s in zip(operands, srcs):
        em.emit(f"{threadgroup_pointer(o.ctype)} {o.buffer} = {em.scratch(o.ctype, offset, block_offset)};")
        block_offset = (block_offset + numel * sizeof(s.ctype) + 15) // 16 * 16
    totals = {}
    if plan.simdgroups > 1:
        for o, off in zip(operands, offsets):
            totals[o.buffer] = em.fresh_own(f"{hint}_totals")
            em.emit(f"{threadgroup_pointer(o.carried)} {totals[o.buffer]} = {em.scratch(o.carried, offset, off)};")

    def index(i):
        return linear_index(shape, [em.coord_expr(layout, d, i) for d in range(len(shape))])
    for o, s in zip(operands, srcs):
        em.emit_loop(max(s.nregs, 1) if s.is_array else em.nregs(src_values[0]),
                     lambda i, o=o, s=s: f"{o.buffer}[{index(i)}] = {s.at(i)};")
    em.barrier()
    _emit_lines(em, plan, operands, totals, combiner, prefix, inner, reverse)
    em.barrier()
    for res, o in zip(op.results, operands):
        em.define(res, lambda i, o=o: f"{o.buffer}[{index(i)}]")
    em.barrier()  # the scratch memory is reused by the next op


def _emit_lines(em, plan, operands, totals, combiner, prefix, inner, reverse):
    """The scan of every line of the block in threadgroup memory, in place (module docstring)."""
    width, n = plan.width, plan.n
    simd_desc = (f"{plan.simdgroups} simdgroup(s)" if plan.simdgroups else f"{SIMD_WIDTH // width} lines per simdgroup")
    em.emit(f"// scan {plan.lines} line(s) of {n}: {width} lanes per line ({simd_desc}), {plan.parallel} line(s) "
            f"at a time, {plan.chunks} chunk(s) of {width} per line")
    # Fresh names, not own_names' fixed ones: without its loops (one round) a scan declares them at the
    # scope of the code around it, which may hold another scan.
    seat, slot, line, base, at, chunk = (em.fresh_own(w) for w in ("seat", "slot", "line", "base", "at", "chunk"))
    em.emit(f"const uint {seat} = uint({SIMD}) * {SIMD_WIDTH} + {LANE};  // lane slot in the threadgroup")
    position = f"{seat} % {width}" if plan.parallel > 1 else seat
    rounds = plan.line_rounds * plan.chunks
    if plan.simdgroups > 1 and rounds > 1:
        em.emit(f"uint {slot} = 0;  // which half of the totals this chunk uses")
    first_line = f"{seat} / {width}" if plan.parallel > 1 else "0"
    padded = plan.line_rounds * plan.parallel
    _open(em, f"for (uint {line} = {first_line}; {line} < {padded}; {line} += {plan.parallel})"
          if plan.line_rounds > 1 else None, f"const uint {line} = {first_line};")
    spare = padded > plan.lines  # segments with no line in the last round scan zeros and store nothing
    outer = f"{line} / {inner} * {n * inner} + {line} % {inner}" if inner > 1 else f"{line} * {n}"
    em.emit(f"const uint {base} = {outer};")
    for o in operands:
        o.value, o.total, o.carry = em.fresh_own(f"{o.buffer}_v"), em.fresh_own(f"{o.buffer}_total"), \
            em.fresh_own(f"{o.buffer}_carry")
        if plan.chunks > 1:
            em.emit(f"{o.carried} {o.carry};  // the total of the chunks before")
    _open(em, f"for (uint {chunk} = 0; {chunk} < {plan.chunks}; ++{chunk})" if plan.chunks > 1 else None)
    step = f"{chunk} * {width} + {position}" if plan.chunks > 1 else position
    along = f"{n - 1} - ({step})" if reverse else step
    em.emit(f"const uint {at} = {base} + ({along}) * {inner};" if inner > 1 else f"const uint {at} = {base} + {along};")
    for o in operands:
        load = f"{o.buffer}[{at}]"
        load = load if o.carried == o.ctype else f"{o.carried}({load})"
        if spare:  # a spare segment reads nothing: its line's owner is writing that memory
            load = f"{line} < {plan.lines} ? {load} : {_zero(o.carried)}"
        em.emit(f"{o.carried} {o.value} = {load};")
    _emit_simd_scan(em, plan, operands, combiner, prefix)
    if plan.simdgroups > 1:
        _emit_across_simdgroups(em, plan, operands, totals, combiner, slot if rounds > 1 else "0", prefix)
    elif plan.chunks > 1:
        for o in operands:
            em.emit(f"const {o.carried} {o.total} = {_exchange('simd_broadcast', o, SIMD_WIDTH - 1)};")
    if plan.chunks > 1:
        em.emit(f"if ({chunk} > 0) {{")
        em.depth += 1
        combiner.prepend([o.carry for o in operands], operands)
        combiner.fold([o.carry for o in operands], [o.total for o in operands])
        em.depth -= 1
        em.emit("} else {")
        for o in operands:
            em.emit(f"    {o.carry} = {o.total};")
        em.emit("}")
    guard = f"if ({line} < {plan.lines}) " if spare else ""
    for o in operands:
        value = o.value if o.carried == o.ctype else f"{o.ctype}({o.value})"
        em.emit(f"{guard}{o.buffer}[{at}] = {value};")
    _close(em, plan.chunks > 1)
    _close(em, plan.line_rounds > 1)


def _emit_simd_scan(em, plan, operands, combiner, prefix):
    """Step 1: each lane's value becomes the scan of its segment's lanes up to its own."""
    if prefix and plan.simdgroups:
        (o,) = operands
        em.emit(f"{o.value} = {prefix[0]}({o.value});")
        return
    segment_lane = LANE if plan.simdgroups else f"{LANE} % {plan.width}"
    for d in plan.tree_steps:
        earlier = []
        for o in operands:
            earlier.append(em.fresh_own(f"{o.buffer}_up"))
            em.emit(f"{o.carried} {earlier[-1]} = {_exchange('simd_shuffle_up', o, d)};")
        em.emit(f"if ({segment_lane} >= {d}) {{")
        em.depth += 1
        combiner.prepend(earlier, operands)
        em.depth -= 1
        em.emit("}")


def _emit_across_simdgroups(em, plan, operands, totals, combiner, slot, prefix):
    """Step 2: fold in the totals of the segment's earlier simdgroups; leaves the chunk's total."""
    g = plan.simdgroups
    for o in operands:
        em.emit(f"if ({LANE} == {SIMD_WIDTH - 1}) {totals[o.buffer]}[{slot} + {SIMD}] = {o.value};")
    em.barrier()
    first = em.fresh_own("first_simd")
    em.emit(f"const uint {first} = {slot} + uint({SIMD}) / {g} * {g};  // the segment's first simdgroup"
            if plan.parallel > 1 else f"const uint {first} = {slot};  // the segment's first simdgroup")
    rank = f"uint({SIMD}) % {g}" if plan.parallel > 1 else f"uint({SIMD})"
    if prefix:
        _emit_totals_by_prefix(em, plan, operands[0], totals, prefix, first, rank)
    else:
        _emit_totals_by_tree(em, plan, operands, totals, combiner, first, rank)
    if slot != "0":
        em.emit(f"{slot} ^= {plan.warps};  // the next chunk writes the other half")


def _emit_totals_by_prefix(em, plan, o, totals, prefix, first, rank):
    """A sum or product: lane k reads total k, an exclusive prefix function scans them (one
    threadgroup read per lane instead of one per total per lane)."""
    exclusive, identity, reduction = PREFIX_TOTALS[prefix[0]]
    g, unit = plan.simdgroups, f"{o.carried}({identity})"
    mine, scanned, before = (em.fresh_own(f"{o.buffer}_{w}") for w in ("simd_total", "totals_before", "before"))
    em.emit(f"const {o.carried} {mine} = {LANE} < {g} ? {totals[o.buffer]}[{first} + {LANE}] : {unit};")
    # one collective per statement: the simulator's phased runs re-run a statement to read its collective
    em.emit(f"const {o.carried} {scanned} = {exclusive}({mine});")
    em.emit(f"const {o.carried} {before} = simd_shuffle({scanned}, {rank});")
    em.emit(f"if ({rank} > 0) {o.value} = {before} {PREFIX_OPERATOR[prefix[0]]} {o.value};")
    if plan.chunks > 1:
        em.emit(f"const {o.carried} {o.total} = {reduction}({mine});")


def _emit_totals_by_tree(em, plan, operands, totals, combiner, first, rank):
    """Any combine function: lane k reads total k, and a simd_shuffle_up tree over the segment's lanes
    scans them (one threadgroup read per lane); lanes past the totals hold zeros, which only lanes
    past them see."""
    g = plan.simdgroups
    mine = []
    for o in operands:
        mine.append(em.fresh_own(f"{o.buffer}_simd_total"))
        em.emit(f"{o.carried} {mine[-1]} = {LANE} < {g} ? {totals[o.buffer]}[{first} + {LANE}] : {_zero(o.carried)};")
    for d in [1 << s for s in range(g.bit_length() - 1)]:
        earlier = []
        for o, m in zip(operands, mine):
            earlier.append(em.fresh_own(f"{o.buffer}_up"))
            em.emit(f"{o.carried} {earlier[-1]} = {_exchange('simd_shuffle_up', o, d, value=m)};")
        em.emit(f"if ({LANE} >= {d}) {{")
        em.depth += 1
        combiner.fold(earlier, mine)
        for e, m in zip(earlier, mine):
            em.emit(f"{m} = {e};")
        em.depth -= 1
        em.emit("}")
    before = []
    for o, m in zip(operands, mine):  # lane rank - 1 holds the totals before this simdgroup's
        before.append(em.fresh_own(f"{o.buffer}_before"))
        em.emit(f"const {o.carried} {before[-1]} = {_exchange('simd_shuffle', o, f'{rank} > 0 ? {rank} - 1 : 0', value=m)};")
    em.emit(f"if ({rank} > 0) {{")
    em.depth += 1
    combiner.prepend(before, operands)
    em.depth -= 1
    em.emit("}")
    if plan.chunks > 1:
        for o, m in zip(operands, mine):
            em.emit(f"const {o.carried} {o.total} = {_exchange('simd_shuffle', o, g - 1, value=m)};")
