"""Integrity of Triton's compile cache for Metal kernels.

Triton's ``FileCacheManager`` already writes every file through a private temporary directory and
an atomic rename, and writes a kernel's *group* file (the index of its files) last, so concurrent
compilers never see a torn file and a compile killed midway leaves no group: nothing is served
from it. What it does not catch is a file damaged after it was written (a truncated copy, a full
disk, a bit flip): a bad ``.json`` crashes ``CompiledKernel`` and a bad ``.msl`` would be loaded.

``VerifiedFileCacheManager`` adds a sha256 of every file to the group and checks them before the
group is served. An entry that fails is discarded with a ``CacheCorruptionWarning`` and Triton
compiles the kernel again; groups without checksums (written by another cache manager) are
recompiled silently. ``install()`` registers the manager through ``triton.knobs`` unless the user
chose one (``TRITON_CACHE_MANAGER``).
"""
from __future__ import annotations

import gc
import hashlib
import json
import os
import threading
import time
import warnings

from triton import knobs
from triton.runtime.cache import FileCacheManager

from triton_metal.debug import log
from triton_metal.errors import CacheCorruptionWarning
from triton_metal.runtime import created_runtime

GROUP_PREFIX = "__grp__"
STALE_TEMP_SECONDS = 600  # temporary directories of dead writers older than this are removed

# Entries discarded by this process (the stress suite reports them).
_stats_lock = threading.Lock()
stats = {"rebuilds": 0, "unverified": 0}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha256(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return _sha256(f.read())
    except OSError:
        return None


def _count(what: str) -> None:
    with _stats_lock:
        stats[what] += 1


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class VerifiedFileCacheManager(FileCacheManager):
    """Triton's file cache with a checksum of each file, verified before an entry is served."""

    def __init__(self, key, override=False, dump=False):
        super().__init__(key, override=override, dump=dump)
        self._digests: dict = {}  # path -> sha256 of what this manager wrote there

    def put(self, data, filename, binary=True) -> str:
        # Written as bytes so the checksum is of exactly what is on disk, whatever the locale.
        raw = data if isinstance(data, bytes) else str(data).encode("utf-8")
        path = super().put(raw, filename, binary=True)
        self._digests[path] = _sha256(raw)
        return path

    def put_group(self, filename: str, group: dict) -> str:
        digests = {name: self._digests.get(path) or _file_sha256(path) for name, path in group.items()}
        contents = json.dumps({"child_paths": group, "sha256": digests})
        return self.put(contents, f"{GROUP_PREFIX}{filename}")

    def get_group(self, filename: str) -> dict | None:
        group_path = self._make_path(f"{GROUP_PREFIX}{filename}")
        try:
            with open(group_path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            self._remove_stale_temporaries()
            return None
        problem, group = self._verify(raw)
        if problem is None:
            return group
        if problem == "unverified":
            _count("unverified")
            log(1, "cache entry %s has no checksums (written by another cache manager): recompiling", group_path)
            return None
        _count("rebuilds")
        warnings.warn(f"triton-metal: discarding corrupt compile-cache entry {group_path}: {problem}; "
                      "the kernel is compiled again", CacheCorruptionWarning, stacklevel=2)
        try:
            os.remove(group_path)  # the recompile writes a fresh group; until then nothing points at bad files
        except OSError:
            pass
        return None

    @staticmethod
    def _verify(raw: bytes):
        """(None, group) when every file matches its checksum, else (what is wrong, None)."""
        try:
            data = json.loads(raw)
            children, digests = data["child_paths"], data.get("sha256")
            if not isinstance(children, dict):
                raise TypeError("child_paths is not an object")
        except (ValueError, KeyError, TypeError) as e:
            return f"the group file is unreadable ({e})", None
        if digests is None:
            return "unverified", None
        for name, path in children.items():
            expected = digests.get(name)
            actual = _file_sha256(path)
            if actual is None:
                return f"{name} is missing", None
            if actual != expected:
                return f"{name} does not match its checksum (truncated or overwritten)", None
        return None, dict(children)

    def _remove_stale_temporaries(self) -> None:
        """Temporary directories left by writers that were killed (``tmp.pid_<pid>_<uuid>``)."""
        try:
            entries = os.listdir(self.cache_dir)
        except OSError:
            return
        now = time.time()
        for entry in entries:
            if not entry.startswith("tmp.pid_"):
                continue
            path = os.path.join(self.cache_dir, entry)
            try:
                pid = int(entry.split("_")[1])
                if _pid_alive(pid) or now - os.stat(path).st_mtime < STALE_TEMP_SECONDS:
                    continue
                for name in os.listdir(path):
                    os.remove(os.path.join(path, name))
                os.rmdir(path)
            except (ValueError, IndexError, OSError):
                continue


def install() -> None:
    """Use ``VerifiedFileCacheManager`` for Triton's compile cache, unless the user chose a manager."""
    if os.environ.get("TRITON_CACHE_MANAGER") or "manager_class" in vars(knobs.cache):
        return
    knobs.cache.manager_class = VerifiedFileCacheManager


# ---- in-process caches ------------------------------------------------------------------------
def _jit_functions() -> list:
    from triton.runtime.jit import JITFunction
    return [obj for obj in gc.get_objects() if issubclass(type(obj), JITFunction)]  # type(): no __class__ lookups


def clear_in_process() -> dict:
    """Drop every compiled kernel this process holds: the kernel caches of all ``@triton.jit``
    functions and the runtime's pipelines (``Runtime.release``; on the simulator: its loaded
    libraries). The on-disk caches stay, so the next launch reloads from them. Kernels the caller
    still references stay loaded (unloading them would make a later launch crash)."""
    functions = _jit_functions()
    for fn in functions:
        fn.device_caches.clear()
    runtime = created_runtime()  # never create a runtime (open a device) just to clear it
    released = runtime.release() if runtime is not None else 0
    gc.collect()
    return {"jit_functions": len(functions), "released": released}


# ---- audit (tests and the stress suite) ---------------------------------------------------------
def audit(triton_cache_dir, sim_cache_dir=None) -> dict:
    """Check every entry of a Triton cache directory (and of a simulator cache directory): how many
    groups, which fail their checksums, which temporaries are left; libraries likewise."""
    report = {"groups": 0, "corrupt": [], "temporaries": [], "libraries": 0, "corrupt_libraries": []}
    for root, dirs, files in os.walk(str(triton_cache_dir)):
        report["temporaries"] += [os.path.join(root, d) for d in dirs if d.startswith("tmp.pid_")]
        for name in files:
            if not name.startswith(GROUP_PREFIX):
                continue
            report["groups"] += 1
            with open(os.path.join(root, name), "rb") as f:
                problem, _ = VerifiedFileCacheManager._verify(f.read())
            if problem is not None:
                report["corrupt"].append(f"{os.path.join(root, name)}: {problem}")
    if sim_cache_dir is not None:
        for name in sorted(os.listdir(str(sim_cache_dir))):
            path = os.path.join(str(sim_cache_dir), name)
            if name.endswith(".tmp"):
                report["temporaries"].append(path)
            elif name.endswith(".so"):
                report["libraries"] += 1
                try:
                    with open(path + ".sha256") as f:
                        expected = f.read().strip()
                except FileNotFoundError:
                    expected = None
                if expected != _file_sha256(path):
                    report["corrupt_libraries"].append(path)
    return report
