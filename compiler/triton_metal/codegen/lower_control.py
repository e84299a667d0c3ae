"""Structured control flow: scf.for and scf.if (with results), tt.return.

Triton's scalars are uniform across a program, so every branch and loop bound here is uniform
across the threadgroup: the simd and barrier collectives inside them stay legal on Metal.
"""
from __future__ import annotations

from triton_metal.codegen.emitter import Var, lowers


def _assign_all(em, dsts, srcs):
    """dsts[k] = srcs[k] for all k at once (a yield may swap loop-carried values)."""
    dst_names = {d.name for d in dsts}
    clash = any(s.name in dst_names and s.name != d.name for d, s in zip(dsts, srcs))
    if clash:
        temps = []
        for s in srcs:
            t = Var(em.fresh("yielded"), s.ctype, s.nregs)
            em.emit(f"{t.ctype} {t.name}[{t.nregs}];" if t.nregs else f"{t.ctype} {t.name};")
            em.assign(t, s)
            temps.append(t)
        srcs = temps
    for d, s in zip(dsts, srcs):
        if d.name != s.name:
            em.assign(d, s)


def _lower_body(em, block, results):
    """Lower a region's ops; its terminator's operands are assigned to `results`."""
    *ops, terminator = block.ops
    for op in ops:
        em.lower_op(op)
    if results:
        _assign_all(em, results, [em.var(v) for v in terminator.operands])


@lowers("scf.for")
def lower_for(em, op):
    lb, ub, step = (em.var(v) for v in op.operands[:3])
    body = op.regions[0]
    induction, carried_args = body.args[0], body.args[1:]
    carried = []
    for res, init, arg in zip(op.results, op.operands[3:], carried_args):
        var = em.declare_array(res, arg.name_hint or res.name_hint)
        em.assign(var, em.var(init))
        em.vars[arg.id] = em.vars[res.id] = var
        carried.append(var)
    iv = Var(em.fresh(induction.name_hint or "k"), em.ctype(induction))
    em.vars[induction.id] = iv
    em.emit(f"for ({iv.ctype} {iv.name} = {lb.at(0)}; {iv.name} < {ub.at(0)}; {iv.name} += {step.at(0)}) {{")
    em.depth += 1
    _lower_body(em, body, carried)
    em.depth -= 1
    em.emit("}")


@lowers("scf.if")
def lower_if(em, op):
    cond = em.var(op.operands[0])
    results = [em.declare_array(res) for res in op.results]
    for res, var in zip(op.results, results):
        em.vars[res.id] = var
    em.emit(f"if ({cond.at(0)}) {{")
    em.depth += 1
    _lower_body(em, op.regions[0], results)
    em.depth -= 1
    if len(op.regions) > 1 and op.regions[1].ops:
        em.emit("} else {")
        em.depth += 1
        _lower_body(em, op.regions[1], results)
        em.depth -= 1
    em.emit("}")


@lowers("tt.return")
def lower_return(em, op):
    if em.depth > 1:  # an early return; the final one is the end of the kernel
        em.emit("return;")


@lowers("scf.while")
def lower_while(em, op):
    """`while (true) { before; if (!cond) break; after }`: the condition is a scalar, uniform
    across the program like every Triton scalar, so collectives inside stay legal."""
    before, after = op.regions
    carried = []
    for arg, init in zip(before.args, op.operands):
        var = em.declare_array(arg, arg.name_hint or "carried")
        em.assign(var, em.var(init))
        em.vars[arg.id] = var
        carried.append(var)
    results = []
    for res in op.results:
        var = em.declare_array(res)
        em.vars[res.id] = var
        results.append(var)
    em.emit("while (true) {")
    em.depth += 1
    *ops, condition = before.ops
    for inner in ops:
        em.lower_op(inner)
    _assign_all(em, results, [em.var(v) for v in condition.operands[1:]])
    em.emit(f"if (!{em.var(condition.operands[0]).at(0)}) break;")
    for arg, var in zip(after.args, results):
        em.vars[arg.id] = var
    _lower_body(em, after, carried)
    em.depth -= 1
    em.emit("}")


@lowers("tt.call")
def refuse_call(em, op):
    raise em.refuse("noinline_call", op)


@lowers("tt.print")
def refuse_print(em, op):
    raise em.refuse("device_print", op)


@lowers("tt.assert")
def refuse_assert(em, op):
    raise em.refuse("device_assert", op)


@lowers("cf.cond_br", "cf.br")
def refuse_unstructured(em, op):
    raise em.refuse("early_return", op)
