"""What happens when a kernel's MSL is loaded: optional shader dump, level-3 hardware log.

Called by ``driver.MetalUtils.load_binary`` for every kernel loaded (compiled or from Triton's
cache), so a dump holds exactly the MSL that runs.
"""
from __future__ import annotations

import hashlib
import os
import re
import threading
from pathlib import Path

from triton_metal import debug

_hardware_logged = False
_lock = threading.Lock()


def shader_dump_path(name: str, msl: str) -> Path:
    """``<dump dir>/<kernel>-<first 16 hex digits of sha256(MSL)>.metal``."""
    digest = hashlib.sha256(msl.encode()).hexdigest()[:16]
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    return Path(debug.get_option("shader_dump_dir")).expanduser() / f"{safe}-{digest}.metal"


def dump_shader(name: str, msl: str) -> Path:
    path = shader_dump_path(name, msl)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(msl)
    os.replace(tmp, path)  # atomic: concurrent processes dumping the same kernel never tear it
    return path


def on_kernel_loaded(name: str, msl: str, runtime) -> None:
    global _hardware_logged
    if debug.get_option("dump_shaders"):
        path = dump_shader(name, msl)
        debug.log(1, "dumped the MSL of %s to %s", name, path)
    if debug.debug_level() >= 3:
        with _lock:
            first, _hardware_logged = not _hardware_logged, True
        if first:
            from triton_metal.tools.hardware import get_hardware_capabilities
            debug.log(3, "hardware (%s runtime):\n%s", runtime.name, get_hardware_capabilities(runtime))
