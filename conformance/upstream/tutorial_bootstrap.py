"""Runs one upstream tutorial, unmodified, in this (fresh) process: the runner's subprocess entry.

    python conformance/upstream/tutorial_bootstrap.py --phase script|pytest --benchmarks skip|shrink [--points N] FILE

Phase ``script`` runs the file as ``__main__`` (module-level checks and its main block); phase
``pytest`` runs its ``test_*`` functions with pytest. Benchmark sweeps are replaced at the library
level (``triton.testing.Mark.run``), never by editing the file: ``skip`` prints one line instead of
running, ``shrink`` runs the first N points of each sweep, without plots or files.
"""
from __future__ import annotations

import argparse
import os
import runpy
import sys

TAG = "[upstream-runner]"


def _sweep_points(bench, points: int):
    for x in list(bench.x_vals)[:points]:
        values = x if isinstance(x, (list, tuple)) else [x] * len(bench.x_names)
        yield dict(zip(bench.x_names, values))


def patch_benchmarks(mode: str, points: int) -> None:
    import triton.testing

    def run(self, show_plots=False, print_data=False, save_path="", return_df=False, **kwargs):
        benches = self.benchmarks if isinstance(self.benchmarks, (list, tuple)) else [self.benchmarks]
        for bench in benches:
            if mode == "skip":
                print(f"{TAG} benchmark {bench.plot_name} skipped (--benchmarks=skip)", flush=True)
                continue
            for x_args in _sweep_points(bench, points):
                for line in bench.line_vals:
                    result = self.fn(**x_args, **{bench.line_arg: line}, **bench.args, **kwargs)
                    print(f"{TAG} benchmark {bench.plot_name} {x_args} {bench.line_arg}={line}: {result}",
                          flush=True)

    triton.testing.Mark.run = run


def run_script(path: str) -> int:
    # The import path is left as it is. `python FILE` would put FILE's directory first, but no tutorial
    # imports anything beside it: python/tutorials holds no helper module (the tutorials' own names,
    # such as 01-vector-add, are not importable); what they import comes from the installed Triton.
    sys.argv = [path]
    runpy.run_path(path, run_name="__main__")
    return 0


def run_pytest(path: str) -> int:
    import pytest
    # Isolated from any conftest/ini around the file (an upstream checkout's would set --device=cuda).
    args = [path, "-q", "-p", "no:cacheprovider", "--rootdir", os.path.dirname(path), "-c", os.devnull,
            "--confcutdir", os.path.dirname(path), "-W", "ignore::DeprecationWarning"]
    return int(pytest.main(args))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--phase", choices=("script", "pytest"), default="script")
    parser.add_argument("--benchmarks", choices=("skip", "shrink"), default="skip")
    parser.add_argument("--points", type=int, default=1)
    parser.add_argument("file")
    args = parser.parse_args(argv)
    patch_benchmarks(args.benchmarks, args.points)
    path = os.path.abspath(args.file)
    return run_script(path) if args.phase == "script" else run_pytest(path)


if __name__ == "__main__":
    sys.exit(main())
