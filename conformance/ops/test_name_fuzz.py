"""Differential fuzz test against Triton's interpreter, every variable under a random name (issue 22).

Random kernels (ops/name_fuzz.py: expression trees with reductions, scans, joins and casts over
float32, float16, bfloat16 and int32, each node a variable of a random name: MSL/C++/Metal words, the
code generator's own names, unicode, random identifiers) run on the device and, in one subprocess
per group of kernels, under TRITON_INTERPRET=1. Each tree's result must equal its exact value when it
has one (integers, and floats without a sum or scan), for both; otherwise both must lie within the
tree's error bound of the exact float64 value. Trees that touch bfloat16 are checked against the exact
value only (the interpreter computes bfloat16 on bit patterns).

48 trees in CI (2 kernels); more with ``--name-fuzz-cases N`` (when this file's directory is on the
command line) or ``TRITON_METAL_NAME_FUZZ_CASES=N``.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conformance.ops import name_fuzz

TREES_PER_KERNEL = 24
KERNELS_PER_GROUP = 8  # kernels per interpreter subprocess (it takes ~2 s to start)
SEED_BASE = 22_000


def _cases(config) -> int:
    return config.getoption("--name-fuzz-cases", None) or int(os.environ.get("TRITON_METAL_NAME_FUZZ_CASES", "48"))


def pytest_generate_tests(metafunc):
    if "group" in metafunc.fixturenames:
        kernels = -(-_cases(metafunc.config) // TREES_PER_KERNEL)
        seeds = [SEED_BASE + k for k in range(kernels)]
        groups = [tuple(seeds[k:k + KERNELS_PER_GROUP]) for k in range(0, kernels, KERNELS_PER_GROUP)]
        metafunc.parametrize("group", groups, ids=[f"seeds{g[0]}-{g[-1]}" for g in groups])


@pytest.fixture(scope="module")
def pool():
    return name_fuzz.name_pool()


def _interpret(kernels: dict, directory: Path) -> dict:
    spec = []
    for seed, (path, k) in kernels.items():
        spec += [str(path), k.name, str(seed), str(k.shape[0]), str(k.shape[1]), str(len(k.trees)), str(k.num_warps)]
    out = directory / "interpreter.npz"
    env = dict(os.environ, TRITON_INTERPRET="1")
    subprocess.run([sys.executable, str(Path(name_fuzz.__file__)), str(out), *spec], check=True, env=env,
                   timeout=1800)
    return dict(np.load(out))


def _mismatch(got: np.ndarray, node, what: str) -> str:
    value = node.value.astype(np.float64)
    got = got.astype(np.float64)
    ok = (got == value) if node.exact else (np.abs(got - value) <= node.err * 1.0001 + 1e-30)
    if ok.all():
        return ""
    at = tuple(np.argwhere(~ok)[0])
    return (f"{what}: {node.name} ({node.dtype}{', exact' if node.exact else ''}) at {at}: got {got[at]!r}, "
            f"want {value[at]!r} (bound {node.err[at]:.3g}; {int((~ok).sum())} mismatches)")


def test_random_names_match_the_interpreter(group, pool, device, tmp_path):
    kernels = {}
    for seed in group:
        k = name_fuzz.make_kernel(seed, TREES_PER_KERNEL, pool)
        path = tmp_path / f"name_fuzz_{seed}.py"
        path.write_text(k.source, encoding="utf-8")
        kernels[seed] = (path, k)
    interpreted = _interpret(kernels, tmp_path)
    bad = []
    for seed, (path, k) in kernels.items():
        module = name_fuzz.load(path, f"name_fuzz_device_{seed}")
        # Without contraction: the reference rounds every product, as the interpreter does.
        got_f, got_i = name_fuzz.run(getattr(module, k.name), seed, k.shape, len(k.trees), k.num_warps, device,
                                     enable_fp_fusion=False)
        want_f, want_i = interpreted[f"{seed}_f"], interpreted[f"{seed}_i"]
        for t, node in enumerate(k.trees):
            device_out, interp_out = (got_i[t], want_i[t]) if node.dtype == "i32" else (got_f[t], want_f[t])
            problems = [_mismatch(device_out, node, "device")]
            if not node.bf16:
                problems.append(_mismatch(interp_out, node, "interpreter"))
            problems = [p for p in problems if p]
            if problems:
                bad.append(f"kernel seed {seed} ({path}), tree {t}:\n    " + "\n    ".join(problems))
    assert not bad, f"{len(bad)} trees mismatch:\n" + "\n".join(bad[:5])


def test_the_trees_hold_every_kind_of_node(pool):
    """The generator draws what the issue asks for: reductions, scans, joins and casts, and names from
    every source (checked on the CI seeds' sources)."""
    text = "\n".join(name_fuzz.make_kernel(SEED_BASE + k, TREES_PER_KERNEL, pool).source for k in range(2))
    for construct in ("tl.sum(", "tl.max(", "tl.cumsum(", "tl.associative_scan(", "tl.join(", "tl.split(",
                      ".to(tl.float16)", ".to(tl.bfloat16)", ".to(tl.int32)", ".to(tl.float32)"):
        assert construct in text, construct
    assert not text.isascii()  # some unicode name
