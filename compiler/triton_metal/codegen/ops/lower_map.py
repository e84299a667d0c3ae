"""tt.map_elementwise: a scalar @triton.jit function applied to every element (or every `pack`
consecutive elements) of its tensor operands.

The function's region becomes an inline MSL function ``void f(tm_x0.., thread R& tm_r0..)`` (its
branches structured as in lower_control); the kernel calls it for each group of ``pack`` registers.
Operands are grouped operand-major (a0, a1, b0, b1) and results result-major, as Triton does.
"""
from __future__ import annotations

from triton_metal.codegen.emitter import Var, lowers
from triton_metal.codegen.msl_text import comment
from triton_metal.codegen.ops.lower_control import lower_body
from triton_metal.codegen.own_names import REG, R, X


@lowers("tt.map_elementwise")
def lower_map_elementwise(em, op):
    pack = op.int_attr("pack") or 1
    entry = op.regions[0]
    hint = op.results[0].name_hint or "mapped"
    name = em.fresh_own(f"{hint}_fn")
    n_out = len(op.results)

    params = []
    for j, arg in enumerate(entry.args):
        pname = f"{X}{j}"
        params.append(f"{em.ctype(arg)} {pname}")
        em.vars[arg.id] = Var(pname, em.ctype(arg))
    outs = [f"{R}{k}" for k in range(n_out * pack)]
    params += [f"thread {em.ctype(op.results[k // pack])}& {o}" for k, o in enumerate(outs)]
    em.map_outputs = getattr(em, "map_outputs", []) + [outs]
    try:
        with em.lines_apart(1) as body:
            lower_body(em, entry)
    finally:
        em.map_outputs.pop()
    em.helpers.append("\n".join([comment(f"the function tl.map_elementwise applies at {op.location}"),
                                 f"inline void {name}({', '.join(params)}) {{", *body, "}"]))

    srcs = [em.var(v) for v in op.operands]
    results = [em.declare_array(r, hint) for r in op.results]
    n = max(em.nregs(op.results[0]), 1)
    if n % pack:
        raise em.unsupported(op, f"pack={pack} does not divide the {n} elements each thread holds",
                             "use a smaller pack, or a block size with more elements per thread")

    def element(var, i, j):
        if var.nregs == 0:
            return var.name
        return var.at(f"{i} + {j}" if j else i)
    args = lambda i: [element(s, i, j) for s in srcs for j in range(pack)] + \
        [element(r, i, j) for r in results for j in range(pack)]
    if n == pack:
        em.emit(f"{name}({', '.join(args('0'))});")
    else:
        em.emit(f"for (uint {REG} = 0; {REG} < {n}; {REG} += {pack}) {name}({', '.join(args(REG))});")
    for res, var in zip(op.results, results):
        em.alias(res, var)


@lowers("tt.map_elementwise.return")
def lower_map_return(em, op):
    for out, value in zip(em.map_outputs[-1], op.operands):
        em.emit(f"{out} = {em.var(value).at(0)};")
    em.emit("return;")
