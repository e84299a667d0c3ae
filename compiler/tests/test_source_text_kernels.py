"""Kernel source text cannot change what the generated MSL computes (issue 15, item 1).

Each kernel's source line that stores the result carries one hazard; the generated MSL copies that
line into a `//` comment above the store. Before the sanitiser, a line ending in a backslash spliced
the store into the comment: the output stayed unwritten, no error. Each kernel is written to its own
file (the hazards include characters a test file should not hold), run on the simulator, and
compared with numpy; the MSL's comments are checked too.
"""
import importlib.util
import re
import sys

import numpy as np
import pytest
import torch
import triton
from triton_metal.codegen.msl_words import MLX_ATTRIBUTES

KERNEL = '''\
import triton
import triton.language as tl


@triton.jit
def hazard_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    {store}
'''
STORE = "tl.store(out_ptr + offs, x * 2 + 1, mask=mask)"

HAZARDS = {
    "line continuation": "tl.store(out_ptr + offs, \\\n             x * 2 + 1, mask=mask)",
    "backslash ending a comment": STORE + "  # C:\\temp\\",
    "backslash and spaces ending a comment": STORE + "  # dir\\   ",
    "trigraph ??/ ending a comment": STORE + "  # why??/",
    "block comment delimiters": STORE + "  # */ not code /* ",
    "non-ASCII": STORE + "  # café ∑ 𝔵",
    "control characters": STORE + "  # \x1b[31m red \x0b \x0c end",
    "a very long line": STORE + "  # " + "y" * 2000,
    "Metal attribute names": STORE + "  # thread_position_in_grid, grid_size, mlx_in0_shape",
}


def load_kernel(tmp_path, key: str, source: str, file_name: str = "kernel.py"):
    path = tmp_path / file_name
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"hazard_{abs(hash(key))}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.hazard_kernel


def comments(msl: str) -> list:
    return [line.split("//", 1)[1] for line in msl.splitlines() if "//" in line]


def run(kernel, device, block: int):
    n = 1000
    x = torch.linspace(-3, 3, n, dtype=torch.float32, device=device)
    out = torch.full((n,), -123.0, device=device)
    compiled = kernel[(triton.cdiv(n, block),)](x, out, n, BLOCK=block)
    np.testing.assert_array_equal(out.cpu().numpy(), x.cpu().numpy() * 2 + 1)
    return compiled.asm["msl"].decode()


def assert_safe_comments(msl: str) -> None:
    assert msl.isascii()
    for text in comments(msl):
        assert re.fullmatch(r"[ -~]*", text), text
        assert "\\" not in text and "??" not in text and "/*" not in text and "*/" not in text
        assert len(text) < 250, text
        assert not any(a in text for a in MLX_ATTRIBUTES) and "mlx_in" not in text, text


@pytest.mark.parametrize("hazard", sorted(HAZARDS))
def test_a_hazard_in_the_source_line_leaves_the_result_and_the_code_intact(tmp_path, device, hazard):
    kernel = load_kernel(tmp_path, hazard, KERNEL.format(store=HAZARDS[hazard]))
    msl = run(kernel, device, block=256)  # 256: the store vanished silently before the fix (64: a compile error)
    assert_safe_comments(msl)


def test_the_backslash_line_is_shown_in_its_comment(tmp_path, device):
    kernel = load_kernel(tmp_path, "shown", KERNEL.format(store=HAZARDS["line continuation"]))
    msl = run(kernel, device, block=64)
    assert "// kernel.py:10: tl.store(out_ptr + offs, <backslash>" in msl


# Every construct whose MSL names its source location in a comment: a reduction's combine function
# (and a bf16 one's, carried in float), a tl.map_elementwise function, a noinline function.
LOCATIONS_KERNEL = '''\
import triton
import triton.language as tl


@triton.jit(noinline=True)
def plus_one(v):
    return v + 1


@triton.jit
def clamp_below(v):
    if v < 0:
        return 0.0
    return v


@triton.jit
def hazard_kernel(x_ptr, xb_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask, other=0.0)
    xb = tl.load(xb_ptr + offs, mask=mask, other=0.0)
    total = plus_one(tl.sum(x, axis=0)) + tl.sum(xb, axis=0).to(tl.float32)
    tl.store(out_ptr + offs, tl.map_elementwise(clamp_below, x) * 2 + total, mask=mask)
'''


def test_a_file_name_with_non_ascii_and_a_backslash(tmp_path, device):
    kernel = load_kernel(tmp_path, "file name", LOCATIONS_KERNEL, file_name="kernél\\.py")
    n = 100
    x = torch.linspace(-1, 1, n, dtype=torch.float32, device=device)
    xb = (torch.arange(n, device=device) % 3).to(torch.bfloat16)  # sums exactly in bf16
    out = torch.zeros(n, device=device)
    compiled = kernel[(1,)](x, xb, out, n, BLOCK=128)
    xn = x.cpu().numpy().astype(np.float64)
    expected = np.maximum(xn, 0) * 2 + (xn.sum() + 1) + float(xb.float().sum())
    np.testing.assert_allclose(out.cpu().numpy(), expected, rtol=1e-5, atol=1e-5)
    msl = compiled.asm["msl"].decode()
    assert_safe_comments(msl)  # MLIR escapes the path in its locations (`kern\\C3\\A9l\\\\.py`)
    for construct in ("combine function of tt.reduce at", "the function tl.map_elementwise applies at"):
        assert re.search(rf"// {construct} .*kern<backslash>C3<backslash>A9l", msl), construct
    assert "// @triton.jit(noinline=True) " in msl
