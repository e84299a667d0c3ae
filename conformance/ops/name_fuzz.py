"""Random kernels whose every variable has a random name, for the differential test against Triton's
interpreter (test_name_fuzz.py; issue 22).

A kernel loads two float32 blocks and an int32 block and evaluates random expression trees over
them, one named variable per node: elementwise arithmetic, casts between float32, float16, bfloat16
and int32, reductions (sum, max, min, broadcast back), scans (tl.cumsum, forward or reverse, and
tl.associative_scan with a combine function of random name), and joins (tl.join with tl.max / tl.sum
over the new axis, or tl.split back). Names come from the MSL/C++/Metal tables, the Metal attribute
names, the code generator's own names, unicode and random identifiers.

Each node also carries its exact value under Triton's semantics (every elementwise op rounded once to
its type, wrapping integers) and a bound on how far a correct implementation may be from it: zero
unless a float sum or scan is involved, whose order is free. Where the interpreter is itself
inexact, the value is the reference for both: it sums float16 in numpy with a rounding per step,
and computes bfloat16 arithmetic on the raw bit patterns (so trees that touch bfloat16 are checked
against the exact value only).

``python conformance/ops/name_fuzz.py OUT.npz MODULE.py SEED ...`` runs kernels (under
TRITON_INTERPRET=1, the interpreter) and saves their outputs.
"""
from __future__ import annotations

import importlib.util
import keyword
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHAPES = [(4, 8), (8, 16), (16, 32), (2, 64), (32, 4), (16, 16), (4, 32)]
FLOATS = ("f32", "f16", "bf16")
TL_TYPES = {"f32": "tl.float32", "f16": "tl.float16", "bf16": "tl.bfloat16", "i32": "tl.int32"}
UNIT = {"f32": 2.0 ** -24, "f16": 2.0 ** -11, "bf16": 2.0 ** -8}  # unit roundoff
MAX_FINITE = {"f32": 3e38, "f16": 60000.0, "bf16": 3e38}
EXACT_INT = {"f32": 2 ** 24, "f16": 2 ** 11, "bf16": 2 ** 8}
KERNEL_GLOBALS = frozenset({"tl", "triton", "range"})


# ---- rounding to each type, from exact float64 values ----------------------------------------------
def _round_bf16(v: np.ndarray) -> np.ndarray:
    bits = np.asarray(v, dtype=np.float32).view(np.uint32).astype(np.uint64)
    bits = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    return bits.astype(np.uint32).view(np.float32).astype(np.float64)


def round_to(dtype: str, v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    if dtype == "f32":
        return v.astype(np.float32).astype(np.float64)
    if dtype == "f16":  # in float, then to half: as numpy, g++'s _Float16 and bfloat do (exact but in rare ties)
        return v.astype(np.float32).astype(np.float16).astype(np.float64)
    if dtype == "bf16":  # MSL computes bfloat in float and rounds the float: so does the reference
        return _round_bf16(v.astype(np.float32))
    return wrap(v)


def wrap(v) -> np.ndarray:
    return ((np.asarray(v).astype(np.int64) + 2 ** 31) % 2 ** 32 - 2 ** 31).astype(np.int64)


def _widest(dtype: str) -> str:
    """The type of tl.max / tl.min of `dtype`: Triton's frontend takes 16-bit floats to float32 first."""
    return "f32" if dtype in ("f16", "bf16") else dtype


# ---- names ------------------------------------------------------------------------------------------
def usable(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name) and name not in KERNEL_GLOBALS


def name_pool() -> list:
    """Every name the test draws from (deterministic order)."""
    from triton_metal.codegen.msl_text import OWN_FIXED
    from triton_metal.codegen.msl_words import MLX_ATTRIBUTES, OWN_PREFIX, RESERVED_WORDS
    former = ["i", "j", "g", "m", "k", "r", "n", "lane", "simd", "line", "base", "at", "round", "acc0", "x0", "r0",
              "peer", "combined", "staging", "program_id", "num_programs", "scratch", "bin", "poll"]
    unicode = ["αβγ", "переменная", "变量", "ñandú", "Ωmega", "x̄", "ｊ", "ℌ", "µ", "Åström", "𝔵", "ⅷ", "a·b",
               "ᐊᐃ", "tm_ü", "_ñ", "_", "__", "_x"]
    own = sorted(OWN_FIXED) + [n[len(OWN_PREFIX):] for n in sorted(OWN_FIXED)]
    names = former + unicode + own + sorted(RESERVED_WORDS) + sorted(MLX_ATTRIBUTES)
    return [n for n in dict.fromkeys(names) if usable(n)]


class Names:
    """Fresh names for one kernel module: each distinct as Python reads it (NFKC)."""

    LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"

    def __init__(self, rng, pool):
        self.rng, self.pool, self.taken = rng, pool, set()

    def __call__(self, ascii_only: bool = False) -> str:
        for _ in range(1000):
            if self.rng.random() < 0.8:
                name = self.pool[int(self.rng.integers(0, len(self.pool)))]
            else:
                length = int(self.rng.integers(1, 6))
                chars = [self.LETTERS[int(self.rng.integers(0, len(self.LETTERS)))] for _ in range(length)]
                name = "".join(chars) + (str(int(self.rng.integers(0, 10))) if self.rng.random() < 0.3 else "")
            key = unicodedata.normalize("NFKC", name)
            fresh = key not in self.taken and key not in KERNEL_GLOBALS  # (as Python reads it: NFKC)
            if usable(name) and fresh and (name.isascii() or not ascii_only):
                self.taken.add(key)
                return name
        raise RuntimeError("no fresh name left")


# ---- trees ------------------------------------------------------------------------------------------
@dataclass
class Node:
    name: str
    dtype: str
    value: np.ndarray  # exact value under the kernel's semantics (float64, or int64 for i32)
    err: np.ndarray    # bound on |a correct result - value| (float64; 0 where exact)
    bf16: bool         # touched bfloat16 (the interpreter computes it on bit patterns)

    @property
    def exact(self) -> bool:
        return not np.any(self.err)

    @property
    def magnitude(self) -> float:
        return float(np.max(np.abs(self.value))) if self.value.size else 0.0


class TreeGen:
    def __init__(self, rng, shape, leaves: dict, names: Names, lines: list, combine: str):
        self.rng, self.shape, self.leaves, self.names, self.lines = rng, shape, leaves, names, lines
        self.combine = combine  # a @triton.jit maximum of random name, for tl.associative_scan

    def choice(self, options):
        return options[int(self.rng.integers(0, len(options)))]

    def emit(self, expr: str, dtype: str, value, err, bf16: bool) -> Node:
        name = self.names()
        self.lines.append(f"    {name} = {expr}")
        err = np.broadcast_to(np.asarray(err, dtype=np.float64), self.shape).copy()
        return Node(name, dtype, np.broadcast_to(value, self.shape).copy(), err, bf16 or dtype == "bf16")

    def tree(self, depth: int) -> Node:
        if depth == 0 or self.rng.random() < 0.15:
            return self.leaves[self.choice(sorted(self.leaves))]
        kind = self.choice(["unary", "binary", "binary", "cast", "cast", "reduce", "scan", "join"])
        if kind == "binary":
            return self.binary(self.tree(depth - 1), self.tree(depth - 1))
        if kind == "join":
            return self.join(self.tree(depth - 1), self.tree(depth - 1))
        return getattr(self, kind)(self.tree(depth - 1))

    # ---- nodes -----------------------------------------------------------------------------------
    def unary(self, a: Node) -> Node:
        op = self.choice(["neg", "abs"])
        if a.dtype == "i32":
            value = wrap(-a.value) if op == "neg" else wrap(np.abs(a.value))
        else:
            value = -a.value if op == "neg" else np.abs(a.value)
        return self.emit(f"-{a.name}" if op == "neg" else f"tl.abs({a.name})", a.dtype, value, a.err, a.bf16)

    def cast(self, a: Node, to: str | None = None) -> Node:
        to = to or self.choice([d for d in (*FLOATS, "i32") if d != a.dtype])
        if not self._castable(a, to):
            return a
        if to == "i32":  # truncation toward zero, of an exact value in range
            value = np.trunc(a.value).astype(np.int64)
            err = 0.0
        else:
            value = round_to(to, a.value)
            err = 0.0 if a.exact else a.err + 2 * UNIT[to] * np.abs(a.value) + UNIT[to] * a.err
        return self.emit(f"{a.name}.to({TL_TYPES[to]})", to, value, err, a.bf16)

    def _castable(self, a: Node, to: str) -> bool:
        if to == a.dtype:
            return False
        if to == "i32":
            return a.exact and a.magnitude < 2.0 ** 30
        return a.magnitude < MAX_FINITE[to]

    def _same_type(self, a: Node, b: Node):
        if a.dtype == b.dtype:
            return a, b
        if self._castable(b, a.dtype):
            return a, self.cast(b, a.dtype)
        if self._castable(a, b.dtype):
            return self.cast(a, b.dtype), b
        return None

    def binary(self, a: Node, b: Node) -> Node:
        pair = self._same_type(a, b)
        if pair is None:
            return a
        a, b = pair
        dtype, bf16 = a.dtype, a.bf16 or b.bf16
        ops = ["add", "sub", "mul", "max", "min"] + (["where"] if a.exact and b.exact else [])
        op = self.choice(ops)
        if op == "mul" and dtype in FLOATS and a.magnitude * b.magnitude * 2 > MAX_FINITE[dtype]:
            op = "max"
        if op in ("max", "min", "where"):
            pick = {"max": np.maximum, "min": np.minimum}
            if op == "where":
                value = np.where(a.value < b.value, a.value, b.value)
                expr = f"tl.where({a.name} < {b.name}, {a.name}, {b.name})"
            else:
                value, expr = pick[op](a.value, b.value), f"tl.{op}imum({a.name}, {b.name})"
            return self.emit(expr, dtype, value, np.maximum(a.err, b.err), bf16)
        symbol = {"add": "+", "sub": "-", "mul": "*"}[op]
        exact = {"add": a.value + b.value, "sub": a.value - b.value, "mul": a.value * b.value}[op]
        if dtype == "i32":
            return self.emit(f"{a.name} {symbol} {b.name}", dtype, wrap(exact), 0.0, bf16)
        if op == "mul":
            err = np.abs(a.value) * b.err + np.abs(b.value) * a.err + a.err * b.err
        else:
            err = a.err + b.err
        err = err + (2 * UNIT[dtype] * (np.abs(exact) + err) if np.any(err) else 0.0)
        return self.emit(f"{a.name} {symbol} {b.name}", dtype, round_to(dtype, exact), err, bf16)

    def _summed(self, a: Node, total, count: int, absolute):
        """Value and error bound of a float sum of `count` terms in any order (each step may round)."""
        value = round_to(a.dtype, total)
        err = (count * UNIT[a.dtype] * absolute + UNIT[a.dtype] * np.abs(total)) * 2 + count * a.err
        return value, err

    def reduce(self, a: Node) -> Node:
        axis = int(self.rng.integers(0, 2))
        op = self.choice(["sum", "max", "min"])
        count = self.shape[axis]
        if op == "sum" and a.dtype in FLOATS and a.magnitude * count * 2 > MAX_FINITE[a.dtype]:
            op = "max"
        expr = f"tl.broadcast_to(tl.{op}({a.name}, axis={axis}, keep_dims=True), {self.shape})"
        if op != "sum":
            value = (np.max if op == "max" else np.min)(a.value, axis=axis, keepdims=True)
            return self.emit(expr, _widest(a.dtype), value, np.max(a.err, axis=axis, keepdims=True), a.bf16)
        total = np.sum(a.value, axis=axis, keepdims=True)
        if a.dtype == "i32":
            return self.emit(expr, "i32", wrap(total), 0.0, a.bf16)
        value, err = self._summed(a, total, count, np.sum(np.abs(a.value), axis=axis, keepdims=True))
        return self.emit(expr, a.dtype, value, np.max(err, axis=axis, keepdims=True) if np.any(err) else 0.0,
                         a.bf16)

    def scan(self, a: Node) -> Node:
        axis = int(self.rng.integers(0, 2))
        reverse = bool(self.rng.random() < 0.3)
        count = self.shape[axis]
        flip = (lambda v: np.flip(v, axis=axis)) if reverse else (lambda v: v)
        rev = ", reverse=True" if reverse else ""
        if self.rng.random() < 0.4:  # the user's combine function: a running maximum
            value = flip(np.maximum.accumulate(flip(a.value), axis=axis))
            err = np.broadcast_to(np.max(a.err, axis=axis, keepdims=True), self.shape)
            return self.emit(f"tl.associative_scan({a.name}, {axis}, {self.combine}{rev})", a.dtype, value, err,
                             a.bf16)
        if a.dtype in FLOATS and a.magnitude * count * 2 > MAX_FINITE[a.dtype]:
            return a
        running = flip(np.cumsum(flip(a.value), axis=axis))
        expr = f"tl.cumsum({a.name}, axis={axis}{rev})"
        if a.dtype == "i32":
            return self.emit(expr, "i32", wrap(running), 0.0, a.bf16)
        absolute = flip(np.cumsum(flip(np.abs(a.value)), axis=axis))
        value, err = self._summed(a, running, count, absolute)
        return self.emit(expr, a.dtype, value, err if np.any(err) else 0.0, a.bf16)

    def join(self, a: Node, b: Node) -> Node:
        pair = self._same_type(a, b)
        if pair is None:
            return a
        a, b = pair
        kind = self.choice(["max", "sum", "split"])
        if kind == "split":
            first, second = self.names(), self.names()
            self.lines.append(f"    {first}, {second} = tl.split(tl.join({a.name}, {b.name}))")
            return Node(second, b.dtype, b.value, b.err, b.bf16) if self.rng.random() < 0.5 else \
                Node(first, a.dtype, a.value, a.err, a.bf16)
        expr = f"tl.{kind}(tl.join({a.name}, {b.name}), axis=2)"
        if kind == "max":
            return self.emit(expr, _widest(a.dtype), np.maximum(a.value, b.value), np.maximum(a.err, b.err),
                             a.bf16 or b.bf16)
        if a.dtype == "i32":
            return self.emit(expr, "i32", wrap(a.value + b.value), 0.0, a.bf16 or b.bf16)
        if a.dtype in FLOATS and (a.magnitude + b.magnitude) * 2 > MAX_FINITE[a.dtype]:
            return a
        err = a.err + b.err
        err = err + (2 * UNIT[a.dtype] * (np.abs(a.value + b.value) + err) if np.any(err) else 0.0)
        return self.emit(expr, a.dtype, round_to(a.dtype, a.value + b.value), err, a.bf16 or b.bf16)


# ---- kernels ----------------------------------------------------------------------------------------
@dataclass
class FuzzKernel:
    source: str
    name: str          # the kernel's Python name
    shape: tuple
    trees: list        # the final Node of each tree
    num_warps: int


def inputs(seed: int, shape) -> dict:
    """The kernel's inputs: float32 multiples of 1/8 and small int32 (sums of them are often exact)."""
    rng = np.random.default_rng(10_000 + seed)
    return {"x": (rng.integers(-24, 25, shape) / 8).astype(np.float32),
            "y": (rng.integers(-24, 25, shape) / 8).astype(np.float32),
            "z": rng.integers(-50, 51, shape).astype(np.int32)}


def make_kernel(seed: int, trees: int, pool) -> FuzzKernel:
    rng = np.random.default_rng(seed)
    names = Names(rng, pool)
    shape = SHAPES[int(rng.integers(0, len(SHAPES)))]
    kernel = names(ascii_only=True)  # Triton takes kernel names in ASCII only ("invalid function identifier")
    combine, p, q = names(), names(), names()
    x_ptr, y_ptr, z_ptr, out_f, out_i, offs = (names() for _ in range(6))
    data = inputs(seed, shape)
    lines = [
        f"    {offs} = tl.arange(0, {shape[0]})[:, None] * {shape[1]} + tl.arange(0, {shape[1]})[None, :]"]
    leaves = {}
    for key, ptr, dtype in (("x", x_ptr, "f32"), ("y", y_ptr, "f32"), ("z", z_ptr, "i32")):
        name = names()
        lines.append(f"    {name} = tl.load({ptr} + {offs})")
        value = data[key].astype(np.int64 if dtype == "i32" else np.float64)
        leaves[key] = Node(name, dtype, value, np.zeros(shape), False)
    gen = TreeGen(rng, shape, leaves, names, lines, combine)
    numel = shape[0] * shape[1]
    results = []
    for k in range(trees):
        node = gen.tree(int(rng.integers(1, 6)))
        if node.dtype == "i32":
            lines.append(f"    tl.store({out_i} + {k * numel} + {offs}, {node.name})")
        else:
            lines.append(f"    tl.store({out_f} + {k * numel} + {offs}, {node.name}.to(tl.float32))")
        results.append(node)
    source = "\n".join([
        "import triton", "import triton.language as tl", "", "",
        "@triton.jit", f"def {combine}({p}, {q}):", f"    return tl.maximum({p}, {q})", "", "",
        "@triton.jit", f"def {kernel}({x_ptr}, {y_ptr}, {z_ptr}, {out_f}, {out_i}):", *lines]) + "\n"
    return FuzzKernel(source, unicodedata.normalize("NFKC", kernel), shape, results,
                      int(rng.choice([1, 2, 4])))


def load(path: Path, module: str, source: str | None = None):
    if source is not None:
        path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(module, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[module] = mod
    spec.loader.exec_module(mod)
    return mod


def run(kernel_fn, seed: int, shape, trees: int, num_warps: int, device, **options) -> tuple:
    """(float outputs, int outputs) of one launch, as numpy arrays of shape (trees, *shape)."""
    import torch
    data = inputs(seed, shape)
    out_f = torch.full((trees, *shape), -7777.0, dtype=torch.float32, device=device)
    out_i = torch.full((trees, *shape), -7777, dtype=torch.int32, device=device)
    args = [torch.from_numpy(data[k]).to(device) for k in "xyz"]
    kernel_fn[(1,)](*args, out_f, out_i, num_warps=num_warps, **options)
    return out_f.cpu().numpy(), out_i.cpu().numpy()


def main(argv) -> int:
    """OUT.npz, then (module path, kernel name, seed, rows, cols, trees, num_warps) per kernel."""
    out, specs = argv[0], argv[1:]
    results = {}
    for k in range(0, len(specs), 7):
        path, name, seed, rows, cols, trees, warps = specs[k:k + 7]
        mod = load(Path(path), f"interp_{Path(path).stem}")
        f, i = run(getattr(mod, name), int(seed), (int(rows), int(cols)), int(trees), int(warps), "cpu")
        results[f"{seed}_f"], results[f"{seed}_i"] = f, i
    np.savez(out, **results)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
