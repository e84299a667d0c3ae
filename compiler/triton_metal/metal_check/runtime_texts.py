"""The exact texts each runtime hands to Apple's compiler for one generated kernel, and their check.

- ``metal``: MetalRuntime.compile passes the MSL unchanged to ``newLibraryWithSource:options:error:``.
- ``torch``: MetalRuntime._launch_torch passes ``msl.encode("ascii", "backslashreplace")`` to
  ``torch.mps.compile_shader``, which (torch/mps/__init__.py, utils/_cpp_embed_headers.py) blanks
  lines starting with ``#pragma once`` and inlines ``#include``s of headers that exist under torch's
  include directory. Checked only when it differs from the ``metal`` text.
- ``mlx``: the source ``mx.fast.metal_kernel`` writes around our body (mlx_source.py).
"""
from __future__ import annotations

import re

from triton_metal.errors import MetalError
from triton_metal.metal_check import frontend
from triton_metal.metal_check.mlx_source import mlx_kernel_source

_TORCH_INCLUDE = re.compile(r'^\s*#include\s*[<"]([^>"]+)[>"]')


def torch_source(msl: str) -> str:
    text = msl.encode("ascii", "backslashreplace").decode("ascii")
    return "\n".join("" if line.startswith("#pragma once") else line for line in text.split("\n"))


def torch_embedded_headers(msl: str) -> list:
    """Headers torch.mps.compile_shader would replace by its own copy (none is expected)."""
    try:
        from pathlib import Path

        import torch
    except ImportError:
        return []
    include = Path(torch.__file__).parent / "include"
    return [m.group(1) for line in msl.split("\n") if (m := _TORCH_INCLUDE.match(line))
            and (include / m.group(1)).exists()]


def runtime_texts(msl: str, kernel_name: str) -> list:
    """[(variant, text, kernel name in that text or None)] of every runtime that can run it."""
    texts = [("metal", msl, kernel_name)]
    torch_text = torch_source(msl)
    if torch_text != msl:
        texts.append(("torch", torch_text, kernel_name))
    try:
        texts.append(("mlx", mlx_kernel_source(msl, kernel_name), None))
    except MetalError:
        pass  # the MLX runtime refuses this kernel with its own error (e.g. a [[buffer]] it cannot bind)
    return texts


def check_kernel_texts(msl: str, kernel_name: str, msl_version: str = frontend.DEFAULT_MSL_VERSION) -> list:
    """Diagnostics of every runtime's text of one kernel (each tagged with its variant)."""
    diagnostics = []
    for variant, text, name in runtime_texts(msl, kernel_name):
        diagnostics += frontend.check_msl(text, name, msl_version, variant=variant)
    for header in torch_embedded_headers(msl):
        diagnostics.append(frontend.Diagnostic("error", 0, 0, f"torch.mps.compile_shader would replace "
                                               f"#include <{header}> by torch's own header", variant="torch"))
    return diagnostics
