"""Fixtures of the Metal simulator tests: a fresh kernel cache and a runner for MSL snippets."""
from __future__ import annotations

import os

import pytest
from triton_metal.sim import build_kernel


@pytest.fixture(scope="session", autouse=True)
def _sim_cache_dir(tmp_path_factory):
    """Every test session builds into its own cache, so the tests exercise g++ for real."""
    old = os.environ.get("TRITON_METAL_SIM_CACHE_DIR")
    os.environ["TRITON_METAL_SIM_CACHE_DIR"] = str(tmp_path_factory.mktemp("sim-cache"))
    yield
    if old is None:
        del os.environ["TRITON_METAL_SIM_CACHE_DIR"]
    else:
        os.environ["TRITON_METAL_SIM_CACHE_DIR"] = old


@pytest.fixture
def run_msl():
    """``run_msl(body, name, grid, threadgroup, buffers[, threadgroup_lengths])`` builds the MSL
    ``body`` (after the usual include and using-directive) and dispatches kernel ``name``."""
    def run(body: str, name: str, grid, threadgroup, buffers, threadgroup_lengths=None):
        kernel = build_kernel("#include <metal_stdlib>\nusing namespace metal;\n" + body, name)
        kernel.dispatch(grid=grid, threadgroup=threadgroup, buffers=buffers,
                        threadgroup_lengths=threadgroup_lengths)
        return kernel
    return run
