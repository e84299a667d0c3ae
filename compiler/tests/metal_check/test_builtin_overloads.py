"""MSL declares its builtins once per type (`T min(T x, T y)` for each integer and float type; Metal
Shading Language Specification 6.3, 6.5), so a call whose operands have two types either converts to
one overload that is the best match for every operand (`fmax(float, 8)`: float) or is ambiguous
(`min(long, int)`: long matches the first operand, int the second), which Apple's compiler rejects.
The front-end model (metal_check/include/metal_stdlib) and the simulator's g++ build (metal_shim.h)
must both reject the ambiguous calls, as the code generator once emitted `min(group_size, 8)` on a
long (test_builtin_operand_types.py).
"""
import re
import shutil
import subprocess

import pytest

pytest.importorskip("clang.cindex", reason="the Metal front-end check needs libclang (pip install libclang)")

from triton_metal.metal_check import check_msl
from triton_metal.sim.build import INCLUDE_DIR

AMBIGUOUS = {
    "min of long and int": "long r = min(l, i);",
    "max of int and long": "long r = max(i, l);",
    "min of long and an int literal": "long r = min(l, 8);",
    "clamp of long with int bounds": "long r = clamp(l, 0, 8);",
    "max of uint and int": "uint r = max(u, i);",
    "mulhi of int and long": "int r = mulhi(i, l);",
    "fma of half and float": "half r = fma(h, h, f);",
}
CONVERTED = {
    "min of long and a long literal": "long r = min(l, 8L);",
    "min of long and a long conversion": "long r = min(l, long(i));",
    "clamp of long with long bounds": "long r = clamp(l, 0L, 8L);",
    "fmax of float and an int literal": "float r = fmax(f, 8);",  # float is the best match of both operands
}


def _body(statement: str) -> str:
    return ("long l = long(out[0]); int i = int(out[1]); uint u = uint(out[2]); half h = half(out[3]);\n"
            f"float f = out[4];\n{statement}\nout[5] = float(r);")


def _model_errors(statement: str) -> list:
    source = ("#include <metal_stdlib>\nusing namespace metal;\n"
              f"kernel void k(device float* out [[buffer(0)]]) {{\n{_body(statement)}\n}}\n")
    return [d.message for d in check_msl(source, "k", "3.1") if d.severity == "error"]


def _shim_errors(statement: str) -> str:
    if shutil.which("g++") is None:
        pytest.skip("no g++: the simulator's header cannot be compiled")
    source = f'#include "metal_shim.h"\nusing namespace metal;\nvoid k(float* out) {{\n{_body(statement)}\n}}\n'
    done = subprocess.run(["g++", "-std=c++17", "-fsyntax-only", f"-I{INCLUDE_DIR}", "-x", "c++", "-"],
                          input=source, capture_output=True, text=True, check=False)  # the errors are the result
    return done.stderr if done.returncode else ""


@pytest.mark.parametrize("statement", AMBIGUOUS.values(), ids=AMBIGUOUS.keys())
def test_a_builtin_call_with_operands_of_two_types_is_rejected_by_the_model(statement):
    found = _model_errors(statement)
    assert any(re.search(r"ambiguous|no matching function", e) for e in found), found


@pytest.mark.parametrize("statement", AMBIGUOUS.values(), ids=AMBIGUOUS.keys())
def test_a_builtin_call_with_operands_of_two_types_is_rejected_by_the_simulator(statement):
    assert re.search(r"ambiguous|no matching function", _shim_errors(statement))


@pytest.mark.parametrize("statement", CONVERTED.values(), ids=CONVERTED.keys())
def test_a_builtin_call_with_one_best_overload_passes_the_model_and_the_simulator(statement):
    assert _model_errors(statement) == []
    assert _shim_errors(statement) == ""
