"""Deterministic traffic check of every benchmarked kernel (simulator counters; runs in the Linux CI).

Compared exactly with baselines/traffic/<emulated chip>.json: see traffic.py. A kernel variant with
extra memory traffic must fail the check.
"""
from __future__ import annotations

import pytest
import torch
import triton

from conformance.perf import traffic, variants
from conformance.perf.cases import CASES, expect_refusal


def _count_traffic_available() -> bool:
    try:
        from triton_metal.sim import count_traffic  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def emulated_chip():
    from triton_metal.runtime import get_runtime
    runtime = get_runtime()
    if not runtime.capabilities.simulated:
        pytest.skip("traffic is counted by the Metal simulator: this check runs on the simulator (Linux CI)")
    if not _count_traffic_available():
        pytest.skip("triton_metal.sim.count_traffic (the simulator's traffic counters) is not available yet")
    return runtime.chip.id


@pytest.fixture(scope="module")
def stored(emulated_chip):
    return traffic.load(traffic.baseline_file(emulated_chip)).get("cases", {})


@pytest.fixture(scope="module")
def measure(emulated_chip, device):
    """Each case counted once per module (the instrumented build of a kernel takes a g++ run)."""
    cache = {}

    def get(case_name):
        if case_name not in cache:
            cache[case_name] = traffic.measure_case(case_name, device)
        return cache[case_name]
    return get


@pytest.mark.parametrize("case_name", list(CASES))
def test_traffic_matches_baseline(case_name, emulated_chip, stored, measure):
    if CASES[case_name].refused:
        expect_refusal(CASES[case_name].refused, lambda: measure(case_name))
        return
    measured = measure(case_name)
    if traffic.recording():
        traffic.record(traffic.baseline_file(emulated_chip), emulated_chip, case_name, measured)
        return
    assert case_name in stored, (f"no traffic baseline for {case_name} in {traffic.baseline_file(emulated_chip)}: "
                                 f"record it with {traffic.RECORD_HINT}")
    problems = traffic.compare(case_name, measured["launches"], stored[case_name]["launches"])
    assert not problems, "traffic differs from the baseline:\n" + "\n".join(problems) + (
        f"\nIf the change is intended, re-record with {traffic.RECORD_HINT}")


@pytest.mark.parametrize("case_name", list(CASES))
def test_traffic_at_least_ideal(case_name, measure):
    # Every input must be read and every output written at least once: the counters cannot report less.
    if CASES[case_name].refused:
        expect_refusal(CASES[case_name].refused, lambda: measure(case_name))
        return
    measured = measure(case_name)
    moved = sum(launch["global_bytes_read"] + launch["global_bytes_written"] for launch in measured["launches"])
    assert moved >= measured["ideal_global_bytes"]


def test_vector_add_traffic_is_exactly_ideal(measure):
    # Vector add reads x and y once and writes out once: 12 bytes per f32 element, no more.
    n = CASES["vector_add"].sizes["traffic"][0]
    measured = measure("vector_add")
    assert sum(launch["global_bytes_read"] for launch in measured["launches"]) == 8 * n
    assert sum(launch["global_bytes_written"] for launch in measured["launches"]) == 4 * n


def test_extra_traffic_variant_fails_the_check(emulated_chip, stored, device):
    assert "vector_add" in stored, f"no vector_add traffic baseline: record it with {traffic.RECORD_HINT}"
    n = CASES["vector_add"].sizes["traffic"][0]
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(n, generator=g), torch.rand(n, generator=g)
    xd, yd, out = x.to(device), y.to(device), torch.empty(n, device=device)

    def launch():
        variants.vector_add_kernel[(triton.cdiv(n, 1024),)](xd, yd, out, n, BLOCK=1024)
        return out
    measured = traffic.measure(launch, lambda: x + y)
    problems = traffic.compare("vector_add", measured, stored["vector_add"]["launches"])
    assert any("global_bytes_read" in p and "REGRESSION" in p for p in problems), problems
