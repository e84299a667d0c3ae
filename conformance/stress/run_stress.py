"""Stress suite: N processes x M threads compile and launch a random mix of kernels against one
shared compile cache, and check every result against a CPU reference.

    python -m conformance.stress.run_stress --processes 4 --threads 4 --launches 250
    python -m conformance.stress.run_stress --soak 600          # run for 10 minutes instead

Workers are started with multiprocessing's "spawn" (Metal is not fork-safe). The caches are a fresh
temporary directory unless --cache-dir names one (reuse it to stress a warm cache). At the end the
cache directories are audited: every entry must pass its checksums and no temporary may be left.
The report gives launches, compiles, mismatches, errors, cache rebuilds, corrupt entries and peak
memory; the exit status is 1 when any mismatch, error, rebuild or corrupt entry was seen.
"""
from __future__ import annotations

import argparse
import faulthandler
import json
import multiprocessing as mp
import os
import random
import resource
import signal
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path


def _thread_loop(worker: int, thread: int, opts: dict, deadline: float | None, totals: dict, lock) -> None:
    import triton

    from conformance.stress.kernels import CASES, matches
    device = triton.runtime.driver.active.get_active_torch_device()
    rng = random.Random(f"{opts['seed']}-{worker}-{thread}")
    names = opts["kernels"]
    launches = 0
    while (time.monotonic() < deadline) if deadline else (launches < opts["launches"]):
        name = rng.choice(names)
        try:
            result, reference, tolerance = CASES[name](rng, device)
            ok = matches(result, reference, tolerance)
        except Exception as e:  # noqa: BLE001  (any failure is a finding, reported with its traceback)
            with lock:
                totals["errors"] += 1
                if len(totals["error_details"]) < 5:
                    totals["error_details"].append(f"{name}: {type(e).__name__}: {e}\n{traceback.format_exc()}")
            launches += 1
            continue
        launches += 1
        with lock:
            totals["launches"] += 1
            totals["per_kernel"][name] = totals["per_kernel"].get(name, 0) + 1
            if not ok:
                totals["mismatches"] += 1
                if len(totals["mismatch_details"]) < 5:
                    totals["mismatch_details"].append(f"{name}: max |diff| "
                                                      f"{(result.float() - reference.float()).abs().max().item()}")


def _serialize_ast_parse() -> None:
    """CPython 3.11's ast.parse is not thread-safe (python/cpython#106905: "SystemError: AST constructor
    recursion depth mismatch"), and Triton's JIT parses a kernel's source on every compile, so
    threads that compile at once in one process can fail. Not a triton-metal bug; the suite serializes
    ast.parse unless --no-ast-lock is given (which reproduces it)."""
    import ast
    parse, lock = ast.parse, threading.Lock()

    def locked_parse(*args, **kwargs):
        with lock:
            return parse(*args, **kwargs)

    ast.parse = locked_parse


def worker_main(worker: int, opts: dict, results) -> None:
    """One process: M threads launching kernels; puts its totals on ``results``."""
    faulthandler.register(signal.SIGUSR1)  # the parent asks for stacks before killing a hung worker
    if opts["ast_lock"]:
        _serialize_ast_parse()
    import triton
    from triton_metal import cache
    from triton_metal.sim import build

    totals = {"worker": worker, "launches": 0, "mismatches": 0, "errors": 0, "compiles": 0, "cache_hits": 0,
              "per_kernel": {}, "mismatch_details": [], "error_details": []}
    lock = threading.Lock()

    def listener(*, src, metadata, metadata_group, times, cache_hit):
        with lock:
            totals["cache_hits" if cache_hit else "compiles"] += 1

    triton.knobs.compilation.listener = listener
    deadline = time.monotonic() + opts["soak"] if opts["soak"] else None
    threads = [threading.Thread(target=_thread_loop, args=(worker, t, opts, deadline, totals, lock))
               for t in range(opts["threads"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    totals["sim_builds"] = build.compiler_runs
    totals["cache_rebuilds"] = cache.stats["rebuilds"] + build.corrupt_libraries
    totals["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results.put(totals)


def run(opts: dict) -> dict:
    cache_root = Path(opts["cache_dir"] or tempfile.mkdtemp(prefix="triton-metal-stress-"))
    triton_dir, sim_dir = cache_root / "triton", cache_root / "sim"
    sim_dir.mkdir(parents=True, exist_ok=True)
    os.environ["TRITON_CACHE_DIR"] = str(triton_dir)  # inherited by the spawned workers
    os.environ["TRITON_METAL_SIM_CACHE_DIR"] = str(sim_dir)
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    start = time.monotonic()
    procs = [ctx.Process(target=worker_main, args=(w, opts, results)) for w in range(opts["processes"])]
    for p in procs:
        p.start()
    workers, lost = [], []
    for _ in procs:
        try:
            workers.append(results.get(timeout=opts["timeout"]))
        except Exception:  # noqa: BLE001  (queue.Empty: a worker died or hung)
            break
    for p in procs:
        p.join(timeout=120)
        if p.is_alive():
            os.kill(p.pid, signal.SIGUSR1)  # its Python stacks go to stderr
            time.sleep(2)
            p.kill()
            lost.append(f"worker pid {p.pid} did not exit within 120 s of {'reporting' if workers else 'starting'}")
        elif p.exitcode != 0:
            lost.append(f"worker pid {p.pid} exited with {p.exitcode}")

    from triton_metal.cache import audit
    found = audit(triton_dir, sim_dir)
    report = {
        "processes": opts["processes"], "threads": opts["threads"], "seconds": round(time.monotonic() - start, 1),
        "cache_dir": str(cache_root),
        "launches": sum(w["launches"] for w in workers),
        "mismatches": sum(w["mismatches"] for w in workers),
        "errors": sum(w["errors"] for w in workers) + len(lost),
        "triton_compiles": sum(w["compiles"] for w in workers),
        "triton_cache_hits": sum(w["cache_hits"] for w in workers),
        "sim_builds": sum(w["sim_builds"] for w in workers),
        "cache_rebuilds": sum(w["cache_rebuilds"] for w in workers),
        "cache_entries": found["groups"], "sim_libraries": found["libraries"],
        "corrupt_entries": len(found["corrupt"]) + len(found["corrupt_libraries"]),
        "leftover_temporaries": len(found["temporaries"]),
        "peak_rss_mib_per_worker": max((round(w["peak_rss_mib"], 1) for w in workers), default=0),
        "per_kernel": {k: sum(w["per_kernel"].get(k, 0) for w in workers) for k in opts["kernels"]},
        "details": [d for w in workers for d in w["mismatch_details"] + w["error_details"]] + lost
        + found["corrupt"] + found["corrupt_libraries"] + found["temporaries"],
    }
    report["ok"] = (len(workers) == opts["processes"] and report["launches"] > 0 and not any(
        report[k] for k in ("mismatches", "errors", "cache_rebuilds", "corrupt_entries", "leftover_temporaries")))
    return report


def main(argv=None) -> int:
    from conformance.stress.kernels import CASES
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4, help="threads per process")
    parser.add_argument("--launches", type=int, default=250, help="launches per thread (ignored with --soak)")
    parser.add_argument("--soak", type=float, default=0.0, metavar="SECONDS",
                        help="run for this long instead of a fixed number of launches")
    parser.add_argument("--kernels", default=",".join(CASES), help=f"comma-separated subset of {', '.join(CASES)}")
    parser.add_argument("--cache-dir", default="", help="cache root shared by all workers (default: a fresh one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for a worker")
    parser.add_argument("--json", default="", help="also write the report to this file")
    parser.add_argument("--no-ast-lock", dest="ast_lock", action="store_false",
                        help="let threads call ast.parse concurrently (CPython 3.11 bug python/cpython#106905)")
    opts = vars(parser.parse_args(argv))
    opts["kernels"] = [k for k in opts["kernels"].split(",") if k]
    unknown = sorted(set(opts["kernels"]) - set(CASES))
    if unknown:
        parser.error(f"unknown kernels {unknown}; known: {', '.join(CASES)}")
    if opts["soak"]:
        opts["timeout"] = max(opts["timeout"], opts["soak"] + 900)
    report = run(opts)
    if opts["json"]:
        Path(opts["json"]).write_text(json.dumps(report, indent=2))
    for key, value in report.items():
        if key != "details":
            print(f"{key:>24}: {value}")
    for line in report["details"]:
        print(f"  ! {line}")
    print("stress (simulator)" if _simulated() else "stress (Apple GPU)", "PASSED" if report["ok"] else "FAILED")
    return 0 if report["ok"] else 1


def _simulated() -> bool:
    from triton_metal.runtime import get_runtime
    return get_runtime().capabilities.simulated


if __name__ == "__main__":
    sys.exit(main())
