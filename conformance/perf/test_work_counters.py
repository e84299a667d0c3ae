"""The work counters in the traffic check and the benchmark table (conformance/perf/traffic.py, report.py), and
the expected refusals of benchmark cases (cases.expect_refusal). Pure Python: no kernel runs."""
from __future__ import annotations

import pytest

from conformance.perf import traffic
from conformance.perf.cases import ExpectedRefusal, expect_refusal
from conformance.perf.report import WORK_HEADER, format_table


def _launch(**work) -> dict:
    record = {"kernel": "k", **{metric: 0 for metric in traffic.METRICS}, "coalescing_efficiency": 1.0,
              "threadgroup_bytes_read_per_fma": None}
    record.update(work)
    return record


def test_work_summary_sums_dispatches_and_weighs_bytes_per_fma_by_fmas():
    launches = [_launch(barriers_per_program=3.0, simdgroup_matrix_loads=10, simdgroup_matrix_stores=2,
                        simdgroup_matrix_multiply_accumulates=4, fmas=2048, threadgroup_bytes_read_per_fma=0.5,
                        threadgroup_memory_bytes=8192),
                _launch(barriers_per_program=1.0, simdgroup_matrix_multiply_accumulates=12, fmas=6144,
                        threadgroup_bytes_read_per_fma=1.0, threadgroup_memory_bytes=4096)]
    work = traffic.work_summary(launches)
    assert work["barriers_per_program"] == 4.0
    assert (work["simdgroup_matrix_loads"], work["simdgroup_matrix_stores"],
            work["simdgroup_matrix_multiply_accumulates"]) == (10, 2, 16)
    assert work["threadgroup_memory_bytes"] == 8192  # the largest, not the sum: dispatches do not overlap
    assert work["threadgroup_bytes_read_per_fma"] == pytest.approx((0.5 * 2048 + 1.0 * 6144) / 8192)


def test_work_summary_without_fmas_has_no_ratio():
    assert traffic.work_summary([_launch(barriers_per_program=2.0)])["threadgroup_bytes_read_per_fma"] is None


def test_compare_flags_more_barriers_as_a_regression():
    problems = traffic.compare("c", [_launch(barriers_per_program=5.0)], [_launch(barriers_per_program=4.0)])
    assert len(problems) == 1 and "barriers_per_program 4.0 -> 5.0" in problems[0] and "REGRESSION" in problems[0]


def test_compare_reports_a_ratio_that_appears_or_a_missing_field():
    now = _launch(threadgroup_bytes_read_per_fma=0.5, fmas=512)
    problems = traffic.compare("c", [now], [_launch(fmas=512)])
    assert problems == [("c dispatch 0 (k): threadgroup_bytes_read_per_fma None -> 0.5: the access pattern or the "
                        "work changed")]
    old = {k: v for k, v in _launch().items() if k != "threadgroup_memory_bytes"}
    assert traffic.compare("c", [_launch()], [old]) == [
        "c dispatch 0 (k): threadgroup_memory_bytes = 0 has no baseline value"]


def test_table_shows_the_work_counters_beside_the_timings():
    work = {"barriers_per_program": 18.0, "simdgroup_matrix_loads": 1152, "simdgroup_matrix_stores": 128,
            "simdgroup_matrix_multiply_accumulates": 512, "threadgroup_memory_bytes": 8192,
            "threadgroup_bytes_read_per_fma": 0.78125}
    rows = [{"label": "matmul 64x64x64 f16", "impl": "triton-metal", "min": 0.002, "gbps": 1.0, "work": work},
            {"label": "softmax 4x4 f32", "impl": "triton-metal", "min": 0.001, "gbps": 1.0}]
    header, matmul, softmax = format_table(rows)
    assert all(column in header for column in WORK_HEADER)
    assert matmul.split()[-5:] == ["18", "1152/128/512", "8.0", "KiB", "0.781"]
    assert softmax.split()[-4:] == ["-", "-", "-", "-"]


REFUSAL = ExpectedRefusal("ValueError", "too big", "an example")


def test_expected_refusal_passes_while_refused():
    def refused():
        raise ValueError("tile too big for threadgroup memory")
    expect_refusal(REFUSAL, refused)


def test_expected_refusal_fails_once_the_case_runs():
    with pytest.raises(pytest.fail.Exception, match="remove its `refused` entry"):
        expect_refusal(REFUSAL, lambda: None)


def test_expected_refusal_lets_another_error_through():
    def broken():
        raise ValueError("something else")
    with pytest.raises(ValueError, match="something else"):
        expect_refusal(REFUSAL, broken)


def test_bytes_per_fma_of_the_workload_counts_dots_on_scalar_fmas_too():
    # A dot lowered to scalar FMAs has no simdgroup-matrix FMA to divide by; the workload's M*N*K still is.
    launches = [_launch(threadgroup_bytes_read=4096), _launch(threadgroup_bytes_read=1024)]
    assert traffic.work_summary(launches)["threadgroup_bytes_read_per_fma"] is None
    assert traffic.work_summary(launches, workload_fmas=64 ** 3)["threadgroup_bytes_read_per_fma"] == 5120 / 64 ** 3
