"""Generates @triton.jit kernels from expression text, so that one compiled kernel checks many ops.

Triton reads a kernel's source with `inspect`, so generated kernels are written to a file and
imported. A kernel evaluates a list of *cases*: each loads its inputs x, y, z (one slice of the
input buffers per case, in the case's shape), evaluates its expression and stores each result
(one output buffer per result, in the result's shape).
"""
from __future__ import annotations

import hashlib
import importlib.util
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

KERNEL_DIR = Path(tempfile.gettempdir()) / "triton_metal_conformance_kernels"

HEADER = '''import triton
import triton.language as tl
from triton.language.extra import libdevice  # noqa: F401


'''


@dataclass(frozen=True)
class Case:
    expr: str  # Triton expression of x, y, z (and helpers); a tuple expression for several results
    in_shape: tuple
    out_shapes: tuple  # one shape per result; () is a scalar
    prelude: str = ""  # statements before the expression (e.g. a nested combine function call)


def offsets(shape) -> str:
    """Row-major offsets of a block of `shape` (power-of-two dims), as a Triton expression."""
    if not shape:
        return "0"
    rank = len(shape)
    terms = []
    stride = int(np.prod(shape))
    for d, n in enumerate(shape):
        stride //= n
        index = ", ".join(":" if k == d else "None" for k in range(rank))
        ar = f"tl.arange(0, {n})" + (f"[{index}]" if rank > 1 else "")
        terms.append(ar if stride == 1 else f"{ar} * {stride}")
    return " + ".join(terms)


def kernel_source(name: str, cases, n_inputs: int = 3, helpers: str = "") -> str:
    n_out = sum(len(c.out_shapes) for c in cases)
    ins = ["x_ptr", "y_ptr", "z_ptr"][:n_inputs]
    outs = [f"o{k}" for k in range(n_out)]
    lines = [helpers, "@triton.jit", f"def {name}({', '.join(ins + outs)}):"]
    base, k = 0, 0
    for c in cases:
        numel = int(np.prod(c.in_shape)) if c.in_shape else 1
        offs = offsets(c.in_shape)
        lines.append(f"    offs = {base} + {offs}" if base else f"    offs = {offs}")
        for p, v in zip(ins, "xyz"):
            lines.append(f"    {v} = tl.load({p} + offs)")
        if c.prelude:
            lines += ["    " + line for line in c.prelude.splitlines()]
        results = [f"r{j}" for j in range(len(c.out_shapes))]
        lines.append(f"    {', '.join(results)} = {c.expr}")
        for r, shape in zip(results, c.out_shapes):
            lines.append(f"    tl.store(o{k} + {offsets(shape)}, {r})" if shape else f"    tl.store(o{k}, {r})")
            k += 1
        base += numel
    return HEADER + "\n".join(lines) + "\n"


def load_kernel(source: str, name: str):
    """Import kernel `name` from `source` (written once to a file named by its hash)."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    module_name = f"tm_ops_{digest}"
    if module_name in sys.modules:
        return getattr(sys.modules[module_name], name)
    KERNEL_DIR.mkdir(parents=True, exist_ok=True)
    path = KERNEL_DIR / f"{module_name}.py"
    if not path.exists():
        tmp = path.with_suffix(f".{digest}.tmp")
        tmp.write_text(source)
        tmp.replace(path)
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return getattr(module, name)
