"""``python -m triton_metal.metal_check PATH...``: the front-end check over .msl/.metal files or
directories of them (recursively). Exit status 1 if any file has an error.

Each file is checked as the runtimes see it (``--runtimes``, the default: the MSL itself, torch's
ASCII text, and the MLX source), with the kernel name taken from ``kernel void NAME(``.
``--summary`` groups the errors by kind, with a count and one example each.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from triton_metal.metal_check import frontend
from triton_metal.metal_check.runtime_texts import check_kernel_texts

_KERNEL_NAME = re.compile(r"\bkernel\s+void\s+(\w+)\s*\(")
_SUFFIXES = (".msl", ".metal")


def kernel_files(paths) -> list:
    files = []
    for p in map(Path, paths):
        files += sorted(f for f in p.rglob("*") if f.suffix in _SUFFIXES) if p.is_dir() else [p]
    return files


def category(message: str) -> str:
    """An error message with the names of one kernel taken out, to group equal errors."""
    text = re.sub(r"'[A-Za-z_]\w*' has type", "'<name>' has type", message)
    text = re.sub(r"parameter '\w+'", "parameter '<name>'", text)
    text = re.sub(r"recursive call \([^)]*\)", "recursive call (...)", text)
    text = re.sub(r"\b\d+\b", "N", text)
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m triton_metal.metal_check",
                                     description="The Metal front-end check over .msl/.metal files or directories.")
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--msl-version", default=frontend.DEFAULT_MSL_VERSION, choices=sorted(frontend.MSL_VERSIONS))
    parser.add_argument("--metal-only", action="store_true", help="check the MSL text only, not the runtimes' texts")
    parser.add_argument("--summary", action="store_true", help="group errors by kind: count and one example each")
    parser.add_argument("--quiet", action="store_true", help="no per-file errors")
    args = parser.parse_args(argv)
    if not frontend.available():
        print("the Metal front-end check needs libclang: pip install libclang", file=sys.stderr)
        return 2
    files = kernel_files(args.paths)
    failed, kinds, examples, kernels_per_kind = 0, Counter(), {}, defaultdict(set)
    start = time.perf_counter()
    for path in files:
        msl = path.read_text()
        m = _KERNEL_NAME.search(msl)
        name = m.group(1) if m else None
        if args.metal_only or name is None:
            diagnostics = frontend.check_msl(msl, name, args.msl_version)
        else:
            diagnostics = check_kernel_texts(msl, name, args.msl_version)
        errors = frontend.errors_of(diagnostics)
        if errors:
            failed += 1
        for d in errors:
            key = f"[{d.variant}] {category(d.message)}"
            kinds[key] += 1
            kernels_per_kind[key].add(str(path))
            examples.setdefault(key, (path, d))
            if not args.quiet:
                print(f"{path}:{d.line}: [{d.variant}] {d.render()}")
    elapsed = time.perf_counter() - start
    if args.summary:
        print(f"\n{len(kinds)} kinds of error:")
        for key, count in kinds.most_common():
            path, d = examples[key]
            print(f"\n{count} x ({len(kernels_per_kind[key])} kernels) {key}\n  e.g. {path}:{d.line}: "
                  f"{d.msl_text.strip()}\n  kernel source: {d.source or '-'}")
    print(f"\nMetal front-end check (MSL {args.msl_version}): {len(files)} files, {failed} failed, "
          f"{elapsed / max(len(files), 1) * 1e3:.0f} ms per file")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
