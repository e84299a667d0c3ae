"""Builtins called on a value and a literal compile and compute what numpy does, at every width.

MSL declares `min`, `max`, `clamp`, `fma`, ... once per type, so a call whose operands have two
types (`min(long, int)`: a 64-bit value and the literal `8`) matches two overloads equally well and
Apple's compiler rejects it as ambiguous. The code generator writes every integer constant in the
MSL type of its Triton type (`8L` for an int64 `8`; the most negative value as a subtraction, since
C++ reads `-2147483648` as a long). These kernels run on the simulator with the Metal front-end check
on (compiler/tests/conftest.py turns it on for the session), which rejects the ambiguous call as
Apple does; the simulator's g++ build rejects it too. References: numpy in float64/int64.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import triton
import triton.language as tl
from triton.language.extra import libdevice

BLOCK = 64
LIT = 8  # the int literal, the constexpr and the scalar argument all hold 8 (an argument of 1 would be specialised)
FLOAT_LIT = 2.5  # exact in every float type

SIGNED = {"i8": np.int8, "i16": np.int16, "i32": np.int32, "i64": np.int64}
UNSIGNED = {"u8": np.uint8, "u16": np.uint16, "u32": np.uint32, "u64": np.uint64}
FLOATS = {"f16": np.float16, "f32": np.float32}  # bf16: numpy has none, see _as_torch
DTYPES = [*SIGNED, *UNSIGNED, *FLOATS, "bf16"]
TORCH = {"i8": torch.int8, "i16": torch.int16, "i32": torch.int32, "i64": torch.int64, "u8": torch.uint8,
         "u16": torch.uint16, "u32": torch.uint32, "u64": torch.uint64, "f16": torch.float16,
         "bf16": torch.bfloat16, "f32": torch.float32}


@triton.jit
def _literal_kinds(x_ptr, s_ptr, o_ptr, n, C: tl.constexpr, IS_FLOAT: tl.constexpr, BLOCK: tl.constexpr):
    """One output row per (op, literal kind); rows 16.. hold scalar (Python min/max) results."""
    offs = tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs)
    s = tl.load(s_ptr)
    # an int literal
    tl.store(o_ptr + 0 * BLOCK + offs, tl.minimum(x, 8))
    tl.store(o_ptr + 1 * BLOCK + offs, tl.maximum(x, 8))
    tl.store(o_ptr + 2 * BLOCK + offs, tl.clamp(x, 3, 8))
    tl.store(o_ptr + 3 * BLOCK + offs, tl.where(x > 8, x, 8))
    # a float literal (an integer x is converted to float32 first, as Triton's promotion says)
    tl.store(o_ptr + 4 * BLOCK + offs, tl.minimum(x, 2.5))
    tl.store(o_ptr + 5 * BLOCK + offs, tl.maximum(x, 2.5))
    tl.store(o_ptr + 6 * BLOCK + offs, tl.where(x > 2.5, x, 2.5))
    # a constexpr
    tl.store(o_ptr + 7 * BLOCK + offs, tl.minimum(x, C))
    tl.store(o_ptr + 8 * BLOCK + offs, tl.maximum(x, C))
    # a scalar argument (an int32)
    tl.store(o_ptr + 9 * BLOCK + offs, tl.minimum(x, n))
    tl.store(o_ptr + 10 * BLOCK + offs, tl.maximum(x, n))
    tl.store(o_ptr + 11 * BLOCK + offs, tl.where(x > n, x, n))
    if IS_FLOAT:
        tl.store(o_ptr + 12 * BLOCK + offs, tl.clamp(x, 0.5, 2.5))
        tl.store(o_ptr + 13 * BLOCK + offs, tl.fma(x, 2.0, 0.5))
    else:
        tl.store(o_ptr + 12 * BLOCK + offs, tl.clamp(x, 3, C))
        tl.store(o_ptr + 13 * BLOCK + offs, tl.clamp(x, 3, n))
    # Python min/max of scalars
    tl.store(o_ptr + 14 * BLOCK, min(s, 8))
    tl.store(o_ptr + 14 * BLOCK + 1, max(s, 8))
    tl.store(o_ptr + 14 * BLOCK + 2, min(s, C))
    tl.store(o_ptr + 14 * BLOCK + 3, max(s, n))


def _inputs(dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """x and the scalar s, in float64: values every width holds exactly, on both sides of the literals."""
    if dtype in UNSIGNED:
        x = np.arange(BLOCK, dtype=np.float64)
    elif dtype in SIGNED:
        x = np.arange(BLOCK, dtype=np.float64) - 20
    else:
        x = (np.arange(BLOCK, dtype=np.float64) - 20) * 0.25
    return x, np.array([5.0])


def _reference(x: np.ndarray, s: float, is_float: bool) -> np.ndarray:
    """The rows of _literal_kinds in float64 (before the store converts them to the output type)."""
    rows = [np.minimum(x, 8), np.maximum(x, 8), np.clip(x, 3, 8), np.where(x > 8, x, 8),
            np.minimum(x, FLOAT_LIT), np.maximum(x, FLOAT_LIT), np.where(x > FLOAT_LIT, x, FLOAT_LIT),
            np.minimum(x, LIT), np.maximum(x, LIT),
            np.minimum(x, LIT), np.maximum(x, LIT), np.where(x > LIT, x, LIT)]
    if is_float:
        rows += [np.clip(x, 0.5, FLOAT_LIT), x * 2.0 + 0.5]
    else:
        rows += [np.clip(x, 3, LIT), np.clip(x, 3, LIT)]
    scalars = np.zeros(BLOCK)
    scalars[:4] = [min(s, 8), max(s, 8), min(s, LIT), max(s, LIT)]
    return np.concatenate(rows + [scalars])


def _as_torch(values: np.ndarray, dtype: str) -> torch.Tensor:
    """float64 values -> a tensor of `dtype`, truncating toward zero as Triton's float -> int store does."""
    if dtype == "bf16":
        return torch.from_numpy(values).to(torch.bfloat16)
    if dtype in FLOATS:
        return torch.from_numpy(values.astype(FLOATS[dtype]))
    return torch.from_numpy(np.trunc(values).astype(np.int64)).to(TORCH[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_min_max_clamp_where_with_every_literal_kind_match_numpy(dtype, device):
    is_float = dtype in FLOATS or dtype == "bf16"
    x, s = _inputs(dtype)
    out = torch.zeros(15 * BLOCK, dtype=TORCH[dtype], device=device)
    _literal_kinds[(1,)](_as_torch(x, dtype).to(device), _as_torch(s, dtype).to(device), out, LIT, C=LIT,
                         IS_FLOAT=is_float, BLOCK=BLOCK)
    want = _as_torch(_reference(x, float(s[0]), is_float), dtype)
    torch.testing.assert_close(out.cpu(), want, rtol=0, atol=0)


@triton.jit
def _extremes(x_ptr, o_ptr, LO: tl.constexpr, HI: tl.constexpr, BLOCK: tl.constexpr):
    # (tl.maximum(x, LO) and tl.minimum(x, HI) fold away before the MSL: mulhi keeps the literal.)
    offs = tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs)
    tl.store(o_ptr + offs, libdevice.mulhi(x, LO))
    tl.store(o_ptr + BLOCK + offs, libdevice.mulhi(x, HI))
    tl.store(o_ptr + 2 * BLOCK + offs, tl.where(x == LO, HI, LO))


def _mulhi_reference(x: np.ndarray, y: int) -> np.ndarray:
    bits = 8 * x.dtype.itemsize
    return np.array([(int(v) * y) >> bits for v in x], dtype=x.dtype)


@pytest.mark.parametrize("np_dtype", [np.int32, np.int64], ids=["i32", "i64"])
def test_builtins_with_the_extreme_literals_of_the_type(np_dtype, device):
    """C++ reads `-2147483648` as a long (`-` applied to 2147483648), and 9223372036854775808 fits no
    signed type: the type's most negative value needs its own spelling, or `mulhi(int, long)` is ambiguous."""
    info = np.iinfo(np_dtype)
    x = np.array([info.min, info.max, 0, -1, 1, info.min + 1, info.max - 1, 7], dtype=np_dtype)
    out = torch.zeros(3 * len(x), dtype=torch.from_numpy(x).dtype, device=device)
    _extremes[(1,)](torch.from_numpy(x).to(device), out, LO=int(info.min), HI=int(info.max), BLOCK=len(x))
    want = np.concatenate([_mulhi_reference(x, int(info.min)), _mulhi_reference(x, int(info.max)),
                           np.where(x == info.min, info.max, info.min).astype(np_dtype)])
    np.testing.assert_array_equal(out.cpu().numpy(), want)


@triton.jit
def _grouped_ordering(o_ptr, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GROUP_M: tl.constexpr):
    # The grouped ("super-grouping") program order of Triton's matmul tutorial and many libraries,
    # with an int64 program id as kernels that index large tensors write it.
    pid = tl.program_id(0).to(tl.int64)
    grid_m = tl.cdiv(M, BLOCK_M)
    grid_n = tl.cdiv(N, BLOCK_N)
    width = GROUP_M * grid_n
    group_id = pid // width
    group_size = min(grid_m - group_id * GROUP_M, GROUP_M)
    pid_m = group_id * GROUP_M + (pid % group_size)
    pid_n = (pid % width) // group_size
    tl.store(o_ptr + 2 * pid, pid_m)
    tl.store(o_ptr + 2 * pid + 1, pid_n)


def test_grouped_program_ordering_with_an_int64_program_id(device):
    M, N, BLOCK_M, BLOCK_N, GROUP_M = 700, 300, 64, 32, 8  # grid_m = 11: the last group has 3 rows
    grid_m, grid_n = -(-M // BLOCK_M), -(-N // BLOCK_N)
    out = torch.full((grid_m * grid_n * 2,), -1, dtype=torch.int64, device=device)
    _grouped_ordering[(grid_m * grid_n,)](out, M, N, BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, GROUP_M=GROUP_M)
    want = []
    for pid in range(grid_m * grid_n):
        group_id = pid // (GROUP_M * grid_n)
        group_size = min(grid_m - group_id * GROUP_M, GROUP_M)
        want += [group_id * GROUP_M + pid % group_size, (pid % (GROUP_M * grid_n)) // group_size]
    np.testing.assert_array_equal(out.cpu().numpy(), np.array(want))
    assert sorted(zip(want[::2], want[1::2])) == [(m, n) for m in range(grid_m) for n in range(grid_n)]
