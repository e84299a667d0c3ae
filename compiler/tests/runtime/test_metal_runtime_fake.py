"""The Metal runtime's PyObjC layer against a FAKE Metal API (fake_metal.py), on Linux.

These tests check what the runtime asks of Metal (call order, compile options, buffer sizes,
threadgroup sizes) and how it maps Metal's failures to errors. Launch results come from the fake
running each dispatch on the Metal simulator and are compared with numpy. Nothing here touches a
real Apple GPU; ``test_metal_runtime_gpu.py`` holds the tests that need one.
"""
from __future__ import annotations

import struct

import numpy as np
import pytest
import triton
import triton.language as tl
from fake_metal import FakeMetal, MTLCommandBufferErrorOutOfMemory
from triton.runtime.errors import OutOfResources
from triton_metal.errors import MetalCompileError, MetalError, MetalNotSupportedError, MetalOutOfMemoryError
from triton_metal.runtime.metal_runtime import MetalRuntime


@triton.jit
def add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) + tl.load(y_ptr + offs, mask=mask), mask=mask)


@triton.jit
def scale_kernel(x_ptr, n, factor, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(x_ptr + offs, tl.load(x_ptr + offs, mask=mask) * factor, mask=mask)


ADD_SIGNATURE = {"x_ptr": "*fp32", "y_ptr": "*fp32", "out_ptr": "*fp32", "n": "i32", "BLOCK": "constexpr"}


@pytest.fixture
def add_msl(compile_msl):
    msl, metadata = compile_msl(add_kernel, ADD_SIGNATURE, {"BLOCK": 128}, num_warps=4)
    return msl, metadata


def make_runtime(**fake_options):
    fake = FakeMetal(**fake_options)
    return MetalRuntime(metal=fake, macos=(14, 5)), fake


# ---- device and chip ---------------------------------------------------------------------------

def test_runtime_identifies_the_chip_from_the_metal_device_name():
    rt, _ = make_runtime(device_name="Apple M2 Pro")
    assert rt.chip.id == "apple-m2-pro"
    assert rt.chip.metal_family == "apple8"


def test_no_metal_device_is_a_clear_error():
    with pytest.raises(MetalNotSupportedError, match="TRITON_METAL_DEVICE=sim"):
        MetalRuntime(metal=FakeMetal(has_device=False), macos=(14, 5))


# ---- compile -----------------------------------------------------------------------------------

def test_compile_sets_language_version_and_safe_math_before_building_the_pipeline(add_msl):
    rt, fake = make_runtime()
    msl, metadata = add_msl
    pipeline = rt.compile(msl, metadata.name)
    assert fake.names()[-7:] == ["MTLCompileOptions.init", "setLanguageVersion", "setMathMode",
                                 "setMathFloatingPointFunctions", "newLibraryWithSource", "newFunctionWithName",
                                 "newComputePipelineStateWithFunction"]
    (library,) = fake.find("newLibraryWithSource")
    assert library["language_version"] == fake.MTLLanguageVersion3_1
    assert library["math_mode"] == fake.MTLMathModeSafe
    assert library["math_functions"] == fake.MTLMathFloatingPointFunctionsPrecise
    assert pipeline.max_total_threads_per_threadgroup == 1024 and not pipeline.fast_math


def test_macos_13_uses_metal_3_0_and_turns_fast_math_off_explicitly(add_msl):
    fake = FakeMetal(supports_math_mode=False)
    rt = MetalRuntime(metal=fake, macos=(13, 6))
    rt.compile(*add_msl[:1], add_msl[1].name)
    (library,) = fake.find("newLibraryWithSource")
    assert library["language_version"] == fake.MTLLanguageVersion3_0
    assert fake.find("setFastMathEnabled") == [{"value": False}]


def test_fast_math_is_the_kernels_own_choice_not_the_runtimes(add_msl, compile_msl, monkeypatch):
    # The mode is decided once, when the kernel is compiled (MetalOptions.fast_math, in the cache key), and
    # the MSL states it: the runtime compiles what the MSL says, whatever the environment says at launch.
    rt, fake = make_runtime()
    monkeypatch.setenv("TRITON_METAL_FAST_MATH", "1")
    assert not rt.compile(add_msl[0], add_msl[1].name).fast_math  # compiled precise before the variable was set
    fast_msl, metadata = compile_msl(add_kernel, ADD_SIGNATURE, {"BLOCK": 128}, num_warps=4)  # now fast
    assert "#pragma METAL fp math_mode(fast)" in fast_msl
    assert rt.compile(fast_msl, metadata.name).fast_math
    assert fake.find("setMathMode") == [{"value": fake.MTLMathModeSafe}, {"value": fake.MTLMathModeFast}]
    assert fake.find("setMathFloatingPointFunctions")[-1] == {"value": fake.MTLMathFloatingPointFunctionsFast}


def test_torch_refuses_a_precise_kernel_it_would_compile_with_fast_math(add_msl):
    # PyTorch compiles with fast math when PYTORCH_MPS_FAST_MATH is set; before MSL 3.2 a kernel cannot
    # state its own math mode (numerics.MathMode.pragmas), so the precise kernel is refused, not miscompiled.
    from triton_metal.runtime.metal_runtime import check_torch_math_mode
    msl, metadata = add_msl
    with pytest.raises(MetalError, match="unset PYTORCH_MPS_FAST_MATH"):
        check_torch_math_mode(msl, metadata.name, "MTLLanguageVersion3_1", {"PYTORCH_MPS_FAST_MATH": "1"})
    check_torch_math_mode(msl, metadata.name, "MTLLanguageVersion3_2", {"PYTORCH_MPS_FAST_MATH": "1"})
    check_torch_math_mode(msl, metadata.name, "MTLLanguageVersion3_1", {})


def test_pipelines_are_cached_until_released(add_msl):
    rt, fake = make_runtime()
    first = rt.compile(add_msl[0], add_msl[1].name)
    assert rt.compile(add_msl[0], add_msl[1].name) is first
    assert len(fake.find("newLibraryWithSource")) == 1
    assert rt.release() == 1
    assert rt.compile(add_msl[0], add_msl[1].name) is not first
    assert len(fake.find("newLibraryWithSource")) == 2


def test_compile_failure_raises_with_apples_log_and_the_dumped_msl(shader_dump_dir):
    rt, _ = make_runtime()
    msl = "#include <metal_stdlib>\n#error use of undeclared identifier 'offz'\nkernel void k() {}\n"
    with pytest.raises(MetalCompileError) as info:
        rt.compile(msl, "k")
    message = str(info.value)
    assert message.startswith("Metal shader compilation failed for kernel 'k': program_source:2:2: error: use of "
                              "undeclared identifier 'offz'")
    dumped = list(shader_dump_dir.glob("k-*.metal"))
    assert len(dumped) == 1 and str(dumped[0]) in message
    assert dumped[0].read_text() == msl


def test_missing_kernel_function_names_the_ones_compiled(shader_dump_dir):
    rt, _ = make_runtime()
    with pytest.raises(MetalCompileError, match=r"no kernel named 'other' \(it has: k\)"):
        rt.compile("kernel void k() {}\n", "other")


# ---- launch ------------------------------------------------------------------------------------

def _add_buffers(rt, x, y, out):
    return {0: rt.buffer_argument(x, "x_ptr"), 1: rt.buffer_argument(y, "y_ptr"),
            2: rt.buffer_argument(out, "out_ptr"), 3: struct.pack("<i", x.size)}


def test_launch_binds_buffers_and_dispatches_threadgroups_of_the_kernel_size(add_msl):
    rt, fake = make_runtime()
    msl, metadata = add_msl
    x = np.arange(300, dtype=np.float32)
    y = np.full(300, 0.5, dtype=np.float32)
    out = np.zeros(300, dtype=np.float32)
    pipeline = rt.compile(msl, metadata.name)
    rt.launch(pipeline, (3, 1, 1), (metadata.threadgroup_size, 1, 1), _add_buffers(rt, x, y, out))
    np.testing.assert_array_equal(out, x + y)
    launch_calls = fake.names()[fake.names().index("commandBuffer"):]
    assert launch_calls[:3] == ["commandBuffer", "computeCommandEncoder", "setComputePipelineState"]
    assert launch_calls[-4:] == ["dispatchThreadgroups", "endEncoding", "commit", "waitUntilCompleted"]
    assert fake.find("dispatchThreadgroups") == [{"grid": (3, 1, 1), "threadgroup": (128, 1, 1)}]
    # three staging buffers of 300 floats, and the scalar as the 4 bytes of an int32
    assert [c["length"] for c in fake.find("newBufferWithLength")] == [1200, 1200, 1200]
    assert fake.find("setBytes") == [{"index": 3, "length": 4, "data": struct.pack("<i", 300)}]


def test_shared_arrays_are_bound_without_copies_at_their_offset(compile_msl):
    msl, metadata = compile_msl(scale_kernel, {"x_ptr": "*fp32", "n": "i32", "factor": "fp32", "BLOCK": "constexpr"},
                                {"BLOCK": 64}, num_warps=2)
    rt, fake = make_runtime()
    x = rt.empty(100, np.float32)
    x[:] = np.arange(100, dtype=np.float32)
    expected = x.copy()
    expected[10:] *= 3.0
    allocations = len(fake.find("newBufferWithLength"))
    pipeline = rt.compile(msl, metadata.name)
    rt.launch(pipeline, (2, 1, 1), (64, 1, 1),
              {0: rt.buffer_argument(x[10:], "x_ptr"), 1: struct.pack("<i", 90), 2: struct.pack("<f", 3.0)})
    assert len(fake.find("newBufferWithLength")) == allocations  # no staging buffer
    assert fake.find("setBuffer") == [{"index": 0, "offset": 40, "length": 400}]
    assert "waitUntilCompleted" not in fake.names()  # asynchronous until synchronize()
    rt.synchronize()
    assert fake.names()[-1] == "waitUntilCompleted"
    np.testing.assert_array_equal(x, expected)


def test_null_pointer_binds_a_placeholder_buffer(add_msl):
    rt, fake = make_runtime()
    pipeline = rt.compile(add_msl[0], add_msl[1].name)
    x = np.ones(4, np.float32)
    rt.launch(pipeline, (1, 1, 1), (128, 1, 1), {0: x, 1: x, 2: None, 3: struct.pack("<i", 0)})
    assert {"index": 2, "offset": 0, "length": 16} in fake.find("setBuffer")


def test_empty_grid_launches_nothing(add_msl):
    rt, fake = make_runtime()
    pipeline = rt.compile(add_msl[0], add_msl[1].name)
    x = np.ones(4, np.float32)
    rt.launch(pipeline, (0, 1, 1), (128, 1, 1), _add_buffers(rt, x, x, x.copy()))
    assert "commandBuffer" not in fake.names()


def test_threadgroup_larger_than_the_pipeline_allows_is_out_of_resources(add_msl):
    rt, fake = make_runtime(max_threads=64)
    pipeline = rt.compile(add_msl[0], add_msl[1].name)
    x = np.ones(128, np.float32)
    with pytest.raises(OutOfResources, match="Hardware limit: 64"):
        rt.launch(pipeline, (1, 1, 1), (128, 1, 1), _add_buffers(rt, x, x, x.copy()))
    assert "dispatchThreadgroups" not in fake.names()


def test_threadgroup_memory_lengths_are_set_per_slot():
    rt, fake = make_runtime()
    msl = ("#include <metal_stdlib>\nusing namespace metal;\n"
           "kernel void rev(device float* x [[buffer(0)]], threadgroup float* tmp [[threadgroup(0)]],\n"
           "                uint i [[thread_index_in_threadgroup]]) {\n"
           "    tmp[i] = x[i];\n    threadgroup_barrier(mem_flags::mem_threadgroup);\n    x[i] = tmp[31 - i];\n}\n")
    x = np.arange(32, dtype=np.float32)
    rt.launch(rt.compile(msl, "rev"), (1, 1, 1), (32, 1, 1), {0: x}, threadgroup_lengths={0: 128})
    assert fake.find("setThreadgroupMemoryLength") == [{"index": 0, "length": 128}]
    np.testing.assert_array_equal(x, np.arange(32, dtype=np.float32)[::-1])


# ---- errors ------------------------------------------------------------------------------------

def test_allocation_failure_is_out_of_memory_with_the_sizes():
    rt, _ = make_runtime(memory_budget=1 << 20)
    with pytest.raises(MetalOutOfMemoryError, match=r"^Metal runtime error: out of memory: allocating 4194304 "
                                                     r"bytes .* recommended working set 1048576 bytes"):
        rt.empty((1024, 1024), np.float32)


def test_buffer_beyond_max_buffer_length_is_out_of_memory():
    rt, _ = make_runtime(max_buffer_length=1 << 16)
    with pytest.raises(MetalOutOfMemoryError, match="65537 bytes, more than the device's maxBufferLength of 65536"):
        rt.new_shared_buffer(65537, "a test buffer")


def test_command_buffer_out_of_memory_surfaces_at_synchronize(compile_msl):
    msl, metadata = compile_msl(scale_kernel, {"x_ptr": "*fp32", "n": "i32", "factor": "fp32", "BLOCK": "constexpr"},
                                {"BLOCK": 64}, num_warps=2)
    rt, fake = make_runtime()
    x = rt.empty(64, np.float32)
    pipeline = rt.compile(msl, metadata.name)
    fake.fail_next_commit = (MTLCommandBufferErrorOutOfMemory, "Insufficient Memory")
    rt.launch(pipeline, (1, 1, 1), (64, 1, 1), {0: x, 1: struct.pack("<i", 64), 2: struct.pack("<f", 2.0)})
    with pytest.raises(MetalOutOfMemoryError, match=f"ran out of memory running '{metadata.name}'"):
        rt.synchronize()
    rt.synchronize()  # the failed command buffer is reported once


def test_command_buffer_failure_names_the_kernel_and_metals_description(compile_msl):
    msl, metadata = compile_msl(scale_kernel, {"x_ptr": "*fp32", "n": "i32", "factor": "fp32", "BLOCK": "constexpr"},
                                {"BLOCK": 64}, num_warps=2)
    rt, fake = make_runtime()
    fake.fail_next_commit = (1, "Internal Error (0000000e:Internal Error)")
    with pytest.raises(MetalError, match=f"command buffer running '{metadata.name}' failed: Internal Error"):
        rt.launch(rt.compile(msl, metadata.name), (1, 1, 1), (64, 1, 1),
                  {0: np.ones(64, np.float32), 1: struct.pack("<i", 64), 2: struct.pack("<f", 2.0)})


def test_non_contiguous_numpy_arrays_are_refused_with_the_fix(add_msl):
    rt, _ = make_runtime()
    x = np.ones(256, np.float32)[::2]
    with pytest.raises(MetalError, match="np.ascontiguousarray"):
        rt.launch(rt.compile(add_msl[0], add_msl[1].name), (1, 1, 1), (128, 1, 1), _add_buffers(rt, x, x, x))


def test_cpu_torch_tensors_are_refused_with_the_fix():
    import torch
    rt, _ = make_runtime()
    with pytest.raises(MetalError, match=r"x_ptr.to\('mps'\)"):
        rt.buffer_argument(torch.ones(4), "x_ptr")


# ---- the torch path's arguments (the launch itself needs an Apple GPU) -------------------------

def test_torch_arguments_keep_slot_order_and_each_scalars_bytes():
    import torch
    from triton_metal.runtime.metal_runtime import torch_launch_arguments
    x = torch.arange(6, dtype=torch.float32)
    args, threads, group_size = torch_launch_arguments(
        {0: x, 1: struct.pack("<i", -7), 2: struct.pack("<e", 1.5), 3: None}, (5, 2, 1), (128, 1, 1), "null")
    assert args[0] is x and args[3] == "null"
    # int lists, which PyTorch binds as setBytes of their int64s: the scalar's bytes first, zero-padded
    assert struct.unpack_from("<i", struct.pack("<q", *args[1]))[0] == -7 and len(args[1]) == 1
    assert struct.unpack_from("<e", struct.pack("<q", *args[2]))[0] == 1.5 and len(args[2]) == 1
    assert threads == [640, 2, 1] and group_size == [128, 1, 1]  # = 5 x 2 x 1 threadgroups of 128


def test_more_scalar_bytes_than_setbytes_takes_is_a_clear_error():
    from triton_metal.runtime.metal_runtime import torch_launch_arguments
    with pytest.raises(MetalError, match="at most 4095 bytes"):
        torch_launch_arguments({0: bytes(4096)}, (1, 1, 1), (32, 1, 1))


def test_chip_names_and_core_counts_parse_from_recorded_outputs():
    from triton_metal.runtime.chips import chip_id_from_name, detect_chip, gpu_core_count_from_ioreg
    assert chip_id_from_name("Apple M1") == "apple-m1"
    assert chip_id_from_name("Apple M3 Max") == "apple-m3-max"
    assert chip_id_from_name("Intel(R) Core(TM) i7-9750H CPU @ 2.60GHz") is None
    ioreg = '    |   |   "gpu-core-count" = 19\n    |   |   "num-cores" = 4\n'
    assert gpu_core_count_from_ioreg(ioreg) == 19
    found = detect_chip(device_name="AMD Radeon Pro 5500M", brand_string="Apple M2 Pro", ioreg_output=ioreg)
    assert (found.id, found.gpu_cores, found.source) == ("apple-m2-pro", 19, "sysctl machdep.cpu.brand_string")
    newer = detect_chip(device_name="Apple M9", ioreg_output="")
    assert newer.id == "apple-m9" and newer.chip.max_threads_per_threadgroup == 1024 and newer.gpu_cores is None
    with pytest.raises(MetalNotSupportedError, match="Apple Silicon"):
        detect_chip(device_name="", brand_string="Intel(R) Core(TM) i9", ioreg_output="")
