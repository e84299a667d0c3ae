"""Triton's compile cache with Metal kernels: damaged entries are rebuilt, never loaded; concurrent
compiles of the same and of different kernels leave only whole, verified entries."""
from __future__ import annotations

import ast
import json
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest
import triton
import triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from triton.runtime.cache import FileCacheManager
from triton_metal import cache
from triton_metal.errors import CacheCorruptionWarning

TARGET = GPUTarget("metal", "apple-m1", 32)


@triton.jit
def axpy_kernel(x_ptr, y_ptr, n, A: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=mask) * A + tl.load(y_ptr + offs, mask=mask), mask=mask)


def _source(a=2.0):
    return ASTSource(axpy_kernel, {"x_ptr": "*fp32", "y_ptr": "*fp32", "n": "i32", "A": "constexpr",
                                   "BLOCK": "constexpr"}, {(3,): a, (4,): 128})


class CompileCounter:
    """Counts Triton's compiles and cache hits through its compilation listener."""

    def __init__(self):
        self.compiles = self.hits = 0
        self._lock = threading.Lock()

    def __call__(self, *, src, metadata, metadata_group, times, cache_hit):
        with self._lock:
            if cache_hit:
                self.hits += 1
            else:
                self.compiles += 1


@pytest.fixture
def counter(monkeypatch):
    c = CompileCounter()
    monkeypatch.setattr(triton.knobs.compilation, "listener", c)
    return c


def _entry_dir(kernel) -> str:
    return os.path.dirname(kernel.metadata_group["axpy_kernel.json"])


def _group_path(kernel) -> str:
    return os.path.join(_entry_dir(kernel), "__grp__axpy_kernel.json")


def test_the_verified_manager_is_what_triton_uses():
    triton.compile(_source(), target=TARGET)  # constructing the backend installs it
    assert triton.knobs.cache.manager_class is cache.VerifiedFileCacheManager


def test_a_group_records_the_checksum_of_every_file(fresh_caches):
    kernel = triton.compile(_source(), target=TARGET)
    with open(_group_path(kernel)) as f:
        group = json.load(f)
    assert set(group["sha256"]) == set(group["child_paths"]) >= {"axpy_kernel.msl", "axpy_kernel.json"}
    import hashlib
    for name, path in group["child_paths"].items():
        with open(path, "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == group["sha256"][name]


def test_an_intact_entry_is_served_from_the_cache(fresh_caches, counter):
    first = triton.compile(_source(), target=TARGET)
    second = triton.compile(_source(), target=TARGET)
    assert (counter.compiles, counter.hits) == (1, 1)
    assert second.asm["msl"] == first.asm["msl"]


@pytest.mark.parametrize("damage", ["truncate msl", "garbage json", "truncate group", "delete msl"])
def test_a_damaged_entry_is_rebuilt_with_a_warning_never_loaded(fresh_caches, counter, damage):
    original = triton.compile(_source(), target=TARGET)
    msl_path = original.metadata_group["axpy_kernel.msl"]
    if damage == "truncate msl":
        os.truncate(msl_path, 100)
    elif damage == "garbage json":
        with open(original.metadata_group["axpy_kernel.json"], "r+b") as f:
            f.seek(10)
            f.write(b"\x00garbage\x00")
    elif damage == "truncate group":
        os.truncate(_group_path(original), 40)
    else:
        os.remove(msl_path)
    with pytest.warns(CacheCorruptionWarning, match="discarding corrupt compile-cache entry"):
        rebuilt = triton.compile(_source(), target=TARGET)
    assert (counter.compiles, counter.hits) == (2, 0)
    assert rebuilt.asm["msl"] == original.asm["msl"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheCorruptionWarning)
        triton.compile(_source(), target=TARGET)  # the rebuilt entry is whole again
    assert counter.hits == 1


def test_an_entry_without_checksums_is_recompiled_silently(fresh_caches, counter, monkeypatch):
    monkeypatch.setattr(triton.knobs.cache, "manager_class", FileCacheManager)
    triton.compile(_source(), target=TARGET)  # written by Triton's plain manager: no checksums
    monkeypatch.setattr(triton.knobs.cache, "manager_class", cache.VerifiedFileCacheManager)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheCorruptionWarning)
        triton.compile(_source(), target=TARGET)
    assert counter.compiles == 2


@pytest.fixture
def serialized_ast_parse(monkeypatch):
    """CPython 3.11's ast.parse is not thread-safe (python/cpython#106905: "AST constructor recursion depth
    mismatch"), and Triton parses a kernel's source on every compile: serialized here, as in the stress
    suite, since this test is about our cache, not about CPython."""
    parse, lock = ast.parse, threading.Lock()

    def locked_parse(*args, **kwargs):
        with lock:
            return parse(*args, **kwargs)
    monkeypatch.setattr(ast, "parse", locked_parse)


def test_threads_compiling_the_same_and_different_kernels_leave_only_whole_entries(fresh_caches, counter,
                                                                                   serialized_ast_parse):
    scales = [1.0, 2.0, 3.0, 4.0] * 3  # each kernel compiled by three threads at once
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheCorruptionWarning)
        with ThreadPoolExecutor(max_workers=6) as pool:
            kernels = list(pool.map(lambda a: triton.compile(_source(a), target=TARGET), scales))
    by_scale = {}
    for a, k in zip(scales, kernels):
        by_scale.setdefault(a, set()).add(k.asm["msl"])
    assert all(len(sources) == 1 for sources in by_scale.values())  # every thread got the same kernel
    assert len({next(iter(s)) for s in by_scale.values()}) == 4
    report = cache.audit(fresh_caches.triton, fresh_caches.sim)
    assert report["groups"] == 4 and report["corrupt"] == [] and report["temporaries"] == []
    assert counter.compiles + counter.hits == len(scales)


def test_temporaries_of_killed_writers_are_removed(fresh_caches):
    kernel = triton.compile(_source(), target=TARGET)
    stale = os.path.join(_entry_dir(kernel), "tmp.pid_999999999_0000")  # no such process
    os.mkdir(stale)
    with open(os.path.join(stale, "axpy_kernel.msl"), "w") as f:
        f.write("// half written")
    old = 1_000_000_000
    os.utime(stale, (old, old))
    os.remove(_group_path(kernel))  # the next compile misses, which is when temporaries are swept
    triton.compile(_source(), target=TARGET)
    assert not os.path.exists(stale)
