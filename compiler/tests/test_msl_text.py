"""The sanitiser every piece of source text and every user-given name passes on its way into MSL
(triton_metal/codegen/msl_text.py): one test per hazard class. test_source_text_kernels.py runs
kernels whose source holds each hazard."""
import re

import pytest
from triton_metal.codegen.msl_text import COMMENT_LIMIT, check_generated, comment_text, identifier
from triton_metal.codegen.msl_words import MLX_ATTRIBUTES, RESERVED_WORDS
from triton_metal.errors import MetalError

PRINTABLE_LINE = re.compile(r"[ -~]*")


def safe_comment(text: str) -> bool:
    """What a `//` comment must be for the next line of MSL to stay code (checked on the result)."""
    return (PRINTABLE_LINE.fullmatch(text) is not None and "\\" not in text and "??" not in text
            and "/*" not in text and "*/" not in text)


@pytest.mark.parametrize("text", ["tl.store(o + offs, \\", "x = 1  # C:\\temp\\", "x  # dir\\   ", "a \\ b"])
def test_backslashes_anywhere_are_named_not_copied(text):
    out = comment_text(text)
    assert safe_comment(out)
    assert out.count("<backslash>") == text.count("\\")


@pytest.mark.parametrize("text", ["why??/", "??=define ??( ??) ??< ??> ??! ??' ??-", "???/"])
def test_trigraphs_are_broken(text):
    out = comment_text(text)
    assert safe_comment(out) and out.replace(" ", "") == text.replace(" ", "")


@pytest.mark.parametrize("text", ["a */ b", "/* c", "x /*/ y", "**//**"])
def test_block_comment_delimiters_are_broken(text):
    out = comment_text(text)
    assert safe_comment(out) and out.replace(" ", "") == text.replace(" ", "")


def test_non_ascii_is_written_as_code_points():
    assert comment_text("café ∑ 𝔵") == "caf<U+00E9> <U+2211> <U+1D535>"


@pytest.mark.parametrize("ch", ["\n", "\r", "\x00", "\x0b", "\x0c", "\x1b", "\x7f", "\u2028", "\x85"])
def test_control_characters_cannot_end_the_line(ch):
    out = comment_text(f"a{ch}b")
    assert safe_comment(out) and out == f"a<U+{ord(ch):04X}>b"


def test_a_tab_is_a_space():
    assert comment_text("a\tb") == "a b"


def test_long_lines_are_cut_with_a_marker_that_counts_the_rest():
    out = comment_text("y" * 1000)
    assert out == "y" * COMMENT_LIMIT + f" [... {1000 - COMMENT_LIMIT} more characters]"
    assert comment_text("y" * COMMENT_LIMIT) == "y" * COMMENT_LIMIT


def test_a_cut_never_splits_an_escape():
    out = comment_text("y" * (COMMENT_LIMIT - 1) + "é\\")
    assert out.startswith("y" * (COMMENT_LIMIT - 1) + "<U+00E9> [... 1 more")


@pytest.mark.parametrize("attribute", sorted(MLX_ATTRIBUTES))
def test_metal_attribute_names_are_broken_in_comments(attribute):
    out = comment_text(f"x = {attribute} + 1  # {attribute}_2")
    assert not any(a in out for a in MLX_ATTRIBUTES)
    assert out.replace("_", "") == f"x = {attribute} + 1  # {attribute}_2".replace("_", "")


def test_mlx_runtime_names_are_broken_in_comments():
    out = comment_text("mlx_in0_shape mlx_out1 my_mlx_in3_ndim")
    assert "mlx_in" not in out and "mlx_out" not in out


@pytest.mark.parametrize("word", sorted(RESERVED_WORDS))
def test_reserved_words_are_never_identifiers(word):
    assert identifier(word) not in RESERVED_WORDS and word in identifier(word)


@pytest.mark.parametrize("attribute", sorted(MLX_ATTRIBUTES))
def test_identifiers_never_contain_metal_attribute_names(attribute):
    for hint in (attribute, f"my_{attribute}", f"{attribute}s", f"{attribute}_ptr"):
        name = identifier(hint)
        assert not any(a in name for a in MLX_ATTRIBUTES), name
        assert name.replace("_", "") == hint.replace("_", "")  # readable: only an underscore went


@pytest.mark.parametrize("hint, expected", [
    ("thread_position_in_grid", "threadposition_in_grid"), ("mlx_in0", "mlxin0"), ("vertex", "v_vertex"),
    ("_x", "v_x"), ("__a__b", "v_a_b"), ("3d", "v_3d"), ("αβ", "u3b1u3b2"), ("a.b-c", "a_b_c"), ("", "v"),
    ("x", "x"), ("offs_2", "offs_2")])
def test_identifier_spellings(hint, expected):
    assert identifier(hint) == expected


@pytest.mark.parametrize("hint", ["thread_position_in_grid", "vertex", "_x", "αβ", "", "a__b", "NAN", "mlx_out2",
                                  "dispatch_threads_per_threadgroup", "x"])
def test_identifier_is_idempotent_and_a_plain_ascii_name(hint):
    name = identifier(hint)
    assert identifier(name) == name
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name) and "__" not in name


@pytest.mark.parametrize("bad", ["// tail \\", "// a ??/", "// a */", "// caf\u00e9",
                                 ("kernel void k(\n    uint3 p [[threadgroup_position_in_grid]])\n{\n"
                                  "    int grid_size = 0;")])
def test_generated_msl_with_a_hazard_is_an_internal_error(bad):
    msl = f"#include <metal_stdlib>\n{bad}\n" if "kernel void" in bad else f"{bad}\nkernel void k(\n)\n{{\n}}\n"
    with pytest.raises(MetalError, match="internal error"):
        check_generated(msl, "k")


def test_attribute_names_in_the_signature_are_allowed():
    check_generated("kernel void k(\n    uint3 program_id [[threadgroup_position_in_grid]])\n{\n    int x = 0;\n}\n", "k")
