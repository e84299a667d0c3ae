"""Random expression trees of elementwise ops, casts and reductions, as Triton code and as numpy.

A tree is built from the kernel's masked inputs x, y, z; each node knows its Triton source and
evaluates itself in numpy with the Triton semantics the backend implements (wrapping integers,
truncating division, saturating float -> int casts). Float trees are evaluated in float32 step by
step, so they match exactly except after float sums (summation order); discontinuous ops (floor,
comparisons, casts to int) are never applied to such inexact values.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ops.table import wrap


@dataclass
class Node:
    src: str
    value: np.ndarray  # numpy result, in the kernel dtype's numpy type
    bound: np.ndarray  # float64 bound on |intermediate values| (for the float tolerance)
    exact: bool


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
            return Node(f"tl.full({self.shape}, {c!r}, {ty})", arr, np.abs(arr).astype(np.float64), True)
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
        ops = ["neg", "abs"] + (["floor", "sqrt", "half"] if f else ["not"])
        op = self.rng.choice(ops)
        if op == "floor" and not a.exact:
            op = "abs"
        with np.errstate(all="ignore"):
            if op == "neg":
                return Node(f"(-{a.src})", -a.value, a.bound, a.exact)
            if op == "abs":
                return Node(f"tl.abs({a.src})", np.abs(a.value), a.bound, a.exact)
            if op == "floor":
                return Node(f"tl.floor({a.src})", np.floor(a.value), a.bound + 1, a.exact)
            if op == "sqrt":
                return Node(f"tl.sqrt(tl.abs({a.src}))", np.sqrt(np.abs(a.value)), np.sqrt(a.bound), a.exact)
            if op == "half":
                return Node(f"({a.src} * 0.5)", a.value * np.float32(0.5), a.bound * 0.5, a.exact)
            return Node(f"(~{a.src})", ~a.value, a.bound + 1, a.exact)

    def binary(self, a: Node, b: Node) -> Node:
        f = self.dtype == "f32"
        ops = ["add", "sub", "mul", "max", "min", "where"] + ([] if f else ["and", "or", "xor", "div", "mod", "shl"])
        op = self.rng.choice(ops)
        exact = a.exact and b.exact
        if op == "where" and not exact:
            op = "max"
        bound = np.maximum(a.bound, b.bound)
        with np.errstate(all="ignore"):
            if op == "add":
                return Node(f"({a.src} + {b.src})", a.value + b.value, a.bound + b.bound, exact)
            if op == "sub":
                return Node(f"({a.src} - {b.src})", a.value - b.value, a.bound + b.bound, exact)
            if op == "mul":
                return Node(f"({a.src} * {b.src})", a.value * b.value, a.bound * b.bound, exact)
            if op == "max":
                return Node(f"tl.maximum({a.src}, {b.src})", np.fmax(a.value, b.value), bound, exact)
            if op == "min":
                return Node(f"tl.minimum({a.src}, {b.src})", np.fmin(a.value, b.value), bound, exact)
            if op == "where":
                return Node(f"tl.where({a.src} < {b.src}, {a.src}, {b.src})", np.where(a.value < b.value, a.value,
                            b.value), bound, exact)
            if op == "and":
                return Node(f"({a.src} & {b.src})", a.value & b.value, bound, exact)
            if op == "or":
                return Node(f"({a.src} | {b.src})", a.value | b.value, bound, exact)
            if op == "xor":
                return Node(f"({a.src} ^ {b.src})", a.value ^ b.value, bound, exact)
            divisor = (b.value & 7) + 1
            if op == "div":
                return Node(f"({a.src} // (({b.src} & 7) + 1))", _trunc_div(a.value, divisor).astype(np.int32),
                            a.bound, exact)
            if op == "mod":
                q = _trunc_div(a.value, divisor)
                return Node(f"({a.src} % (({b.src} & 7) + 1))",
                            (a.value.astype(np.int64) - q * divisor).astype(np.int32), a.bound, exact)
            return Node(f"({a.src} << ({b.src} & 7))", wrap(a.value.astype(np.int64) << (b.value & 7).astype(np.int64),
                                                           "i32").reshape(a.value.shape), a.bound * 128, exact)

    def cast(self, a: Node) -> Node:
        if self.dtype == "f32":
            if not a.exact:
                return a
            kind = self.rng.choice(["i32", "f16"])
            if kind == "i32":
                return Node(f"{a.src}.to(tl.int32).to(tl.float32)", _sat_int32(a.value).astype(np.float32), a.bound,
                            True)
            with np.errstate(all="ignore"):
                v = a.value.astype(np.float16).astype(np.float32)
            return Node(f"{a.src}.to(tl.float16).to(tl.float32)", v, a.bound, True)
        kind = self.rng.choice(["i8", "u8", "f32"])
        if kind == "f32":  # int -> float rounds to nearest; back saturates
            return Node(f"{a.src}.to(tl.float32).to(tl.int32)", _sat_int32(a.value.astype(np.float32)), a.bound, True)
        np_t = np.int8 if kind == "i8" else np.uint8
        tl_t = "tl.int8" if kind == "i8" else "tl.uint8"
        return Node(f"{a.src}.to({tl_t}).to(tl.int32)", a.value.astype(np_t).astype(np.int32), a.bound, True)

    def reduce(self, a: Node) -> Node:
        axis = int(self.rng.integers(0, len(self.shape)))
        op = self.rng.choice(["sum", "max", "min"])
        fn = {"sum": np.sum, "max": np.max, "min": np.min}[op]
        with np.errstate(all="ignore"):
            v = fn(a.value, axis=axis, keepdims=True).astype(a.value.dtype)
        v = np.broadcast_to(v, self.shape)
        bound = np.broadcast_to((np.sum if op == "sum" else np.max)(a.bound, axis=axis, keepdims=True), self.shape)
        exact = a.exact and (op != "sum" or self.dtype == "i32")
        return Node(f"tl.broadcast_to(tl.{op}({a.src}, axis={axis}, keep_dims=True), {self.shape})", v, bound, exact)
