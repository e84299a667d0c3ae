"""The state of one kernel's MSL while it is generated: names, values, output lines.

Each TTGIR value becomes a ``Var``: a scalar, a per-thread register array (the elements of a
tensor this thread holds under the value's layout), or a *uniform* tensor whose elements all
equal one scalar expression (splats and splat constants cost no registers).
Lowering functions (codegen/ops, one module per op family) register themselves in ``LOWERINGS`` with
``lowers``: one lowering per op, whatever the import order (registering an op twice raises).
"""
from __future__ import annotations

import linecache
import re
from contextlib import contextmanager
from dataclasses import dataclass, field

from triton_metal.codegen.fp8_msl import FP8_STORAGE_OPS, fp8_element
from triton_metal.codegen.layout import LinearLayout, bits_expr
from triton_metal.codegen.msl_text import comment, identifier, is_fixed_own, own_helper, own_spelling
from triton_metal.codegen.msl_words import RESERVED_WORDS
from triton_metal.codegen.own_names import ARENA, LANE, REG, SIMD
from triton_metal.codegen.threadgroup_arena import Arena
from triton_metal.codegen.types import msl_scalar, threadgroup_pointer
from triton_metal.debug import log
from triton_metal.errors import UnsupportedOperationError
from triton_metal.refusals import refuse

LOWERINGS: dict = {}  # op name -> its lowering, fn(em, op)

# The ops whose MSL starts with a comment holding their kernel source line (KernelEmitter.lower_op):
# global memory accesses, atomics, tl.dot and prints/asserts are what users trace in the MSL. Tools
# that match those comments back to TTGIR ops (tools/ttgir_sites.py) read this set.
SOURCE_COMMENTED_OPS = frozenset({
    "tt.load", "tt.store",
    "tt.atomic_rmw", "tt.atomic_cas", "tt.atomic_load", "tt.atomic_store", "tt.atomic_poll",
    "tt.dot",
    "tt.print", "tt.assert",
})


def _qualified(fn) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def lowers(*names):
    """Registers the decorated function as the lowering of the ops `names`. An op has one lowering: a
    second registration is an error (a module specialising another's op owns it, and the other leaves
    it out), so which function lowers an op never depends on the order modules are imported in."""
    def register(fn):
        for name in names:
            if name in LOWERINGS:
                raise ValueError(f"{name} is registered twice: by {_qualified(LOWERINGS[name])} and by "
                                 f"{_qualified(fn)}; an op has one lowering (leave {name} out of one of them)")
            LOWERINGS[name] = fn
        return fn
    return register


@dataclass
class Var:
    name: str
    ctype: str
    nregs: int = 0  # 0: a scalar; otherwise the length of the register array
    uniform: bool = False  # a tensor whose every element is `name`

    def at(self, i) -> str:
        return self.name if self.nregs == 0 or self.uniform else f"{self.name}[{i}]"

    @property
    def is_array(self) -> bool:
        return self.nregs > 0 and not self.uniform


# The words no user's name may be spelled as (msl_words); the code generator's own names are `tm_`
# names (msl_text, own_names), which identifier() never returns.
MSL_RESERVED = RESERVED_WORDS


def source_line(location: str) -> str:
    """`file:line:col` plus the source line and a caret, for error messages."""
    m = re.match(r"(.*):(\d+):(\d+)$", location or "")
    if not m:
        return location
    path, line, col = m.group(1), int(m.group(2)), int(m.group(3))
    text = linecache.getline(path, line).rstrip()
    if not text:
        return location
    return f"{location}\n    {text}\n    {' ' * max(col - 1, 0)}^"


@dataclass
class KernelEmitter:
    name: str
    options: object
    lines: list = field(default_factory=list)
    prologue: list = field(default_factory=list)
    helpers: list = field(default_factory=list)
    vars: dict = field(default_factory=dict)
    depth: int = 1
    scratch_bytes: int = 0  # the largest scratch an op asked for (each op's is placed in the arena)
    # The threadgroup arena (threadgroup_arena): local_alloc buffers and each op's scratch, by liveness.
    arena: Arena = field(default_factory=Arena)
    op_stack: list = field(default_factory=list)  # the ops being lowered, innermost last
    _used_names: set = field(default_factory=set)  # every name given out, in both namespaces
    static_helpers: set = field(default_factory=set)  # helper texts added as written (add_helper)
    _layout_names: dict = field(default_factory=dict)  # (layout, dim) -> its thread_coord name, per function
    last_location: str = ""
    # How device pointers are spelled: "coherent(device) device" in kernels whose atomics order memory
    # across programs (memory_model.device_space).
    device_space: str = "device"
    # Whether a program can observe other programs' writes during the launch (memory_model): only then
    # do atomics' sem/scope need fences.
    observes_other_programs: bool = True
    # Value id of a reshape's result that kept each thread's registers in place -> the reshape's source
    # (lower_shape: the result's registers are in the source layout's order).
    register_orders: dict = field(default_factory=dict)

    # ---- names and output -------------------------------------------------------------------
    def fresh(self, hint: str = "") -> str:
        """A new name for a user's value, argument or function, spelled after `hint` (msl_text.identifier:
        never a reserved word, an MLX attribute or a `tm_` name); `hint_1`, `hint_2` ... when taken."""
        return self._allocate(identifier(hint, MSL_RESERVED))

    def fresh_own(self, hint: str = "") -> str:
        """A new name of the code generator's own (a scratch pointer, an accumulator, a helper function),
        spelled `tm_` + `hint` (which may hold a user's name, for readability); never a fixed own name."""
        return self._allocate(own_spelling(hint))

    @property
    def allocated_names(self) -> frozenset:
        """Every name fresh() and fresh_own() gave out (for msl_text.check_generated)."""
        return frozenset(self._used_names)

    def _allocate(self, base: str) -> str:
        name, n = base, 0
        while name in self._used_names or is_fixed_own(name):
            n += 1
            name = f"{base.rstrip('_')}_{n}"  # never `__`, which C++ reserves
        self._used_names.add(name)
        return name

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.depth + line)

    @contextmanager
    def lines_apart(self, depth: int):
        """Emit into a list of lines of its own at `depth` (a helper function's body, a branch
        taken out to be placed later); yields the list, and restores the output afterwards."""
        saved = self.lines, self.depth
        self.lines, self.depth = [], depth
        try:
            yield self.lines
        finally:
            self.lines, self.depth = saved

    def add_helper(self, text: str) -> None:
        """Adds a helper function written as it is (codegen/msl_helpers.py), once per kernel: its `tm_`
        names are registered with msl_text.own_helper; its other names are local to it, so the identifier
        audit of msl_text.check_generated skips it."""
        if text not in self.helpers:
            self.helpers.append(own_helper(text))
            self.static_helpers.add(text)

    @contextmanager
    def function_scope(self):
        """Emit a function's body (a noinline function, lower_calls) apart from the code around it: its
        own lines at depth 1, its own prologue and its own thread coordinates; restored afterwards."""
        saved = self.lines, self.depth, self.prologue, self._layout_names
        self.lines, self.depth, self.prologue, self._layout_names = [], 1, [], {}
        try:
            yield
        finally:
            self.lines, self.depth, self.prologue, self._layout_names = saved

    def source_comment(self, op) -> None:
        """A comment with the kernel source line of `op`: memory accesses are what users trace."""
        m = re.match(r"(.*):(\d+):\d+$", op.location or "")
        if m:
            text = linecache.getline(m.group(1), int(m.group(2))).strip()
            self.emit(comment(f"{m.group(1).rsplit('/', 1)[-1]}:{m.group(2)}: {text}" if text else op.location))

    def unsupported(self, op, reason: str = "", alternative: str = ""):
        return UnsupportedOperationError(op.name if hasattr(op, "name") else str(op),
                                         source_line(getattr(op, "location", "") or self.last_location),
                                         reason, alternative)

    def refuse(self, key: str, op=None, **fields):
        """The catalog's error for `key` (see triton_metal.refusals), at `op`'s source line."""
        location = (getattr(op, "location", "") if op is not None else "") or self.last_location
        return refuse(key, source_line(location), **fields)

    # ---- values ---------------------------------------------------------------------------
    def var(self, value) -> Var:
        return self.vars[value.id]

    def ctype(self, value, unsigned: bool = False) -> str:
        element = value.type.element
        if element == "f64" or element == "!tt.ptr<f64>":
            raise self.refuse("fp64")
        try:
            return msl_scalar(element, unsigned, self.device_space)
        except KeyError:
            raise UnsupportedOperationError(f"type {element}", source_line(self.last_location),
                                            "no Metal equivalent") from None

    def nregs(self, value) -> int:
        return value.layout.num_regs if value.type.is_tensor else 0

    def define(self, value, exprs, hint: str = "") -> Var:
        """Define `value` from one MSL expression (a scalar or uniform tensor), or from a function
        of the register index expression (a register array, written as a loop over own_names.REG)."""
        ctype = self.ctype(value)
        name = self.fresh(hint or value.name_hint)
        if isinstance(exprs, str):
            var = Var(name, ctype, self.nregs(value), uniform=value.type.is_tensor)
            self.emit(f"{ctype} {name} = {exprs};")
        else:
            n = self.nregs(value)
            var = Var(name, ctype, n)
            self.emit(f"{ctype} {name}[{n}];")
            self.emit_loop(n, lambda i: f"{name}[{i}] = {exprs(i)};")
        self.vars[value.id] = var
        return var

    def alias(self, value, var: Var) -> Var:
        self.vars[value.id] = var
        return var

    def declare_array(self, value, hint: str = "") -> Var:
        n = self.nregs(value)
        var = Var(self.fresh(hint or value.name_hint), self.ctype(value), n)
        self.emit(f"{var.ctype} {var.name}[{n}];" if n else f"{var.ctype} {var.name};")
        return var

    def emit_loop(self, n: int, body) -> None:
        """One statement per register: ``body(i)`` is its text for register expression ``i`` (a digit,
        or own_names.REG, the loop's index)."""
        if n == 1:
            self.emit(body("0"))
        else:
            self.emit(f"for (uint {REG} = 0; {REG} < {n}; ++{REG}) {body(REG)}")

    def emit_block_loop(self, index: str, count: int, body, step: int = 1) -> None:
        """``body(i)`` (which emits lines) for i = 0, step, ... below `count`: once with "0" when that is
        the only value, else inside ``for (uint index ...) { ... }``."""
        if count == step:
            body("0")
            return
        increment = f"++{index}" if step == 1 else f"{index} += {step}"
        self.emit(f"for (uint {index} = 0; {index} < {count}; {increment}) {{")
        self.depth += 1
        body(index)
        self.depth -= 1
        self.emit("}")

    def assign(self, dst: Var, src: Var) -> None:
        if dst.nregs == 0:
            self.emit(f"{dst.name} = {src.at(0)};")
        else:
            self.emit_loop(dst.nregs, lambda i: f"{dst.name}[{i}] = {src.at(i)};")

    def assign_all(self, dsts, srcs) -> None:
        """dsts[k] = srcs[k] for all k at once (a yield may swap loop-carried values)."""
        dst_names = {d.name for d in dsts}
        clash = any(s.name in dst_names and s.name != d.name for d, s in zip(dsts, srcs))
        if clash:
            temps = []
            for d, s in zip(dsts, srcs):
                if d.name == s.name:  # stays in place (and may be no register array: lower_dot.Fragments)
                    temps.append(s)
                    continue
                t = Var(self.fresh_own("yielded"), s.ctype, s.nregs)
                self.emit(f"{t.ctype} {t.name}[{t.nregs}];" if t.nregs else f"{t.ctype} {t.name};")
                self.assign(t, s)
                temps.append(t)
            srcs = temps
        for d, s in zip(dsts, srcs):
            if d.name != s.name:
                self.assign(d, s)

    # ---- math -------------------------------------------------------------------------------
    def math_prefix(self, element: str) -> str:
        """The namespace of the math functions on `element` values: `fast::` or `precise::` for float, as
        the kernel's fast-math option says; none for half (bfloat is computed in float)."""
        if element != "f32":
            return ""
        return "fast::" if self.options.fast_math else "precise::"

    # ---- layouts --------------------------------------------------------------------------
    def thread_coord(self, layout: LinearLayout, dim: int) -> str:
        """Name of the prologue variable holding this thread's coordinate part along `dim`."""
        key = (layout, dim)
        if key not in self._layout_names:
            lane = bits_expr(LANE, layout.lane_bases, dim)
            warp = bits_expr(SIMD, layout.warp_bases, dim)
            expr = " ^ ".join(e for e in (lane, warp) if e != "0") or "0"
            if expr == "0":
                self._layout_names[key] = "0"
            else:
                name = self.fresh_own(f"thread_coord{len(self._layout_names)}_d{dim}")
                shape = "x".join(map(str, layout.shape))
                self.prologue.append(f"    const int {name} = {expr};  // tensor<{shape}>, dim {dim}")
                self._layout_names[key] = name
        return self._layout_names[key]

    def coord_expr(self, layout: LinearLayout, dim: int, reg: str = REG) -> str:
        """MSL expression of the coordinate along `dim` of register `reg` of this thread."""
        if reg.isdigit():
            reg_part = str(layout.reg_coords[int(reg)][dim])
        else:
            reg_part = bits_expr(reg, layout.reg_bases, dim)
        thread = self.thread_coord(layout, dim)
        parts = [p for p in (reg_part, thread) if p != "0"]
        if not parts:
            return "0"
        # Parenthesised whenever it contains `^`, which binds more loosely than `+` and `*`.
        return f"({' ^ '.join(parts)})" if len(parts) > 1 or "^" in parts[0] else parts[0]

    # ---- threadgroup memory ------------------------------------------------------------------
    @property
    def current_op(self):
        return self.op_stack[-1] if self.op_stack else None

    @property
    def shared_bytes(self) -> int:
        """Threadgroup bytes taken by the blocks living during the op being lowered: its scratch may
        use MAX_THREADGROUP_MEMORY minus this."""
        return self.arena.bytes_live(self.current_op)

    def scratch(self, ctype: str, nbytes: int, offset: int = 0) -> str:
        """A pointer expression to byte `offset` of the threadgroup scratch of the op being lowered
        (`nbytes` in use; the calls of one op share one scratch block of the arena)."""
        self.scratch_bytes = max(self.scratch_bytes, nbytes)
        return f"({threadgroup_pointer(ctype)})({ARENA} + {self.arena.scratch(self.current_op, nbytes, offset)})"

    def barrier(self) -> None:
        self.emit("threadgroup_barrier(mem_flags::mem_threadgroup);")

    # ---- ops ------------------------------------------------------------------------------
    def lower_block(self, block) -> None:
        for op in block.ops:
            self.lower_op(op)

    def lower_op(self, op) -> None:
        if op.location:
            self.last_location = op.location
        fn = LOWERINGS.get(op.name)
        if fn is None:
            raise self.unsupported(op)
        if op.name not in FP8_STORAGE_OPS and (fp8 := fp8_element(op)):
            raise self.refuse("fp8", op, kind=op.name, dtype=fp8)
        log(2, "op mapping: %s -> %s.%s", op.name, fn.__module__.rsplit(".", 1)[-1], fn.__name__)
        if op.name in SOURCE_COMMENTED_OPS:
            self.source_comment(op)
        self.op_stack.append(op)
        try:
            fn(self, op)
        finally:
            self.op_stack.pop()
        release = self.arena.release_point(op)  # buffers dead from here: a barrier if scratch reuses them
        if release:
            self.emit(release)
