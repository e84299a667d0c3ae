"""Random expression trees of elementwise ops, casts and reductions, as Triton code and as numpy.

A tree is built from the kernel's masked inputs x, y, z; each node knows its Triton source and
evaluates itself in numpy with the Triton semantics the backend implements (wrapping integers,
truncating division, saturating float -> int casts). Float trees are evaluated in float32 step by
step, so they match exactly except after float sums (summation order); discontinuous ops (floor,
comparisons, casts to int) are never applied to such inexact values.

Float trees evaluate as Apple GPUs compute (apple_numerics.py): ``a * b + c`` and ``a * b - c`` are one
fma (Triton's default fp fusion, written out by the code generator), and ``+ - *`` and fma flush subnormal
operands and results to a zero of their sign (measured on Apple GPUs). Every other op on a subnormal
operand (neg, abs, floor, sqrt, max, min, comparisons) may return the flushed or the IEEE result (MSL
spec 8.5): such elements, and everything computed from them, are ``open``, and the test does not check them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from conformance.ops.apple_numerics import TINY, flush, fma_exact, is_subnormal
from conformance.ops.table import wrap

FLOAT_TOL = 1e-5  # a float tree's tolerance, relative to its bound (test_fuzz.py)


@dataclass
class Node:
    src: str
    value: np.ndarray  # numpy result, in the kernel dtype's numpy type
    bound: np.ndarray  # float64 bound on |intermediate values| (for the float tolerance)
    exact: bool
    open: np.ndarray = None  # bool: elements whose value Apple's specification leaves open (not checked)
    product: tuple = field(default=None, repr=False)  # a float product node's operands: an add may fuse it
    const: float = None  # a constant leaf's value

    def __post_init__(self):
        if self.open is None:
            self.open = np.zeros(np.shape(self.value), dtype=bool)


def _f32(a):
    return np.asarray(a, dtype=np.float32)


def arith(fn, *operands):
    """Apple's float32 arithmetic: subnormal operands and the subnormal result flushed (measured)."""
    with np.errstate(all="ignore"):
        return flush(_f32(fn(*(flush(_f32(o), "f32") for o in operands))), "f32")


def fused(a, b, c):
    """fma(a, b, c) on Apple GPUs: one rounding, subnormal operands and result flushed."""
    a, b, c = (flush(_f32(v), "f32") for v in (a, b, c))
    return flush(fma_exact(a, b, c).astype(np.float32), "f32")


def touches_subnormal(*nodes) -> np.ndarray:
    """Elements where an op the measurements do not cover reads a subnormal, or an open value."""
    out = np.zeros(np.shape(nodes[0].value), dtype=bool)
    for n in nodes:
        out = out | n.open | (is_subnormal(n.value, "f32") if n.value.dtype == np.float32 else False)
    return out


def _sat_int32(a):
    with np.errstate(all="ignore"):
        t = np.trunc(a.astype(np.float64))
    t = np.where(np.isnan(t), 0, np.clip(t, -2.0**31, 2.0**31 - 1))
    return t.astype(np.int64).astype(np.int32)


def _trunc_div(a, b):
    a64, b64 = a.astype(np.int64), b.astype(np.int64)
    q = np.abs(a64) // np.abs(b64)
    return np.where((a64 < 0) != (b64 < 0), -q, q)


class TreeGen:
    """Random trees over the leaves x, y, z of one dtype ('f32' or 'i32') and shape."""

    def __init__(self, rng, dtype, shape, leaves):
        self.rng, self.dtype, self.shape = rng, dtype, shape
        self.leaves = leaves  # name -> numpy array

    def leaf(self) -> Node:
        r = self.rng.random()
        if r < 0.15:
            c = int(self.rng.integers(-5, 6)) if self.dtype == "i32" else float(self.rng.integers(-8, 9)) / 4
            arr = np.full(self.shape, c, dtype=np.int32 if self.dtype == "i32" else np.float32)
            ty = "tl.int32" if self.dtype == "i32" else "tl.float32"
            return Node(f"tl.full({self.shape}, {c!r}, {ty})", arr, np.abs(arr).astype(np.float64), True, const=c)
        name = "xyz"[int(self.rng.integers(0, 3))]
        arr = self.leaves[name]
        return Node(name, arr, np.abs(arr).astype(np.float64), True)

    def tree(self, depth) -> Node:
        if depth == 0 or self.rng.random() < 0.2:
            return self.leaf()
        kind = self.rng.choice(["unary", "binary", "binary", "cast", "reduce"])
        if kind == "unary":
            return self.unary(self.tree(depth - 1))
        if kind == "cast":
            return self.cast(self.tree(depth - 1))
        if kind == "reduce":
            return self.reduce(self.tree(depth - 1))
        return self.binary(self.tree(depth - 1), self.tree(depth - 1))

    # ---- nodes ---------------------------------------------------------------------------------
    def unary(self, a: Node) -> Node:
        f = self.dtype == "f32"
        ops = ["neg", "abs"] + (["floor", "sqrt", "half", "tiny"] if f else ["not"])
        op = self.rng.choice(ops)
        if op == "floor" and not a.exact:
            op = "abs"
        if not f:
            with np.errstate(all="ignore"):
                if op == "neg":
                    return Node(f"(-{a.src})", -a.value, a.bound, a.exact, a.open)
                if op == "abs":
                    return Node(f"tl.abs({a.src})", np.abs(a.value), a.bound, a.exact, a.open)
                return Node(f"(~{a.src})", ~a.value, a.bound + 1, a.exact, a.open)
        unsure = touches_subnormal(a)  # neg, abs, floor, sqrt of a subnormal: flushed or not (MSL 8.5)
        with np.errstate(all="ignore"):
            if op == "neg":
                return Node(f"(-{a.src})", -a.value, a.bound, a.exact, unsure)
            if op == "abs":
                return Node(f"tl.abs({a.src})", np.abs(a.value), a.bound, a.exact, unsure)
            if op == "floor":
                return Node(f"tl.floor({a.src})", np.floor(a.value), a.bound + 1, a.exact, unsure)
            if op == "sqrt":
                return Node(f"tl.sqrt(tl.abs({a.src}))", np.sqrt(np.abs(a.value)), np.sqrt(a.bound), a.exact, unsure)
            # Products with a constant: 0.5, or 2^-126 (the smallest normal), whose results are subnormal
            # for |a| < 1 and then flushed.
            c = np.float32(0.5) if op == "half" else np.float32(2.0 ** -126)
            src = f"({a.src} * 0.5)" if op == "half" else f"({a.src} * {float(c)!r})"
            k = np.full(np.shape(a.value), c, dtype=np.float32)
            if a.const is not None:  # constants fold when the kernel is compiled, in IEEE arithmetic
                v = a.value * k
                return Node(src, v, np.abs(v).astype(np.float64), True, const=float(v.flat[0]))
            return Node(src, arith(np.multiply, a.value, k), a.bound * float(c), a.exact, a.open, (a.value, k))

    def binary(self, a: Node, b: Node) -> Node:
        f = self.dtype == "f32"
        ops = ["add", "sub", "mul", "max", "min", "where"] + ([] if f else ["and", "or", "xor", "div", "mod", "shl"])
        op = self.rng.choice(ops)
        exact = a.exact and b.exact
        if op == "where" and not exact:
            op = "max"
        bound = np.maximum(a.bound, b.bound)
        if f:
            return self.float_binary(op, a, b, exact, bound)
        opened = a.open | b.open
        with np.errstate(all="ignore"):
            if op == "add":
                return Node(f"({a.src} + {b.src})", a.value + b.value, a.bound + b.bound, exact, opened)
            if op == "sub":
                return Node(f"({a.src} - {b.src})", a.value - b.value, a.bound + b.bound, exact, opened)
            if op == "mul":
                return Node(f"({a.src} * {b.src})", a.value * b.value, a.bound * b.bound, exact, opened)
            if op == "max":
                return Node(f"tl.maximum({a.src}, {b.src})", np.fmax(a.value, b.value), bound, exact, opened)
            if op == "min":
                return Node(f"tl.minimum({a.src}, {b.src})", np.fmin(a.value, b.value), bound, exact, opened)
            if op == "where":
                return Node(f"tl.where({a.src} < {b.src}, {a.src}, {b.src})", np.where(a.value < b.value, a.value,
                            b.value), bound, exact, opened)
            if op == "and":
                return Node(f"({a.src} & {b.src})", a.value & b.value, bound, exact, opened)
            if op == "or":
                return Node(f"({a.src} | {b.src})", a.value | b.value, bound, exact, opened)
            if op == "xor":
                return Node(f"({a.src} ^ {b.src})", a.value ^ b.value, bound, exact, opened)
            divisor = (b.value & 7) + 1
            if op == "div":
                return Node(f"({a.src} // (({b.src} & 7) + 1))", _trunc_div(a.value, divisor).astype(np.int32),
                            a.bound, exact, opened)
            if op == "mod":
                q = _trunc_div(a.value, divisor)
                return Node(f"({a.src} % (({b.src} & 7) + 1))",
                            (a.value.astype(np.int64) - q * divisor).astype(np.int32), a.bound, exact, opened)
            return Node(f"({a.src} << ({b.src} & 7))", wrap(a.value.astype(np.int64) << (b.value & 7).astype(np.int64),
                                                           "i32").reshape(a.value.shape), a.bound * 128, exact, opened)

    def float_binary(self, op, a: Node, b: Node, exact: bool, bound) -> Node:
        """A float op as Apple GPUs compute it (see the module docstring)."""
        opened = a.open | b.open
        if a.const is not None and b.const is not None and op in ("add", "sub", "mul"):
            v = {"add": np.add, "sub": np.subtract, "mul": np.multiply}[op](a.value, b.value)  # folded, IEEE
            sym = {"add": "+", "sub": "-", "mul": "*"}[op]
            return Node(f"({a.src} {sym} {b.src})", v, np.abs(v).astype(np.float64), True, const=float(v.flat[0]))
        if op in ("add", "sub"):
            sym, sign = ("+", 1) if op == "add" else ("-", -1)
            src = f"({a.src} {sym} {b.src})"
            if op == "sub" and b.const == 0.0:  # x - 0.0 folds to x (x + 0.0 does not: -0.0 + 0.0 is +0.0)
                return Node(src, a.value, a.bound, a.exact, a.open, a.product)
            if a.product is not None:  # fma(p, q, +-b): the code generator fuses the first operand's product
                value = fused(*a.product, sign * b.value)
            elif b.product is not None:  # a +- p*q = fma(+-p, q, a)
                p, q = b.product
                value = fused(sign * p, q, a.value)
            else:
                value = arith(np.add if op == "add" else np.subtract, a.value, b.value)
            return Node(src, value, a.bound + b.bound, exact, opened)
        if op == "mul":
            src = f"({a.src} * {b.src})"
            one = b if a.const == 1.0 else a if b.const == 1.0 else None
            if one is not None:  # x * 1.0 folds to x before any code is generated: no multiplication
                return Node(src, one.value, one.bound, one.exact, one.open, one.product)
            return Node(src, arith(np.multiply, a.value, b.value), a.bound * b.bound, exact, opened, (a.value, b.value))
        unsure = touches_subnormal(a, b)  # max, min, comparisons of a subnormal: flushed or not (MSL 8.5)
        if op == "max":
            return Node(f"tl.maximum({a.src}, {b.src})", np.fmax(a.value, b.value), bound, exact, unsure)
        if op == "min":
            return Node(f"tl.minimum({a.src}, {b.src})", np.fmin(a.value, b.value), bound, exact, unsure)
        return Node(f"tl.where({a.src} < {b.src}, {a.src}, {b.src})", np.where(a.value < b.value, a.value, b.value),
                    bound, exact, unsure)

    def cast(self, a: Node) -> Node:
        if self.dtype == "f32":
            if not a.exact:
                return a
            kind = self.rng.choice(["i32", "f16"])
            # A subnormal float becomes 0 as an integer and +-0 as a half whether it was flushed or not.
            if kind == "i32":
                return Node(f"{a.src}.to(tl.int32).to(tl.float32)", _sat_int32(a.value).astype(np.float32), a.bound,
                            True, a.open)
            with np.errstate(all="ignore"):
                v = a.value.astype(np.float16).astype(np.float32)
            return Node(f"{a.src}.to(tl.float16).to(tl.float32)", v, a.bound, True, a.open)
        kind = self.rng.choice(["i8", "u8", "f32"])
        if kind == "f32":  # int -> float rounds to nearest; back saturates
            return Node(f"{a.src}.to(tl.float32).to(tl.int32)", _sat_int32(a.value.astype(np.float32)), a.bound, True,
                        a.open)
        np_t = np.int8 if kind == "i8" else np.uint8
        tl_t = "tl.int8" if kind == "i8" else "tl.uint8"
        return Node(f"{a.src}.to({tl_t}).to(tl.int32)", a.value.astype(np_t).astype(np.int32), a.bound, True, a.open)

    def reduce(self, a: Node) -> Node:
        axis = int(self.rng.integers(0, len(self.shape)))
        op = self.rng.choice(["sum", "max", "min"])
        fn = {"sum": np.sum, "max": np.max, "min": np.min}[op]
        f = self.dtype == "f32"
        # A float sum adds: subnormal elements count as zeros, and so may partial sums (each one's loss is below
        # the smallest normal; their order is the kernel's), which the tolerance covers unless the terms are so
        # small that it does not: then the sum is open. A max or min reading a subnormal is open.
        values = flush(a.value, "f32") if f and op == "sum" else a.value
        unsure = touches_subnormal(a) if f and op != "sum" else a.open
        if f and op == "sum":
            terms = self.shape[axis]
            unsure = unsure | (np.sum(a.bound, axis=axis, keepdims=True) * FLOAT_TOL < terms * TINY["f32"])
        with np.errstate(all="ignore"):
            v = fn(values, axis=axis, keepdims=True).astype(a.value.dtype)
        v = np.broadcast_to(v, self.shape)
        opened = np.broadcast_to(np.any(unsure, axis=axis, keepdims=True), self.shape)
        bound = np.broadcast_to((np.sum if op == "sum" else np.max)(a.bound, axis=axis, keepdims=True), self.shape)
        exact = a.exact and (op != "sum" or self.dtype == "i32")
        return Node(f"tl.broadcast_to(tl.{op}({a.src}, axis={axis}, keep_dims=True), {self.shape})", v, bound, exact,
                    opened)
