"""Kernels whose every identifier is a name a user could write and the MSL world already uses (issue 22),
shared by test_identifier_names.py.

A *skeleton* kernel has one slot per identifier: the kernel, its arguments, a noinline function, a
combine function and a tl.map_elementwise function with their parameters, and every local variable,
through loads/stores, reductions (tl.sum, tl.reduce with a combine function, tl.max over a join), scans (tl.cumsum,
tl.associative_scan), tl.sort, tl.join/tl.split, tl.dot, tl.gather, tl.reshape, tl.histogram, tl.trans, tl.atomic_add, a
loop, tl.device_print and a noinline call; then a chain of additions gives the rest of a batch of
names one variable each. ``reference`` computes what it stores with numpy.
"""
from __future__ import annotations

import importlib.util
import keyword
import sys
import unicodedata
from pathlib import Path

import numpy as np

ROWS, COLS, DOT_N = 16, 32, 16
PRINT_PREFIX = "called"

# The skeleton's slots, in the order names are dealt to them. `xs` is the operand of every reduction,
# scan, sort, join and dot: the role where a user's name met the generator's loop indices.
FUNCTION_SLOTS = ("fn", "fa", "fb", "ft", "comb", "ca", "cb", "ct", "mapf", "ma", "mt")
KERNEL_SLOTS = ("kernel", "x_ptr", "w_ptr", "out_ptr", "cnt_ptr", "scale", "xs", "rows", "cols", "offs", "x", "total",
                "reduced", "csum", "ascan", "srt", "joined", "top", "lo", "hi", "kk", "w", "prod", "grand", "called",
                "mapped", "old", "loopv", "it", "bins", "hist", "rev", "gath", "tr")
SLOTS = FUNCTION_SLOTS + KERNEL_SLOTS
# Names the skeleton itself reads from the module's scope: no slot may take them.
SKELETON_GLOBALS = frozenset({"tl", "triton", "range"})

SKELETON = '''\
import triton
import triton.language as tl


@triton.jit(noinline=True)
def {fn}({fa}, {fb}):
    {ft} = {fa} * 2.0 + {fb}
    return {ft}


@triton.jit
def {comb}({ca}, {cb}):
    {ct} = tl.maximum({ca}, {cb})
    return {ct}


@triton.jit
def {mapf}({ma}):
    {mt} = {ma} * 3.0
    return {mt}


@triton.jit
def {kernel}({x_ptr}, {w_ptr}, {out_ptr}, {cnt_ptr}, {scale}):
    {rows} = tl.arange(0, 16)
    {cols} = tl.arange(0, 32)
    {offs} = {rows}[:, None] * 32 + {cols}[None, :]
    {x} = tl.load({x_ptr} + {offs})
    {xs} = {x} * {scale}
    {total} = tl.sum({xs}, axis=1)
    {reduced} = tl.reduce({xs}, 1, {comb})
    {csum} = tl.cumsum({xs}, axis=1)
    {ascan} = tl.associative_scan({xs}, 1, {comb}, reverse=True)
    {srt} = tl.sort({xs}, dim=1)
    {joined} = tl.join({xs}, {csum})
    {top} = tl.max({joined}, axis=2)
    {lo}, {hi} = tl.split({joined})
    {kk} = tl.arange(0, 16)
    {w} = tl.load({w_ptr} + {cols}[:, None] * 16 + {kk}[None, :])
    {prod} = tl.dot({xs}, {w})
    {tr} = tl.trans({prod})
    {grand} = tl.sum({total}, axis=0)
    {called} = {fn}({grand}, {scale})
    {mapped} = tl.map_elementwise({mapf}, {xs})
    {old} = tl.atomic_add({cnt_ptr} + {rows}, {total})
    {bins} = tl.reshape(({x} * 4.0).to(tl.int32) & 15, (512,))
    {hist} = tl.histogram({bins}, 16)
    {rev} = 31 - {offs} % 32
    {gath} = tl.gather({xs}, {rev}, 1)
    {loopv} = {x}
    for {it} in range(0, 3):
        {loopv} = {loopv} + {it}
    tl.device_print("{prefix}", {called})
{chain}
    tl.store({out_ptr} + {offs}, {last} + {lo} - {hi})
    tl.store({out_ptr} + 512 + {offs}, {srt})
    tl.store({out_ptr} + 1024 + {offs}, {ascan} + {mapped})
    tl.store({out_ptr} + 1536 + {offs}, {loopv} + {gath})
    tl.store({out_ptr} + 2048 + {rows}, {reduced} + {old})
    tl.store({out_ptr} + 2064 + {rows}[:, None] * 16 + {kk}[None, :], {tr})
    tl.store({out_ptr} + 2320 + {kk}, {hist}.to(tl.float32))
    tl.store({out_ptr} + 2336, {called})
'''
OUT_SIZE = 2337


def usable(name: str) -> bool:
    """Whether `name` can name anything in the skeleton: a Python identifier as Python reads it."""
    return name.isidentifier() and not keyword.iskeyword(name) and name not in SKELETON_GLOBALS


def python_name(name: str) -> str:
    """The identifier Python binds for `name` (it normalises identifiers to NFKC: `ｊ` is `j`)."""
    return unicodedata.normalize("NFKC", name)


def batches(names, size: int, first_xs=()) -> list:
    """`names` (distinct as Python reads them) dealt into batches of at most `size` names, as even as can
    be; batch k's first name (its `xs` slot) is first_xs[k] while there is one."""
    pool, seen = [], set()
    for name in names:
        if usable(name) and python_name(name) not in seen:
            seen.add(python_name(name))
            pool.append(name)
    leading = [n for n in first_xs if n in pool]
    rest = [n for n in pool if n not in leading]
    count = max(-(-len(pool) // size), len(leading))
    out = [[leading[k]] if k < len(leading) else [] for k in range(count)]
    for k, batch in enumerate(out):
        want = len(pool) // count + (k < len(pool) % count)
        while len(batch) < want:
            batch.append(rest.pop(0))
    return out


def kernel_source(batch) -> tuple:
    """(source, slot -> name) of the skeleton with the names of `batch` (at least len(SLOTS) + 1);
    batch[0] fills `xs`, the rest the slots in order and then the chain."""
    if len(batch) < len(SLOTS) + 1:
        raise ValueError(f"a batch needs at least {len(SLOTS) + 1} names")
    slots = {"xs": batch[0]}
    rest = list(batch[1:])
    # Triton takes kernel names in ASCII only ("invalid function identifier"): the first ASCII name.
    slots["kernel"] = rest.pop(next(k for k, name in enumerate(rest) if name.isascii()))
    for slot in SLOTS:
        if slot not in slots:
            slots[slot] = rest.pop(0)
    chain, previous = [], slots["top"]
    for name in rest:
        chain.append(f"    {name} = {previous} + 1.0")
        previous = name
    source = SKELETON.format(**slots, prefix=PRINT_PREFIX, chain="\n".join(chain), last=previous)
    return source, slots, len(rest)


def load(directory: Path, source: str, slots: dict, module: str):
    path = directory / f"{module}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(module, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[module] = mod
    spec.loader.exec_module(mod)
    return getattr(mod, python_name(slots["kernel"]))


def inputs(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {"x": rng.uniform(-2, 2, (ROWS, COLS)).astype(np.float32),
            "w": rng.uniform(-1, 1, (COLS, DOT_N)).astype(np.float32),
            "cnt": np.arange(ROWS, dtype=np.float32), "scale": 0.75}


def reference(data: dict, chain_length: int) -> tuple:
    """(out, cnt after the launch, the printed value), in float64 from the kernel's float32 inputs."""
    x = data["x"].astype(np.float64)
    xs = (data["x"] * np.float32(data["scale"])).astype(np.float64)
    total = xs.sum(axis=1)
    csum = np.cumsum(xs, axis=1)
    rmax = np.maximum.accumulate(xs[:, ::-1], axis=1)[:, ::-1]
    prod = xs @ data["w"].astype(np.float64)
    called = total.sum() * 2.0 + data["scale"]
    bins = (data["x"] * np.float32(4.0)).astype(np.int32) & 15
    out = np.concatenate([
        (np.maximum(xs, csum) + chain_length + xs - csum).ravel(),
        np.sort(xs, axis=1).ravel(),
        (rmax + 3.0 * xs).ravel(),
        (x + 3.0 + xs[:, ::-1]).ravel(),
        xs.max(axis=1) + data["cnt"],  # the reduction with the user's combine function + the old values
        prod.T.ravel(),
        np.bincount(bins.ravel(), minlength=16).astype(np.float64),
        [called],
    ])
    return out, data["cnt"] + total, called
