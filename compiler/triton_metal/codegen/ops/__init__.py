"""The lowerings of TTGIR ops to MSL, one module per op family.

Each module registers its functions with ``emitter.lowers``; every op has exactly one lowering (a
second registration raises), so the order of these imports does not matter. Where one family
specialises ops another could lower with a table (lower_numeric, lower_rounding and
lower_contraction for msl_ops' arithmetic and casts), the table leaves those ops out.
"""
from __future__ import annotations

from triton_metal.codegen.ops import (  # noqa: F401  (importing registers the lowerings)
    lower_atomics,
    lower_calls,
    lower_contraction,
    lower_control,
    lower_debug_ops,
    lower_dot,
    lower_dot_scaled,
    lower_elementwise,
    lower_extern,
    lower_layout,
    lower_map,
    lower_memory,
    lower_numeric,
    lower_pointer_casts,
    lower_reduce,
    lower_rounding,
    lower_scan,
    lower_shape,
    lower_shared,
    lower_unsplat_and_poison,
)
