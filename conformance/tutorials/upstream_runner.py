"""Runs the upstream Triton tutorials (python/tutorials/*.py at our pinned tag), unmodified.

Each tutorial runs in its own subprocess with our backend active: first as a script (its
module-level checks and main block), then, if it defines ``test_*`` functions, under pytest. Its
own checks decide; the verdict is pass, fail (with a short summary) or unsupported (our refusal).
Benchmark sweeps are skipped or shrunk through ``--benchmarks``, never by editing a file.

    python -m conformance.tutorials.upstream_runner [--tutorials-dir DIR] [--benchmarks skip|shrink]
        [--only 01,02] [--report out.json] [--update-expected]

The expected verdicts (``conformance/upstream/ratchet/<tag>/tutorials-<device>.json``) are a
ratchet: a tutorial that passed before and does not pass now fails the run. ``--update-expected``
rewrites that file from this run (or from a saved report with ``--update-expected-from``).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from triton_metal.metal_check import frontend, stage

from conformance.upstream import ratchet, source
from conformance.upstream.verdicts import PASS, classify

# Run by path, not with -m: the tutorial's process starts in a scratch directory (where its plots and
# CSVs land), and the bootstrap imports nothing of this package, so it needs no import path of ours.
BOOTSTRAP = Path(__file__).resolve().parents[1] / "upstream" / "tutorial_bootstrap.py"
DEFAULT_TIMEOUT_S = 900
# Address-space cap per tutorial process: one simulated tutorial (06 under pytest) grew to 24 GB and
# was OOM-killed, taking the machine with it. Past the cap it fails with MemoryError instead.
DEFAULT_MEMORY_LIMIT_GB = 8.0
OUTPUT_TAIL_CHARS = 4000


@dataclass
class TutorialResult:
    name: str
    verdict: str
    detail: str = ""
    seconds: float = 0.0
    phases: list[str] = field(default_factory=list)
    output_tail: str = ""


def tutorial_name(path: str | Path) -> str:
    return Path(path).stem


def defines_tests(path: Path) -> bool:
    return any(line.startswith("def test_") for line in path.read_text(errors="replace").splitlines())


def _memory_cap(limit_gb: float):
    def apply():
        import resource
        limit = int(limit_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return apply if limit_gb and limit_gb > 0 else None


def _run_phase(phase: str, path: Path, benchmarks: str, points: int, timeout_s: float, workdir: Path,
               memory_limit_gb: float = DEFAULT_MEMORY_LIMIT_GB):
    cmd = [sys.executable, str(BOOTSTRAP), "--phase", phase, "--benchmarks", benchmarks, "--points", str(points),
           str(path)]
    env = dict(os.environ, PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
    if frontend.available():  # every kernel of the tutorial also passes the Metal front-end check
        env.setdefault(stage.ENV_FLAG, "1")
    try:
        done = subprocess.run(cmd, check=False, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout_s,
                              errors="replace", preexec_fn=_memory_cap(memory_limit_gb))
        return done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"") + (exc.stderr or b"")
        return None, out.decode(errors="replace") if isinstance(out, bytes) else out


def run_tutorial(path: Path, benchmarks: str = "skip", points: int = 1, timeout_s: float = DEFAULT_TIMEOUT_S,
                 workdir: Path | None = None, memory_limit_gb: float = DEFAULT_MEMORY_LIMIT_GB) -> TutorialResult:
    """Run one tutorial (script phase, then its test_* functions if any) and classify the outcome."""
    path = Path(path).resolve()
    workdir = workdir or Path(os.environ.get("TMPDIR", "/tmp"))  # plots/CSVs a tutorial writes land here
    start = time.perf_counter()
    phases = ["script"] + (["pytest"] if defines_tests(path) else [])
    result = None
    for phase in phases:
        code, output = _run_phase(phase, path, benchmarks, points, timeout_s, workdir, memory_limit_gb)
        verdict = classify(code, output, timeout_s)
        result = TutorialResult(tutorial_name(path), verdict.verdict, verdict.detail, phases=phases,
                                output_tail=output[-OUTPUT_TAIL_CHARS:])
        if verdict.verdict != PASS:
            result.detail = f"[{phase}] {result.detail}"
            break
    result.seconds = round(time.perf_counter() - start, 1)
    return result


def summary_table(results: list[TutorialResult], expected: dict[str, str] | None = None) -> str:
    expected = expected or {}
    rows = [("tutorial", "verdict", "expected", "time", "detail")]
    rows += [(r.name, r.verdict, expected.get(r.name, "-"), f"{r.seconds:.1f}s", r.detail) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4] for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def report_dict(results, manifest, located, device, benchmarks) -> dict:
    return {"triton": manifest.tag, "ref": manifest.ref, "device": device, "origin": located.origin,
            "benchmarks": benchmarks, "results": [asdict(r) for r in results],
            "counts": {v: sum(r.verdict == v for r in results) for v in ("pass", "fail", "unsupported")}}


def expected_verdicts(tag: str, device: str) -> dict[str, str]:
    return ratchet.load(ratchet.ratchet_path("tutorials", tag, device)).get("tutorials", {})


def write_expected(results: list[TutorialResult], tag: str, device: str) -> Path:
    data = {"tutorials": {r.name: r.verdict for r in results},
            "details": {r.name: r.detail for r in results if r.detail}}
    return ratchet.save(ratchet.ratchet_path("tutorials", tag, device), data)


def unverified_lines(located) -> list[str]:
    return [f"{rel}: not the expected bytes for this tag (sha256 {source.sha256(path)[:12]}...); not run"
            for rel, path in located.mismatched.items()]


@dataclass
class PytestSession:
    """What the pytest integration (test_upstream_tutorials.py, conftest.py) shares across a session."""
    manifest: source.Manifest
    located: source.Located
    device: str
    expected: dict[str, str]
    results: list[TutorialResult] = field(default_factory=list)

    @classmethod
    def open(cls, config) -> PytestSession:
        session = getattr(config, "_triton_metal_upstream_tutorials", None)
        if session is None:
            manifest = source.load_manifest()
            located = source.locate(manifest, manifest.tutorials, config.getoption("--tutorials-dir"))
            device = ratchet.device_key()
            session = cls(manifest, located, device, expected_verdicts(manifest.tag, device))
            config._triton_metal_upstream_tutorials = session
        return session

    def default_report_path(self) -> Path:
        return Path(os.environ.get("TMPDIR", "/tmp")) / "triton-metal-upstream" / (
            f"tutorials-{self.manifest.tag}-{self.device}.json")


def add_pytest_options(parser) -> None:
    group = parser.getgroup("upstream tutorials", "the upstream Triton tutorials, run unmodified")
    group.addoption("--tutorials-dir", default=None,
                    help=f"directory with the upstream tutorials (or a triton checkout); else ${source.DIR_ENV}, "
                         "else the download cache")
    group.addoption("--upstream-benchmarks", choices=("skip", "shrink"), default="skip",
                    help="benchmark sweeps of the tutorials: skip them, or run their first point")
    group.addoption("--upstream-report", default=None,
                    help="JSON report of the tutorial verdicts (default: $TMPDIR/triton-metal-upstream/)")
    group.addoption("--upstream-timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per tutorial phase")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tutorials-dir", default=None, help=f"upstream tutorials (or checkout); else ${source.DIR_ENV}")
    parser.add_argument("--tag", default=None, help="Triton tag (default: the installed triton)")
    parser.add_argument("--benchmarks", choices=("skip", "shrink"), default="skip")
    parser.add_argument("--points", type=int, default=1, help="sweep points per benchmark with --benchmarks=shrink")
    parser.add_argument("--only", default="", help="comma-separated name prefixes, e.g. 01,02")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per tutorial phase")
    parser.add_argument("--memory-limit-gb", type=float, default=DEFAULT_MEMORY_LIMIT_GB,
                        help="address-space cap per tutorial process (0: none)")
    parser.add_argument("--report", default=None, help="write the JSON report here")
    parser.add_argument("--update-expected", action="store_true", help="rewrite the expected verdicts from this run")
    parser.add_argument("--update-expected-from", default=None, help="rewrite them from a saved JSON report")
    args = parser.parse_args(argv)

    manifest = source.load_manifest(args.tag)
    device = ratchet.device_key()
    if args.update_expected_from:
        report = json.loads(Path(args.update_expected_from).read_text())
        results = [TutorialResult(**r) for r in report["results"]]
        print(write_expected(results, report["triton"], report["device"]))
        return 0

    wanted = [t for t in manifest.tutorials if not args.only or tutorial_name(t).startswith(tuple(args.only.split(",")))]
    located = source.locate(manifest, wanted, args.tutorials_dir)
    if located.unavailable:
        print(f"upstream tutorials: {located.unavailable}")
        return 0
    print(f"upstream tutorials for Triton {manifest.tag} from {located.origin}, device {device}")
    for line in unverified_lines(located):
        print(f"  {line}")
    results = []
    for path in located.files.values():
        result = run_tutorial(path, args.benchmarks, args.points, args.timeout, memory_limit_gb=args.memory_limit_gb)
        print(f"  {result.name}: {result.verdict} ({result.seconds:.1f}s) {result.detail}", flush=True)
        results.append(result)

    expected = expected_verdicts(manifest.tag, device)
    print(summary_table(results, expected))
    report = report_dict(results, manifest, located, device, args.benchmarks)
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2) + "\n")
        print(f"report: {args.report}")
    if args.update_expected:
        print(f"expected verdicts rewritten: {write_expected(results, manifest.tag, device)}")
        return 0
    comparison = ratchet.compare_verdicts(expected, {r.name: r.verdict for r in results})
    if comparison.improvements:
        print(f"now passing (record with --update-expected): {', '.join(comparison.improvements)}")
    if comparison.regressions:
        print(f"REGRESSED (passed before, not now): {', '.join(comparison.regressions)}")
    return 1 if comparison.regressions or located.mismatched else 0


if __name__ == "__main__":
    sys.exit(main())
