"""bf16 kernels compute through float wherever MSL 3.1 has no bfloat version of an operation.

MSL 3.1 has bfloat operators (+ - * /, comparisons) and explicit conversions, but no implicit
conversion from float or half and no bfloat overload of the math or simd functions (see
msl_ops.BFLOAT_AS_WRITTEN). The simulator's shim rejects both as Apple's compiler would
(compiler/tests/sim/test_sim_bfloat_strict.py), so every kernel here also checks that the generated
MSL builds; values are checked against torch on the CPU. bf16 sums and products accumulate in float
and round once, as torch does (lower_reduce's docstring).
"""
import re

import pytest
import torch
import triton
import triton.language as tl
from triton.language.extra import libdevice

BF16 = torch.bfloat16


def _device():
    return triton.runtime.driver.active.get_active_torch_device()


def _bf16(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32).to(BF16)


def _exact(out: torch.Tensor, ref: torch.Tensor):
    torch.testing.assert_close(out.cpu(), ref, rtol=0, atol=0, equal_nan=True)


# ---- elementwise ---------------------------------------------------------------------------------
@triton.jit
def binary_kernel(x_ptr, y_ptr, out_ptr, N: tl.constexpr, OP: tl.constexpr):
    offs = tl.arange(0, N)
    x = tl.load(x_ptr + offs)
    y = tl.load(y_ptr + offs)
    if OP == "maximum":
        r = tl.maximum(x, y)
    elif OP == "minimum":
        r = tl.minimum(x, y)
    elif OP == "maximum_nan":
        r = tl.maximum(x, y, propagate_nan=tl.PropagateNan.ALL)
    elif OP == "minimum_nan":
        r = tl.minimum(x, y, propagate_nan=tl.PropagateNan.ALL)
    elif OP == "abs":
        r = tl.abs(x)
    elif OP == "fma":
        r = tl.fma(x, y, x)
    elif OP == "clamp":
        r = tl.clamp(x, -1.0, 1.0)
    elif OP == "clamp_nan":
        r = tl.clamp(x, -1.0, 1.0, propagate_nan=tl.PropagateNan.ALL)
    elif OP == "fmod":
        r = libdevice.fmod(x, y)
    elif OP == "floor":
        r = libdevice.floor(x)
    elif OP == "ceil":
        r = libdevice.ceil(x)
    elif OP == "exp":
        r = libdevice.exp(x)
    elif OP == "log":
        r = libdevice.log(tl.abs(x))
    else:
        r = libdevice.sqrt(tl.abs(x))
    tl.store(out_ptr + offs, r)


X = _bf16([1.5, -2.25, 0.0, -0.0, 3.0, -0.5, 7.0, -3.75, 0.3, 100.0, -1e-3, 2.5, -6.0, 0.125, 9.5, -1.25])
Y = _bf16([0.75, 4.0, -1.0, 2.0, -3.0, -0.5, 1.0, -3.0, 0.7, -50.0, 2.0, -2.5, 0.5, 0.25, -4.0, 8.0])
NAN = float("nan")
X_NAN = _bf16([NAN, 1.0, NAN, -2.0, 0.5, NAN, -0.0, 3.0, NAN, -7.0, 1.5, 0.0, NAN, 2.0, -1.0, 4.0])
Y_NAN = _bf16([1.0, NAN, NAN, -1.0, 0.25, -3.0, 0.0, NAN, 2.0, NAN, -1.5, 0.0, -2.0, NAN, 5.0, -4.0])

OPS = {  # op: (x, y, torch reference computed in float and rounded once to bf16)
    "maximum": (X, Y, torch.maximum), "minimum": (X, Y, torch.minimum),
    "maximum_nan": (X_NAN, Y_NAN, torch.maximum), "minimum_nan": (X_NAN, Y_NAN, torch.minimum),
    "abs": (X_NAN, Y, lambda x, y: x.abs()), "fma": (X, Y, lambda x, y: x * y + x),
    "clamp": (X, Y, lambda x, y: x.clamp(-1.0, 1.0)), "clamp_nan": (X_NAN, Y, lambda x, y: x.clamp(-1.0, 1.0)),
    "fmod": (X, Y, torch.fmod), "floor": (X, Y, lambda x, y: x.floor()), "ceil": (X, Y, lambda x, y: x.ceil()),
    "exp": (X, Y, lambda x, y: x.exp()), "log": (X, Y, lambda x, y: x.abs().log()),
    "sqrt": (X, Y, lambda x, y: x.abs().sqrt()),
}


@pytest.mark.parametrize("op", list(OPS))
def test_bf16_elementwise_matches_torch(op):
    x, y, reference = OPS[op]
    out = torch.empty(16, dtype=BF16, device=_device())
    binary_kernel[(1,)](x.to(_device()), y.to(_device()), out, N=16, OP=op)
    expected = reference(x.float(), y.float()).to(BF16)
    if op in ("exp", "log", "sqrt"):  # Metal's precise:: functions are within an ulp of float's
        torch.testing.assert_close(out.cpu(), expected, rtol=2 ** -8, atol=0)
    else:
        _exact(out, expected)


@pytest.mark.parametrize("op, text", [("maximum", "= bfloat(precise::fmax(float("),
                                      ("maximum_nan", "= bfloat((isnan(float("), ("fma", "= bfloat(fma(float("),
                                      ("clamp", "= bfloat(precise::fmin(precise::fmax(float(")])
def test_bf16_math_is_computed_in_float(compile_msl, op, text):
    msl, _ = compile_msl(binary_kernel, {"x_ptr": "*bf16", "y_ptr": "*bf16", "out_ptr": "*bf16", "N": "constexpr",
                                         "OP": "constexpr"}, {"N": 16, "OP": op})
    assert text in msl


# ---- reductions and scans ------------------------------------------------------------------------
@triton.jit
def _mul(a, b):
    return a * b


@triton.jit
def _max_nan(a, b):
    return tl.maximum(a, b, propagate_nan=tl.PropagateNan.ALL)


@triton.jit
def reduce_kernel(x_ptr, out_ptr, N: tl.constexpr, OP: tl.constexpr):
    x = tl.load(x_ptr + tl.arange(0, N))
    if OP == "sum":
        r = tl.sum(x, axis=0)
    elif OP == "prod":
        r = tl.reduce(x, 0, _mul)
    elif OP == "max":
        r = tl.max(x, axis=0)
    elif OP == "max_nan":
        r = tl.reduce(x, 0, _max_nan)
    else:
        r = tl.argmax(x, axis=0).to(tl.bfloat16)
    tl.store(out_ptr, r)


REDUCE_SIG = {"x_ptr": "*bf16", "out_ptr": "*bf16", "N": "constexpr", "OP": "constexpr"}


def _reduce(x: torch.Tensor, op: str, num_warps: int) -> torch.Tensor:
    out = torch.empty(1, dtype=BF16, device=_device())
    reduce_kernel[(1,)](x.to(_device()), out, N=x.numel(), OP=op, num_warps=num_warps)
    return out.cpu()


def test_bf16_sum_accumulates_in_float():
    # 1 + 4095 * 2^-9 = 8.998 rounds to 9 in bf16. Accumulated in bf16, 1 + 2^-9 rounds back to 1 and
    # the thread holding the 1 loses its other small terms (8.9375).
    x = torch.full((4096,), 2.0 ** -9, dtype=BF16)
    x[0] = 1.0
    _exact(_reduce(x, "sum", 4), x.float().sum().to(BF16).reshape(1))


@pytest.mark.parametrize("n, num_warps", [(16, 1), (1024, 4)])  # a partial butterfly; simd_sum + partials
def test_bf16_sum_matches_torch(n, num_warps):
    x = torch.linspace(-3, 5, n).to(BF16)
    _exact(_reduce(x, "sum", num_warps), x.float().sum().to(BF16).reshape(1))


def test_bf16_product_accumulates_in_float():
    x = torch.linspace(0.9, 1.1, 256).to(BF16)
    torch.testing.assert_close(_reduce(x, "prod", 4), x.float().prod().to(BF16).reshape(1), rtol=2 ** -8, atol=0)


def test_bf16_max_matches_torch():
    x = torch.linspace(-7, 3, 1024).to(BF16)[torch.randperm(1024, generator=torch.Generator().manual_seed(0))]
    _exact(_reduce(x, "max", 4), x.max().reshape(1))


def test_bf16_nan_propagating_max_matches_torch():
    x = torch.linspace(-7, 3, 1024).to(BF16)
    x[700] = NAN
    _exact(_reduce(x, "max_nan", 4), x.max().reshape(1))


def test_bf16_argmax_matches_torch():
    x = (torch.arange(256, dtype=torch.float32) / 128).to(BF16)[torch.randperm(256, generator=torch.Generator()
                                                                              .manual_seed(1))]
    _exact(_reduce(x, "argmax", 4), x.argmax().to(BF16).reshape(1))


def test_bf16_sum_keeps_a_float_accumulator(compile_msl):
    msl, _ = compile_msl(reduce_kernel, REDUCE_SIG, {"N": 1024, "OP": "sum"}, num_warps=4)
    acc = re.search(r"float (\w+_acc)\[1\];", msl).group(1)
    assert f"{acc}[0] = simd_sum({acc}[0]);" in msl
    assert f"= bfloat({acc}[0]);" in msl  # rounded once, at the end


def test_bf16_argmax_shuffles_lanes_as_float(compile_msl):
    msl, _ = compile_msl(reduce_kernel, REDUCE_SIG, {"N": 1024, "OP": "argmax"}, num_warps=4)
    assert "= bfloat(simd_shuffle_xor(float(" in msl


@triton.jit
def block_sum_kernel(x_ptr, out_ptr, M: tl.constexpr, N: tl.constexpr, AXIS: tl.constexpr):
    rows, cols = tl.arange(0, M), tl.arange(0, N)
    r = tl.sum(tl.load(x_ptr + rows[:, None] * N + cols[None, :]), axis=AXIS)
    tl.store(out_ptr + (cols if AXIS == 0 else rows), r)


@pytest.mark.parametrize("axis", [0, 1])
def test_bf16_sum_along_an_axis_of_a_block_matches_torch(axis):
    x = torch.linspace(-4, 6, 64 * 32).to(BF16).reshape(64, 32)
    out = torch.empty(x.shape[1 - axis], dtype=BF16, device=_device())
    block_sum_kernel[(1,)](x.to(_device()), out, M=64, N=32, AXIS=axis, num_warps=4)
    _exact(out, x.float().sum(axis).to(BF16))


@triton.jit
def scan_kernel(x_ptr, out_ptr, N: tl.constexpr, OP: tl.constexpr):
    offs = tl.arange(0, N)
    x = tl.load(x_ptr + offs)
    if OP == "cumsum":
        r = tl.cumsum(x, axis=0)
    else:
        r = tl.associative_scan(x, 0, _max_nan)
    tl.store(out_ptr + offs, r)


@pytest.mark.parametrize("op", ["cumsum", "cummax"])
def test_bf16_scan_matches_torch(op):
    x = torch.linspace(-2, 3, 512).to(BF16)[torch.randperm(512, generator=torch.Generator().manual_seed(2))]
    x[300] = NAN
    out = torch.empty_like(x, device=_device())
    scan_kernel[(1,)](x.to(_device()), out, N=512, OP=op)
    if op == "cumsum":
        torch.testing.assert_close(out.cpu()[:300], x.float().cumsum(0).to(BF16)[:300], rtol=2 ** -8, atol=0)
        assert out.cpu()[300:].isnan().all()
    else:
        _exact(out, x.float().cummax(0).values.to(BF16))


# ---- tl.dot and atomics --------------------------------------------------------------------------
@triton.jit
def dot_kernel(a_ptr, b_ptr, c_ptr, B: tl.constexpr, M: tl.constexpr, N: tl.constexpr, K: tl.constexpr):
    b_i, m_i, n_i, k_i = tl.arange(0, B), tl.arange(0, M), tl.arange(0, N), tl.arange(0, K)
    if B == 1:  # 2-D: the simdgroup_matrix path
        a = tl.load(a_ptr + m_i[:, None] * K + k_i[None, :])
        b = tl.load(b_ptr + k_i[:, None] * N + n_i[None, :])
        tl.store(c_ptr + m_i[:, None] * N + n_i[None, :], tl.dot(a, b))
    else:  # batched: the FMA path
        a = tl.load(a_ptr + b_i[:, None, None] * M * K + m_i[None, :, None] * K + k_i[None, None, :])
        b = tl.load(b_ptr + b_i[:, None, None] * K * N + k_i[None, :, None] * N + n_i[None, None, :])
        c = tl.dot(a, b)
        tl.store(c_ptr + b_i[:, None, None] * M * N + m_i[None, :, None] * N + n_i[None, None, :], c)


@pytest.mark.parametrize("batch", [1, 2])
def test_bf16_dot_matches_torch(batch):
    gen = torch.Generator().manual_seed(3)
    a = torch.randn(batch, 16, 32, generator=gen).to(BF16)
    b = torch.randn(batch, 32, 16, generator=gen).to(BF16)
    c = torch.empty(batch, 16, 16, dtype=torch.float32, device=_device())
    dot_kernel[(1,)](a.to(_device()), b.to(_device()), c, B=batch, M=16, N=16, K=32)
    torch.testing.assert_close(c.cpu(), a.float() @ b.float(), rtol=1e-5, atol=1e-5)


@triton.jit
def atomic_add_kernel(ptr, x_ptr):
    tl.atomic_add(ptr, tl.load(x_ptr))


def test_bf16_atomic_add_is_a_compare_and_swap_on_its_32_bit_word(compile_msl):
    # Metal has no 16-bit atomics (values: conformance/ops/test_subword_atomics.py).
    msl, _ = compile_msl(atomic_add_kernel, {"ptr": "*bf16", "x_ptr": "*bf16"})
    assert "tm_atomic_fadd_bfloat(" in msl and "atomic_compare_exchange_weak_explicit" in msl
    assert "atomic<bfloat>" not in msl
