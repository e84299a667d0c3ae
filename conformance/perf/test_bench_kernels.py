"""Benchmarks of the tutorial kernels, each beside its peers (torch; MLX where installed).

    tox -e bench                                     # time, compare with baselines/<chip-id>/, chart
    pytest conformance/perf --benchmark-compare      # the same without tox

In a plain run (``tox -e conformance``) only the Triton kernels run, once each, checked against
the CPU reference, and no benchmark tables are printed; peers and timing need a timing run
(see ``baseline_plugin.timing_requested``). The regression threshold gates the Triton kernels only.
``extra_info`` records the achieved GB/s (memory-bound cases) or TFLOP/s (matmul, attention) and,
on Apple GPUs, the fraction of the chip's published peak (FP32 peak only for f32 cases), and for
triton-metal's kernels the work counters of the case at its traffic size (barriers per program,
simdgroup_matrix operations, threadgroup memory, threadgroup bytes read per FMA: counted by the
simulator now, or read from the stored traffic baseline where nothing is counted), shown in the table.
"""
from __future__ import annotations

import pytest
import torch

from conformance.perf import traffic
from conformance.perf.baseline_plugin import BenchTarget, timing_requested
from conformance.perf.cases import CASES, expect_refusal, size_class
from conformance.perf.report import PEERS, TRITON


@pytest.fixture(scope="session")
def target(request) -> BenchTarget:
    from conformance.perf.baseline_plugin import bench_target
    return bench_target()


def _peak_fraction(target: BenchTarget, case_name: str, gbps: float, tflops: float | None) -> float | None:
    if target.simulated:
        return None
    if tflops is None:
        return gbps / target.dram_bandwidth_gbs if target.dram_bandwidth_gbs else None
    if case_name.endswith("f32") and target.fp32_tflops:
        return tflops / target.fp32_tflops
    return None  # no published f16 peak in the chip table


def _work_counters(case_name: str, device, target: BenchTarget) -> dict | None:
    """The case's work counters at its traffic size (tiny): counted on the simulator, else stored."""
    if target.simulated:
        measured = traffic.measure_case(case_name, device)
        return {**traffic.work_summary(measured["launches"], measured["fmas"]), "source": "counted"}
    from triton_metal.runtime import get_runtime
    chip = getattr(getattr(get_runtime(), "chip", None), "id", None)
    stored = chip and traffic.stored_work_summary(chip, case_name)
    return {**stored, "source": "stored"} if stored else None


@pytest.mark.parametrize("impl", (TRITON, *PEERS))
@pytest.mark.parametrize("case_name", list(CASES))
def test_benchmark(case_name, impl, benchmark, device, target, request):
    timing = timing_requested(request.config)
    if impl != TRITON and not timing:
        pytest.skip("peers are measured only in timing runs (tox -e bench, or --benchmark-enable)")
    if impl == "mlx":
        pytest.importorskip("mlx.core", reason="MLX is not installed: pip install 'triton-metal[mlx]'")
    workload = CASES[case_name].workload(device, size_class())
    if impl == TRITON and CASES[case_name].refused:
        expect_refusal(CASES[case_name].refused, workload.launch)
        return
    if impl == TRITON:
        run = workload.launch
        # A checking run (tox -e conformance): one round, its output checked, its time not shown.
        output = run() if timing else benchmark.pedantic(run, rounds=1, iterations=1)
        torch.testing.assert_close(output.cpu(), workload.reference(), rtol=workload.rtol, atol=workload.atol)
        if not timing:
            return  # checked; nothing is timed
        benchmark.extra_info["work"] = _work_counters(case_name, device, target)
    else:
        run = workload.peers[impl]()
    benchmark.group = workload.label
    benchmark.extra_info.update(case=case_name, label=workload.label, impl=impl, chip=target.chip_id,
                                simulated=target.simulated)
    benchmark(run)
    if benchmark.stats is None:  # --benchmark-disable: ran once, nothing measured
        return
    seconds = benchmark.stats.stats.min
    gbps = workload.ideal_bytes / seconds / 1e9
    tflops = workload.flops / seconds / 1e12 if workload.flops else None
    benchmark.extra_info.update(gbps=gbps, tflops=tflops,
                                peak_fraction=_peak_fraction(target, case_name, gbps, tflops))
