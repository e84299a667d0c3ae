"""The Metal front-end check (triton_metal/metal_check): MSL that Apple's compiler rejects is
rejected here, on Linux, including MSL that the simulator's g++ build accepts; generated kernels
pass; errors name the kernel, the MSL line and the kernel source line.

Of the bad kernels below, the simulator's g++ build (metal_shim.h) accepts the threadgroup pointer
passed as a device pointer, pointers without an address space, recursion, reserved words as names,
simd functions on 64-bit integers and the MLX name collision (address spaces are empty macros
there); it accepted the bfloat ones too until its bfloat was tightened for issue 15.
"""
import json
import re
import subprocess
import sys

import pytest
import triton
import triton.language as tl

pytest.importorskip("clang.cindex", reason="the Metal front-end check needs libclang (pip install libclang)")

from triton_metal.metal_check import MetalFrontEndError, check_msl, frontend, stage
from triton_metal.metal_check.__main__ import main as cli_main
from triton_metal.metal_check.mlx_source import mlx_kernel_source
from triton_metal.metal_check.runtime_texts import check_kernel_texts

PRELUDE = "#include <metal_stdlib>\nusing namespace metal;\n"


def kernel(body: str, helpers: str = "", params: str = "device float* out [[buffer(0)]]") -> str:
    return (PRELUDE + helpers + f"kernel void k({params},\n    uint3 program_id [[threadgroup_position_in_grid]])\n"
            "{\n" + body + "\n}\n")


def errors(source: str, name: str | None = "k", version: str = "3.1") -> list:
    return [d.message for d in check_msl(source, name, version) if d.severity == "error"]


def assert_rejected(source: str, pattern: str, name: str | None = "k") -> None:
    found = errors(source, name)
    assert any(re.search(pattern, e) for e in found), f"expected /{pattern}/ among {found}"


# ---- known-good MSL --------------------------------------------------------------------------
def test_valid_msl_using_the_modelled_library_passes():
    body = """    threadgroup half a[64];
    float4 v = float4(1.0f, 2.0f, 3.0f, 4.0f);
    out[0] = fmax(out[1], v.x) + precise::exp(out[2]) + float(program_id.x);
    bfloat b = bfloat(out[3]);
    out[4] = float(b * b) + b;  // bfloat * bfloat -> bfloat; bfloat + float -> float
    int old = atomic_fetch_add_explicit((device atomic_int*)(out + 5), 1, memory_order_relaxed);
    out[6] = float(old) + simd_sum(out[7]);
    simdgroup_matrix<half, 8, 8> m;
    simdgroup_matrix<float, 8, 8> acc = make_filled_simdgroup_matrix<float, 8, 8>(0.0f);
    simdgroup_load(m, &a[0], 8, ulong2(0), false);
    simdgroup_multiply_accumulate(acc, m, m, acc);
    simdgroup_store(acc, out, 8);
    int local = 1, global = 2;  // OpenCL keywords, plain names in MSL
    out[8] = float(local + global);
    threadgroup_barrier(mem_flags::mem_device | mem_flags::mem_threadgroup);"""
    assert errors(kernel(body)) == []


def test_a_generated_kernel_passes_in_every_runtime_text(compile_msl):
    @triton.jit
    def add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) + tl.load(y_ptr + offs, mask=mask), mask=mask)

    msl, metadata = compile_msl(add_kernel, {"x_ptr": "*fp32", "y_ptr": "*fp32", "out_ptr": "*fp32", "n": "i32",
                                             "BLOCK": "constexpr"}, {"BLOCK": 256})
    diagnostics = check_kernel_texts(msl, metadata.name)
    assert [d.render() for d in diagnostics if d.severity == "error"] == []


# ---- known-bad MSL ---------------------------------------------------------------------------
def test_implicit_float_to_bfloat_is_rejected():
    assert_rejected(kernel("    bfloat b = out[0];\n    out[1] = float(b);"), r"no viable conversion from .*float.* to .*bfloat")


def test_implicit_half_to_bfloat_and_bfloat_to_half_are_rejected():
    assert_rejected(kernel("    half h = half(out[0]);\n    bfloat b = bfloat(1.0f);\n    b = h;"), "bfloat")
    assert_rejected(kernel("    bfloat b = bfloat(out[0]);\n    half h = b;\n    out[1] = h;"), "deleted function")


def test_threadgroup_pointer_passed_as_device_pointer_is_rejected():
    helper = "inline void fill(device float* p) { p[0] = 1.0f; }\n"
    assert_rejected(kernel("    threadgroup float t[32];\n    fill(t);\n    out[0] = t[0];", helper),
                    r"no matching function for call to 'fill'.*threadgroup")


def test_pointer_without_address_space_is_rejected():
    assert_rejected(kernel("    float* p = out;\n    p[0] = 1.0f;"), "without an address space")
    helper = "inline void fill(float* p) { p[0] = 1.0f; }\n"
    assert_rejected(kernel("    fill(out);", helper), "without an address space")


def test_simd_shuffle_xor_on_bfloat_is_rejected():
    assert_rejected(kernel("    bfloat b = bfloat(out[0]);\n    out[1] = float(simd_shuffle_xor(b, 1));"),
                    "simd_shuffle_xor' is unavailable: MSL SIMD-group functions have no bfloat overload")


def test_simd_functions_on_64_bit_integers_are_rejected():
    assert_rejected(kernel("    long x = long(out[0]);\n    out[1] = float(simd_sum(x));"), "no long overload")


def test_fmax_on_bfloat_is_rejected():
    assert_rejected(kernel("    bfloat a = bfloat(out[0]);\n    out[1] = float(fmax(a, a));"),
                    "'fmax' is unavailable: MSL has no bfloat overload")


def test_mixed_int_and_float_max_is_ambiguous_as_on_apple():
    assert_rejected(kernel("    out[0] = max(out[0], 0);"), "call to 'max' is ambiguous")


def test_recursion_is_rejected():
    helper = "inline float f(int n) { return n > 0 ? f(n - 1) : 0.0f; }\n"
    assert_rejected(kernel("    out[0] = f(3);", helper), r"recursive call \(f -> f\)")


def test_mutual_recursion_is_rejected():
    helpers = "inline float g(int n);\ninline float f(int n) { return g(n); }\ninline float g(int n) { return f(n - 1); }\n"
    assert_rejected(kernel("    out[0] = f(3);", helpers), "recursive call")


@pytest.mark.parametrize("word", ["vertex", "fragment", "threadgroup_imageblock", "ray_data"])
def test_msl_reserved_word_as_identifier_is_rejected(word):
    assert_rejected(kernel(f"    float {word} = 1.0f;\n    out[0] = {word};"), f"'{word}' is a reserved word in MSL")


def test_double_and_long_long_are_rejected():
    assert_rejected(kernel("    double d = 1.0;\n    out[0] = d;"), "double")
    assert_rejected(kernel("    long long n = 1;\n    out[0] = n;"), "long long")


def test_source_comment_ending_in_backslash_is_rejected():
    """Defect 1: a kernel source line ending in `\\` copied into a // comment swallows the next line."""
    body = "    // kernel.py:3: tl.store(o + offs, \\\n    out[0] = 1.0f;"
    assert_rejected(kernel(body), "multi-line // comment")


def test_trigraph_backslash_is_rejected():
    """MSL is C++14, where ??/ is a backslash: the same splice as above."""
    assert_rejected(kernel("    // kernel.py:3: s = '??/\n    out[0] = 1.0f;"), "trigraph|multi-line")


def test_atomics_take_memory_order_relaxed_only():
    body = "    atomic_fetch_add_explicit((device atomic_int*)out, 1, memory_order_seq_cst);"
    assert_rejected(kernel(body), "memory_order_seq_cst")  # not declared in 3.1
    assert errors(kernel(body), version="3.2") == ["MSL atomic functions take memory_order_relaxed only"]


def test_atomic_thread_fence_exists_from_msl_3_2():
    body = "    atomic_thread_fence(mem_flags::mem_device, memory_order_seq_cst, thread_scope_device);"
    assert_rejected(kernel(body), "undeclared identifier 'memory_order_seq_cst'")  # no fence in 3.1
    assert errors(kernel(body), version="3.2") == []


def test_float_atomics_in_threadgroup_memory_are_rejected():
    body = "    threadgroup atomic_float a;\n    atomic_fetch_add_explicit(&a, 1.0f, memory_order_relaxed);"
    assert_rejected(kernel(body), "no matching function for call to 'atomic_fetch_add_explicit'")


def test_as_type_on_a_pointer_is_rejected():
    assert_rejected(kernel("    device char* p = as_type<device char*>(out);\n    p[0] = 0;"),
                    "as_type reinterprets scalars and vectors, not pointers")


@pytest.mark.parametrize("params, pattern", [
    ("device float* out [[buffer(0)]], device float* b [[buffer(0)]]", r"\[\[buffer\(0\)\]\] is already used by 'out'"),
    ("device float* out [[buffer(31)]]", "indices 0-30 only"),
    ("device float* out [[buffer(0)]], float lane [[thread_index_in_simdgroup]]", "takes uint or ushort, not 'float'"),
    ("device float* out [[buffer(0)]], threadgroup float* t [[buffer(1)]]", "device or constant address space"),
    ("device float* out [[buffer(0)]], uint x [[thread_position_in_grdi]]", "not a kernel function input attribute"),
    ("device float* out [[buffer(0)]], uint2 t [[threads_per_grid]]", r"vector lengths .* must match"),
])
def test_kernel_attributes_are_checked_against_the_specification_table(params, pattern):
    assert_rejected(kernel("    out[0] = 1.0f;", params=params), pattern)


# ---- MLX: the source mx.fast.metal_kernel would compile ----------------------------------------
def test_mlx_attribute_name_collision_is_rejected():
    """MLX declares a parameter for each Metal attribute name found anywhere in the body: a kernel
    variable called grid_size is then redefined. The same kernel is fine as plain MSL."""
    msl = kernel("    int grid_size = 4;\n    out[0] = float(grid_size);")
    assert errors(msl) == []
    mlx_text = mlx_kernel_source(msl, "k")
    assert "uint3 grid_size [[grid_size]]" in mlx_text
    assert any("redefinition of 'grid_size'" in e for e in errors(mlx_text, None))


def test_mlx_attribute_names_in_comments_also_add_parameters():
    mlx_text = mlx_kernel_source(kernel("    // uses thread_position_in_grid\n    out[0] = 1.0f;"), "k")
    assert "uint3 thread_position_in_grid [[thread_position_in_grid]]" in mlx_text
    assert errors(mlx_text, None) == []


# ---- error messages and the compile stage -------------------------------------------------------
BAD_WITH_SOURCE = (PRELUDE + "kernel void bad_kernel(device bfloat* x [[buffer(0)]],\n"
                   "    uint3 program_id [[threadgroup_position_in_grid]])\n{\n"
                   "    // test_kernel.py:12: y = tl.maximum(x, x)\n"
                   "    bfloat y = fmax(x[0], x[1]);\n"
                   "    x[2] = y;\n}\n")


def test_error_message_names_kernel_msl_line_and_source_line():
    error = MetalFrontEndError("bad_kernel", check_msl(BAD_WITH_SOURCE, "bad_kernel"))
    text = str(error)
    assert "kernel 'bad_kernel'" in text
    assert "MSL line 7: bfloat y = fmax(x[0], x[1]);" in text
    assert "kernel source: test_kernel.py:12: y = tl.maximum(x, x)" in text


def test_compile_stage_raises_and_logs_when_the_check_is_on(monkeypatch, tmp_path):
    log, copies = tmp_path / "checks.jsonl", tmp_path / "kernels"
    monkeypatch.setenv(stage.ENV_FLAG, "1")
    monkeypatch.setenv(stage.ENV_LOG, str(log))
    monkeypatch.setenv(stage.ENV_DIR, str(copies))
    with pytest.raises(MetalFrontEndError, match="bad_kernel"):
        stage.check_generated(BAD_WITH_SOURCE, "bad_kernel", "3.1")
    stage.check_generated(kernel("    out[0] = 1.0f;"), "k", "3.1")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["kernel"], r["ok"]) for r in records] == [("bad_kernel", False), ("k", True)]
    assert len(list((copies / "3.1").glob("*.metal"))) == 2
    assert stage.summarize_log(log)["kernels_checked"] == 2 and stage.summarize_log(log)["failed"] == 1


def test_backend_cache_key_includes_the_model_when_the_check_is_on(monkeypatch):
    monkeypatch.setenv(stage.ENV_FLAG, "0")
    assert stage.cache_key() == ""
    monkeypatch.setenv(stage.ENV_FLAG, "1")
    assert frontend.header_hash()[:16] in stage.cache_key()


def test_cli_reports_failing_files(tmp_path, capsys):
    (tmp_path / "good.metal").write_text(kernel("    out[0] = 1.0f;"))
    (tmp_path / "bad.msl").write_text(BAD_WITH_SOURCE)
    assert cli_main([str(tmp_path), "--summary"]) == 1
    out = capsys.readouterr().out
    assert "2 files, 1 failed" in out and "bad.msl:7" in out


def test_cli_runs_as_a_module(tmp_path):
    (tmp_path / "good.metal").write_text(kernel("    out[0] = 1.0f;"))
    run = subprocess.run([sys.executable, "-m", "triton_metal.metal_check", str(tmp_path)], capture_output=True,
                         text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 files, 0 failed" in run.stdout


# ---- Apple's compiler over the kept kernels (the apple-silicon workflow) --------------------------
def test_xcrun_compiles_each_kept_kernel_with_its_language_version(tmp_path, capsys, monkeypatch):
    from types import SimpleNamespace

    from triton_metal.metal_check import xcrun
    (tmp_path / "3.1").mkdir()
    (tmp_path / "3.2").mkdir()
    (tmp_path / "3.1" / "good-0.metal").write_text(kernel("    out[0] = 1.0f;"))
    (tmp_path / "3.2" / "bad-1.metal").write_text(BAD_WITH_SOURCE)
    calls = []

    def fake_run(cmd, **kwargs):  # what xcrun would answer
        calls.append(cmd)
        bad = "bad-1" in cmd[-3]
        return SimpleNamespace(returncode=1 if bad else 0, stdout="", stderr="error: no matching function" if bad else "")

    results = xcrun.compile_all(tmp_path, run=fake_run, jobs=1)
    assert sorted(c[4] for c in calls) == ["-std=metal3.1", "-std=metal3.2"]
    assert all(c[:4] == ["xcrun", "-sdk", "macosx", "metal"] and c[5] == "-c" for c in calls)
    assert [r.returncode for r in results] == [0, 1]
    monkeypatch.setattr(xcrun.subprocess, "run", fake_run)
    assert xcrun.main([str(tmp_path)]) == 1
    assert "2 kernels compiled, 1 failed" in capsys.readouterr().out
