"""``clear_cache()`` and ``synchronize()``."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path


def synchronize() -> None:
    """Wait until every kernel launched so far has finished (results are then visible on the host)."""
    from triton_metal.runtime import get_runtime
    get_runtime().synchronize()


def _metal_cache_groups(cache_dir: Path) -> list:
    """Triton cache directories holding a kernel compiled for the Metal backend."""
    found = []
    for entry in cache_dir.iterdir() if cache_dir.is_dir() else ():
        if not entry.is_dir() or entry.name.startswith("tmp."):
            continue
        for meta in entry.glob("*.json"):
            try:
                target = json.loads(meta.read_text()).get("target", {})
            except (OSError, ValueError, AttributeError):
                continue
            if isinstance(target, dict) and target.get("backend") == "metal":
                found.append(entry)
                break
    return found


def clear_cache(disk: bool = True) -> dict:
    """Forget every compiled Metal kernel: in this process (Triton's per-function caches and the
    runtime's pipelines) and, with ``disk=True``, on disk: Metal entries of Triton's cache
    (``TRITON_CACHE_DIR``, other backends' entries are kept) and the simulator's build cache
    (``TRITON_METAL_SIM_CACHE_DIR``). The next launch compiles again."""
    from triton import knobs

    from triton_metal.cache import clear_in_process
    result = dict(clear_in_process())
    result.update(triton_cache_entries=0, simulator_files=0)
    if not disk:
        return result
    for group in _metal_cache_groups(Path(knobs.cache.dir)):
        shutil.rmtree(group, ignore_errors=True)
        result["triton_cache_entries"] += 1
    from triton_metal.sim import build
    for path in build.cache_dir().iterdir():
        if path.is_file() and not path.name.startswith("tm_runtime-"):  # the loaded runtime library stays
            try:
                os.remove(path)
                result["simulator_files"] += 1
            except OSError:
                pass
    return result
