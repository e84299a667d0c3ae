"""The MSL pre-pass: signature parsing and line-preserving rewrites (no compiler needed)."""
from __future__ import annotations

import pytest
from triton_metal.sim.msl_prepass import PrepassError, mask, rewrite

SRC = """#include <metal_stdlib>
using namespace metal;
constant float K = 2.0f;  // [[not an attribute]] kernel void fake(
[[max_total_threads_per_threadgroup(256)]]
kernel void k(device const float* a [[buffer(0)]],
              constant uint& n [[ buffer(3) ]],
              threadgroup float4* scratch [[threadgroup(1)]],
              uint3 gid [[thread_position_in_grid]], ushort lane [[thread_index_in_simdgroup]]) {
    threadgroup float buf[256], other[4][8];
    threadgroup float* p = buf;
    threadgroup_barrier(mem_flags::mem_threadgroup);
}
"""


def test_signature_is_parsed():
    res = rewrite(SRC, "k")
    got = [(p.name, p.kind, p.index, p.builtin, p.type_text) for p in res.params]
    assert got == [
        ("a", "buffer", 0, None, "device const float*"),
        ("n", "buffer", 3, None, "constant uint&"),
        ("scratch", "threadgroup", 1, None, "threadgroup float4*"),
        ("gid", "builtin", None, "thread_position_in_grid", "uint3"),
        ("lane", "builtin", None, "thread_index_in_simdgroup", "ushort"),
    ]
    assert res.max_threads == 256
    assert res.n_static_decls == 2


def test_rewrite_keeps_lines_and_strips_attributes():
    res = rewrite(SRC, "k")
    assert res.text.count("\n") == SRC.count("\n")
    assert "[[" not in mask(res.text)
    lines = res.text.splitlines()
    assert "static const float K" in lines[2]
    assert "tm_rt_tg_alloc(0," in lines[8] and "tm_rt_tg_alloc(1," in lines[8] and "other" in lines[8]
    assert lines[9].strip() == "threadgroup float* p = buf;"  # a pointer stays per-thread


def test_comments_and_strings_are_masked():
    text = 'a // [[x]]\nb /* kernel\n void */ "s[[t]]" c'
    m = mask(text)
    assert len(m) == len(text) and m.count("\n") == 2
    assert "[[" not in m and "kernel" not in m and m.split() == ["a", "b", "c"]


def test_missing_attribute_is_reported_with_its_line():
    with pytest.raises(PrepassError, match="parameter 'x' has no") as info:
        rewrite("kernel void f(\n device float* x) {}", "f")
    assert info.value.line == 2


def test_kernel_attribute_spelling():
    res = rewrite("[[kernel]] void f(device int* p [[buffer(2)]]) { p[0] = 1; }", "f")
    assert res.text.startswith("kernel     void f(")
    assert [(p.name, p.index) for p in res.params] == [("p", 2)]


def test_instrumented_rewrite_wraps_pointers_and_marks_statements():
    res = rewrite(SRC, "k", instrument=True)
    assert res.text.count("\n") == SRC.count("\n")
    lines = res.text.splitlines()
    assert "__tm::device_ptr<const float> a" in lines[4]
    assert "__tm::threadgroup_ptr<float4> scratch" in lines[6]
    assert "auto buf = __tm::threadgroup_decl<" in lines[8] and "auto other = __tm::threadgroup_decl<" in lines[8]
    assert "__tm::threadgroup_ptr<float> p = buf;" in lines[9]
    # each statement is preceded by the marker of its own line (markers go after the previous ';' or '{')
    assert "__TM_SITE(9);" in lines[7] and "__TM_SITE(10);" in lines[8] and "__TM_SITE(11);" in lines[9]


def test_markers_skip_else_and_initializer_lists():
    src = """kernel void f(device int* p [[buffer(0)]]) {
    int v[2] = {1, 2};
    if (v[0]) p[0] = 1; else p[1] = 2;
    do { p[0] += 1; } while (p[0] < 3);
}"""
    text = rewrite(src, "f", instrument=True).text
    assert "= {1, 2};" in text and "; else" in text and "} while" in text
    assert text.count("__TM_SITE(") == 4  # before lines 2, 3, 4 and inside the do block
