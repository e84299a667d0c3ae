"""The front-end check and the MLX emulation read Metal's and MLX's tables from triton_metal.abi."""
from __future__ import annotations

from pathlib import Path

import pytest
from triton_metal import abi
from triton_metal.codegen import msl_words
from triton_metal.metal_check import attributes, mlx_source
from triton_metal.sim import msl_prepass

METAL_CHECK_DIR = Path(attributes.__file__).parent

# MLX 0.32's `metal_attributes` (mlx/backend/common/metal_kernel.cpp), as that file spells the parameters:
# `"  " + dtype + " " + attr + " [[" + attr + "]]"`.
MLX_GRID_SIZE_PARAMETER = "  uint3 grid_size [[grid_size]]"


def test_every_mlx_attribute_is_a_kernel_builtin_of_the_same_type():
    names = [name for name, _ in abi.MLX_KERNEL_ATTRIBUTES]
    assert len(names) == len(set(names))
    assert {name: t for name, t in abi.MLX_KERNEL_ATTRIBUTES} == {n: abi.KERNEL_BUILTINS[n] for n in names}


def test_every_declared_builtin_type_is_one_the_specification_accepts():
    assert set(abi.KERNEL_BUILTINS) == set(abi.KERNEL_BUILTIN_TYPES)
    assert all(abi.KERNEL_BUILTINS[n] in abi.KERNEL_BUILTIN_TYPES[n] for n in abi.KERNEL_BUILTINS)


def test_code_generator_and_mlx_emulation_use_the_one_mlx_table():
    assert msl_words.MLX_ATTRIBUTES == dict(abi.MLX_KERNEL_ATTRIBUTES)
    body = " ".join(name for name, _ in reversed(abi.MLX_KERNEL_ATTRIBUTES))  # every name, MLX's order regardless
    assert mlx_source.mlx_attributes(body) == [f"  {t} {n} [[{n}]]" for n, t in abi.MLX_KERNEL_ATTRIBUTES]


def test_mlx_declares_an_attribute_named_anywhere_in_the_body():
    assert mlx_source.mlx_attributes("// the grid_size is unused") == [MLX_GRID_SIZE_PARAMETER]


def test_front_end_check_accepts_every_kernel_builtin_attribute():
    source = "kernel void k(device float* out [[buffer(0)]],\n" + ",\n".join(
        f"    {t} p{i} [[{name}]]" for i, (name, t) in enumerate(abi.KERNEL_BUILTINS.items())) + ") {}\n"
    assert attributes.check_attributes(source, "k") == []


@pytest.mark.parametrize("kind,space", [("buffer", "device"), ("threadgroup", "threadgroup")])
def test_binding_index_limit_is_the_argument_table_size(kind, space):
    last = abi.ARGUMENT_TABLE_SLOTS[kind] - 1
    ok = f"kernel void k({space} float* a [[{kind}({last})]]) {{}}"
    over = f"kernel void k({space} float* a [[{kind}({last + 1})]]) {{}}"
    assert attributes.check_attributes(ok, "k") == []
    [problem] = attributes.check_attributes(over, "k")
    assert f"indices 0-{last} only" in problem.message


# The parameters of one signature as the simulator and the front-end check read them: the same names,
# in order, with the same binding (the comma of a template argument list would not split a parameter).
SIGNATURE = """
[[kernel]] void k(device vec<int, 2>* a [[buffer(0)]], constant float& s [[buffer(1)]],
                  threadgroup float* tg [[threadgroup(0)]], ushort lane [[thread_index_in_simdgroup]]) { }
"""


def test_simulator_and_front_end_check_read_the_same_parameters():
    sim = [(p.name, p.kind if p.kind != "builtin" else p.builtin, p.index)
           for p in msl_prepass.rewrite(SIGNATURE, "k").params]
    [(name, params, _)] = attributes.kernel_params(SIGNATURE, "k")
    check = [(p.name, p.attribute, int(p.args) if p.args else None) for p in params]
    assert name == "k"
    assert sim == check == [("a", "buffer", 0), ("s", "buffer", 1), ("tg", "threadgroup", 0),
                            ("lane", "thread_index_in_simdgroup", None)]
