"""Purposely worse variants of the benchmarked kernels: the harness must catch them.

Same kernel names as in ``kernels.py`` so the only difference the checks see is the cost.
"""
from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def vector_add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    # Extra memory traffic: x is read a second time through a second pointer expression (a shifted
    # copy clamped into range), and the result does not change: (x + y) + (x_shifted - x_shifted).
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    again = tl.load(x_ptr + (n - 1 - offs), mask=mask)
    tl.store(out_ptr + offs, x + tl.load(y_ptr + offs, mask=mask) + (again - again), mask=mask)


@triton.jit
def vector_add_kernel_slowed(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr, REPEAT: tl.constexpr = 256):
    # Slowed: the same sum recomputed REPEAT times from freshly loaded inputs. acc * 0.0 keeps each
    # round dependent on the last (no compiler may drop it) and leaves the result exactly x + y.
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    for _ in range(REPEAT):
        acc = acc * 0.0 + tl.load(x_ptr + offs, mask=mask) + tl.load(y_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, acc, mask=mask)
