"""Differential fuzz test: seeded random expression trees (elementwise ops, casts, reductions) over
random shapes, masks and num_warps, run on the device and checked against numpy.

Float inputs include subnormals, and the float model is Apple's (fuzz.py: fused multiply-adds, flushed
subnormals); elements the MSL specification leaves open are not checked.

1000 trees by default (40 per compiled kernel); more with ``--fuzz-cases N`` (when this file's
directory is on the command line) or ``TRITON_METAL_FUZZ_CASES=N``.
"""
import os

import numpy as np
import torch

from conformance.ops.apple_numerics import subnormal_inputs
from conformance.ops.fuzz import FLOAT_TOL, TreeGen
from conformance.ops.kernelgen import HEADER, load_kernel, offsets

TREES_PER_KERNEL = 40
SHAPES = [(64,), (256,), (8, 32), (16, 16), (32, 8), (4, 64), (2, 4, 16)]
SENTINEL = {"f32": -7777.0, "i32": -7777}


def _cases(config) -> int:
    return config.getoption("--fuzz-cases", None) or int(os.environ.get("TRITON_METAL_FUZZ_CASES", "1000"))


def pytest_generate_tests(metafunc):
    if "kernel_seed" in metafunc.fixturenames:
        n = -(-_cases(metafunc.config) // TREES_PER_KERNEL)
        metafunc.parametrize("kernel_seed", range(n))


def _kernel(trees, shape, other):
    numel = int(np.prod(shape))
    lines = ["@triton.jit", "def fuzz_kernel(x_ptr, y_ptr, z_ptr, out_ptr, n_valid):",
             f"    offs = {offsets(shape)}", "    mask = offs < n_valid"]
    for v in "xyz":
        lines.append(f"    {v} = tl.load({v}_ptr + offs, mask=mask, other={other})")
    for k, t in enumerate(trees):
        lines.append(f"    tl.store(out_ptr + {k * numel} + offs, {t.src}, mask=mask)")
    return load_kernel(HEADER + "\n".join(lines) + "\n", "fuzz_kernel")


def test_fuzz(kernel_seed, device):
    rng = np.random.default_rng(1000 + kernel_seed)
    dtype = ["f32", "i32"][kernel_seed % 2]
    shape = SHAPES[int(rng.integers(0, len(SHAPES)))]
    numel = int(np.prod(shape))
    n_valid = int(rng.integers(numel // 2, numel + 1))
    other = 1 if dtype == "i32" else 0.5
    np_t = np.int32 if dtype == "i32" else np.float32
    raw = {v: (rng.integers(-300, 300, size=shape) if dtype == "i32" else rng.standard_normal(shape) * 3).astype(np_t)
           for v in "xyz"}
    if dtype == "f32":  # one input in 16 subnormal (their own generator: the trees stay those of the seed)
        sub = np.random.default_rng(5000 + kernel_seed)
        for v in "xyz":
            picks = sub.random(shape) < 1 / 16
            raw[v] = np.where(picks, subnormal_inputs("f32", shape, sub), raw[v]).astype(np_t)
    valid = (np.arange(numel) < n_valid).reshape(shape)
    leaves = {v: np.where(valid, a, np_t(other)) for v, a in raw.items()}
    gen = TreeGen(rng, dtype, shape, leaves)
    trees = [gen.tree(int(rng.integers(1, 5))) for _ in range(TREES_PER_KERNEL)]
    kernel = _kernel(trees, shape, other)
    out = torch.full((len(trees), *shape), SENTINEL[dtype], dtype=torch.int32 if dtype == "i32" else torch.float32)
    args = [torch.from_numpy(raw[v]).to(device) for v in "xyz"]
    out = out.to(device)
    kernel[(1,)](*args, out, n_valid, num_warps=int(rng.choice([1, 2, 4])))
    got = out.cpu().numpy()
    bad = []
    for k, t in enumerate(trees):
        want = np.where(valid, np.broadcast_to(t.value, shape), np_t(SENTINEL[dtype]))
        g = got[k]
        if dtype == "i32":
            ok = g == want
        else:
            tol = FLOAT_TOL * np.where(valid, np.broadcast_to(t.bound, shape), 0)
            ok = (np.isnan(g) & np.isnan(want)) | (g == want) | (np.abs(g.astype(np.float64) - want) <= tol)
            ok |= np.where(valid, np.broadcast_to(t.open, shape), False)  # left open by the MSL specification
        if not ok.all():
            i = tuple(np.argwhere(~ok)[0])
            bad.append(f"tree {k}: {t.src}\n    at {i}: got {g[i]!r}, want {want[i]!r} ({int((~ok).sum())} mismatches)")
    assert not bad, f"{len(bad)} of {len(trees)} trees mismatch (kernel seed {kernel_seed}, {dtype}, shape {shape}, " \
        f"n_valid {n_valid}):\n" + "\n".join(bad[:5])
