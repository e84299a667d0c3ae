"""No name a user can write in a kernel meets a name the code generator, Metal or C++ uses (issue 22).

1. The issue's check: one kernel per name (56 ordinary and unlucky ones) loads a 16x32 block into a
   variable of that name, adds a scalar argument named after it, and takes tl.sum(axis=1),
   tl.cumsum(axis=1) and tl.max over a tl.join of it. Before the fix, `threadgroup_barrier` did not
   compile (it shadowed the barrier) and `j` met the reductions' loop index `j`.
2. Every name of the tables (MSL and C++ keywords, every name of our <metal_stdlib> model, the rest of
   the specification's library, the simulator's C macros), the Metal attribute names, the code
   generator's own names (today's `tm_` ones and the bare ones it used to write), and Python-legal
   unicode identifiers, dealt into a few kernels (identifier_kernels.py) that cover loads/stores,
   reductions, scans, sort, join/split, dot, gather, histogram, atomics, a loop, device_print, a
   noinline call and a map function. Each compiles (simulator and, from conftest, the Metal front-end
   check), matches numpy, prints what it should, and shows each user's name in the MSL.
"""
from __future__ import annotations

import importlib.util
import re
import sys

import identifier_kernels as ik
import numpy as np
import pytest
import torch
from triton_metal.codegen import msl_kernel_name
from triton_metal.codegen.msl_text import OWN_FIXED, identifier, own_spelling
from triton_metal.codegen.msl_words import MLX_ATTRIBUTES, OWN_PREFIX, RESERVED_WORDS

# ---- 1. the issue's 56 names ----------------------------------------------------------------------
ISSUE_NAMES = [
    "x", "y", "out", "acc", "offs", "mask", "i", "j", "k", "g", "m", "r", "n", "lane", "simd", "line", "base", "at",
    "peer", "combined", "scratch", "program_id", "num_programs", "result0", "acc0", "x0", "r0", "tm_scratch", "fma",
    "float4", "ushort", "explicit", "simd_sum", "simd_shuffle", "threadgroup_barrier", "as_type", "std", "metal",
    "select", "max", "min", "abs", "exp", "log", "half", "bfloat", "uint", "kernel", "device", "thread", "threadgroup",
    "vertex", "grid_size", "main", "NAN", "INFINITY",
]

ISSUE_KERNEL = '''\
import triton
import triton.language as tl


@triton.jit
def issue_kernel(in_ptr, out_ptr, {v}_s):
    r_ = tl.arange(0, 16)[:, None] * 32 + tl.arange(0, 32)[None, :]
    p_ = in_ptr + r_
    {v} = tl.load(p_)
    s_ = tl.sum({v}, axis=1) + {v}_s
    c_ = tl.cumsum({v}, axis=1)
    mx_ = tl.max(tl.join({v}, c_), axis=2)
    tl.store(out_ptr + r_, c_ + s_[:, None] + mx_)
'''


def _import(path, module: str, source: str, name: str):
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(module, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[module] = mod
    spec.loader.exec_module(mod)
    return getattr(mod, name)


def tokens(msl: str) -> set:
    code = "\n".join(line.split("//", 1)[0] for line in msl.splitlines())
    return set(re.findall(r"[A-Za-z_]\w*", code))


def spelled(name: str, names: set) -> bool:
    """Whether the MSL spelling of the user's `name` is among `names`: as it is, as a rebinding (`name_N`), or
    in a name of the code generator's own made after it (a reduction's result is its `tm_<name>_acc`)."""
    ident, own = identifier(ik.python_name(name)), own_spelling(f"{ik.python_name(name)}_x")[:-2]  # as f"{hint}_acc"
    return ident in names or any(re.fullmatch(rf"{re.escape(ident)}_\d+|{re.escape(own)}_\w+", t) for t in names)


def test_the_issue_names_are_distinct_identifiers():
    assert len(ISSUE_NAMES) == len(set(ISSUE_NAMES)) == 56


@pytest.mark.parametrize("name", ISSUE_NAMES)
def test_a_variable_of_any_name_through_sum_cumsum_and_join(tmp_path, device, name):
    kernel = _import(tmp_path / "kernel.py", f"issue22_{name}", ISSUE_KERNEL.format(v=name), "issue_kernel")
    x = np.random.default_rng(0).standard_normal((16, 32)).astype(np.float32)
    out = torch.empty(16, 32, device=device)
    compiled = kernel[(1,)](torch.from_numpy(x).to(device), out, 1.5)
    xd = x.astype(np.float64)
    c = np.cumsum(xd, axis=1)
    expected = c + (xd.sum(axis=1, keepdims=True) + 1.5) + np.maximum(xd, c)
    np.testing.assert_allclose(out.cpu().numpy(), expected, rtol=1e-5, atol=1e-4)
    msl = compiled.asm["msl"].decode()
    assert identifier(name) in tokens(msl)  # the user's name is visible (as is, or as v_<name>)
    assert f"{identifier(name)}_s" in tokens(msl) or f"{name}_s" in tokens(msl)


# ---- 2. every name of the tables -------------------------------------------------------------------
# The bare names the code generator wrote before it had a namespace of its own (loop indices, scratch
# locals, parameters of the functions it writes, its helpers' locals), then its `tm_` names.
FORMER_GENERATOR_NAMES = [
    "j", "g", "m", "k", "i", "r", "lane", "line", "at", "simd", "base", "round", "n", "bin", "poll", "polls",
    "acc0", "acc1", "x0", "x1", "r0", "r1", "peer", "combined", "staging", "yielded", "program_id",
    "num_programs", "scratch", "scalars", "result0", "reach_bb1", "thread_coord0_d0", "dot_acc", "dot_k", "dot_m",
    "dot_n", "dot_a", "dot_b", "tile", "tile_m", "tile_n", "acc_frag", "a_frag", "b_frag", "old_values",
    "gather_source", "histogram_input", "histogram_mask", "diag", "seq", "site", "pid", "index", "bits", "slot",
]
OWN_NAMES = sorted(OWN_FIXED | {n[len(OWN_PREFIX):] for n in OWN_FIXED} | {
    "tm_x_acc", "tm_staging", "tm_thread_coord0_d0", "tm_combined", "tm_rt_tg_alloc", "tm_launch", "tm_dispatch",
    "TM_SIMD_WIDTH", "TM_KEEP_SITE", "Tm_x", "tm_", "tm"})
# Python identifiers beyond ASCII, as Python reads them (NFKC: `ｊｊ` is `jj`, `ⅷ` is `viii`).
UNICODE_NAMES = ["αβγ", "переменная", "变量", "ñandú", "Ωmega", "x̄", "ｊｊ", "ℌilbert", "ﬁle", "µ", "Åström", "𝔵𝔶",
                 "ǅ", "ⅷ", "a·b", "x١", "ᐊᐃ", "ⴰⴱ", "ᎠᎡ", "ㄅㄆ", "tm_ü", "_ñ", "__", "_0", "_"]

TABLE_NAMES = sorted(RESERVED_WORDS) + sorted(MLX_ATTRIBUTES)
BATCH = 125
BATCHES = ik.batches(FORMER_GENERATOR_NAMES + OWN_NAMES + UNICODE_NAMES + TABLE_NAMES, BATCH,
                     first_xs=FORMER_GENERATOR_NAMES[:9])
# Slots whose names the MSL does not show: the user's combine and map functions become functions of the
# code generator's (their parameters are its tm_acc0, tm_x0 ...); Triton folds tl.split(tl.join(a, b))
# to a, b and shares one tl.arange between its users (here and in tl.sort), and tl.sort's result is named
# after a variable of Triton's own sort, so those names may go.
HIDDEN_SLOTS = {"comb", "ca", "cb", "mapf", "ma", "kernel", "lo", "hi", "rows", "cols", "kk", "offs", "srt"}


def test_the_batches_hold_every_usable_name():
    dealt = [n for batch in BATCHES for n in batch]
    assert len(dealt) == len(set(map(ik.python_name, dealt)))
    for name in ("j", "threadgroup_barrier", "thread_position_in_grid", "tm_arena", "αβγ", "INT8_MAX", "fmax"):
        assert name in dealt
    assert all(len(batch) > len(ik.SLOTS) for batch in BATCHES)


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("identifier_kernels")


@pytest.mark.parametrize("batch", range(len(BATCHES)))
def test_every_name_in_every_role(kernel_dir, device, capfd, batch):
    source, slots, chain = ik.kernel_source(BATCHES[batch])
    kernel = ik.load(kernel_dir, source, slots, f"identifier_batch{batch}")
    data = ik.inputs(batch)
    out = torch.full((ik.OUT_SIZE,), -7.0, device=device)
    cnt = torch.from_numpy(data["cnt"].copy()).to(device)
    compiled = kernel[(1,)](torch.from_numpy(data["x"]).to(device), torch.from_numpy(data["w"]).to(device), out, cnt,
                            data["scale"])
    expected, cnt_after, called = ik.reference(data, chain)
    np.testing.assert_allclose(out.cpu().numpy(), expected, rtol=1e-5, atol=2e-4)
    np.testing.assert_allclose(cnt.cpu().numpy(), cnt_after, rtol=1e-5, atol=1e-4)
    printed = capfd.readouterr().out.splitlines()
    assert len(printed) == 1 and printed[0].startswith(f"pid (0, 0, 0) idx () {ik.PRINT_PREFIX}: ")
    assert float(printed[0].rsplit(" ", 1)[1]) == pytest.approx(called, rel=1e-5, abs=1e-3)

    msl = compiled.asm["msl"].decode()
    names = tokens(msl)
    assert compiled.metadata.name == msl_kernel_name(ik.python_name(slots["kernel"]))
    hidden = [name for slot, name in slots.items() if slot not in HIDDEN_SLOTS and not spelled(name, names)]
    assert not hidden, f"user's names not visible in the MSL: {hidden}"
