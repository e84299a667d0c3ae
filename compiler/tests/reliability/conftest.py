"""Fixtures of the reliability tests: private compile caches and a kernel-running subprocess."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("kernel_worker.py")


@dataclass
class Caches:
    triton: Path  # TRITON_CACHE_DIR
    sim: Path     # TRITON_METAL_SIM_CACHE_DIR


@pytest.fixture(scope="session")
def sim_runtime_seed(tmp_path_factory):
    """A simulator cache holding only the fiber runtime, copied into each fresh cache (saves a g++ run)."""
    from triton_metal.sim import build
    seed = tmp_path_factory.mktemp("sim-seed")
    old = os.environ.get("TRITON_METAL_SIM_CACHE_DIR")
    os.environ["TRITON_METAL_SIM_CACHE_DIR"] = str(seed)
    try:
        build.runtime_library()
    finally:
        if old is None:
            del os.environ["TRITON_METAL_SIM_CACHE_DIR"]
        else:
            os.environ["TRITON_METAL_SIM_CACHE_DIR"] = old
    return seed


@pytest.fixture
def fresh_caches(tmp_path, monkeypatch, sim_runtime_seed) -> Caches:
    """Empty Triton and simulator caches for this test (in this process and its children)."""
    caches = Caches(tmp_path / "triton-cache", tmp_path / "sim-cache")
    caches.sim.mkdir()
    for f in sim_runtime_seed.iterdir():
        shutil.copy2(f, caches.sim)
    monkeypatch.setenv("TRITON_CACHE_DIR", str(caches.triton))
    monkeypatch.setenv("TRITON_METAL_SIM_CACHE_DIR", str(caches.sim))
    return caches


@pytest.fixture
def run_worker():
    """Run kernel_worker.py with the given scales; returns its JSON report."""
    def run(*scales, env=None, timeout=300):
        proc = subprocess.run([sys.executable, str(WORKER), *map(str, scales)], capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, **(env or {})}, check=False)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1])
    return run
