"""The end-of-run summary (summary_plugin.py): suites, op-table coverage, reports; and a checking run
prints no pytest-benchmark tables."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from conformance import summary_plugin as sp

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path, suite", [
    ("conformance/ops/test_op_table.py", "op table"),
    ("conformance/ops/test_fuzz.py", "fuzz"),
    ("conformance/ops/test_scalars.py", "op tests"),
    ("conformance/ops/test_compatibility_doc.py", "unit (harness)"),
    ("conformance/tutorials/test_01_vector_add.py", "tutorial ports"),
    ("conformance/tutorials/test_upstream_tutorials.py", "upstream tutorials"),
    ("conformance/tutorials/test_upstream_runner.py", "unit (harness)"),
    ("conformance/upstream/test_skips.py", "unit (harness)"),
    ("conformance/perf/test_traffic.py", "traffic"),
    ("conformance/perf/test_bench_kernels.py", "benchmark kernels"),
    ("conformance/perf/test_chips.py", "unit (harness)"),
    ("compiler/tests/tools/test_hardware.py", "unit (compiler/tests)"),
    ("conformance/stress/test_new.py", "other"),
])
def test_suite_of_each_test_file(path, suite):
    assert sp.suite_of(path) == suite


def _report(when, outcome, wasxfail=None):
    report = SimpleNamespace(when=when, outcome=outcome, passed=outcome == "passed", failed=outcome == "failed",
                             skipped=outcome == "skipped")
    if wasxfail is not None:
        report.wasxfail = wasxfail
    return report


@pytest.mark.parametrize("report, outcome", [
    (_report("setup", "passed"), None),
    (_report("call", "passed"), "passed"),
    (_report("call", "failed"), "failed"),
    (_report("setup", "skipped"), "skipped"),
    (_report("setup", "failed"), "error"),
    (_report("teardown", "failed"), "error"),
    (_report("call", "skipped", wasxfail="not yet"), "xfailed"),
    (_report("call", "passed", wasxfail="not yet"), "xpassed"),
])
def test_outcome_of_a_report_counts_as_pytest_does(report, outcome):
    assert sp.outcome_of(report) == outcome


def test_op_table_coverage_separates_passing_refused_and_failing():
    # add (+) is refused for f64 only (ops/table.py: Apple GPUs have no fp64).
    node = "conformance/ops/test_op_table.py::test_op[{}]".format
    outcomes = {node("add (+)-f32"): "passed", node("add (+)-f64"): "passed", node("add (+)-i8"): "failed",
                node("add (+)-u8"): "skipped", "conformance/ops/test_scalars.py::test_x": "failed"}
    coverage = sp.op_table_coverage(outcomes)
    assert {k: coverage[k] for k in ("ops", "pairs", "pairs_passing", "pairs_refused", "pairs_failing",
                                     "pairs_skipped")} == {"ops": 1, "pairs": 4, "pairs_passing": 1,
                                                           "pairs_refused": 1, "pairs_failing": 1, "pairs_skipped": 1}
    assert sp.op_table_coverage({"conformance/ops/test_scalars.py::test_x": "passed"}) is None


def test_unit_suite_counts_from_junit_xml(tmp_path):
    path = tmp_path / "unit.xml"
    path.write_text('<?xml version="1.0"?><testsuites><testsuite name="pytest" tests="10" failures="2" errors="1" '
                    'skipped="3"></testsuite></testsuites>')
    counts = sp.unit_suite(path, time.time() + 120)
    assert (counts["passed"], counts["failed"], counts["error"], counts["skipped"]) == (4, 2, 1, 3)
    assert 119 <= counts["age_s"] <= 121 and sp.unit_suite(tmp_path / "missing.xml", time.time()) is None


def test_report_of_another_run_is_not_read(tmp_path):
    path = tmp_path / "metal_check.json"
    path.write_text('{"kernels_checked": 3, "failed": 0}')
    assert sp.read_json(path, not_before=path.stat().st_mtime) == {"kernels_checked": 3, "failed": 0}
    assert sp.read_json(path, not_before=path.stat().st_mtime + 1) is None  # written before this session


@pytest.fixture(scope="module")
def checking_run(tmp_path_factory):
    """A small conformance run in a subprocess: two op-table pairs (one refused) and the vector-add benchmark
    kernel, as `tox -e conformance` runs them (no timing)."""
    reports = tmp_path_factory.mktemp("conformance-reports")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "TRITON_METAL_FRONTEND"))}
    tests = [f"conformance/ops/test_op_table.py::test_op[add (+)-{dtype}]" for dtype in ("f32", "f64")]
    tests += [f"conformance/perf/test_bench_kernels.py::test_benchmark[vector_add-{impl}]"
              for impl in ("triton-metal", "torch", "mlx")]
    cmd = [sys.executable, "-m", "pytest", *tests, "-p", "no:cacheprovider", "-q", f"--conformance-report-dir={reports}"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False)
    return proc, reports


def test_summary_ends_the_run(checking_run):
    proc, reports = checking_run
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    summary = out[out.index("triton-metal conformance summary"):]
    assert "result: PASSED (exit status 0) on " in summary
    assert "op table coverage: 1 ops, 2 (op, dtype) pairs (of " in summary
    assert ": 1 pass, 1 refused as documented, 0 fail" in summary
    assert f"JUnit XML {reports / 'junit.xml'}" in summary and "Metal front-end check:" in summary


def test_summary_json_matches_the_run(checking_run):
    _, reports = checking_run
    data = json.loads((reports / "summary.json").read_text())
    assert data["suites"]["op table"] == {"passed": 2, "failed": 0, "error": 0, "skipped": 0, "xfailed": 0,
                                          "xpassed": 0}
    # The Triton kernel runs and is checked; the peers (torch, mlx) are skipped in a checking run.
    assert data["suites"]["benchmark kernels"]["passed"] == 1 and data["suites"]["benchmark kernels"]["skipped"] == 2
    assert data["device"]["chip"] and data["failed_tests"] == []
    assert (reports / "junit.xml").exists() and (reports / "summary.md").read_text().startswith("## ")


def test_checking_run_prints_no_benchmark_tables(checking_run):
    proc, _ = checking_run
    assert "Name (time in" not in proc.stdout and "benchmark '" not in proc.stdout, proc.stdout


def test_benchmark_timing_run_is_not_summarised():
    # tox -e bench runs after the conformance suite in the apple-silicon workflow: it must leave its reports.
    registered = []
    config = SimpleNamespace(option=SimpleNamespace(xmlpath=None, collectonly=False, benchmark_only=True),
                             pluginmanager=SimpleNamespace(register=lambda *args: registered.append(args)))
    sp.pytest_configure(config)
    assert registered == [] and config.option.xmlpath is None
