"""The lowering registry (codegen/emitter.py): one lowering per op, whatever the import order.

Which function lowers an op used to depend on the order the lowering modules were imported in (seven
ops were registered twice, and the last registration won); now a second registration raises, and the
tables of msl_ops hold only the ops their table lowering emits."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import triton_metal.codegen  # noqa: F401  (registers every lowering)
from triton_metal.codegen import msl_ops
from triton_metal.codegen.emitter import LOWERINGS, SOURCE_COMMENTED_OPS, KernelEmitter, lowers
from triton_metal.codegen.ir_reader import Op
from triton_metal.codegen.ops import lower_contraction, lower_elementwise

# module of codegen/ops -> its lowering function -> the ops it lowers: the winners of the registry as it
# was before registering twice became an error (lower_blockptr and lower_values are now named
# lower_pointer_casts and lower_unsplat_and_poison), so the generated MSL stays what it was.
OWNERS = {
    "lower_atomics": {
        "lower_atomic_cas": ("tt.atomic_cas",),
        "lower_atomic_load": ("tt.atomic_load",),
        "lower_atomic_poll": ("tt.atomic_poll",),
        "lower_atomic_rmw": ("tt.atomic_rmw",),
        "lower_atomic_store": ("tt.atomic_store",),
        "lower_debug_barrier": ("gpu.barrier", "ttg.barrier"),
    },
    "lower_calls": {
        "lower_call": ("tt.call",),
        "lower_return": ("tt.return",),
    },
    "lower_contraction": {
        "lower_add_or_subtract": ("arith.addf", "arith.subf"),
        "lower_mulf": ("arith.mulf",),
    },
    "lower_control": {
        "lower_for": ("scf.for",),
        "lower_if": ("scf.if",),
        "lower_while": ("scf.while",),
    },
    "lower_debug_ops": {
        "lower_assert": ("tt.assert",),
        "lower_print": ("tt.print",),
    },
    "lower_dot": {
        "lower_dot": ("tt.dot",),
    },
    "lower_dot_scaled": {
        "lower_dot_scaled": ("tt.dot_scaled",),
    },
    "lower_elementwise": {
        "_lower_table.<locals>.lower": (
            "arith.addi", "arith.andi", "arith.maximumf", "arith.maxnumf", "arith.maxsi", "arith.maxui",
            "arith.minimumf", "arith.minnumf", "arith.minsi", "arith.minui", "arith.muli", "arith.negf", "arith.ori",
            "arith.remf", "arith.select", "arith.shli", "arith.shrsi", "arith.shrui", "arith.subi", "arith.xori",
            "math.absf", "math.absi", "math.ceil", "math.cos", "math.exp", "math.exp2", "math.floor", "math.fma",
            "math.log", "math.log2", "math.round", "math.roundeven", "math.rsqrt", "math.sin", "math.sqrt",
            "math.tan", "math.tanh", "math.trunc", "tt.addptr",
        ),
        "lower_assume": ("llvm.intr.assume",),
        "lower_cast": (
            "arith.bitcast", "arith.extf", "arith.extsi", "arith.extui", "arith.index_cast", "arith.index_castui",
            "arith.sitofp", "arith.trunci", "arith.uitofp", "tt.bitcast",
        ),
        "lower_cmpf": ("arith.cmpf",),
        "lower_cmpi": ("arith.cmpi",),
        "lower_constant": ("arith.constant",),
        "lower_make_range": ("tt.make_range",),
        "lower_num_programs": ("tt.get_num_programs",),
        "lower_program_id": ("tt.get_program_id",),
        "lower_splat": ("tt.splat",),
        "refuse_inline_asm": ("tt.elementwise_inline_asm",),
    },
    "lower_extern": {
        "lower_extern_elementwise": ("tt.extern_elementwise",),
    },
    "lower_layout": {
        "lower_broadcast": ("tt.broadcast",),
        "lower_convert_layout": ("ttg.convert_layout",),
        "lower_expand_dims": ("tt.expand_dims",),
    },
    "lower_map": {
        "lower_map_elementwise": ("tt.map_elementwise",),
        "lower_map_return": ("tt.map_elementwise.return",),
    },
    "lower_memory": {
        "lower_load": ("tt.load",),
        "lower_store": ("tt.store",),
    },
    "lower_numeric": {
        "lower_clampf": ("tt.clampf",),
        "lower_divf": ("arith.divf",),
        "lower_erf": ("math.erf",),
        "lower_float_to_int": ("arith.fptosi", "arith.fptoui"),
        "lower_int_division": ("arith.divsi", "arith.divui", "arith.remsi", "arith.remui"),
        "lower_mulhi": ("tt.mulhiui",),
        "lower_precise_divf": ("tt.precise_divf",),
        "lower_precise_sqrt": ("tt.precise_sqrt",),
        "lower_rounding_division": ("arith.ceildivsi", "arith.ceildivui", "arith.floordivsi"),
    },
    "lower_pointer_casts": {
        "lower_int_to_ptr": ("tt.int_to_ptr",),
        "lower_ptr_to_int": ("tt.ptr_to_int",),
    },
    "lower_reduce": {
        "lower_reduce": ("tt.reduce",),
    },
    "lower_rounding": {
        "lower_fp_to_fp": ("tt.fp_to_fp",),
        "lower_truncf": ("arith.truncf",),
    },
    "lower_scan": {
        "lower_scan": ("tt.scan",),
    },
    "lower_shape": {
        "lower_cat": ("tt.cat",),
        "lower_gather": ("tt.gather",),
        "lower_histogram": ("tt.histogram",),
        "lower_join": ("tt.join",),
        "lower_reshape": ("tt.reshape",),
        "lower_split": ("tt.split",),
        "lower_trans": ("tt.trans",),
    },
    "lower_shared": {
        "lower_async_commit": ("ttg.async_commit_group",),
        "lower_async_copy": ("ttg.async_copy_global_to_local",),
        "lower_async_wait": ("ttg.async_wait",),
        "lower_local_alloc": ("ttg.local_alloc",),
        "lower_local_dealloc": ("ttg.local_dealloc",),
        "lower_local_load": ("ttg.local_load",),
        "lower_local_store": ("ttg.local_store",),
        "lower_memdesc_index": ("ttg.memdesc_index",),
        "lower_memdesc_trans": ("ttg.memdesc_trans",),
    },
    "lower_unsplat_and_poison": {
        "lower_poison": ("ub.poison",),
        "lower_unsplat": ("tt.unsplat",),
    },
}


def _qualified(fn) -> str:
    return f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__qualname__}"


def _expected() -> dict:
    return {op: f"{module}.{fn}" for module, functions in OWNERS.items()
            for fn, ops in functions.items() for op in ops}


def test_every_op_keeps_the_lowering_it_had():
    assert {op: _qualified(fn) for op, fn in LOWERINGS.items()} == _expected()


def test_an_op_registered_twice_is_an_error_naming_both_lowerings():
    def first(em, op):
        pass

    def second(em, op):
        pass

    lowers("test.twice")(first)
    try:
        with pytest.raises(ValueError, match=r"test\.twice is registered twice: by \S*first and by \S*second"):
            lowers("test.twice")(second)
        assert LOWERINGS["test.twice"] is first
    finally:
        del LOWERINGS["test.twice"]


# Re-registers every lowering module, in the order given, into an empty registry.
_REGISTER_IN_ORDER = """
import importlib, json, pkgutil, sys
import triton_metal.codegen.ops as ops
from triton_metal.codegen.emitter import LOWERINGS
names = sorted(info.name for info in pkgutil.iter_modules(ops.__path__))
LOWERINGS.clear()
for name in (reversed(names) if sys.argv[1] == "reversed" else names):
    importlib.reload(importlib.import_module(f"{ops.__name__}.{name}"))
print(json.dumps({op: f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__qualname__}" for op, fn in LOWERINGS.items()}))
"""


@pytest.mark.parametrize("order", ["sorted", "reversed"])
def test_the_lowering_of_an_op_does_not_depend_on_import_order(order):
    out = subprocess.run([sys.executable, "-c", _REGISTER_IN_ORDER, order], capture_output=True, text=True,
                         check=True, timeout=300)
    assert json.loads(out.stdout.splitlines()[-1]) == _expected()


def test_msl_ops_tables_hold_only_what_their_table_lowering_emits():
    # Integer and float division, float -> int casts and arith.truncf have lowerings of their own
    # (lower_numeric, lower_rounding): a template for them in a table would not be the emitted code.
    table_ops = [op for op in (*msl_ops.BINARY, *msl_ops.UNARY, *msl_ops.TERNARY) if op not in msl_ops.CONTRACTIBLE]
    assert [op for op in table_ops if LOWERINGS[op].__qualname__ != "_lower_table.<locals>.lower"] == []
    assert [op for op in msl_ops.CASTS if LOWERINGS[op] is not lower_elementwise.lower_cast] == []
    assert {LOWERINGS[op].__module__ for op in msl_ops.CONTRACTIBLE} == {lower_contraction.__name__}
    assert not {"arith.divsi", "arith.divui", "arith.remsi", "arith.remui", "arith.divf"} & set(msl_ops.BINARY)
    assert not {"arith.fptosi", "arith.fptoui", "arith.truncf"} & set(msl_ops.CASTS)


def _emitted_by(monkeypatch, name: str) -> list:
    """The lines KernelEmitter.lower_op emits for an op `name` at this file's line 1, lowered as `x = 1;`."""
    monkeypatch.setitem(LOWERINGS, name, lambda em, op: em.emit("x = 1;"))
    em = KernelEmitter("k", SimpleNamespace(num_warps=1, fast_math=False))
    em.lower_op(Op(name, None, [], [], [], location=f"{__file__}:1:1"))
    return [line.strip() for line in em.lines]


@pytest.mark.parametrize("name", sorted(SOURCE_COMMENTED_OPS))
def test_source_commented_ops_start_with_their_source_line(monkeypatch, name):
    first_line = Path(__file__).read_text().splitlines()[0].strip()
    assert _emitted_by(monkeypatch, name) == [f"// {__file__.rsplit('/', 1)[-1]}:1: {first_line}", "x = 1;"]


def test_other_ops_carry_no_source_comment(monkeypatch):
    assert _emitted_by(monkeypatch, "arith.addi") == ["x = 1;"]


def test_source_commented_ops_all_have_lowerings():
    assert sorted(SOURCE_COMMENTED_OPS - set(LOWERINGS)) == []
