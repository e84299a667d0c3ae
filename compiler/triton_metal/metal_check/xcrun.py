"""``python -m triton_metal.metal_check.xcrun DIR``: compile every kernel the test suites produced
with Apple's own compiler (macOS with Xcode or the command line tools), failing on any error.

The kernels are the files the front-end check copies to ``TRITON_METAL_FRONTEND_CHECK_DIR``
(stage.py): ``DIR/<MSL version>/<kernel>-<sha>.metal``, each compiled with
``xcrun -sdk macosx metal -std=metal<version> -c``; a file elsewhere is compiled as MSL 3.1.
This is the ground truth the Linux check models: a kernel that fails here and passed there is a
gap in include/metal_stdlib.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

DEFAULT_VERSION = "3.1"


@dataclass(frozen=True)
class Result:
    path: Path
    command: tuple
    returncode: int
    output: str


def language_version(path: Path) -> str:
    return path.parent.name if re.fullmatch(r"\d+\.\d+", path.parent.name) else DEFAULT_VERSION


def command(path: Path, output: Path, sdk: str = "macosx") -> list:
    return ["xcrun", "-sdk", sdk, "metal", f"-std=metal{language_version(path)}", "-c", str(path), "-o", str(output)]


def compile_all(directory, sdk: str = "macosx", jobs: int | None = None, run=None) -> list:
    """A Result per .metal file under ``directory``; ``run`` is subprocess.run (a fake in tests)."""
    run = run or subprocess.run
    files = sorted(Path(directory).rglob("*.metal"))

    def one(path: Path) -> Result:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = command(path, Path(tmp) / (path.stem + ".air"), sdk)
            done = run(cmd, capture_output=True, text=True)
            return Result(path, tuple(cmd), done.returncode, (done.stdout or "") + (done.stderr or ""))

    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
        return list(pool.map(one, files))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m triton_metal.metal_check.xcrun", description=__doc__.split("\n\n")[0])
    parser.add_argument("directory")
    parser.add_argument("--sdk", default="macosx")
    parser.add_argument("--jobs", type=int, default=None)
    args = parser.parse_args(argv)
    results = compile_all(args.directory, args.sdk, args.jobs)
    failed = [r for r in results if r.returncode != 0]
    for r in failed:
        print(f"FAILED {r.path}\n  {' '.join(r.command)}\n{r.output}")
    warned = [r for r in results if r.returncode == 0 and "warning:" in r.output]
    for r in warned:
        print(f"warnings in {r.path}:\n{r.output}")
    print(f"Apple's Metal compiler: {len(results)} kernels compiled, {len(failed)} failed, "
          f"{len(warned)} with warnings")
    if not results:
        print(f"no .metal files under {args.directory}: was TRITON_METAL_FRONTEND_CHECK_DIR set for the tests?")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
