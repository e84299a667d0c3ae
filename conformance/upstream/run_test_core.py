"""Runs upstream ``python/test/unit/language/test_core.py`` (pinned tag, unmodified) on our backend.

    python -m conformance.upstream.run_test_core [--tutorials-dir DIR] [--subset N] [-n 2]
        [--update-ratchet] [--run-skipped] [--shard K/N --outcomes FILE] [-- extra pytest args]

The files come the same way as the tutorials (a directory, else the cache, else a download) and are
hash-checked. The device is the one Triton reports (``cpu`` on the simulator, ``mps`` on an Apple
GPU). By default every test runs (~8250: 8 minutes with two workers on the simulator, the listed skips
cost nothing); ``--subset N`` runs only the first N parametrizations of each test function, for a
quick look. Each run is checked against the pass-count ratchet of its tag, device and subset.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from conformance.upstream import ratchet, source

TEST_CORE = "python/test/unit/language/test_core.py"


def torch_device() -> str:
    import triton
    return str(triton.runtime.driver.active.get_active_torch_device())


def pytest_command(root: Path, device: str, subset: int, workers: int, ratchet_file: Path, extra: list[str]):
    cmd = [sys.executable, "-m", "pytest", str(root / TEST_CORE), "--rootdir", str(root), "-c", str(root / "pytest.ini"),
           "-p", "conformance.upstream.pytest_plugin", "-p", "no:cacheprovider", "--device", device, "-q",
           "--ratchet-file", str(ratchet_file), "-W", "ignore::DeprecationWarning"]
    if subset:
        cmd += ["--subset", str(subset)]
    if workers > 1:
        cmd += ["-n", str(workers)]
    return cmd + extra


def collected_names(root: Path, device: str) -> list[str]:
    """The tests upstream's test_core.py collects on this backend, named as the skip list names them
    (``test_abs[float64]``): what the skip-list test checks every entry against."""
    cmd = [sys.executable, "-m", "pytest", str(root / TEST_CORE), "--rootdir", str(root), "-c", str(root / "pytest.ini"),
           "-p", "no:cacheprovider", "-p", "no:warnings", "--device", device, "--collect-only", "-q"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
    prefix = f"{TEST_CORE}::"
    names = [line[len(prefix):].rsplit("::", 1)[-1] for line in done.stdout.splitlines() if line.startswith(prefix)]
    if done.returncode != 0 or not names:
        raise RuntimeError(f"collecting {root / TEST_CORE} failed (exit {done.returncode}):\n"
                           f"{(done.stdout + done.stderr)[-2000:]}")
    return names


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tutorials-dir", default=None, help=f"a triton checkout (or python/); else ${source.DIR_ENV}")
    parser.add_argument("--tag", default=None)
    parser.add_argument("--full", action="store_true", help="every test (the default; overrides --subset)")
    parser.add_argument("--subset", type=int, default=0, help="only the first N parametrizations per test function")
    parser.add_argument("-n", "--workers", type=int, default=2, help="pytest-xdist workers")
    parser.add_argument("--update-ratchet", action="store_true")
    parser.add_argument("--run-skipped", action="store_true")
    parser.add_argument("--memory-limit-gb", type=float, default=8.0, help="per process (0: none)")
    parser.add_argument("--outcomes", default=None, help="JSON file of every test's outcome")
    parser.add_argument("--shard", default=None, metavar="K/N",
                        help="only shard K of N, split by recorded durations (CI's matrix; merge the --outcomes "
                             "files with `python -m conformance.upstream.merge_shards`, which applies the ratchet)")
    parser.add_argument("pytest_args", nargs="*", help="passed on to pytest (after --)")
    args = parser.parse_args(argv)

    manifest = source.load_manifest(args.tag)
    located = source.locate(manifest, list(source.TEST_CORE_FILES), args.tutorials_dir)
    if located.unavailable or located.missing or located.mismatched:
        problem = located.unavailable or (f"missing {', '.join(located.missing)}" if located.missing else
                                          f"not the expected bytes: {', '.join(located.mismatched)}")
        print(f"upstream test_core: {problem}")
        return 0 if located.unavailable else 1
    root = located.root
    device = torch_device()
    ratchet_file = ratchet.ratchet_path("test_core", manifest.tag, ratchet.device_key())
    extra = list(args.pytest_args)
    extra += ["--update-ratchet"] if args.update_ratchet else []
    extra += ["--run-skipped"] if args.run_skipped else []
    extra += ["--outcomes", args.outcomes] if args.outcomes else []
    extra += ["--shard", args.shard] if args.shard else []
    cmd = pytest_command(root, device, 0 if args.full else args.subset, args.workers, ratchet_file, extra)
    print(f"upstream test_core for Triton {manifest.tag} from {located.origin}, --device {device}", flush=True)
    # `python -m pytest` in this process's working directory (and environment) finds the plugin's
    # package the way this `python -m conformance...` did; so do the xdist workers.
    return subprocess.run(cmd, check=False, preexec_fn=_memory_cap(args.memory_limit_gb)).returncode


def _memory_cap(limit_gb: float):
    """Address-space cap, inherited by the xdist workers: a runaway simulated kernel fails with
    MemoryError instead of driving the machine into the out-of-memory killer."""
    def apply():
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (int(limit_gb * 2**30),) * 2)
    return apply if limit_gb > 0 else None


if __name__ == "__main__":
    sys.exit(main())
