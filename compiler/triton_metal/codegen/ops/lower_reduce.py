"""tt.reduce along any axis, with the user's combine function, in three steps:

1. within a thread: fold the registers that share all coordinates but the axis;
2. across lanes: one ``simd_sum``/``simd_max``/``simd_min`` when all 32 lanes move along the axis and
   the combine function is a single add/max/min (``SIMD_REDUCTIONS``), else a butterfly of
   ``simd_shuffle_xor`` over the lane bits that move along the axis;
3. across simdgroups: partials through threadgroup memory, folded in simdgroup order (small
   partials of a reduction that runs once per thread get their own arrays: one barrier, not two).

The combine region becomes an inline MSL function ``combine(tm_acc0..., tm_x0...)`` that folds ``x`` into
``acc``; ``acc`` always holds the elements with the lower axis coordinates, so combine functions
that are not commutative (argmin's tie rule) see their operands in order.

bfloat: MSL has no bfloat simd_sum/simd_max/simd_shuffle_xor (see msl_ops.BFLOAT_AS_WRITTEN). A
bf16 reduction whose combine region is a single add, multiply, max or min (``WIDENED_BFLOAT``: tl.sum,
and tl.reduce with such a function; tl.max/tl.min arrive in f32 from the frontend) carries float
accumulators through all three steps and rounds once at the end. Triton's combine region adds in
bf16, and a GPU's bf16 tree rounds once per level; our serial fold of step 1 would round once per
element and drift (1 + 4095 * 2^-9 came out 8.9375, not 9), while float accumulation is what torch
does for bf16 sums (max and min are exact either way). Other bf16 combine regions (argmax, tuples)
run as written, and their lane exchanges go through float.
"""
from __future__ import annotations

from itertools import pairwise

from triton_metal.abi import MAX_THREADGROUP_MEMORY
from triton_metal.codegen import msl_ops
from triton_metal.codegen.emitter import Var, lowers
from triton_metal.codegen.layout import bits_expr
from triton_metal.codegen.msl_text import comment
from triton_metal.codegen.ops.lower_shape import paired_operands
from triton_metal.codegen.ops.lower_shared import allocate
from triton_metal.codegen.own_names import ACC, ELEMENT, GROUP, LANE, LANE_BIT, PART, SIMD, X
from triton_metal.codegen.types import sizeof, threadgroup_pointer

LANE_BITS = 5  # 32 lanes per simdgroup

# Combine op -> the simdgroup reduction that computes the same fold across all lanes (one
# collective instead of five shuffles; on the simulator each collective is a fiber switch per
# lane). Only ops whose Metal counterpart has the same semantics: maxnumf/minnumf ignore a NaN
# operand like simd_max/simd_min (fmax rules); maximumf/minimumf propagate NaN and keep the butterfly.
SIMD_REDUCTIONS = {
    "arith.addf": "simd_sum", "arith.addi": "simd_sum",
    "arith.maxnumf": "simd_max", "arith.minnumf": "simd_min",
    "arith.maxsi": "simd_max", "arith.minsi": "simd_min",
    "arith.maxui": "simd_max", "arith.minui": "simd_min",
}
# Element types Metal's simd_sum/max/min take.
SIMD_REDUCTION_TYPES = {"float", "half", "int", "uint"}
UNSIGNED_OPS = {"arith.maxui", "arith.minui"}  # i32 is `int` in MSL: compare as uint
# Combine ops of a bf16 reduction that is carried in float (module docstring).
WIDENED_BFLOAT = {"arith.addf", "arith.mulf", "arith.maxnumf", "arith.minnumf", "arith.maximumf", "arith.minimumf"}


def single_combine_op(op) -> str | None:
    """The name of the one op that is all of the combine region of a single-operand tt.reduce /
    tt.scan (``acc op x``, e.g. arith.addf for tl.sum / tl.cumsum), else None."""
    if len(op.operands) != 1:
        return None
    block = op.regions[0]
    if len(block.ops) != 2:
        return None
    inner, terminator = block.ops
    if sorted(v.id for v in inner.operands) != sorted(a.id for a in block.args):
        return None
    if [v.id for v in terminator.operands] != [inner.results[0].id]:
        return None
    return inner.name


def simd_reduction(em, op, ctype: str):
    """MSL template (``{x}`` = the value) of the simd_* reduction equivalent to `op`'s combine
    region on accumulators of type `ctype`, or None when there is none."""
    name = single_combine_op(op)
    fn = SIMD_REDUCTIONS.get(name)
    if fn is None or ctype not in SIMD_REDUCTION_TYPES:
        return None
    if name in UNSIGNED_OPS and ctype == "int":
        return f"int({fn}(uint({{x}})))"
    return f"{fn}({{x}})"


def widened_bfloat(op) -> str | None:
    """The combine op of a bf16 reduction that is carried in float (WIDENED_BFLOAT), else None."""
    name = single_combine_op(op)
    return name if name in WIDENED_BFLOAT and op.operands[0].type.element == "bf16" else None


def emit_float_combine_function(em, op, name: str, hint: str) -> str:
    """The combine function of a widened bf16 reduction: `op`'s one combine op, on floats."""
    fn = em.fresh_own(f"{hint}_combine")
    header = comment(f"combine function of tt.reduce at {op.location}, in float") if op.location else ""
    acc, x = f"{ACC}0", f"{X}0"
    em.helpers.append("\n".join(([header] if header else []) + [
        f"inline void {fn}(thread float& {acc}, float {x}) {{",
        f"    {acc} = {msl_ops.BINARY[name].format(acc, x, f=em.math_prefix('f32'))};", "}"]))
    return fn


class _InFloat:
    """A bf16 register array read as float (the source of a widened reduction)."""

    def __init__(self, var: Var):
        self.var = var

    def at(self, i) -> str:
        return msl_ops.as_float(self.var.at(i))


# Metal's simd functions take 16- and 32-bit scalars and vectors only (no bfloat, 8-bit or 64-bit
# overloads): other types cross lanes as one of those, exactly. `{}` is the value.
SHUFFLED_AS = {
    "bfloat": ("float({})", "bfloat"),
    "char": ("short({})", "char"), "uchar": ("ushort({})", "uchar"), "bool": ("ushort({})", "bool"),
    "long": ("as_type<uint2>({})", "as_type<long>"), "ulong": ("as_type<uint2>({})", "as_type<ulong>"),
}


def shuffle_xor(ctype: str, expr: str, mask: str) -> str:
    """`simd_shuffle_xor(expr, mask)`, through a type Metal has an overload for (SHUFFLED_AS)."""
    if ctype not in SHUFFLED_AS:
        return f"simd_shuffle_xor({expr}, {mask})"
    to, back = SHUFFLED_AS[ctype]
    return f"{back}(simd_shuffle_xor({to.format(expr)}, {mask}))"


def emit_combine_function(em, op, hint: str) -> str:
    """Emit the combine region of `op` as an inline function; returns its name."""
    block = op.regions[0]
    k = len(op.operands)
    name = em.fresh_own(f"{hint}_combine")
    params = []
    with em.lines_apart(1) as body:
        for j, arg in enumerate(block.args):
            ctype = em.ctype(arg)
            pname = f"{ACC}{j}" if j < k else f"{X}{j - k}"
            params.append(f"thread {ctype}& {pname}" if j < k else f"{ctype} {pname}")
            em.vars[arg.id] = Var(pname, ctype)
        terminator = block.ops[-1]
        for inner in block.ops[:-1]:
            em.lower_op(inner)
        results = [em.var(v) for v in terminator.operands]
        temps = []
        for res in results:  # all results first: an accumulator may be an operand of a later result
            temps.append(em.fresh_own("combined"))
            em.emit(f"{res.ctype} {temps[-1]} = {res.name};")
        for j, t in enumerate(temps):
            em.emit(f"{ACC}{j} = {t};")
    header = comment(f"combine function of tt.reduce at {op.location}") if op.location else ""
    em.helpers.append("\n".join(([header] if header else []) + [f"inline void {name}({', '.join(params)}) {{"] +
                                body + ["}"]))
    return name


def _groups(layout, axis):
    """Registers grouped by their coordinates off the axis, each group in axis order."""
    groups = {}
    for r, c in enumerate(layout.reg_coords):
        groups.setdefault(c[:axis] + c[axis + 1:], []).append(r)
    for regs in groups.values():
        regs.sort(key=lambda r: layout.reg_coords[r][axis])
    return groups


def _progression(seq):
    """(start, step) if seq is an arithmetic progression, else None."""
    if len(seq) < 2:
        return (seq[0], 1) if seq else None
    step = seq[1] - seq[0]
    return (seq[0], step) if all(b - a == step for a, b in pairwise(seq)) else None


def _sum(base, var: str, step: int) -> str:
    """`base + var * step`, without the noise of zeros and ones."""
    term = var if step == 1 else f"{var} * {step}"
    return term if str(base) == "0" else f"{base} + {term}"


def _fold_registers(em, combine, accs, srcs, groups):
    """acc[g] = fold of the group's registers, emitted as loops when the groups are regular."""
    lists = list(groups.values())
    starts = [regs[0] for regs in lists]
    inner = {_progression(regs)[1] if _progression(regs) else None for regs in lists}
    outer = _progression(starts)
    regular = None not in inner and len(inner) == 1 and outer is not None and len({len(x) for x in lists}) == 1
    if regular:
        (step,), (start, gstep), m = inner, outer, len(lists[0])
        g_idx = GROUP if len(lists) > 1 else "0"
        base = _sum(start, GROUP, gstep) if len(lists) > 1 else str(start)
        elem = _sum(base, ELEMENT, step)
        body = [f"{a.name}[{g_idx}] = {s.at(base)};" for a, s in zip(accs, srcs)]
        if m > 1:
            args = ", ".join([f"{a.name}[{g_idx}]" for a in accs] + [s.at(elem) for s in srcs])
            body.append(f"for (uint {ELEMENT} = 1; {ELEMENT} < {m}; ++{ELEMENT}) {combine}({args});")
        if len(lists) > 1:
            em.emit(f"for (uint {GROUP} = 0; {GROUP} < {len(lists)}; ++{GROUP}) {{")
            for line in body:
                em.emit("    " + line)
            em.emit("}")
        else:
            for line in body:
                em.emit(line)
        return
    for g, regs in enumerate(lists):
        for a, s in zip(accs, srcs):
            em.emit(f"{a.name}[{g}] = {s.at(regs[0])};")
        for r in regs[1:]:
            args = ", ".join([f"{a.name}[{g}]" for a in accs] + [s.at(r) for s in srcs])
            em.emit(f"{combine}({args});")


def _axis_bits(em, op, bases, axis):
    bits = []
    for b, base in enumerate(bases):
        if base[axis]:
            if any(v for d, v in enumerate(base) if d != axis):
                raise em.unsupported(op, "reduction over a layout whose lanes move along several dimensions")
            bits.append(b)
    return bits


@lowers("tt.reduce")
def lower_reduce(em, op):
    axis = op.int_attr("axis")
    layout = op.operands[0].layout
    srcs = paired_operands(em, op.operands)  # axis-less reductions of several tensors (lower_shape)
    hint = op.results[0].name_hint or "reduce"
    widened = widened_bfloat(op)
    if widened:
        combine = emit_float_combine_function(em, op, widened, hint)
        srcs = [_InFloat(s) for s in srcs]
    else:
        combine = emit_combine_function(em, op, hint)
    groups = _groups(layout, axis)
    n = len(groups)
    accs = []
    for v in op.operands:
        acc = Var(em.fresh_own(f"{hint}_acc"), "float" if widened else em.ctype(v), n)
        em.emit(f"{acc.ctype} {acc.name}[{n}];")
        accs.append(acc)
    _fold_registers(em, combine, accs, srcs, groups)

    lane_bits = _axis_bits(em, op, layout.lane_bases, axis)
    simd_template = simd_reduction(em, op, accs[0].ctype) if lane_bits == list(range(LANE_BITS)) else None
    if simd_template:
        lane_mask = (1 << LANE_BITS) - 1
        acc = accs[0].name
        em.emit_block_loop(GROUP, n, lambda g: em.emit(f"{acc}[{g}] = {simd_template.format(x=f'{acc}[{g}]')};"))
    elif lane_bits:
        lane_mask = sum(1 << b for b in lane_bits)
        others = [em.fresh_own(f"{a.name}_peer") for a in accs]

        def butterfly(g):
            for a, o in zip(accs, others):
                em.emit(f"{a.ctype} {o} = {shuffle_xor(a.ctype, f'{a.name}[{g}]', LANE_BIT)};")
            mine = [f"{a.name}[{g}]" for a in accs]
            # The lane with the bit set holds the higher axis coordinates.
            em.emit(f"if ({LANE} & {LANE_BIT}) {{ {combine}({', '.join(others + mine)}); "
                    + " ".join(f"{a} = {o};" for a, o in zip(mine, others)) + " }")
            em.emit(f"else {combine}({', '.join(mine + others)});")
        contiguous = lane_bits == list(range(lane_bits[0], lane_bits[-1] + 1))
        if contiguous:
            em.emit(f"for (ushort {LANE_BIT} = {1 << lane_bits[0]}; {LANE_BIT} <= {1 << lane_bits[-1]}; "
                    f"{LANE_BIT} <<= 1) {{")
        else:
            em.emit(f"for (ushort {LANE_BIT} = 1; {LANE_BIT} <= {1 << lane_bits[-1]}; {LANE_BIT} <<= 1) {{")
            em.emit(f"    if (!({LANE_BIT} & {lane_mask})) continue;")
        em.depth += 1
        em.emit_block_loop(GROUP, n, butterfly)
        em.depth -= 1
        em.emit("}")
    else:
        lane_mask = 0

    warp_bits = _axis_bits(em, op, layout.warp_bases, axis)
    if warp_bits:
        _across_simdgroups(em, op, layout, axis, accs, combine, list(groups), lane_mask, warp_bits)

    _define_results(em, op, layout, axis, accs, list(groups))


# Partials of a reduction that runs once per thread (kernel scope, outside loops and functions)
# get their own threadgroup arrays when they are this small: nothing writes them again, so the
# barrier that protects the shared scratch from the next op's writes is not needed (on the
# simulator each barrier costs a fiber switch per thread).
OWN_PARTIALS_MAX_BYTES = 256


def _runs_once(em) -> bool:
    """Whether the code being emitted runs at most once per thread: the kernel's top-level block
    (nested regions are emitted one level deeper; noinline functions set `return_slots`)."""
    return em.depth == 1 and getattr(em, "return_slots", None) is None


def _across_simdgroups(em, op, layout, axis, accs, combine, keys, lane_mask, warp_bits):
    parts = 1 << len(warp_bits)
    out_shape = [s for d, s in enumerate(layout.shape) if d != axis]
    numel = 1
    for s in out_shape:
        numel *= s
    # This simdgroup's index among the simdgroups that split the axis.
    bases = [(1 << warp_bits.index(b),) if b in warp_bits else (0,) for b in range(len(layout.warp_bases))]
    part = bits_expr(SIMD, bases, 0)
    offsets, total = [], 0
    for a in accs:
        offsets.append(total)
        total += numel * parts * sizeof(a.ctype)
        total = (total + 15) // 16 * 16
    # (Not when the shared scratch already fills threadgroup memory, as a conversion in rounds does.)
    room = MAX_THREADGROUP_MEMORY - (em.scratch_bytes + 15) // 16 * 16 - em.shared_bytes
    own_arrays = _runs_once(em) and total <= min(OWN_PARTIALS_MAX_BYTES, room)
    ptrs = []
    for a, v, off in zip(accs, op.operands, offsets):
        if own_arrays:
            element = "f32" if a.ctype == "float" else v.type.element  # (a widened bf16 reduction's is float)
            ptrs.append(allocate(em, element, (numel * parts,), f"{a.name}_partials").name)
        else:
            ptrs.append(em.fresh_own(f"{a.name}_partials"))
            em.emit(f"{threadgroup_pointer(a.ctype)} {ptrs[-1]} = {em.scratch(a.ctype, total, off)};")
    off_dims = [d for d in range(layout.rank) if d != axis]

    def element_index(key):
        terms, stride = [], 1
        for j in reversed(range(len(off_dims))):
            d = off_dims[j]
            thread = em.thread_coord(layout, d)
            coord = " ^ ".join(x for x in (str(key[j]) if key[j] else "", thread if thread != "0" else "") if x)
            if coord and out_shape[j] > 1:
                coord = f"({coord})" if "^" in coord else coord  # `^` binds more loosely than `*`
                terms.append(f"{coord} * {stride}" if stride > 1 else coord)
            stride *= out_shape[j]
        return " + ".join(reversed(terms)) or "0"

    def slot(e, k=""):
        base = f"({e}) * {parts}" if "+" in e else (f"{e} * {parts}" if e != "0" else "")
        return " + ".join(x for x in (base, k) if x) or "0"

    cond = f"({LANE} & {lane_mask}) == 0" if lane_mask else "true"
    em.emit(f"if ({cond}) {{")
    for g, key in enumerate(keys):
        e = element_index(key)
        for a, p in zip(accs, ptrs):
            em.emit(f"    {p}[{slot(e, part)}] = {a.name}[{g}];")
    em.emit("}")
    em.barrier()
    for g, key in enumerate(keys):
        e = element_index(key)
        for a, p in zip(accs, ptrs):
            em.emit(f"{a.name}[{g}] = {p}[{slot(e)}];")
        args = ", ".join([f"{a.name}[{g}]" for a in accs] + [f"{p}[{slot(e, PART)}]" for p in ptrs])
        em.emit(f"for (uint {PART} = 1; {PART} < {parts}; ++{PART}) {combine}({args});")
    if not own_arrays:
        em.barrier()  # before the next op that needs threadgroup memory overwrites the scratch


def _define_results(em, op, layout, axis, accs, keys):
    results = op.results

    def value(res, a, expr):  # a widened bf16 reduction's float accumulator is rounded once, here
        ctype = em.ctype(res)
        return expr if a.ctype == ctype else f"{ctype}({expr})"
    if not results[0].type.is_tensor:
        for res, a in zip(results, accs):
            em.define(res, value(res, a, f"{a.name}[0]"))
        return
    out = results[0].layout
    projected = lambda base: tuple(v for d, v in enumerate(base) if d != axis)
    if [projected(b) for b in layout.lane_bases] != [tuple(b) for b in out.lane_bases] or \
            [projected(b) for b in layout.warp_bases] != [tuple(b) for b in out.warp_bases]:
        raise em.unsupported(op, "reduction result layout is not the slice of its operand's layout")
    index = {key: g for g, key in enumerate(keys)}
    mapping = [index[c] for c in out.reg_coords]
    for res, a in zip(results, accs):
        if mapping == list(range(len(keys))) and a.ctype == em.ctype(res):
            em.alias(res, a)
        elif mapping == list(range(len(keys))):
            em.define(res, lambda i, a=a, res=res: value(res, a, f"{a.name}[{i}]"))
        else:
            var = em.declare_array(res)
            for r, g in enumerate(mapping):
                em.emit(f"{var.name}[{r}] = {value(res, a, f'{a.name}[{g}]')};")
            em.alias(res, var)
