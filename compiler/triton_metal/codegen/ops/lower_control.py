"""Control flow: scf.for, scf.while and scf.if (with results), and the branch graphs of early returns.

Triton's scalars are uniform across a program, so every branch and loop bound here is uniform
across the threadgroup: the simd and barrier collectives inside them stay legal on Metal.

A ``return`` inside an ``if`` makes Triton split the function body into blocks joined by
``cf.cond_br`` / ``cf.br``. MSL has no ``goto``, so ``lower_body`` rebuilds nested ``if``s from
that graph, which is acyclic (loops are scf ops; Triton rejects ``return`` inside them): every
block is emitted inside the block that dominates it; a block with one incoming edge goes where the
branch is, a block several edges reach (a *merge*) goes after its dominator's branch, with its
block arguments as variables the branches assign and, only when other paths could fall through to
it, a ``reach_*`` flag. A branch whose side always returns becomes ``if (c) { ...; return; }``
followed by the other side, so if/elif/return chains stay flat.
"""
from __future__ import annotations

from triton_metal.codegen import barriers
from triton_metal.codegen.branch_graph import BranchCycle, BranchGraph
from triton_metal.codegen.emitter import Var, lowers
from triton_metal.codegen.msl_text import paren
from triton_metal.codegen.ops import lower_dot


def _lower_body(em, block, results):
    """Lower a region's ops; its terminator's operands are assigned to `results`."""
    *ops, terminator = block.ops
    for op in ops:
        em.lower_op(op)
    if results:
        em.assign_all(results, [em.var(v) for v in terminator.operands])


@lowers("scf.for")
def lower_for(em, op):
    lb, ub, step = (em.var(v) for v in op.operands[:3])
    body = op.regions[0]
    induction, carried_args = body.args[0], body.args[1:]
    # tt.dot accumulators carried as simdgroup_matrix fragments: no layout conversion per iteration.
    fragments = lower_dot.carried_accumulators(em, op)
    carried = []
    for pos, (res, init, arg) in enumerate(zip(op.results, op.operands[3:], carried_args)):
        if pos in fragments:
            var = em.vars[arg.id] = lower_dot.enter_loop(em, fragments[pos], init)
        else:
            var = em.declare_array(res, arg.name_hint or res.name_hint)
            em.assign(var, em.var(init))
            em.vars[arg.id] = em.vars[res.id] = var
        carried.append(var)
    iv = Var(em.fresh(induction.name_hint or "k"), em.ctype(induction))
    em.vars[induction.id] = iv
    start = len(em.lines)
    em.emit(f"for ({iv.ctype} {iv.name} = {lb.at(0)}; {iv.name} < {ub.at(0)}; {iv.name} += {step.at(0)}) {{")
    em.depth += 1
    _lower_body(em, body, carried)
    em.depth -= 1
    em.emit("}")
    # Each lowering places its own barriers: those ordering nothing go, and one opening the body moves
    # before the loop and to the body's end (barriers.coalesce / rotate_loop), e.g. 2 per matmul K step.
    names = barriers.threadgroup_names(em.prologue + em.lines)
    em.lines[start:] = barriers.coalesce(barriers.rotate_loop(barriers.coalesce(em.lines[start:], names), names), names)
    for pos in fragments:
        lower_dot.leave_loop(em, op, carried[pos], op.results[pos])


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
    em.assign_all(results, [em.var(v) for v in condition.operands[1:]])
    em.emit(f"if (!{em.var(condition.operands[0]).at(0)}) break;")
    for arg, var in zip(after.args, results):
        em.vars[arg.id] = var
    _lower_body(em, after, carried)
    em.depth -= 1
    em.emit("}")


# ---- branch graphs (early returns) ------------------------------------------------------------

def lower_body(em, entry) -> None:
    """Lower a function body from its entry block: straight-line, or a graph of cf branches."""
    if not entry.ops or entry.terminator.name not in BRANCHES:
        em.lower_block(entry)
        return
    try:
        graph = BranchGraph(entry, lambda block: [target for target, _ in _branch_targets(block)])
    except BranchCycle as cycle:
        raise em.refuse("branch_cycle", cycle.node.terminator) from None
    _StructuredEmitter(em, graph).block(entry)


BRANCHES = ("cf.br", "cf.cond_br")


def _branch_targets(block) -> list:
    term = block.terminator
    return term.successors if term.name in BRANCHES else []


class _StructuredEmitter:

    def __init__(self, em, graph):
        self.em, self.graph = em, graph
        self.flags = {}  # id(merge block) -> the name of its reach_* flag, when it needs one

    def block(self, block) -> None:
        em, graph = self.em, self.graph
        *ops, term = block.ops
        for op in ops:
            em.lower_op(op)
        merges = graph.merges_under(block)
        for merge in merges:  # the variables every branch to the merge assigns
            for arg in merge.args:
                em.vars[arg.id] = em.declare_array(arg, arg.name_hint or "joined")
            if graph.needs_flag(block, merge):
                self.flags[id(merge)] = em.fresh_own(f"reach_bb{graph.index[id(merge)]}")
                em.emit(f"bool {self.flags[id(merge)]} = false;")
        em.last_location = term.location or em.last_location
        if term.name == "cf.br":
            self.jump(*term.successors[0])
        elif term.name == "cf.cond_br":
            self.branch(em.var(term.operands[0]).at(0), *term.successors)
        else:
            em.lower_op(term)
        for merge in merges:
            if id(merge) in self.flags:
                self.nested(f"if ({self.flags[id(merge)]}) {{", lambda m=merge: self.block(m))
            else:
                self.block(merge)

    def branch(self, cond, true_edge, false_edge) -> None:
        returns = self.graph.always_returns
        if returns(true_edge[0]):  # `if (c) { ...; return; }` then the rest, as the source reads
            self.nested(f"if ({cond}) {{", lambda: self.jump(*true_edge))
            self.jump(*false_edge)
        elif returns(false_edge[0]):
            self.nested(f"if (!{paren(cond)}) {{", lambda: self.jump(*false_edge))
            self.jump(*true_edge)
        else:
            then = self.capture(lambda: self.jump(*true_edge))
            other = self.capture(lambda: self.jump(*false_edge))
            if not then:
                then, other, cond = other, [], f"!{paren(cond)}"
            if then:
                self.em.emit(f"if ({cond}) {{")
                self.em.lines += then
                if other:
                    self.em.emit("} else {")
                    self.em.lines += other
                self.em.emit("}")

    def jump(self, target, operands) -> None:
        em = self.em
        if self.graph.is_merge(target):
            em.assign_all([em.var(a) for a in target.args], [em.var(v) for v in operands])
            if id(target) in self.flags:
                em.emit(f"{self.flags[id(target)]} = true;")
        else:  # the only way in: the block goes here, its arguments are the operands themselves
            for arg, v in zip(target.args, operands):
                em.vars[arg.id] = em.var(v)
            self.block(target)

    def capture(self, fn) -> list:
        """The lines `fn` emits one level deeper, taken out of the output."""
        with self.em.lines_apart(self.em.depth + 1) as lines:
            fn()
        return lines

    def nested(self, header: str, fn) -> None:
        lines = self.capture(fn)
        if lines:
            self.em.emit(header)
            self.em.lines += lines
            self.em.emit("}")
