"""@triton.jit(noinline=True) functions: each tt.func a kernel calls becomes one MSL function.

``void f(scalar arguments..., out-parameters..., kernel-scope names...)``: Triton passes only
scalars (and pointers) to noinline functions; results, scalars or tensors, come back through
``thread`` references the caller declares (a tensor as this thread's register array, in the
result's layout). What the body uses from the kernel's scope is passed along too: the builtins
(program ids, lane, simdgroup), the threadgroup scratch memory of reductions and layout
conversions, and the threadgroup arrays and per-thread state its ops declare at kernel scope
(MSL allows ``threadgroup`` variables only there; they move to the kernel and come in as pointers).

A function is emitted once, at its first call, with the same emitter (one set of names, one
scratch size) but its own lines, prologue and layout coordinates. It may hold loops, branches,
early returns, reductions and further calls; like on CUDA, a call must be reached by the whole
threadgroup (Triton's scalar conditions are uniform), because its barriers are.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from triton_metal import abi
from triton_metal.codegen.emitter import Var, lowers
from triton_metal.codegen.msl_text import comment
from triton_metal.codegen.ops.lower_control import lower_body
from triton_metal.codegen.own_names import ARENA, BUILTIN_NAMES

ARENA_PARAM = f"threadgroup uchar* {ARENA}"  # the kernel's threadgroup arena (buffers and scratch)
# Further kernel parameters a function body may use (e.g. a hidden buffer): lowerings that add one
# to the kernel register its declaration here, so that functions using it receive it.
KERNEL_SCOPE_PARAMS: list = []

# A kernel-prologue declaration that is state, not a value computed from the builtins:
# `threadgroup T name[N];` (a tt.local_alloc buffer) or `T name = init;` (e.g. a counter).
_STATE = re.compile(r"^\s*(?P<tg>threadgroup\s+)?(?P<type>[A-Za-z_][\w:<>]*(?:\s*\*)?)\s+(?P<name>[A-Za-z_]\w*)"
                    r"\s*(?P<dims>\[\d+\])?\s*(?:=[^;]*)?;")


@dataclass
class MslFunction:
    name: str
    kernel_scope: list  # names passed at every call, after the arguments and out-parameters


def _builtin_params() -> list:
    """The kernel's builtins (own_names.BUILTINS), declared as parameters of a function."""
    return [f"{ctype} {BUILTIN_NAMES[attribute]}" for attribute, ctype in abi.GENERATED_BUILTINS]


def _readable_name(symbol: str) -> str:
    """`pkg.module.fn__fp32_i32` -> `fn` (Triton's symbols are module.qualname__signature; names may be unicode)."""
    for part in symbol.split("."):
        m = re.fullmatch(r"(_*[^\W_]\w*?)__\w*", part)
        if m and not (part.startswith("__") and part.endswith("__")):
            return m.group(1)
    return symbol


def _state_param(line: str) -> str | None:
    """The parameter declaration passing the state a prologue line declares, else None."""
    m = _STATE.match(line)
    if not m or line.lstrip().startswith("const "):
        return None
    if m.group("tg") and m.group("type").endswith("*"):
        return None  # a pointer into the threadgroup arena: computed again in the function's body
    if m.group("tg"):
        return f"threadgroup {m.group('type')}* {m.group('name')}"
    return f"thread {m.group('type')}& {m.group('name')}"


def _outer_prologues(em) -> list:
    if not hasattr(em, "outer_prologues"):
        em.outer_prologues = []  # the prologues of the kernel and the functions being emitted
    return em.outer_prologues


def _functions(em) -> dict:
    if not hasattr(em, "msl_functions"):
        em.msl_functions = {}  # tt.func symbol -> MslFunction, or None while it is being emitted
    return em.msl_functions


def msl_function(em, call) -> MslFunction:
    """The MSL function of `call`'s callee, emitted on first use."""
    func = call.callee
    symbol = func.str_attr("sym_name")
    table = _functions(em)
    if symbol in table:
        if table[symbol] is None:  # Triton's frontend rejects recursion; MSL has none either
            raise em.unsupported(call, f"recursive call of {symbol}", "write the recursion as a loop")
        return table[symbol]
    table[symbol] = None
    name = em.fresh(_readable_name(symbol))
    saved_slots = getattr(em, "return_slots", None)
    outer = _outer_prologues(em)
    outer.append(em.prologue)  # the state the callers declared is in scope for this body too
    try:
        with em.function_scope():
            params = []
            for k, arg in enumerate(func.regions[0].args):
                pname = em.fresh(arg.name_hint or f"arg{k}")
                ctype = em.ctype(arg)
                params.append(f"{ctype} {pname}")
                em.vars[arg.id] = Var(pname, ctype)
            em.return_slots = []
            for k, res in enumerate(call.results):  # the callee's result types are the call's
                slot = Var(em.fresh_own(f"result{k}"), em.ctype(res), em.nregs(res))
                params.append(f"thread {slot.ctype} (&{slot.name})[{slot.nregs}]" if slot.nregs
                              else f"thread {slot.ctype}& {slot.name}")
                em.return_slots.append(slot)
            lower_body(em, func.regions[0])
            body, prologue = em.lines, em.prologue
    finally:
        em.return_slots = saved_slots
        outer.pop()
    local, state = [], []
    for line in prologue:
        (state if _state_param(line) else local).append(line)
    em.prologue += state  # to the caller's prologue: the kernel's, in the end
    text = "\n".join(local + body)
    declared = [line for lines in outer for line in lines] + em.prologue
    candidates = _builtin_params() + [ARENA_PARAM] + KERNEL_SCOPE_PARAMS + [
        param for param in map(_state_param, declared) if param]
    kernel_scope = []
    for decl in candidates:
        pname = decl.split()[-1].lstrip("*&")
        if pname not in kernel_scope and re.search(rf"\b{pname}\b", text):
            params.append(decl)
            kernel_scope.append(pname)
    header = comment(f"@triton.jit(noinline=True) {symbol}" + (f" at {func.location}" if func.location else ""))
    em.helpers.append("\n".join([header, f"void {name}({', '.join(params)}) {{", *local, *body, "}"]))
    table[symbol] = MslFunction(name, kernel_scope)
    return table[symbol]


@lowers("tt.call")
def lower_call(em, op):
    fn = msl_function(em, op)
    results = []
    for res in op.results:
        var = em.declare_array(res)
        em.vars[res.id] = var
        results.append(var.name)
    args = [em.var(v).at(0) for v in op.operands]
    em.emit(f"{fn.name}({', '.join(args + results + fn.kernel_scope)});")


@lowers("tt.return")
def lower_return(em, op):
    """Results go to the function's out-parameters; `return;` unless this is the end of the body."""
    if op.operands:
        em.assign_all(em.return_slots, [em.var(v) for v in op.operands])
    if em.depth > 1:
        em.emit("return;")
