"""What the generated MSL looks like, and what the code generator refuses."""
import pytest
import triton
import triton.language as tl
from triton_metal.errors import UnsupportedOperationError


@triton.jit
def copy_kernel(src, dst, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(dst + offs, tl.load(src + offs, mask=offs < n), mask=offs < n)


@triton.jit
def row_sum_kernel(x, out, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    tl.store(out, tl.sum(tl.load(x + offs), axis=0))


@triton.jit
def fp64_kernel(x, out):
    tl.store(out, tl.load(x) * 2.0)


def test_kernel_signature_binds_buffers_in_argument_order(compile_msl):
    msl, meta = compile_msl(copy_kernel, {"src": "*fp32", "dst": "*fp32", "n": "i32", "BLOCK": "constexpr"},
                            {"BLOCK": 128})
    assert "kernel void copy_kernel(" in msl
    assert "device float* src [[buffer(0)]]" in msl
    assert "device float* dst [[buffer(1)]]" in msl
    assert "constant int& n [[buffer(2)]]" in msl
    assert meta.name == "copy_kernel"
    assert meta.threadgroup_size == 128
    assert [k[1] for k in meta.arg_kinds] == ["buffer", "buffer", "scalar"]


def test_num_warps_sets_the_threadgroup_size(compile_msl):
    _, meta = compile_msl(copy_kernel, {"src": "*fp32", "dst": "*fp32", "n": "i32", "BLOCK": "constexpr"},
                          {"BLOCK": 1024}, num_warps=8)
    assert meta.threadgroup_size == 256


def test_reduction_uses_simd_collectives_and_threadgroup_memory(compile_msl):
    msl, meta = compile_msl(row_sum_kernel, {"x": "*fp32", "out": "*fp32", "BLOCK": "constexpr"}, {"BLOCK": 1024})
    assert "simd_sum(" in msl
    assert "threadgroup_barrier(mem_flags::mem_threadgroup)" in msl
    assert meta.shared > 0


def test_half_pointers_are_spelled_half(compile_msl):
    msl, _ = compile_msl(copy_kernel, {"src": "*fp16", "dst": "*fp16", "n": "i32", "BLOCK": "constexpr"},
                         {"BLOCK": 64})
    assert "device half* src" in msl


def test_fp64_is_refused_with_the_source_line(compile_msl):
    with pytest.raises(Exception) as info:
        compile_msl(fp64_kernel, {"x": "*fp64", "out": "*fp64"})
    err = info.value
    while err is not None and not isinstance(err, UnsupportedOperationError):
        err = err.__cause__ or err.__context__
    assert err is not None
    assert "is not supported by the Metal backend" in str(err)
    assert "Apple GPUs have no 64-bit floating point" in str(err)
    assert "test_codegen.py" in str(err)


def test_unsupported_op_names_the_op_and_location(compile_msl):
    @triton.jit
    def clock_kernel(out):
        tl.store(out, tl.extra.cuda.libdevice.pow(tl.load(out), 2.0) if False else tl.inline_asm_elementwise(
            "mov.u32 $0, %clock;", "=r", [], dtype=tl.int32, is_pure=False, pack=1))

    with pytest.raises(Exception) as info:
        compile_msl(clock_kernel, {"out": "*i32"})
    message = str(info.value)
    assert "Operation tt.elementwise_inline_asm is not supported by the Metal backend" in message
