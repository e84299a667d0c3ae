"""``triton_metal.backends.metal.clear_cache()`` releases the pipelines of whichever runtime is active.

It once released only the simulator's: the cache asked for a ``clear_pipelines`` method no runtime
had, so Metal and MLX kept every compiled pipeline. Here the Metal runtime runs against the
recorded fake Metal API (fake_metal.py) and MLX with mlx[cpu] behind a Metal-reporting facade (its
pipelines are our wrapped kernels, built without MLX's Metal back end); each is made the process's
runtime through the runtime registry, as ``TRITON_METAL_DEVICE`` would choose it.
"""
from __future__ import annotations

import pytest
import triton
import triton.language as tl
from fake_metal import FakeMetal
from mlx_emulation import MlxWithMetal
from triton_metal import runtime as runtimes
from triton_metal.backends import metal
from triton_metal.runtime.metal_runtime import MetalRuntime


@triton.jit
def copy_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=offs < n), mask=offs < n)


@triton.jit
def scale_kernel(x_ptr, n, factor, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(x_ptr + offs, tl.load(x_ptr + offs, mask=offs < n) * factor, mask=offs < n)


@pytest.fixture
def two_kernels(compile_msl):
    """(MSL, kernel name) of two different kernels."""
    copy = compile_msl(copy_kernel, {"x_ptr": "*fp32", "out_ptr": "*fp32", "n": "i32", "BLOCK": "constexpr"},
                       {"BLOCK": 64})
    scale = compile_msl(scale_kernel, {"x_ptr": "*fp32", "n": "i32", "factor": "fp32", "BLOCK": "constexpr"},
                        {"BLOCK": 64})
    return [(msl, metadata.name) for msl, metadata in (copy, scale)]


@pytest.fixture
def make_active(monkeypatch, tmp_path):
    """Make a runtime this process's runtime (TRITON_METAL_DEVICE=<its name>), with caches of its own
    so clear_cache() empties nothing the rest of the session uses; the session's runtime is chosen
    again afterwards."""
    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path / "triton"))
    monkeypatch.setenv("TRITON_METAL_SIM_CACHE_DIR", str(tmp_path / "sim"))

    def make(runtime):
        monkeypatch.setenv("TRITON_METAL_DEVICE", runtime.name)
        monkeypatch.setitem(runtimes.RUNTIMES, runtime.name, lambda: runtime)
        runtimes.get_runtime.cache_clear()
        assert runtimes.get_runtime() is runtime
        return runtime
    yield make
    monkeypatch.undo()
    runtimes.get_runtime.cache_clear()


def _compile_all(runtime, kernels) -> list:
    pipelines = [runtime.compile(msl, name) for msl, name in kernels]
    assert [runtime.compile(msl, name) for msl, name in kernels] == pipelines  # cached: the same objects
    return pipelines


def test_clear_cache_releases_every_metal_pipeline(make_active, two_kernels):
    fake = FakeMetal()
    runtime = make_active(MetalRuntime(metal=fake, macos=(15, 0)))
    first = _compile_all(runtime, two_kernels)
    assert len(fake.find("newLibraryWithSource")) == 2

    result = metal.clear_cache()

    assert result["released"] == 2
    assert runtime.release() == 0  # none left
    again = [runtime.compile(msl, name) for msl, name in two_kernels]
    assert all(a is not b for a, b in zip(again, first))
    assert len(fake.find("newLibraryWithSource")) == 4  # compiled by Metal again


def test_clear_cache_releases_every_mlx_pipeline(make_active, two_kernels):
    mx = pytest.importorskip("mlx.core", reason="mlx is an optional dependency (pip install 'mlx[cpu]' on Linux)")
    from triton_metal.runtime.mlx_runtime import MLXRuntime
    runtime = make_active(MLXRuntime(mx=MlxWithMetal(mx)))
    first = _compile_all(runtime, two_kernels)

    result = metal.clear_cache()

    assert result["released"] == 2
    assert runtime.release() == 0  # none left
    again = [runtime.compile(msl, name) for msl, name in two_kernels]
    assert all(a is not b for a, b in zip(again, first))


def test_clear_cache_creates_no_runtime_just_to_release_it(monkeypatch, tmp_path):
    # Opening a device (Metal, MLX) only to empty it would be wasted, and on a machine without one, an error.
    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path / "triton"))
    monkeypatch.setenv("TRITON_METAL_SIM_CACHE_DIR", str(tmp_path / "sim"))
    runtimes.get_runtime.cache_clear()
    try:
        assert metal.clear_cache()["released"] == 0
        assert runtimes.created_runtime() is None
    finally:
        runtimes.get_runtime.cache_clear()
