"""tt.scan (tl.cumsum, tl.cumprod, tl.associative_scan, forward or reverse) on any axis and layout.

The block goes through threadgroup memory: every thread writes its elements, then each line
along the axis is scanned serially by one thread (lines are dealt out round-robin), and every
thread reads its elements back. Correct for any layout, combine function and tuple of operands;
a tree scan over simd lanes would be faster on wide axes.

A serial scan rounds once per element, where a GPU's tree scan rounds log2(n) times: so a half or
bfloat cumsum / cumprod (one operand, a combine that is a single addf / mulf) carries its running
value in float and rounds each output once, which keeps it within the tolerance such scans get.
"""
from __future__ import annotations

from triton_metal.codegen.emitter import lowers
from triton_metal.codegen.layout import linear_index
from triton_metal.codegen.ops.lower_reduce import emit_combine_function, single_combine_op
from triton_metal.codegen.own_names import AT, BASE, ELEMENT, LANE, LINE, SIMD
from triton_metal.codegen.types import sizeof, threadgroup_pointer

WIDENED = {"arith.addf": "+", "arith.mulf": "*"}  # combine ops a 16-bit float scan runs in float


def _widened_operator(op, srcs):
    """`+` or `*` when the scan is a half/bfloat cumsum or cumprod, else None."""
    if srcs[0].ctype not in ("half", "bfloat"):
        return None
    return WIDENED.get(single_combine_op(op))


@lowers("tt.scan")
def lower_scan(em, op):
    axis = op.int_attr("axis")
    reverse = bool(op.bool_attr("reverse"))
    src_values = op.operands
    layout = src_values[0].layout
    shape = src_values[0].type.shape
    srcs = [em.var(v) for v in src_values]
    hint = op.results[0].name_hint or "scan"
    combine = emit_combine_function(em, op, hint)

    numel = src_values[0].type.numel
    n = shape[axis]
    inner = numel // n
    for d in range(axis):
        inner //= shape[d]
    lines = numel // n
    threads = em.options.num_warps * 32

    buffers, offset = [], 0
    for s in srcs:
        size = numel * sizeof(s.ctype)
        buffers.append((em.fresh_own(f"{hint}_line"), s.ctype, offset))
        offset = (offset + size + 15) // 16 * 16
    for name, ctype, off in buffers:
        em.emit(f"{threadgroup_pointer(ctype)} {name} = {em.scratch(ctype, offset, off)};")

    def index(i):
        return linear_index(shape, [em.coord_expr(layout, d, i) for d in range(len(shape))])
    for (name, _, _), s in zip(buffers, srcs):
        em.emit_loop(max(s.nregs, 1) if s.is_array else em.nregs(src_values[0]),
                     lambda i, name=name, s=s: f"{name}[{index(i)}] = {s.at(i)};")
    em.barrier()

    em.emit(f"for (uint {LINE} = uint({SIMD}) * 32 + {LANE}; {LINE} < {lines}; {LINE} += {threads}) {{")
    em.depth += 1
    outer = f"{LINE} / {inner} * {n * inner} + {LINE} % {inner}" if inner > 1 else f"{LINE} * {n}"
    em.emit(f"uint {BASE} = {outer};")
    first = f"{BASE} + {(n - 1) * inner}" if reverse else BASE
    widened = _widened_operator(op, srcs)
    accs = []
    for name, ctype, _ in buffers:
        acc = em.fresh_own(f"{name}_acc")
        em.emit(f"float {acc} = float({name}[{first}]);" if widened else f"{ctype} {acc} = {name}[{first}];")
        accs.append(acc)
    step = f"{n - 1} - {ELEMENT}" if reverse else ELEMENT
    em.emit(f"for (uint {ELEMENT} = 1; {ELEMENT} < {n}; ++{ELEMENT}) {{")
    em.emit(f"    uint {AT} = {BASE} + ({step}) * {inner};" if inner > 1 else f"    uint {AT} = {BASE} + {step};")
    if widened:
        (name, ctype, _), acc = buffers[0], accs[0]
        em.emit(f"    {acc} = {acc} {widened} float({name}[{AT}]);")
        em.emit(f"    {name}[{AT}] = {ctype}({acc});")
    else:
        em.emit(f"    {combine}({', '.join(accs + [f'{name}[{AT}]' for name, _, _ in buffers])});")
        for acc, (name, _, _) in zip(accs, buffers):
            em.emit(f"    {name}[{AT}] = {acc};")
    em.emit("}")
    em.depth -= 1
    em.emit("}")
    em.barrier()
    for res, (name, _, _) in zip(op.results, buffers):
        em.define(res, lambda i, name=name: f"{name}[{index(i)}]")
    em.barrier()  # the scratch memory is reused by the next op
