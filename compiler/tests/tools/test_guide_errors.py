"""The error messages of docs/troubleshooting.md, each raised by its real condition.

Metal-only conditions (a shader Apple's compiler rejects, an allocation beyond the GPU's memory)
go through the Metal runtime's PyObjC layer against the recorded fake Metal API
(compiler/tests/runtime/fake_metal.py), since Linux has no Metal.
"""
import platform
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import triton
import triton.language as tl
from triton_metal.errors import MetalCompileError, MetalOutOfMemoryError, UnsupportedOperationError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
GUIDE = (Path(__file__).resolve().parents[3] / "docs" / "troubleshooting.md").read_text()
linux_only = pytest.mark.skipif(platform.system() != "Linux", reason="the condition is Linux's")

LAUNCH = '''
import torch, triton, triton.language as tl

@triton.jit
def k(x):
    tl.store(x, 1.0)

try:
    k[(1,)](torch.zeros(1))
except Exception as e:
    print(f"{type(e).__name__}: {e}")
'''


def _in_guide(text: str) -> None:
    assert text in GUIDE, f"docs/troubleshooting.md does not show {text!r}"


@linux_only
def test_metal_not_supported(run_python):
    proc = run_python(LAUNCH, env={"TRITON_METAL_DEVICE": "metal"})
    assert proc.stdout.startswith("MetalNotSupportedError: "), proc.stdout + proc.stderr
    assert "TRITON_METAL_DEVICE=sim" in proc.stdout
    _in_guide("MetalNotSupportedError: ")


def test_mlx_not_found(monkeypatch):
    from triton_metal.errors import MLXNotFoundError
    from triton_metal.runtime.mlx_runtime import MLXRuntime
    monkeypatch.setitem(sys.modules, "mlx", None)  # a machine without MLX: `import mlx` fails
    monkeypatch.setitem(sys.modules, "mlx.core", None)
    with pytest.raises(MLXNotFoundError) as info:
        MLXRuntime()  # what TRITON_METAL_DEVICE=mlx creates
    expected = "TRITON_METAL_DEVICE=mlx needs MLX"
    assert str(info.value).startswith(expected)
    _in_guide(f"MLXNotFoundError: {expected}")


@linux_only
def test_mlx_without_a_metal_back_end():
    pytest.importorskip("mlx.core", reason="needs mlx[cpu] installed: the condition is MLX without Metal")
    from triton_metal.errors import MLXNotFoundError
    from triton_metal.runtime.mlx_runtime import MLXRuntime
    with pytest.raises(MLXNotFoundError) as info:
        MLXRuntime()
    expected = "MLX is installed but has no Metal back end here"
    assert str(info.value).startswith(expected)
    _in_guide(f"MLXNotFoundError: {expected}")


@triton.jit
def _fp64_kernel(x, out):
    tl.store(out, tl.load(x) * 2)


def test_operation_not_supported(device):
    with pytest.raises(UnsupportedOperationError) as info:
        _fp64_kernel[(1,)](torch.zeros(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64))
    assert "is not supported by the Metal backend" in str(info.value)
    assert str(info.value).startswith("Operation fp64 argument 'x' is not supported by the Metal backend")
    _in_guide("Operation <op> is not supported by the Metal backend")


def _fake_runtime(**fake_options):
    from fake_metal import FakeMetal
    from triton_metal.runtime.metal_runtime import MetalRuntime, detect_chip
    return MetalRuntime(metal=FakeMetal(**fake_options), chip_info=detect_chip(device_name="Apple M1",
                                                                                 ioreg_output=""), macos=(14, 4))


def test_shader_compilation_failed(tmp_path, monkeypatch):
    monkeypatch.setenv("TRITON_METAL_SHADER_DUMP_DIR", str(tmp_path))
    runtime = _fake_runtime()
    with pytest.raises(MetalCompileError) as info:
        runtime.compile("#include <metal_stdlib>\n#error unknown type name 'flaot'\nkernel void k() {}\n", "k")
    assert str(info.value).startswith("Metal shader compilation failed for kernel 'k': ")
    _in_guide("Metal shader compilation failed for kernel '<name>'")


def test_out_of_memory():
    runtime = _fake_runtime(memory_budget=1 << 20)  # a GPU with 1 MiB of working set
    with pytest.raises(MetalOutOfMemoryError) as info:
        runtime.empty((1024, 1024), np.float32)
    assert str(info.value).startswith("Metal runtime error: out of memory")
    _in_guide("Metal runtime error: out of memory")
