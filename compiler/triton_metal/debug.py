"""TRITON_METAL_DEBUG levels, through `logging` to stderr.

0 quiet; 1 compile and launch information with timings; 2 also the TTIR/TTGIR;
3 also the full generated MSL and hardware details.
"""
from __future__ import annotations

import logging
import os

logger = logging.getLogger("triton_metal")


def debug_level() -> int:
    try:
        return max(0, min(3, int(os.environ.get("TRITON_METAL_DEBUG", "0") or 0)))
    except ValueError:
        return 0


def _ensure_handler() -> None:
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[triton-metal] %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False


def log(level: int, message: str, *args) -> None:
    """Log `message` when TRITON_METAL_DEBUG >= level."""
    if debug_level() >= level:
        _ensure_handler()
        logger.info(message, *args)
