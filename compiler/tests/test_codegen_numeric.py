"""The MSL emitted for ops whose Triton semantics need more than one operator, and catalog refusals."""
import string

import triton
import triton.language as tl
from triton_metal.refusals import CATALOG, refuse


@triton.jit
def div_kernel(a, b, out, N: tl.constexpr):
    offs = tl.arange(0, N)
    tl.store(out + offs, tl.load(a + offs) // tl.load(b + offs))


@triton.jit
def div_by_constant_kernel(a, out, N: tl.constexpr):
    offs = tl.arange(0, N)
    tl.store(out + offs, tl.load(a + offs) // 7)


@triton.jit
def to_int_kernel(a, out, N: tl.constexpr):
    offs = tl.arange(0, N)
    tl.store(out + offs, tl.load(a + offs).to(tl.int32))


@triton.jit
def exp_kernel(a, out, N: tl.constexpr):
    offs = tl.arange(0, N)
    tl.store(out + offs, tl.exp(tl.load(a + offs)) / tl.load(a + offs))


SIG = {"a": "*i32", "b": "*i32", "out": "*i32", "N": "constexpr"}


def test_integer_division_guards_zero_and_min_over_minus_one(compile_msl):
    msl, _ = compile_msl(div_kernel, SIG, {"N": 64})
    assert "== 0 ? 1 :" in msl  # x / 0 never traps
    assert "== -1 ?" in msl  # INT_MIN / -1 wraps instead of trapping


def test_division_by_a_nonzero_constant_is_not_guarded(compile_msl):
    msl, _ = compile_msl(div_by_constant_kernel, {"a": "*i32", "out": "*i32", "N": "constexpr"}, {"N": 64})
    assert "== 0 ?" not in msl and "== -1 ?" not in msl


def test_float_to_int_saturates_and_maps_nan_to_zero(compile_msl):
    msl, _ = compile_msl(to_int_kernel, {"a": "*fp32", "out": "*i32", "N": "constexpr"}, {"N": 64})
    assert "isnan(" in msl and "2147483647" in msl and "(-2147483647 - 1)" in msl


def test_math_is_precise_by_default_and_fast_on_request(compile_msl):
    sig = {"a": "*fp32", "out": "*fp32", "N": "constexpr"}
    precise, _ = compile_msl(exp_kernel, sig, {"N": 64})
    fast, _ = compile_msl(exp_kernel, sig, {"N": 64}, fast_math=True)
    assert "precise::exp(" in precise and "precise::divide(" in precise
    assert "fast::exp(" in fast and "fast::divide(" in fast


def test_catalog_messages_name_the_op_reason_and_alternative():
    for key, entry in CATALOG.items():
        fields = {"dtype": "f16", "kind": "fadd", "symbol": "__nv_tanhf", "name": "x_ptr", "sem": "acq_rel",
                  "version": "3.1", "macos": "14", "arch": "apple-m1", "family": "Apple7"}
        # Placeholders of newer entries get a stand-in: the check is about the message's shape.
        for text in (entry.op, entry.reason, entry.alternative):
            fields.update({name: f"<{name}>" for _, name, _, _ in string.Formatter().parse(text)
                           if name and name not in fields})
        msg = str(refuse(key, "kernel.py:3:4", **fields))
        assert msg.startswith(f"Operation {entry.op.format(**fields)} is not supported by the Metal backend: ")
        assert ". Instead: " in msg and msg.endswith("at kernel.py:3:4")
