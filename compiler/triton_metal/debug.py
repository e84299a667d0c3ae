"""TRITON_METAL_DEBUG levels, through `logging` to stderr; the debug options; shader dumps.

0 quiet; 1 compile and launch information with timings; 2 also the TTIR/TTGIR;
3 also the full generated MSL and hardware details.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from pathlib import Path

logger = logging.getLogger("triton_metal")


# Debug options, set with triton_metal.backends.metal.set_debug_option(name, value); listed by
# get_debug_options(). None means "from the environment" (the variable named in OPTION_DOCS).
_options: dict = {"debug_level": None, "dump_shaders": None, "shader_dump_dir": None}

OPTION_DOCS = {
    "debug_level": "0..3, overrides TRITON_METAL_DEBUG",
    "dump_shaders": "write each loaded kernel's MSL to shader_dump_dir (env TRITON_METAL_DUMP_SHADERS=1)",
    "shader_dump_dir": "where dump_shaders writes (env TRITON_METAL_SHADER_DUMP_DIR, default ~/.triton/metal/shaders)",
}


def get_option(name: str):
    value = _options[name]
    if value is not None:
        return value
    if name == "debug_level":
        return debug_level()
    if name == "dump_shaders":
        return os.environ.get("TRITON_METAL_DUMP_SHADERS", "0").strip().lower() in ("1", "true", "yes", "on")
    return os.path.expanduser(os.environ.get("TRITON_METAL_SHADER_DUMP_DIR") or "~/.triton/metal/shaders")


def set_option(name: str, value) -> None:
    if name not in _options:
        raise KeyError(f"unknown debug option {name!r}; the options are: {', '.join(sorted(_options))}")
    _options[name] = value


def debug_level() -> int:
    if _options["debug_level"] is not None:
        return max(0, min(3, int(_options["debug_level"])))
    try:
        return max(0, min(3, int(os.environ.get("TRITON_METAL_DEBUG", "0") or 0)))
    except ValueError:
        return 0


def _ensure_handler() -> None:
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[triton-metal] %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    if logger.level == logging.NOTSET:  # also when the application attached its own handler
        logger.setLevel(logging.DEBUG)


def log(level: int, message: str, *args) -> None:
    """Log `message` when TRITON_METAL_DEBUG >= level."""
    if debug_level() >= level:
        _ensure_handler()
        logger.info(message, *args)


# ---- shader dumps (the dump_shaders option, and the MSL a failed Metal compile names) -------------

def shader_dump_path(name: str, msl: str) -> Path:
    """``<shader_dump_dir>/<kernel>-<first 16 hex digits of sha256(MSL)>.metal``."""
    digest = hashlib.sha256(msl.encode()).hexdigest()[:16]
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    return Path(get_option("shader_dump_dir")).expanduser() / f"{safe}-{digest}.metal"


def dump_shader(name: str, msl: str) -> Path:
    """Write ``msl`` to ``shader_dump_path(name, msl)`` and return the path."""
    path = shader_dump_path(name, msl)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(msl)
    os.replace(tmp, path)  # atomic: concurrent processes dumping the same kernel never tear it
    return path
