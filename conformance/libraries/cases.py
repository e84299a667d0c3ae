"""The case table shape of the suite: an op of a library, its inputs, its float64 reference, its tolerance.

A ``LibraryOp`` is run by test_liger.py as ``test_liger[<op>-<dtype>-<fwd|bwd>-<size>]``: forward only, or
forward and backward (the backward case checks the forward output too, then every input gradient). The
reference gets the same inputs upcast to float64 and is differentiated by torch's autograd on the CPU.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import torch

from conformance.libraries.numerics import DTYPES

LIGER_SIZE = "liger"


@dataclass(frozen=True)
class LibraryOp:
    name: str
    # (shape, dtype, generator) -> (inputs, names of the differentiable ones); non-tensor settings live in
    # the closures of `run` and `reference`.
    inputs: Callable
    run: Callable  # the library call on the inputs -> a tensor or a tuple of tensors
    reference: Callable  # the same on float64 copies -> the same structure, float64
    ulps: dict  # dtype name -> (forward ulps, backward ulps); see numerics.assert_close and each op's comment
    shapes: dict  # size name -> shape; "liger" is Liger's own test size (marked liger_size)
    grads: tuple = ()  # names of inputs whose gradient is checked
    liger_dtypes: tuple = ("f32", "bf16", "f16")  # dtypes run at the liger size (each takes seconds)
    scalar_output: bool = False  # a loss: the upstream gradient is a scalar
    outputs_checked: tuple = field(default=(0,))  # which outputs of a tuple result are compared
    # (library outputs, float64 inputs, float64 upstream gradients) -> {input name: float64 gradient}, for
    # ops whose Jacobian is discontinuous where rounding decides (sparsemax's support): the backward is then
    # judged at the forward result the library computed (itself checked against float64 first).
    grad_reference: Callable | None = None
    # every case over ~20 s on the simulator (marker libraries_slow, left out of tox -e libraries-quick)
    slow: bool = False


def params(ops) -> list:
    out = []
    for op in ops:
        for size, shape in op.shapes.items():
            marks = [pytest.mark.liger_size] if size == LIGER_SIZE else []
            marks += [pytest.mark.libraries_slow] if op.slow else []
            for dtype_name in DTYPES:
                if size == LIGER_SIZE and dtype_name not in op.liger_dtypes:
                    continue
                for direction in ("fwd", "bwd"):
                    out.append(pytest.param(op, dtype_name, direction, shape, marks=marks,
                                            id=f"{op.name}-{dtype_name}-{direction}-{size}"))
    return out


def as_tuple(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def clone_inputs(inputs: dict, dtype=None, grads=(), device="cpu") -> dict:
    out = {}
    for name, value in inputs.items():
        if isinstance(value, torch.Tensor):
            value = value.detach().clone().to(device)
            if dtype is not None and value.is_floating_point():
                value = value.to(dtype)
            if name in grads:
                value.requires_grad_(True)
        out[name] = value
    return out
