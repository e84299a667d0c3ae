"""The two namespaces of identifiers (issue 22) and the tables behind them (codegen/msl_words.py,
msl_builtin_names.py, msl_text.py): the tables are complete with respect to what they are read from,
a user's name can never be spelled as a reserved word or a name of the code generator's own, and the
guard of generate_msl rejects MSL that names anything else. test_identifier_names.py runs kernels."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from triton_metal.codegen import own_names
from triton_metal.codegen.emitter import KernelEmitter
from triton_metal.codegen.msl_text import (
    OWN_FIXED,
    check_generated,
    identifier,
    is_own,
    own,
    own_spelling,
    unaccounted_identifiers,
)
from triton_metal.codegen.msl_words import MLX_ATTRIBUTES, OWN_PREFIX, RESERVED_WORDS
from triton_metal.errors import MetalError

SIM_INCLUDE = Path(__file__).resolve().parents[1] / "triton_metal" / "sim" / "include"


def _clang():
    return pytest.importorskip("clang.cindex")


# ---- the tables are complete -----------------------------------------------------------------------
def test_the_builtin_table_is_generated_from_the_current_model():
    _clang()
    from triton_metal.metal_check import builtin_names
    assert builtin_names.TABLE.read_text() == builtin_names.table_text(), \
        "the model of <metal_stdlib> changed: run `python -m triton_metal.metal_check.builtin_names`"


def test_the_builtins_of_the_table_include_what_the_generator_calls():
    for name in ("threadgroup_barrier", "simd_shuffle_xor", "simd_sum", "as_type", "fma", "fmax", "select",
                 "atomic_fetch_add_explicit", "simdgroup_multiply_accumulate", "memory_order_relaxed", "mem_flags",
                 "float4", "ushort", "metal", "precise", "fast", "INFINITY", "NAN"):
        assert name in RESERVED_WORDS, name


def _gxx_search_dirs() -> list:
    out = subprocess.run(["g++", "-std=c++17", "-x", "c++", "-E", "-v", "-"], input="", capture_output=True,
                         text=True, check=True).stderr
    block = out.split("#include <...> search starts here:")[1].split("End of search list")[0]
    return [line.strip() for line in block.splitlines() if line.strip()]


def _shim_declarations() -> dict:
    """name -> where, for every name the simulator's shim (and the C headers it includes) declares at
    global scope or in metal::/metal::precise::/metal::fast::, and every macro they define."""
    ci = _clang()
    tu = ci.Index.create().parse(
        "k.cpp", args=["-x", "c++", "-std=c++17", "-nostdinc", "-nostdinc++", f"-I{SIM_INCLUDE}"]
        + [f"-isystem{d}" for d in _gxx_search_dirs()],
        unsaved_files=[("k.cpp", '#include "metal_shim.h"\nusing namespace metal;\n')],
        options=ci.TranslationUnit.PARSE_DETAILED_PROCESSING_RECORD)
    assert not [d for d in tu.diagnostics if d.severity >= ci.Diagnostic.Error]
    kinds, found = ci.CursorKind, {}

    def walk(cursor, scope):
        for child in cursor.get_children():
            name = child.spelling
            if child.location.file is None or not name or name.startswith(("_", "operator")):
                continue
            if child.kind == kinds.NAMESPACE:
                if name in ("metal", "precise", "fast"):
                    found[name] = "namespace"
                    walk(child, f"{scope}{name}::")
            elif child.kind == kinds.MACRO_DEFINITION:
                found.setdefault(name, "macro")
            elif child.kind not in (kinds.MACRO_INSTANTIATION, kinds.INCLUSION_DIRECTIVE, kinds.UNEXPOSED_DECL,
                                    kinds.LINKAGE_SPEC, kinds.USING_DIRECTIVE):
                found.setdefault(name, scope or "global")
    walk(tu.cursor, "")
    return found


def test_every_name_the_simulator_sees_is_reserved_or_its_own():
    """A user's name that the simulator's shim or its C headers define would not compile there (a macro
    replaces it, a global type or function clashes with a kernel or function name)."""
    if shutil.which("g++") is None:
        pytest.skip("no g++: the simulator's headers are not available")
    missing = {name: where for name, where in _shim_declarations().items()
               if name not in RESERVED_WORDS and not is_own(name)}
    assert not missing, f"names the simulator defines that a user's name could take: {missing}"


def test_every_macro_gxx_defines_for_the_simulator_is_reserved_or_its_own():
    if shutil.which("g++") is None:
        pytest.skip("no g++")
    text = subprocess.run(["g++", "-std=c++17", "-dM", "-E", f"-I{SIM_INCLUDE}", "-x", "c++", "-"],
                          input='#include "metal_shim.h"\n', capture_output=True, text=True, check=True).stdout
    macros = {m.group(1) for m in re.finditer(r"^#define (\w+)", text, re.MULTILINE)}
    missing = sorted(m for m in macros if not m.startswith("_") and m not in RESERVED_WORDS and not is_own(m))
    assert not missing


# ---- a user's name -----------------------------------------------------------------------------------
def test_no_reserved_word_and_no_attribute_is_the_generator_s_own():
    assert not [w for w in RESERVED_WORDS | set(MLX_ATTRIBUTES) if is_own(w)]


@pytest.mark.parametrize("hint", ["tm_x", "TM_X", "Tm_scratch", "tM_i", "tm_", "tm__a", "_tm_x", "__tm_x"])
def test_a_user_s_name_is_never_the_generator_s(hint):
    name = identifier(hint)
    assert not is_own(name) and name not in RESERVED_WORDS
    assert identifier(name) == name


@pytest.mark.parametrize("hint", ["threadgroup_barrier", "as_type", "simd_shuffle", "fma", "float4", "INT8_MAX",
                                  "NULL", "intptr_t", "all", "numeric_limits", "TM_KEEP_SITE", "tm_rt_tg_alloc"])
def test_names_of_metal_and_the_simulator_are_prefixed(hint):
    assert identifier(hint) == f"v_{hint}"


@pytest.mark.parametrize("hint", ["x", "offs", "j", "i", "g", "m", "lane", "simd", "acc0", "program_id", "scratch"])
def test_ordinary_names_and_the_generator_s_former_ones_keep_their_spelling(hint):
    assert identifier(hint) == hint


# ---- the code generator's own names -------------------------------------------------------------------
def test_the_fixed_names_are_all_own_names():
    fixed = [v for k, v in vars(own_names).items() if k.isupper() and isinstance(v, str)]
    assert len(fixed) == len(set(fixed)) > 20
    assert all(is_own(name) and name in OWN_FIXED for name in fixed)


@pytest.mark.parametrize("word", ["", "I", "a__b", "x_", "9x", "grid_size", "mlx_in0", "a-b"])
def test_own_refuses_what_is_not_a_word_of_its_namespace(word):
    with pytest.raises(ValueError):
        own(word)


def test_names_allocated_per_kernel_avoid_every_fixed_name_and_the_simulator_runtime():
    em = KernelEmitter("k", None)
    for word in ("i", "erf", "scratch", "diag_record", "atomic_cas", "lane"):
        assert em.fresh_own(word) not in OWN_FIXED  # tm_i, tm_erf ... are taken: tm_i_1, tm_erf_1
    assert not em.fresh_own("rt_tg_alloc").startswith(f"{OWN_PREFIX}rt_")
    assert em.fresh_own("tm_x_acc") == "tm_x_acc"  # built from an own name: not tm_v_tm_...
    assert em.fresh_own("x_acc") == "tm_x_acc_1"
    assert em.fresh_own("acc0") == "tm_acc0_1"  # tm_acc0 is a numbered fixed name (own_names.ACC)


def test_both_namespaces_share_one_allocator():
    em = KernelEmitter("k", None)
    names = [em.fresh("x"), em.fresh("x"), em.fresh_own("x"), em.fresh_own("x"), em.fresh("tm_x")]
    assert names == ["x", "x_1", "tm_x_1", "tm_x_2", "v_tm_x"]  # (tm_x is a fixed own name: own_names.X)


def test_own_spelling_keeps_a_user_s_name_readable():
    assert own_spelling("αβ_acc") == "tm_u3b1u3b2_acc"
    assert own_spelling("thread_position_in_grid_line") == "tm_threadposition_in_grid_line"


# ---- the guard of generate_msl --------------------------------------------------------------------------
KERNEL = """#include <metal_stdlib>
using namespace metal;

inline float tm_helper(float a) {{ float b = a; return b; }}

kernel void k(
    device float* x [[buffer(0)]],
    ushort tm_lane [[thread_index_in_simdgroup]])
{{
    float v[4];
    {body}
}}
"""
FORMER_REDUCTION = "for (uint j = 1; j < 4; ++j) v[0] = fmax(v[0], v[j]);  // the loop index of before"


def test_an_identifier_no_one_gave_out_is_an_internal_error():
    msl = KERNEL.format(body=FORMER_REDUCTION)
    # (an unregistered tm_ name too: tm_helper is neither a fixed own name nor allocated)
    assert unaccounted_identifiers(msl, {"k", "x", "v", "a", "b"}) == ["tm_helper", "j"]
    helper = "inline float tm_helper(float a) { float b = a; return b; }"
    with pytest.raises(MetalError, match="internal error.*'j'.*spelled a name itself"):
        check_generated(msl, "k", {"k", "x", "v"}, static_helpers=(helper,))


def test_the_guard_accepts_reserved_own_and_allocated_names_only():
    body = ("for (uint tm_j = 1; tm_j < 4; ++tm_j) v[0] = precise::fmax(v[0], v[tm_j] * 1.5e-3f + 0x1p-3f);\n"
            "    threadgroup_barrier(mem_flags::mem_threadgroup); x[tm_lane] = v[0] + float(x[0] > 0.0f ? 1 : 2);")
    check_generated(KERNEL.format(body=body), "k", {"k", "x", "v"}, static_helpers=(
        "inline float tm_helper(float a) { float b = a; return b; }",))
