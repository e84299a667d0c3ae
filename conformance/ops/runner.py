"""Runs op-table rows on the device, batched: one kernel per (batch, dtype) evaluates up to 24 results.

Inputs are seeded per (op, dtype, variant), so a failure reproduces alone. When a batch does not
compile, each row runs in its own kernel, so one failing op does not hide the others.
"""
from __future__ import annotations

import functools
import zlib

import numpy as np
import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from conformance.ops import table
from conformance.ops.dtypes import from_torch, make_input, to_torch
from conformance.ops.kernelgen import Case, kernel_source, load_kernel

MAX_OUTPUTS = 24  # + 3 inputs stays under Metal's 31 buffer arguments


def seed_of(*parts) -> int:
    return zlib.crc32("|".join(map(str, parts)).encode())


@functools.cache
def inputs_of(row, dtype, variant):
    shape, _ = variant
    rng = np.random.default_rng(seed_of(row.op, dtype, variant))
    return tuple(make_input(row.domain, dtype, shape, rng, k) for k in range(3))


@functools.cache
def reference_of(row, dtype, variant):
    x, y, z = inputs_of(row, dtype, variant)
    ref = row.ref(x, y, z, dtype, variant[1])
    return tuple(np.asarray(r) for r in (ref if isinstance(ref, tuple) else (ref,)))


@functools.cache
def alternative_of(row, dtype, variant):
    """The other results the MSL specification allows (Row.alt), as reference_of, or None."""
    if row.alt is None:
        return None
    x, y, z = inputs_of(row, dtype, variant)
    alt = row.alt(x, y, z, dtype, variant[1])
    return None if alt is None else tuple(np.asarray(r) for r in (alt if isinstance(alt, tuple) else (alt,)))


def case_of(row, dtype, variant) -> Case:
    return Case(row.source(dtype, variant[1]), variant[0], tuple(r.shape for r in reference_of(row, dtype, variant)))


def _kernel(items, dtype):
    cases = [case_of(row, dtype, v) for row, v in items]
    name = "op_table_kernel"
    return load_kernel(kernel_source(name, cases, helpers=table.HELPERS), name)


def _launch(items, dtype, device):
    """Runs `items` [(row, variant)] in one kernel; returns their outputs (numpy), in order."""
    kernel = _kernel(items, dtype)
    ins = [np.concatenate([inputs_of(row, dtype, v)[k].reshape(-1) for row, v in items]) for k in range(3)]
    outs = []
    for row, v in items:
        for ref, odt in zip(reference_of(row, dtype, v), row.out_dtypes(dtype)):
            outs.append((odt, torch.empty(ref.shape, dtype=to_torch(ref, odt, "cpu").dtype, device=device)))
    kernel[(1,)](*[to_torch(a, dtype, device) for a in ins], *[t for _, t in outs], num_warps=4)
    got = [from_torch(t, odt) for odt, t in outs]
    result, k = [], 0
    for row, v in items:
        n = len(reference_of(row, dtype, v))
        result.append(tuple(got[k:k + n]))
        k += n
    return result


@functools.cache
def run_batch(batch, dtype, device):
    """{(row.op, variant): outputs or the exception} for every runnable row of the batch."""
    items = [(row, v) for row in table.ROWS if row.batch == batch and dtype in row.dtypes
             and not row.refusal(dtype) for v in row.variants]
    results = {}
    kernels, current, n = [], [], 0
    for row, v in items:
        k = len(row.out_dtypes(dtype))
        if n + k > MAX_OUTPUTS:
            kernels.append(current)
            current, n = [], 0
        current.append((row, v))
        n += k
    if current:
        kernels.append(current)
    for group in kernels:
        try:
            outs = _launch(group, dtype, device)
        except Exception:  # noqa: BLE001  (isolate the failing rows)
            outs = []
            for item in group:
                try:
                    outs.append(_launch([item], dtype, device)[0])
                except Exception as e:  # noqa: BLE001  (reported by the row's test)
                    outs.append(e)
        for (row, v), out in zip(group, outs):
            results[(row.op, v)] = out
    return results


def compile_only(row, dtype, variant):
    """Compile one row to MSL (for refusals); raises what the compiler raises."""
    if row.ref is None:  # refused everywhere: elementwise, results shaped like the input
        case = Case(row.source(dtype, variant[1]), variant[0], (variant[0],) * len(row.out_dtypes(dtype)))
    else:
        case = case_of(row, dtype, variant)
    kernel = load_kernel(kernel_source("op_table_kernel", [case], helpers=table.HELPERS), "op_table_kernel")
    signature = {p: f"*{_sig(dtype)}" for p in ("x_ptr", "y_ptr", "z_ptr")}
    for k, odt in enumerate(row.out_dtypes(dtype)[:len(case.out_shapes)]):
        signature[f"o{k}"] = f"*{_sig(odt)}"
    triton.compile(ASTSource(kernel, signature, {}), target=GPUTarget("metal", "apple-m1", 32))


def _sig(dtype: str) -> str:
    return {"f16": "fp16", "bf16": "bf16", "f32": "fp32", "f64": "fp64"}.get(dtype, dtype)


def _matches(got, ref, out_dtype, tol, scale, may_flush) -> np.ndarray:
    from conformance.ops.apple_numerics import is_subnormal
    from conformance.ops.dtypes import is_float, ulp
    if not is_float(out_dtype):
        return got == ref
    g, r = got.astype(np.float64), ref.astype(np.float64)
    nan_ok = np.isnan(g) & np.isnan(r)
    inf_ok = np.isinf(r) & (g == r)
    flushed = may_flush & is_subnormal(r, out_dtype) & (g == 0)  # a subnormal result may be flushed (MSL 8.5)
    with np.errstate(all="ignore"):
        eps = 2.0 ** -{"f16": 10, "bf16": 7, "f32": 23, "f64": 52}[out_dtype]
        limit = tol.ulps * ulp(r, out_dtype) + tol.eps_scale * eps * scale + tol.atol
        return nan_ok | inf_ok | flushed | (np.abs(g - r) <= limit)


def compare(got, ref, dtype, out_dtype, tol, scale, alt=None, may_flush=True) -> str:
    """'' when `got` matches `ref` (or, element by element, `alt`: another result the specification allows)
    within `tol`, else a description of the first mismatches. `may_flush`: a subnormal `ref` may be 0."""
    if got.shape != ref.shape:
        return f"shape {got.shape} != {ref.shape}"
    ok = _matches(got, ref, out_dtype, tol, scale, may_flush)
    if alt is not None:
        ok |= _matches(got, alt, out_dtype, tol, scale, may_flush)
    bad = ~ok
    if not bad.any():
        return ""
    idx = np.argwhere(bad)[:5]
    return f"{int(bad.sum())} mismatches, e.g. " + ", ".join(
        f"{tuple(int(i) for i in ix)}: got {got[tuple(ix)]!r} want {ref[tuple(ix)]!r}" for ix in idx)
