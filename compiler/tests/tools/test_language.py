"""triton_metal.language.load/store with layout hints."""
import re

import pytest
import torch
import triton
import triton.language as tl
import triton_metal.language as tml


@triton.jit(do_not_specialize=["row_stride"])
def _copy_rows(x, out, row_stride, LAYOUT: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * row_stride + tl.arange(0, BLOCK)
    tml.store(out + offs, tml.load(x + offs, layout=LAYOUT), layout=LAYOUT)


def _size_per_thread(ttgir: str) -> set:
    return set(re.findall(r"sizePerThread = \[(\d+)\]", ttgir))


@pytest.mark.parametrize("layout, per_thread", [("DEFAULT", {"1"}), ("COALESCED", {"4"})])
def test_coalesced_hint_gives_each_thread_a_16_byte_vector(device, layout, per_thread):
    # row_stride is a run-time value Triton cannot prove aligned: without the hint, 1 element per thread.
    x = torch.arange(4 * 512, dtype=torch.float32, device=device)
    out = torch.zeros_like(x)
    kernel = _copy_rows[(4,)](x, out, 512, LAYOUT=layout, BLOCK=512)
    assert _size_per_thread(kernel.asm["ttgir"]) == per_thread
    assert torch.equal(out.cpu(), x.cpu())


def test_unknown_layout_is_refused_at_compile_time(device):
    x = torch.zeros(64, device=device)
    with pytest.raises(triton.CompilationError, match="layout='ROWMAJOR' is not a layout hint triton-metal knows; "
                                                      "use one of DEFAULT, COALESCED"):
        _copy_rows[(1,)](x, x, 64, LAYOUT="ROWMAJOR", BLOCK=64)


@triton.jit
def _scalar_hint(x):
    tml.store(x, 1.0, layout="COALESCED")


def test_coalesced_on_a_single_pointer_is_refused(device):
    with pytest.raises(triton.CompilationError, match="applies to a block of pointers"):
        _scalar_hint[(1,)](torch.zeros(1, device=device))
