"""Every mistake a kernel author can make gets an error that names the argument and the fix."""
from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
import torch
import triton
import triton.language as tl
from triton.compiler.errors import CompilationError
from triton_metal.arg_checks import LaunchChecks
from triton_metal.driver import MetalUtils
from triton_metal.errors import (
    GridError,
    LaunchArgumentError,
    ThreadgroupMemoryError,
    ThreadsPerThreadgroupError,
    UnsupportedOperationError,
)
from triton_metal.sim import SimCompileError


@triton.jit
def add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) + tl.load(y_ptr + offs, mask=mask), mask=mask)


@triton.jit
def strided_copy_kernel(x_ptr, out_ptr, rows, cols, stride_r, stride_c, BLOCK: tl.constexpr):
    r = tl.program_id(0)
    c = tl.arange(0, BLOCK)
    mask = c < cols
    tl.store(out_ptr + r * cols + c, tl.load(x_ptr + r * stride_r + c * stride_c, mask=mask), mask=mask)


@triton.jit
def transpose_kernel(x_ptr, y_ptr, N: tl.constexpr):
    i = tl.arange(0, N)
    tile = tl.load(x_ptr + i[:, None] * N + i[None, :])
    tl.store(y_ptr + i[None, :] * N + i[:, None], tile)


@triton.jit
def inline_asm_kernel(x_ptr, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs)
    y = tl.inline_asm_elementwise("mov.b32 $0, $1;", "=r,r", [x], dtype=tl.float32, is_pure=True, pack=1)
    tl.store(x_ptr + offs, y)


def _vectors(device, n=100):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, generator=g).to(device), torch.rand(n, generator=g).to(device), torch.empty(n, device=device)


# ---- tensors on the wrong device ----------------------------------------------------------------
class FakeCudaTensor:
    """Quacks like a CUDA tensor (this machine has no CUDA): what Triton's specializer and our checks read."""

    def __init__(self, like: torch.Tensor):
        self._like = like
        self.dtype = like.dtype
        self.device = torch.device("cuda", 0)

    def data_ptr(self) -> int:
        return self._like.data_ptr()


def test_cuda_tensor_is_refused_naming_the_argument_and_the_device(device):
    x, y, out = _vectors(device)
    with pytest.raises(LaunchArgumentError, match=r"argument 'y_ptr' is a tensor on device 'cuda:0'.*"
                                                  rf"move it with y_ptr\.to\('{device.type}'\)"):
        add_kernel[(1,)](x, FakeCudaTensor(y), out, 100, BLOCK=128)


def test_meta_tensor_is_refused_as_having_no_data(device):
    x, y, out = _vectors(device)
    with pytest.raises(LaunchArgumentError, match="argument 'out_ptr' is a 'meta' tensor, which has no data"):
        add_kernel[(1,)](x, y, out.to("meta"), 100, BLOCK=128)


def test_cpu_tensor_is_refused_when_kernels_run_on_the_apple_gpu():
    # No Apple GPU here: the checks are given an mps runtime, as the launcher does on a Mac.
    mps_runtime = SimpleNamespace(name="metal", capabilities=SimpleNamespace(fork_safe=False, torch_device="mps"))
    checks = LaunchChecks("add_kernel", {"x_ptr": "*fp32", "n": "i32", "BLOCK": "constexpr"}, mps_runtime)
    with pytest.raises(LaunchArgumentError, match=re.escape(
            "argument 'x_ptr' is a tensor on device 'cpu', but triton-metal runs kernels on the Apple GPU "
            "(device 'mps'): move it with x_ptr.to('mps')")):
        checks((1, 1, 1), (torch.zeros(4), 4, 128))


def test_tuple_arguments_are_checked_element_by_element(device):
    checks = LaunchChecks("k", {"ptrs": ("*fp32", "*fp32"), "n": "i32"}, SimpleNamespace(
        name="sim", capabilities=SimpleNamespace(fork_safe=True, torch_device=device.type)))
    with pytest.raises(LaunchArgumentError, match=r"argument 'ptrs\[1\]' is a 'meta' tensor"):
        checks((1, 1, 1), ((torch.zeros(4, device=device), torch.zeros(4, device="meta")), 4))


# ---- dtypes -------------------------------------------------------------------------------------
def test_fp64_tensors_are_refused_at_compile_time_with_the_fix(device):
    x, y, out = _vectors(device)
    with pytest.raises(UnsupportedOperationError) as info:
        add_kernel[(1,)](x.double(), y.double(), out.double(), 100, BLOCK=128)
    message = str(info.value)
    assert "fp64 argument 'x_ptr'" in message and "Apple GPUs have no 64-bit floating point" in message
    assert "x_ptr.to(torch.float32)" in message
    assert "test_bad_inputs.py" in message  # the kernel source location


# ---- layouts: strides are arguments, so Triton (and we) accept any ---------------------------------
def test_non_contiguous_input_is_read_through_the_strides_the_kernel_is_given(device):
    base = torch.arange(12 * 10, dtype=torch.float32).reshape(12, 10)
    view = base.t().to(device)  # 10 x 12, strides (1, 10): not contiguous
    out = torch.empty(10, 12, device=device)
    strided_copy_kernel[(10,)](view, out, 10, 12, view.stride(0), view.stride(1), BLOCK=16)
    torch.testing.assert_close(out.cpu(), base.t().contiguous(), rtol=0, atol=0)


# ---- argument count and constexprs (Triton's binder: its messages name the argument) ----------------
def test_missing_constexpr_names_the_argument(device):
    x, y, out = _vectors(device)
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'BLOCK'"):
        add_kernel[(1,)](x, y, out, 100)


def test_missing_arguments_are_all_named(device):
    x, y, out = _vectors(device)
    with pytest.raises(TypeError, match="missing 2 required positional arguments: 'n' and 'BLOCK'"):
        add_kernel[(1,)](x, y, out)


def test_too_many_arguments_give_the_expected_count(device):
    x, y, out = _vectors(device)
    with pytest.raises(TypeError, match="takes 5 positional arguments but 6 were given"):
        add_kernel[(1,)](x, y, out, 100, 128, 7)


def test_constexpr_passed_twice_is_named(device):
    x, y, out = _vectors(device)
    with pytest.raises(TypeError, match="got multiple values for argument 'BLOCK'"):
        add_kernel[(1,)](x, y, out, 100, 128, BLOCK=128)


# ---- grids ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("grid", [(0,), (0, 4), (3, 0, 2)])
def test_empty_grid_launches_nothing_and_raises_nothing(device, grid):
    x, y, _ = _vectors(device)
    out = torch.full((100,), -7.0, device=device)
    add_kernel[grid](x, y, out, 100, BLOCK=128)
    assert torch.equal(out.cpu(), torch.full((100,), -7.0))


def test_grid_beyond_metals_threadgroups_per_dimension_is_refused(device):
    x, y, out = _vectors(device)
    with pytest.raises(GridError, match=re.escape(
            "grid[1] = 4294967296 exceeds Metal's limit of 4294967295 (2**32 - 1) threadgroups per grid dimension")):
        add_kernel[(1, 2**32)](x, y, out, 100, BLOCK=128)


def test_negative_grid_is_refused(device):
    x, y, out = _vectors(device)
    with pytest.raises(GridError, match=r"grid\[0\] = -1 is negative"):
        add_kernel[(-1,)](x, y, out, 100, BLOCK=128)


def test_float_grid_is_refused_with_the_integer_fix(device):
    x, y, out = _vectors(device)
    with pytest.raises(GridError, match=r"grid\[0\] = 1.5 is a float, not an integer.*triton.cdiv"):
        add_kernel[(1.5,)](x, y, out, 100, BLOCK=128)


# ---- compile-time limits ----------------------------------------------------------------------------
def test_block_size_that_is_not_a_power_of_two_gets_tritons_message(device):
    x, y, out = _vectors(device)
    with pytest.raises(CompilationError, match="arange's range must be a power of 2"):
        add_kernel[(1,)](x, y, out, 100, BLOCK=100)


def test_num_warps_beyond_1024_threads_per_threadgroup(device):
    x, y, out = _vectors(device)
    with pytest.raises(ThreadsPerThreadgroupError, match=re.escape(
            "Required: 2048, Hardware limit: 1024. num_warps x 32 must not exceed 1024 on Apple GPUs: "
            "use num_warps <= 32")):
        add_kernel[(1,)](x, y, out, 100, BLOCK=128, num_warps=64)


@triton.jit
def dot_kernel(a_ptr, b_ptr, c_ptr, N: tl.constexpr):
    i = tl.arange(0, N)
    tile = i[:, None] * N + i[None, :]
    tl.store(c_ptr + tile, tl.dot(tl.load(a_ptr + tile), tl.load(b_ptr + tile)))


@triton.jit
def gather_kernel(src_ptr, idx_ptr, out_ptr, N: tl.constexpr):
    i = tl.arange(0, N)
    tile = i[:, None] * N + i[None, :]
    tl.store(out_ptr + tile, tl.gather(tl.load(src_ptr + tile), tl.load(idx_ptr + tile), axis=0))


def test_threadgroup_memory_beyond_32_kib(device):
    src = torch.rand(128, 128).to(device)
    idx = torch.zeros(128, 128, dtype=torch.int32, device=device)
    out = torch.empty(128, 128, device=device)
    with pytest.raises(ThreadgroupMemoryError, match=re.escape(
            "Required: 65536 bytes, Hardware limit: 32768 bytes. Apple GPUs have 32 KiB of threadgroup memory")):
        gather_kernel[(1,)](src, idx, out, N=128)  # tl.gather stages its whole 128x128 fp32 source: 64 KiB


def test_autotune_drops_a_config_exceeding_threadgroup_memory(device, capsys, monkeypatch):
    monkeypatch.setattr(triton.knobs.autotuning, "print", True)
    configs = [triton.Config({"N": 128}),  # a 64 KiB gather source: dropped
               triton.Config({"N": 32})]
    tuned = triton.autotune(configs, key=["SIZE"])(blocked_gather_kernel)
    src = torch.rand(128, 128)
    idx = torch.randint(0, 128, (128, 128), dtype=torch.int32, generator=torch.Generator().manual_seed(0))
    out = torch.empty(128, 128, device=device)
    grid = lambda meta: (128 // meta["N"], 128 // meta["N"])
    tuned[grid](src.to(device), (idx % 32).to(device), out, 128)
    assert "out of resource: threadgroup memory" in capsys.readouterr().out
    assert tuned.best_config.kwargs["N"] == 32
    # Each 32x32 block gathers along its rows from its own block of src.
    blocks = src.reshape(4, 32, 4, 32).permute(0, 2, 1, 3)
    ref = torch.gather(blocks, 2, (idx % 32).long().reshape(4, 32, 4, 32).permute(0, 2, 1, 3))
    torch.testing.assert_close(out.cpu(), ref.permute(0, 2, 1, 3).reshape(128, 128))


@triton.jit
def blocked_gather_kernel(src_ptr, idx_ptr, out_ptr, SIZE, N: tl.constexpr):
    r = tl.program_id(0) * N + tl.arange(0, N)
    c = tl.program_id(1) * N + tl.arange(0, N)
    tile = r[:, None] * SIZE + c[None, :]
    tl.store(out_ptr + tile, tl.gather(tl.load(src_ptr + tile), tl.load(idx_ptr + tile), axis=0))


def test_dot_operands_beyond_32_kib_are_staged_in_k_chunks(device):
    a = torch.rand(128, 128)
    c = torch.empty(128, 128, device=device)
    dot_kernel[(1,)](a.to(device), a.to(device), c, N=128)  # two 64 KiB fp32 operands: K chunks from registers
    torch.testing.assert_close(c.cpu().double(), a.double() @ a.double(), rtol=1e-5, atol=1e-4)


def test_layout_conversion_beyond_32_kib_runs_in_rounds(device):
    x = torch.rand(128, 128)
    y = torch.empty(128, 128, device=device)
    transpose_kernel[(1,)](x.to(device), y, N=128)  # the 64 KiB conversion: two rounds of 32 KiB
    assert torch.equal(y.cpu(), x.T)


def test_unsupported_op_is_refused_with_its_source_line(device):
    x = torch.rand(32).to(device)
    with pytest.raises(UnsupportedOperationError) as info:
        inline_asm_kernel[(1,)](x, BLOCK=32)
    message = str(info.value)
    assert "is not supported by the Metal backend" in message and "inline" in message
    assert "tl.inline_asm_elementwise(" in message  # the offending source line is quoted


def test_shader_the_compiler_rejects_gives_its_log_and_the_dump_path(fresh_caches):
    msl = ("#include <metal_stdlib>\nusing namespace metal;\n"
           "kernel void broken(device float* x [[buffer(0)]], uint3 pid [[threadgroup_position_in_grid]]) {\n"
           "    x[pid.x] = undefined_name;\n}\n")
    with pytest.raises(SimCompileError) as info:
        MetalUtils().load_binary("broken", msl.encode(), 0, 0)
    message, path = str(info.value), info.value.metal_path
    assert path and path.startswith(str(fresh_caches.sim)) and path in message
    assert "could not compile kernel 'broken'" in message
    assert f"{path}:4:" in message and "undefined_name" in message  # the compiler's log, at the MSL line
    with open(path) as f:
        assert f.read() == msl  # the dump is the shader exactly as given


def test_arrays_that_are_not_torch_tensors_are_left_to_the_runtime():
    # e.g. an mx.array on the MLX runtime: its device is not a torch device type string
    mlx = SimpleNamespace(name="mlx", capabilities=SimpleNamespace(fork_safe=False, torch_device="cpu"))
    checks = LaunchChecks("k", {"x_ptr": "*fp32"}, mlx)
    checks((1, 1, 1), (SimpleNamespace(device=SimpleNamespace(type=object())),))  # no error
    checks((1, 1, 1), (None,))
