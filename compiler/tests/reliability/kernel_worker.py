"""A separate process that compiles and launches kernels, for the cache tests.

    python kernel_worker.py SCALE [SCALE ...]

launches ``scale_kernel`` with each constexpr SCALE (one compiled kernel per value), checks every
result against torch on the CPU and prints one JSON line: correct, compiles and cache hits (Triton),
simulator compiler runs, discarded cache entries. ``TM_TEST_HANG_AT=put_group`` plus
``TM_TEST_HANG_MARKER=<path>`` make the process stop inside Triton's compile, after every file of the
kernel is in the cache but before its group (index) is written: the tests SIGKILL it there.
"""
from __future__ import annotations

import json
import os
import sys
import time

import torch
import triton
import triton.language as tl


@triton.jit
def scale_kernel(x_ptr, out_ptr, n, SCALE: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) * SCALE + 1.0, mask=mask)


def _hang_in_put_group(marker: str) -> None:
    from triton_metal.cache import VerifiedFileCacheManager

    def put_group(self, filename, group):
        open(marker, "w").close()
        time.sleep(600)

    VerifiedFileCacheManager.put_group = put_group


def main(scales: list) -> dict:
    if os.environ.get("TM_TEST_HANG_AT") == "put_group":
        _hang_in_put_group(os.environ["TM_TEST_HANG_MARKER"])
    counts = {"compiles": 0, "cache_hits": 0}

    def listener(*, src, metadata, metadata_group, times, cache_hit):
        counts["cache_hits" if cache_hit else "compiles"] += 1

    triton.knobs.compilation.listener = listener
    correct = True
    n = 1000
    x = torch.rand(n, generator=torch.Generator().manual_seed(0))
    for scale in scales:
        out = torch.empty(n)
        scale_kernel[(triton.cdiv(n, 256),)](x, out, n, SCALE=scale, BLOCK=256)
        correct &= bool(torch.allclose(out, x * scale + 1.0))
    from triton_metal import cache
    from triton_metal.sim import build
    return {"correct": correct, **counts, "sim_compiler_runs": build.compiler_runs,
            "rebuilds": cache.stats["rebuilds"], "corrupt_libraries": build.corrupt_libraries}


if __name__ == "__main__":
    print(json.dumps(main([float(s) for s in sys.argv[1:]])))
