"""The backend as Triton sees it: discovery, the active driver, devices and benchmarking."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import triton
import triton.language as tl
from triton.backends import backends
from triton_metal.arguments import pack_scalar
from triton_metal.compiler import MetalBackend
from triton_metal.driver import MetalDriver


@triton.jit
def scale_kernel(x, out, n, factor, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(out + offs, tl.load(x + offs, mask=offs < n) * factor, mask=offs < n)


def test_backend_is_discovered_through_the_entry_point():
    assert backends["metal"].compiler is MetalBackend
    assert backends["metal"].driver is MetalDriver


def test_active_driver_is_metal_and_reports_the_torch_device():
    driver = triton.runtime.driver.active
    assert isinstance(driver, MetalDriver)
    expected = "cpu" if _simulated() else "mps"
    assert driver.get_active_torch_device().type == expected


def _simulated():
    from triton_metal.runtime import get_runtime
    return get_runtime().capabilities.simulated


def test_target_is_metal_with_simd_width_32():
    target = triton.runtime.driver.active.get_current_target()
    assert target.backend == "metal" and target.warp_size == 32


def test_device_properties_report_the_chip_limits():
    props = triton.runtime.driver.active.utils.get_device_properties(0)
    assert props["max_shared_mem"] == 32768
    assert props["warpSize"] == 32


def test_scalar_arguments_reach_the_kernel(device):
    x = torch.arange(100, dtype=torch.float32)
    out = torch.empty_like(x)
    scale_kernel[(2,)](x.to(device), out.to(device), 100, 2.5, BLOCK=64)
    torch.testing.assert_close(out.cpu(), x * 2.5)


def test_empty_grid_launches_nothing(device):
    out = torch.full((4,), 7.0)
    scale_kernel[(0,)](out.to(device), out.to(device), 4, 2.0, BLOCK=4)
    assert out.tolist() == [7.0] * 4


def test_do_bench_times_a_kernel(device):
    x = torch.rand(4096, device=device)
    out = torch.empty_like(x)
    ms = triton.testing.do_bench(lambda: scale_kernel[(4,)](x, out, 4096, 2.0, BLOCK=1024), warmup=1, rep=5)
    assert ms > 0


def test_pack_scalar_rejects_out_of_range_values():
    with pytest.raises(ValueError, match="argument 'n'"):
        pack_scalar(2**40, "i32", "n")


def test_debug_level_3_prints_the_msl(tmp_path):
    script = tmp_path / "kernel.py"
    script.write_text(textwrap.dedent('''
        import torch, triton, triton.language as tl

        @triton.jit
        def twice(x, BLOCK: tl.constexpr):
            offs = tl.arange(0, BLOCK)
            tl.store(x + offs, tl.load(x + offs) * 2)

        x = torch.ones(32, device=triton.runtime.driver.active.get_active_torch_device())
        twice[(1,)](x, BLOCK=32)
        assert x.cpu().tolist() == [2.0] * 32
    '''))
    env = dict(os.environ, TRITON_METAL_DEBUG="3", TRITON_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "kernel void twice(" in proc.stderr
    assert "launched twice grid=(1, 1, 1)" in proc.stderr
