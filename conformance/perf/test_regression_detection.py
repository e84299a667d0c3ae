"""The timing-regression machinery end to end, in subprocesses against temporary baselines.

A run of the real vector-add kernel records a baseline (``--benchmark-save``); a run of a purposely
slowed variant (same test name, 256x the work) with ``--benchmark-compare`` must be reported as a
regression at the default simulator threshold. No timing is asserted here beyond that mechanism.
The first run also shows the one line printed when a chip has no baseline; a baseline recorded on
another chip is refused.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from .baseline_plugin import BASELINES_ENV, CHART_DIR_ENV, bench_target, pytest_benchmark_compare_machine_info

CONFORMANCE = Path(__file__).resolve().parents[1]

PROBE = '''
import os

import torch
import triton

from perf import kernels, variants


def test_vector_add_probe(benchmark):
    n = 1 << 16
    x, y = torch.rand(n), torch.rand(n)
    out = torch.empty(n)
    slowed = os.environ.get("PROBE_SLOWED") == "1"
    kernel = variants.vector_add_kernel_slowed if slowed else kernels.vector_add_kernel
    grid = (triton.cdiv(n, 1024),)

    def run():
        kernel[grid](x, y, out, n, BLOCK=1024)
    run()
    torch.testing.assert_close(out, x + y, rtol=0, atol=0)
    benchmark.extra_info.update(case="vector_add_probe", label="vector_add probe", impl="triton-metal", gbps=0.0)
    benchmark(run)
'''


@pytest.fixture
def probe(tmp_path):
    from triton_metal.runtime import get_runtime
    if not get_runtime().simulated:
        pytest.skip("the probe kernels run on the simulator (torch CPU tensors)")
    (tmp_path / "test_probe.py").write_text(PROBE)
    # Without this run's xdist variables: pytest-benchmark turns itself off in a process that has them.
    outer = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env = dict(outer, PYTHONPATH=os.pathsep.join(filter(None, [str(CONFORMANCE), os.environ.get("PYTHONPATH")])),
               **{BASELINES_ENV: str(tmp_path / "baselines"), CHART_DIR_ENV: str(tmp_path / "charts")})

    def run(*args, slowed=False):
        cmd = [sys.executable, "-m", "pytest", str(tmp_path / "test_probe.py"), "-p", "perf.baseline_plugin",
               "-p", "no:cacheprovider", "--rootdir", str(tmp_path), "-q", "--benchmark-min-rounds=5",
               "--benchmark-max-time=0.2", *args]
        proc = subprocess.run(cmd, cwd=tmp_path, env=dict(env, PROBE_SLOWED="1" if slowed else "0"),
                              capture_output=True, text=True, timeout=600, check=False)
        return proc.returncode, proc.stdout + proc.stderr
    run.baselines = tmp_path / "baselines" / bench_target().chip_id
    return run


def test_slowed_kernel_is_reported_as_regression(probe):
    # First run: no baseline yet (one clear line says so), so it only records one.
    code, out = probe("--benchmark-enable", "--benchmark-compare", "--benchmark-save=normal")
    assert code == 0, out
    notes = [line for line in out.splitlines() if "no benchmark baseline for chip" in line]
    assert len(notes) == 1 and "--benchmark-save" in notes[0], out
    assert len(list(probe.baselines.glob("0001_normal.json"))) == 1, out
    # Second run: the slowed variant under the same test name, compared at the default threshold.
    code, out = probe("--benchmark-compare", slowed=True)
    assert code != 0, out
    assert "Performance has regressed" in out, out
    assert "test_vector_add_probe" in out and "Field 'min' has failed" in out, out


def test_baseline_from_another_chip_is_an_error():
    session = SimpleNamespace(storage="baselines/linux-x86_64-sim")
    stored = {"machine_info": {"triton_metal_chip": "apple-m2-pro-19c"}}
    with pytest.raises(pytest.UsageError, match="baseline chip mismatch.*'apple-m2-pro-19c'.*'linux-x86_64-sim'"):
        pytest_benchmark_compare_machine_info(None, session, {"triton_metal_chip": "linux-x86_64-sim"}, stored)
    # The same chip passes.
    pytest_benchmark_compare_machine_info(None, session, {"triton_metal_chip": "apple-m2-pro-19c"}, stored)
