"""What happens when a kernel's MSL is loaded: optional shader dump, level-3 hardware log.

Called by ``driver.MetalUtils.load_binary`` for every kernel loaded (compiled or from Triton's
cache), so a dump holds exactly the MSL that runs.
"""
from __future__ import annotations

import threading

from triton_metal import debug
from triton_metal.debug import dump_shader  # the one dump: the Metal runtime's failed compiles use it too

_hardware_logged = False
_lock = threading.Lock()


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
