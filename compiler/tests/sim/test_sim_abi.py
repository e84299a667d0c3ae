"""The simulator takes Metal's facts from triton_metal.abi and imports nothing of the compiler."""
from __future__ import annotations

import ast
import math
import re
from pathlib import Path

import numpy as np
from triton_metal import abi
from triton_metal.sim import executor, msl_prepass, trampoline

SIM_DIR = Path(msl_prepass.__file__).parent
PACKAGE_DIR = SIM_DIR.parent


def _imported(path: Path) -> list:
    """(module, name) of each `from module import name` and (module, None) of each `import module`."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            out += [(node.module, alias.name) for alias in node.names]
    return out


def _our_modules(path: Path) -> set:
    """The triton_metal modules ``path`` imports (``from triton_metal import x`` counts as module x)."""
    found = set()
    for module, name in _imported(path):
        if module == "triton_metal" and name:
            found.add(f"triton_metal.{name}")
        elif module.startswith("triton_metal."):
            found.add(module)
    return found


def _module_file(module: str) -> Path | None:
    base = PACKAGE_DIR.parent.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def test_simulator_provides_exactly_the_kernel_builtin_attributes():
    assert msl_prepass.BUILTINS == set(abi.KERNEL_BUILTINS)
    assert set(trampoline.BUILTIN_VALUES) == set(abi.KERNEL_BUILTINS)


def test_simulator_limits_are_abi_limits():
    # The C++ side states the limits again (tm_sim_abi.h: the runtime is C++); they must agree with abi.
    header = (SIM_DIR / "include" / "tm_sim_abi.h").read_text()
    defines = {m.group(1): int(m.group(2)) for m in re.finditer(r"#define (TM_\w+) (\d+)u\b", header)}
    assert defines["TM_SIMD_WIDTH"] == abi.SIMD_WIDTH
    assert defines["TM_MAX_THREADS_PER_THREADGROUP"] == abi.MAX_THREADS_PER_THREADGROUP
    assert defines["TM_MAX_THREADGROUP_MEMORY"] == abi.MAX_THREADGROUP_MEMORY
    assert defines["TM_MAX_THREADGROUP_SLOTS"] == abi.THREADGROUP_SLOTS
    assert msl_prepass.MAX_SLOTS == {"buffer": abi.BUFFER_SLOTS, "threadgroup": abi.THREADGROUP_SLOTS}
    assert (executor.MAX_THREADS_PER_THREADGROUP, executor.MAX_THREADGROUP_MEMORY) == (
        abi.MAX_THREADS_PER_THREADGROUP, abi.MAX_THREADGROUP_MEMORY)


def test_simulator_imports_nothing_of_the_compiler():
    # Everything the simulator's modules import of ours, followed through the modules they import.
    pending = [p for p in SIM_DIR.glob("*.py")]
    seen_files, reached = set(), set()
    while pending:
        path = pending.pop()
        if path in seen_files:
            continue
        seen_files.add(path)
        for module in _our_modules(path):
            reached.add(module)
            file = _module_file(module)
            if file is not None:
                pending.append(file)
    outside = {m for m in reached if not m.startswith("triton_metal.sim")}
    # errors: build.py's CacheCorruptionWarning, imported lazily (errors imports abi and Triton only).
    assert outside == {"triton_metal.abi", "triton_metal.errors", "triton_metal.msl_signature",
                       "triton_metal.numerics"}, outside
    assert not [m for m in reached if m.startswith("triton_metal.codegen")]


def test_dispatch_quadgroups_per_threadgroup(run_msl):
    # A threadgroup of 3 x 2 threads: ceil(6 / 4) quadgroups, the dispatch_ value equal to the plain one
    # (uniform threadgroups); each thread's quadgroup index and lane within it.
    tg = (3, 2, 1)
    threads = math.prod(tg)
    out = np.zeros((threads, 4), np.uint32)
    run_msl("""
kernel void quads(device uint* out [[buffer(0)]], ushort t [[thread_index_in_threadgroup]],
                  uint dq [[dispatch_quadgroups_per_threadgroup]], uint q [[quadgroups_per_threadgroup]],
                  ushort qi [[quadgroup_index_in_threadgroup]], ushort lane [[thread_index_in_quadgroup]]) {
    out[t * 4 + 0] = dq; out[t * 4 + 1] = q; out[t * 4 + 2] = qi; out[t * 4 + 3] = lane;
}
""", "quads", (1, 1, 1), tg, {0: out})
    expected = [[math.ceil(threads / 4), math.ceil(threads / 4), t // 4, t % 4] for t in range(threads)]
    np.testing.assert_array_equal(out, np.array(expected, np.uint32))
