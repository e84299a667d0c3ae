"""The Metal front-end check: every generated kernel parsed by clang against a declarations-only
model of Apple's ``<metal_stdlib>`` (include/metal_stdlib), on Linux, with nothing but pip.

``check_msl(source, kernel_name)`` returns the diagnostics of one text; ``check_kernel_texts``
checks the exact texts each runtime hands to Apple (runtime_texts.py); the backend runs it on
every kernel when ``TRITON_METAL_FRONTEND_CHECK=1`` (stage.py). ``python -m triton_metal.metal_check
PATH...`` checks files; ``python -m triton_metal.metal_check.xcrun DIR`` compiles a directory of
kernels with Apple's compiler on a Mac.
"""
from triton_metal.metal_check.frontend import (
    DEFAULT_MSL_VERSION,
    Diagnostic,
    MetalFrontEndError,
    available,
    check_msl,
    header_hash,
)

__all__ = ["DEFAULT_MSL_VERSION", "Diagnostic", "MetalFrontEndError", "available", "check_msl", "header_hash"]
