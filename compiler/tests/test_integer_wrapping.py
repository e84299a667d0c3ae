"""Triton's integer arithmetic wraps; in MSL (C++ rules) signed overflow is undefined.

The generated MSL computes 32/64-bit signed `+ - * <<` in the unsigned type, and the simulator
builds without -fwrapv, so an optimiser that exploits the undefined case (`x + 1 > x` folds to
true) would show here, as Apple's would on a GPU. References: numpy's wrapping integers.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import triton
import triton.language as tl
from triton_metal.sim import build

INT32_EDGES = np.array([2**31 - 1, -2**31, 5, 2**30, -1, 0, 7, 2**31 - 2], dtype=np.int32)
INT64_EDGES = np.array([2**63 - 1, -2**63, 5, 2**62, -1, 0, 7, 2**63 - 2], dtype=np.int64)


@triton.jit
def _overflow_tests(x_ptr, o_ptr, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs)
    one = (x + 1 > x).to(tl.int32)
    two = (x * 2 < x).to(tl.int32) * 10
    shift = ((x << 1) < 0).to(tl.int32) * 100
    minus = (x - 1 < x).to(tl.int32) * 1000
    tl.store(o_ptr + offs, one + two + shift + minus)


def _overflow_reference(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return ((x + x.dtype.type(1) > x).astype(np.int32) + (x * x.dtype.type(2) < x) * 10
                + ((x << x.dtype.type(1)) < 0) * 100 + (x - x.dtype.type(1) < x) * 1000).astype(np.int32)


@pytest.mark.parametrize("edges", [INT32_EDGES, INT64_EDGES], ids=["int32", "int64"])
def test_signed_overflow_wraps_as_in_triton(edges, device):
    x = torch.from_numpy(edges).to(device)
    out = torch.empty(len(edges), dtype=torch.int32, device=device)
    _overflow_tests[(1,)](x, out, BLOCK=len(edges))
    np.testing.assert_array_equal(out.cpu().numpy(), _overflow_reference(edges))


@triton.jit
def _wrapping_sum(x_ptr, o_ptr, BLOCK: tl.constexpr):
    x = tl.load(x_ptr + tl.arange(0, BLOCK))
    tl.store(o_ptr, tl.sum(x, axis=0))
    tl.store(o_ptr + 1 + tl.arange(0, BLOCK), tl.cumsum(x, axis=0))


def test_int32_sum_and_cumsum_wrap(device):
    x = np.full(64, 2**30 + 3, dtype=np.int32)
    out = torch.empty(65, dtype=torch.int32, device=device)
    _wrapping_sum[(1,)](torch.from_numpy(x).to(device), out, BLOCK=64)
    np.testing.assert_array_equal(out.cpu().numpy()[0], x.sum(dtype=np.int32))
    np.testing.assert_array_equal(out.cpu().numpy()[1:], np.cumsum(x, dtype=np.int32))


def test_signed_arithmetic_is_spelled_in_the_unsigned_type(compile_msl):
    msl, _ = compile_msl(_overflow_tests, {"x_ptr": "*i32", "o_ptr": "*i32"}, {"BLOCK": 8})
    assert "as_type<int>(uint(" in msl
    body = msl[msl.index("kernel void"):]
    assert " + 1;" not in body and " * 2;" not in body and " << 1;" not in body


def test_simulator_does_not_define_signed_overflow():
    # -fwrapv would make the simulator accept MSL whose meaning Apple's compiler does not define.
    assert "-fwrapv" not in build._flags()
    assert "-fsanitize=signed-integer-overflow,shift" in build._instrument_flags()
