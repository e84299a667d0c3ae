"""pytest plugin: per-chip pytest-benchmark baselines, the peer-ratio table and the run's chart.

* Storage: pytest-benchmark's storage is pointed at ``baselines/<chip-id>/`` (flat: no per-Python
  subfolder), so ``--benchmark-compare`` compares with the latest run stored for this chip and
  ``--benchmark-save=<label>`` records one. ``--benchmark-storage`` given explicitly still wins;
  ``TRITON_METAL_BASELINES_DIR`` moves the root (the tests use it for temporary baselines).
* Chip id: an Apple GPU with its core count (``apple-m2-pro-19c``); a simulator run is the host's
  OS, architecture and CPU model (``linux-x86_64-sim-intel-xeon-processor``): simulator times are
  the CPU's, so a baseline recorded on one CPU says nothing about another.
* ``machine_info`` carries the chip id; a stored run from another chip is an error, not a warning.
* Threshold: with ``--benchmark-compare`` and no ``--benchmark-compare-fail``, the documented
  default of the device class applies (``COMPARE_FAIL_DEFAULTS``). It gates triton-metal's own
  kernels only: the peers (torch, MLX) are measured and shown beside them, never gated.
* No baseline for this chip: one line says so and how to record one; the run still reports.
* Summary: a table of each case's time, its baseline, and its speed relative to the peers measured
  in the same run; with matplotlib installed, a PNG chart whose path is the last line printed.

Timing runs are opted into (``--benchmark-enable``, ``--benchmark-only``, ``--benchmark-compare``,
``--benchmark-save``/``--benchmark-autosave``/``--benchmark-json``); otherwise the benchmark tests
only check their kernels once (see ``timing_requested``), which keeps ``tox -e conformance`` fast,
and pytest-benchmark prints no tables (the timings it still takes, test_sim_vs_interpreter's, are
that test's own check).
"""
from __future__ import annotations

import datetime
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import pytest

from conformance.perf.report import PEERS

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STORAGE = "file://./.benchmarks"  # pytest-benchmark's own default: means "not chosen by the user"
BASELINES_ENV = "TRITON_METAL_BASELINES_DIR"
CHART_DIR_ENV = "TRITON_METAL_BENCH_CHART_DIR"

# Regression thresholds on the minimum time, per device class (pytest-benchmark's --benchmark-compare-fail
# syntax). The simulator shares a 2-core machine with everything else running on it: we measured the best
# time of the same simulator kernel swing 2-5x between quiet and loaded moments (load average 3 vs 12-18),
# so only a >5x slowdown is a signal there; the deterministic traffic check (test_traffic.py) is the fine
# guard on Linux. Apple GPUs vary with thermal state (peers report 20-35% throttling on long runs; the
# minimum over many rounds is far steadier than that).
COMPARE_FAIL_DEFAULTS = {"simulator": "min:400%", "apple": "min:20%"}

RECORD_HINT = "tox -e bench -- --benchmark-save=<label>"


@dataclass(frozen=True)
class BenchTarget:
    chip_id: str                    # baseline folder: linux-x86_64-sim-<cpu>, apple-m2-pro-19c, ...
    simulated: bool
    emulated_chip: str | None       # the Apple chip the simulator emulates
    gpu_cores: int | None
    dram_bandwidth_gbs: float | None
    fp32_tflops: float | None
    host_cpu: str | None = None     # the CPU model running the simulator (what its times measure)

    @property
    def device_class(self) -> str:
        return "simulator" if self.simulated else "apple"


def bench_target() -> BenchTarget:
    import triton  # noqa: F401  (first: importing triton_metal.runtime before triton is a circular import)
    from triton_metal.runtime import get_runtime
    from triton_metal.runtime.chips import ChipIdentity, host_cpu_model, simulator_baseline_id
    runtime = get_runtime()
    if runtime.capabilities.simulated:
        cpu = host_cpu_model()
        return BenchTarget(simulator_baseline_id(cpu=cpu), True, runtime.chip.id, None, None, None, cpu)
    # The Metal runtime identified the chip (Metal device name / sysctl, IORegistry GPU core count).
    identity = ChipIdentity(runtime.chip.id, runtime.capabilities.gpu_cores)
    config = identity.config
    return BenchTarget(identity.baseline_id, False, None, identity.gpu_cores,
                       config.dram_bandwidth_gbs if config else None, config.fp32_tflops if config else None)


def baselines_root() -> Path:
    return Path(os.environ.get(BASELINES_ENV) or REPO_ROOT / "baselines")


def baseline_dir(target: BenchTarget) -> Path:
    return baselines_root() / target.chip_id


def stored_runs(folder: Path) -> list[Path]:
    return sorted(folder.glob("[0-9][0-9][0-9][0-9]_*.json")) if folder.is_dir() else []


def timing_requested(config) -> bool:
    """Whether this run measures times (otherwise benchmark tests only check their kernels once)."""
    opt = config.option
    return bool(getattr(opt, "benchmark_enable", False) or getattr(opt, "benchmark_only", False)
                or getattr(opt, "benchmark_compare", None) or getattr(opt, "benchmark_save", None)
                or getattr(opt, "benchmark_autosave", False) or getattr(opt, "benchmark_json", None))


# --- storage and comparison -------------------------------------------------------------------

_TARGET = pytest.StashKey[BenchTarget]()
_NOTES = pytest.StashKey[list]()


_OWN_STORAGE = pytest.StashKey[bool]()


def _user_chose_storage(config) -> bool:
    return config.getoption("benchmark_storage", DEFAULT_STORAGE) != DEFAULT_STORAGE


_PENDING = pytest.StashKey[object]()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    if not hasattr(config.option, "benchmark_storage"):  # pytest-benchmark not installed: nothing to do
        return
    target = config.stash[_TARGET] = bench_target()
    config.stash[_NOTES] = []
    config.stash[_OWN_STORAGE] = not _user_chose_storage(config)
    if not timing_requested(config):
        return  # a checking run (tox -e conformance): nothing to compare, no tables (pytest_terminal_summary)
    if hasattr(config, "_benchmarksession"):
        # Loaded late (``pytest conformance``): pytest-benchmark's session exists, point it at our folder now.
        _attach(config, target, config.option.benchmark_compare)
        return
    # Loaded first (``pytest conformance/perf``): pytest-benchmark starts on our folder and compares
    # only once the storage is final, at session start (so no warning about its default folder).
    if config.stash[_OWN_STORAGE]:
        config.option.benchmark_storage = f"file://{baseline_dir(target)}"
    config.stash[_PENDING] = config.option.benchmark_compare
    config.option.benchmark_compare = []


def pytest_sessionstart(session):
    config = session.config
    if _PENDING in config.stash:
        config.option.benchmark_compare = config.stash[_PENDING]
        del config.stash[_PENDING]
        _attach(config, config.stash[_TARGET], config.option.benchmark_compare)


def _attach(config, target: BenchTarget, requested_compare) -> None:
    from pytest_benchmark.storage.file import FileStorage
    bs = config._benchmarksession
    if config.stash[_OWN_STORAGE]:
        bs.storage = FileStorage(baseline_dir(target), logger=bs.logger, default_machine_id=None)
    bs.compare = requested_compare
    if not requested_compare:
        bs.compared_mapping = {}
        return
    if isinstance(bs.storage, FileStorage) and not list(bs.storage.load()):
        config.stash[_NOTES].append(
            f"no benchmark baseline for chip {target.chip_id} in {bs.storage.path}: nothing to compare with; "
            f"record one on this machine with `{RECORD_HINT}`")
        bs.compare, bs.compare_fail, bs.compared_mapping = [], None, {}
        return
    if not bs.compare_fail:
        from pytest_benchmark.utils import parse_compare_fail
        default = COMPARE_FAIL_DEFAULTS[target.device_class]
        bs.compare_fail = [parse_compare_fail(default)]
        config.stash[_NOTES].append(f"regression threshold: {default} ({target.device_class} default; "
                                    "override with --benchmark-compare-fail)")
    bs.compare_fail = [OwnKernelsOnly(check) for check in bs.compare_fail]
    config.stash[_NOTES].append(f"the regression threshold gates triton-metal's kernels only; the peers "
                                f"({', '.join(PEERS)}) are measured and shown, not gated")
    bs.handle_loading()


class OwnKernelsOnly:
    """A ``--benchmark-compare-fail`` check applied to triton-metal's kernels only. A peer's time (torch's
    CPU fp16 matmul, MLX) is the peer's business: shown beside ours, never a reason to fail."""

    def __init__(self, check):
        self.check = check

    def fails(self, current, compared):
        if current.extra_info.get("impl") in PEERS:
            return None
        return self.check.fails(current, compared)


@pytest.hookimpl(tryfirst=True)
def pytest_benchmark_generate_machine_info(config):
    # Compact on purpose: pytest-benchmark warns about every difference from the stored run.
    import cpuinfo
    target = config.stash[_TARGET]
    return {
        "triton_metal_chip": target.chip_id,
        "simulated": target.simulated,
        "emulated_chip": target.emulated_chip,
        "gpu_cores": target.gpu_cores,
        "system": platform.system(),
        "machine": platform.machine(),
        # The simulator's id is made from this very string; on a GPU, the host CPU as py-cpuinfo names it.
        "cpu": target.host_cpu or (cpuinfo.get_cpu_info() or {}).get("brand_raw", platform.processor()),
        "python_version": platform.python_version(),
    }


def pytest_benchmark_compare_machine_info(config, benchmarksession, machine_info, compared_benchmark):
    stored = compared_benchmark["machine_info"].get("triton_metal_chip")
    if stored != machine_info.get("triton_metal_chip"):
        raise pytest.UsageError(
            f"benchmark baseline chip mismatch: the stored run in {benchmarksession.storage} was recorded on "
            f"{stored!r}, this machine is {machine_info.get('triton_metal_chip')!r}. Compare only with a "
            f"baseline of this chip (baselines/<chip-id>/), or record one with `{RECORD_HINT}`.")


def pytest_report_header(config):
    if _TARGET not in config.stash:
        return None
    target = config.stash[_TARGET]
    kind = (f"simulator emulating {target.emulated_chip} on {target.host_cpu}" if target.simulated
            else "Apple GPU")
    runs = stored_runs(baseline_dir(target))
    return (f"triton-metal benchmarks: chip {target.chip_id} ({kind}); baselines: {baseline_dir(target)} "
            f"({len(runs)} stored run{'s' if len(runs) != 1 else ''})")


# --- summary: peer ratios and chart -------------------------------------------------------------

@pytest.hookimpl(wrapper=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    # pytest-benchmark raises PerformanceRegression from its own summary: print ours either way.
    bs = getattr(config, "_benchmarksession", None)
    if bs is not None and not timing_requested(config):
        bs.groups = None  # a checking run: pytest-benchmark's tables (one round per kernel) say nothing
    try:
        return (yield)
    finally:
        _summarise(terminalreporter, config)


def _summarise(tr, config) -> None:
    if _TARGET not in config.stash:
        return
    target = config.stash[_TARGET]
    for note in config.stash[_NOTES]:
        tr.write_line(f"triton-metal benchmarks: {note}", yellow=True)
    bs = getattr(config, "_benchmarksession", None)
    if bs is None or bs.disabled or not timing_requested(config):
        return
    rows = collect_rows(bs)
    if not rows:
        return
    from conformance.perf.report import chart_path, format_table, write_chart
    label = f"{target.chip_id} ({'simulator' if target.simulated else 'Apple GPU'})"
    tr.write_sep("-", f"triton-metal vs peers, {label}")
    for line in format_table(rows):
        tr.write_line(line)
    tr.write_line("speed vs peer = peer time / triton-metal time (min of rounds; >1: triton-metal is faster). "
                  "Simulator times measure the CPU simulator, not an Apple GPU.")
    path = chart_path(Path(os.environ.get(CHART_DIR_ENV) or REPO_ROOT / "build" / "bench"), target.chip_id,
                      datetime.datetime.now())
    try:
        write_chart(rows, path, title=f"triton-metal benchmarks, {label}")
    except ImportError:
        tr.write_line("no chart: matplotlib is not installed (tox -e bench installs it)")
        return
    tr.write_line(f"benchmark chart: {path}", bold=True)


def collect_rows(bs) -> list[dict]:
    """One dict per benchmark of this run: case, impl, min time, its baseline min time (if compared)."""
    baseline = {}
    for mapping in (bs.compared_mapping or {}).values():
        for fullname, bench in mapping.items():
            baseline[fullname] = bench["stats"]["min"]
    rows = []
    for bench in bs.benchmarks:
        if not bench or bench.has_error or not bench.extra_info.get("case"):
            continue
        rows.append({**bench.extra_info, "fullname": bench.fullname, "min": bench.stats.min,
                     "baseline_min": baseline.get(bench.fullname)})
    return rows
