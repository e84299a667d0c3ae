"""Layout hints on loads and stores: ``triton_metal.language.load(ptr, mask, other, layout="COALESCED")``.

Upstream ``tl.load`` has no ``layout`` argument; these wrappers take one, check it at compile time
and turn it into Triton's own alignment hints, then call ``tl.load`` / ``tl.store``. Use them inside
``@triton.jit`` kernels like ``tl.load``::

    import triton_metal.language as tml
    x = tml.load(x_ptr + offs, mask=mask, layout="COALESCED")

Layouts:
  ``"DEFAULT"`` (or None)  no hint: Triton's coalescing pass decides from what it can prove.
  ``"COALESCED"``          a promise that the block of pointers is contiguous along its last axis
                           and starts 16-byte aligned (``tl.max_contiguous`` + ``tl.multiple_of``),
                           so each thread gets a contiguous vector of up to 16 bytes
                           (``sizePerThread`` in the TTGIR) even when strides or offsets come from
                           run-time values Triton cannot prove aligned. Only promise it when true:
                           like ``tl.multiple_of``, a false promise is undefined behaviour.
"""
from __future__ import annotations

import triton.language as tl
from triton.language import core

ALIGNMENT_BYTES = 16  # one 16-byte vector access per thread (float4 / half8)


def _coalesced(pointer, _semantic):
    shape = [core._unwrap_if_constexpr(d) for d in pointer.shape]
    if not shape:
        raise ValueError('layout="COALESCED" applies to a block of pointers (ptr + tl.arange(...)), '
                         "not to a single pointer")
    rank = len(shape)
    contiguity = [1] * (rank - 1) + [shape[-1]]
    divisibility = [1] * (rank - 1) + [ALIGNMENT_BYTES]
    pointer = core.max_contiguous(pointer, [core.constexpr(v) for v in contiguity], _semantic=_semantic)
    return core.multiple_of(pointer, [core.constexpr(v) for v in divisibility], _semantic=_semantic)


LAYOUT_HINTS = {
    "DEFAULT": lambda pointer, _semantic: pointer,
    "COALESCED": _coalesced,
}


def _apply(layout, pointer, _semantic):
    layout = core._unwrap_if_constexpr(layout)
    key = "DEFAULT" if layout is None else str(layout).upper()
    if key not in LAYOUT_HINTS:
        raise ValueError(f"layout={layout!r} is not a layout hint triton-metal knows; use one of "
                         f"{', '.join(LAYOUT_HINTS)} (or omit it)")
    return LAYOUT_HINTS[key](pointer, _semantic)


@core.builtin
def load(pointer, mask=None, other=None, layout=None, *, cache_modifier="", eviction_policy="", volatile=False,
         _semantic=None):
    """``tl.load`` with a layout hint (see the module docstring)."""
    pointer = _apply(layout, pointer, _semantic)
    return tl.load(pointer, mask, other, cache_modifier=cache_modifier, eviction_policy=eviction_policy,
                   volatile=volatile, _semantic=_semantic)


@core.builtin
def store(pointer, value, mask=None, layout=None, *, cache_modifier="", eviction_policy="", _semantic=None):
    """``tl.store`` with a layout hint (see the module docstring)."""
    pointer = _apply(layout, pointer, _semantic)
    return tl.store(pointer, value, mask, cache_modifier=cache_modifier, eviction_policy=eviction_policy,
                    _semantic=_semantic)
