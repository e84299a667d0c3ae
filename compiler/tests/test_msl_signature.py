"""msl_signature: the MSL reading the simulator and the front-end check share."""
from __future__ import annotations

import ast
from pathlib import Path

from triton_metal import msl_signature
from triton_metal.msl_signature import kernel_signatures, line_of, mask, match_close, split_top_level, top_level

SOURCE = """\
#include <metal_stdlib>
// kernel void in_a_comment(
kernel void first(device float* a [[buffer(0)]]) { }
[[kernel]] void second(uint i [[thread_position_in_grid]]) { }
kernel void unclosed(device float* a
"""


def test_kernel_signatures_in_both_spellings_and_in_order():
    found = [(k.name, SOURCE[k.open_paren], SOURCE[k.close_paren] if k.close_paren is not None else None)
             for k in kernel_signatures(mask(SOURCE))]
    assert found == [("first", "(", ")"), ("second", "(", ")"), ("unclosed", "(", None)]


def test_kernel_signature_positions_are_the_texts():
    [first] = [k for k in kernel_signatures(SOURCE) if k.name == "first"]
    assert SOURCE[first.start:first.open_paren] == "kernel void first"
    assert line_of(SOURCE, first.start) == 3
    assert SOURCE[first.open_paren + 1:first.close_paren] == "device float* a [[buffer(0)]]"


def test_a_kernel_in_a_comment_counts_only_unmasked():
    assert "in_a_comment" in [k.name for k in kernel_signatures(SOURCE)]
    assert "in_a_comment" not in [k.name for k in kernel_signatures(mask(SOURCE))]


def test_mask_keeps_length_and_lines():
    text = 'int a; // x, y\nchar c = \',\'; const char* s = "a,b"; /* p,\nq */ int b;'
    masked = mask(text)
    assert len(masked) == len(text) and masked.count("\n") == text.count("\n")
    assert "," not in masked and "int a;" in masked and "int b;" in masked


def test_match_close_counts_only_its_bracket_kind():
    text = "g(a[(b]), c)"
    assert match_close(text, 1) == len(text) - 1
    assert match_close(text, 3) == 6
    assert match_close("f((a)", 1) is None


def test_split_top_level_parameter_list():
    text = "device vec<int, 2>* a [[buffer(0)]], uint i [[thread_position_in_grid]]"
    assert [text[a:b] for a, b in split_top_level(text)] == [
        "device vec<int, 2>* a [[buffer(0)]]", " uint i [[thread_position_in_grid]]"]


def test_split_top_level_call_arguments_where_angle_brackets_compare():
    text = "simd_shuffle(a < b ? x : y, lane)"
    open_paren = text.index("(")
    spans = split_top_level(text, open_paren + 1, match_close(text, open_paren), opens="([")
    assert [text[a:b] for a, b in spans] == ["a < b ? x : y", " lane"]


def test_split_top_level_keeps_empty_parts():
    assert [("a,,b,"[a:b]) for a, b in split_top_level("a,,b,")] == ["a", "", "b", ""]


def test_top_level_drops_bracketed_text():
    assert top_level("threadgroup float x[4], y[f(2)];") == "threadgroup float x[], y[];"


def test_imports_nothing_of_ours():
    tree = ast.parse(Path(msl_signature.__file__).read_text())
    modules = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    modules += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in modules if m and m.startswith("triton_metal")]
