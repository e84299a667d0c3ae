"""A compile killed midway (SIGKILL) leaves nothing that is later served; damaged simulator
libraries are rebuilt with a warning instead of being loaded (a truncated .so would crash dlopen)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import triton
import triton.language as tl
from triton_metal import cache
from triton_metal.cache import clear_in_process
from triton_metal.errors import CacheCorruptionWarning
from triton_metal.sim import build

WORKER = Path(__file__).with_name("kernel_worker.py")

# Stands in for g++: with TM_TEST_HANG_MARKER set, a kernel build writes half a library to its
# output file, signals the test and hangs there (the fiber runtime is built normally).
SLOW_CXX = """#!/bin/sh
for src; do :; done
case "$src" in
  *fiber_runtime.cpp) ;;
  *) if [ -n "$TM_TEST_HANG_MARKER" ]; then
       prev=""; for a; do [ "$prev" = "-o" ] && out="$a"; prev="$a"; done
       head -c 4096 "$(command -v g++)" > "$out"
       touch "$TM_TEST_HANG_MARKER"
       exec sleep 600
     fi ;;
esac
exec g++ "$@"
"""


def _start_and_kill_at_marker(marker: Path, env: dict, timeout: float = 240.0) -> None:
    """Run the worker until it reaches ``marker``, then SIGKILL it and everything it started."""
    proc = subprocess.Popen([sys.executable, str(WORKER), "3.0"], env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while not marker.exists():
            if proc.poll() is not None:
                pytest.fail(f"the worker finished before reaching the kill point: {proc.stderr.read().decode()}")
            if time.monotonic() > deadline:
                pytest.fail("the worker never reached the kill point")
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def test_sigkill_inside_tritons_compile_leaves_no_entry_and_the_next_run_rebuilds(fresh_caches, run_worker, tmp_path):
    marker = tmp_path / "in-put-group"
    _start_and_kill_at_marker(marker, {"TM_TEST_HANG_AT": "put_group", "TM_TEST_HANG_MARKER": str(marker)})
    written = {p.name for p in fresh_caches.triton.rglob("*") if p.is_file()}
    assert "scale_kernel.msl" in written and "scale_kernel.json" in written  # the kill came after every file...
    assert not any(name.startswith("__grp__") for name in written)  # ...but before the index: nothing to serve

    report = run_worker(3.0)
    assert report["correct"]
    assert (report["compiles"], report["cache_hits"]) == (1, 0)  # compiled again, not served half-made
    assert report["rebuilds"] == 0
    assert cache.audit(fresh_caches.triton)["corrupt"] == []


def test_sigkill_during_the_simulator_build_leaves_no_library_and_the_next_run_rebuilds(
        fresh_caches, run_worker, tmp_path):
    cxx = tmp_path / "slow-g++"
    cxx.write_text(SLOW_CXX)
    cxx.chmod(0o755)
    marker = tmp_path / "in-g++"
    env = {"TRITON_METAL_SIM_CXX": str(cxx)}
    _start_and_kill_at_marker(marker, {**env, "TM_TEST_HANG_MARKER": str(marker)})
    kernel_libraries = [p for p in fresh_caches.sim.glob("*.so") if not p.name.startswith("tm_runtime")]
    assert kernel_libraries == []  # the half-written output is a temporary, never at the library's name
    assert any(p.name.endswith(".tmp") for p in fresh_caches.sim.iterdir())

    report = run_worker(3.0, env=env)
    assert report["correct"]
    assert report["sim_compiler_runs"] == 1 and report["corrupt_libraries"] == 0
    audit = cache.audit(fresh_caches.triton, fresh_caches.sim)
    assert audit["corrupt"] == [] and audit["corrupt_libraries"] == []


@triton.jit
def offset_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) + 0.5, mask=mask)


def _run_offset_kernel() -> bool:
    x = torch.rand(300)
    out = torch.empty(300)
    offset_kernel[(3,)](x, out, 300, BLOCK=128)
    return bool(torch.equal(out, x + 0.5))


@pytest.mark.parametrize("damage", ["truncate", "overwrite"])
def test_a_damaged_simulator_library_is_rebuilt_with_a_warning(fresh_caches, damage):
    clear_in_process()  # nothing loaded from other tests' caches
    runs = build.compiler_runs
    assert _run_offset_kernel() and build.compiler_runs == runs + 1
    clear_in_process()  # unload it first: damaging a mapped library would crash this process, not test the cache
    (library,) = [p for p in fresh_caches.sim.glob("*.so") if not p.name.startswith("tm_runtime")]
    if damage == "truncate":
        os.truncate(library, 1000)  # dlopen of this would die with SIGBUS
    else:
        data = bytearray(library.read_bytes())
        data[len(data) // 2: len(data) // 2 + 64] = b"\xff" * 64
        library.write_bytes(bytes(data))

    with pytest.warns(CacheCorruptionWarning, match="does not match its checksum"):
        assert _run_offset_kernel()
    assert build.compiler_runs == runs + 2
    assert cache.audit(fresh_caches.triton, fresh_caches.sim)["corrupt_libraries"] == []
