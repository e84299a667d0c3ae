"""The timing-regression machinery end to end, in subprocesses against temporary baselines.

A run of the real vector-add kernel and of a peer (torch's add) records a baseline
(``--benchmark-save``); a run of a purposely slowed variant of our kernel (same test name, 256x the
work) with ``--benchmark-compare`` must be reported as a regression at the default simulator
threshold, while a peer slowed by a forced sleep is shown but never fails the run. A run under
another host CPU has no baseline: one line says how to record one and the run passes. No timing is
asserted here beyond that mechanism. A baseline recorded on another chip is refused.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from triton_metal.runtime.chips import HOST_CPU_ENV, simulator_baseline_id

from conformance.perf.baseline_plugin import (
    BASELINES_ENV,
    CHART_DIR_ENV,
    bench_target,
    pytest_benchmark_compare_machine_info,
)

REPO = Path(__file__).resolve().parents[2]

PROBE = '''
import os
import time

import torch
import triton

from conformance.perf import kernels, variants

N = 1 << 16
x, y = torch.rand(N), torch.rand(N)
out = torch.empty(N)


def test_vector_add_probe(benchmark):
    slowed = os.environ.get("PROBE_SLOWED") == "1"
    kernel = variants.vector_add_kernel_slowed if slowed else kernels.vector_add_kernel
    grid = (triton.cdiv(N, 1024),)

    def run():
        kernel[grid](x, y, out, N, BLOCK=1024)
    run()
    torch.testing.assert_close(out, x + y, rtol=0, atol=0)
    benchmark.extra_info.update(case="vector_add_probe", label="vector_add probe", impl="triton-metal", gbps=0.0)
    benchmark(run)


def test_peer_probe(benchmark):
    # torch's add as the peer; PEER_SLOWED forces a 20 ms sleep per call (~1000x its time), as a busy
    # or different host would slow a peer.
    pause = 0.02 if os.environ.get("PEER_SLOWED") == "1" else 0.0

    def run():
        if pause:
            time.sleep(pause)
        torch.add(x, y, out=out)
    benchmark.extra_info.update(case="vector_add_probe", label="vector_add probe", impl="torch", gbps=0.0)
    benchmark(run)
'''


@pytest.fixture
def probe(tmp_path):
    from triton_metal.runtime import get_runtime
    if not get_runtime().capabilities.simulated:
        pytest.skip("the probe kernels run on the simulator (torch CPU tensors)")
    (tmp_path / "test_probe.py").write_text(PROBE)
    # Without this run's xdist variables: pytest-benchmark turns itself off in a process that has them.
    outer = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    # The probe runs in tmp_path, away from the repository and its pytest configuration, so the repository
    # root comes through PYTHONPATH: the probe and `-p conformance.perf.baseline_plugin` import the package.
    env = dict(outer, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
               **{BASELINES_ENV: str(tmp_path / "baselines"), CHART_DIR_ENV: str(tmp_path / "charts")})

    def run(*args, slowed=False, peer_slowed=False, host_cpu=None):
        cmd = [sys.executable, "-m", "pytest", str(tmp_path / "test_probe.py"), "-p", "conformance.perf.baseline_plugin",
               "-p", "no:cacheprovider", "--rootdir", str(tmp_path), "-q", "--benchmark-min-rounds=5",
               "--benchmark-max-time=0.2", *args]
        run_env = dict(env, PROBE_SLOWED="1" if slowed else "0", PEER_SLOWED="1" if peer_slowed else "0")
        if host_cpu:
            run_env[HOST_CPU_ENV] = host_cpu
        proc = subprocess.run(cmd, cwd=tmp_path, env=run_env, capture_output=True, text=True, timeout=600,
                              check=False)
        return proc.returncode, proc.stdout + proc.stderr
    run.baselines = tmp_path / "baselines" / bench_target().chip_id
    return run


def _no_baseline_notes(out: str) -> list[str]:
    return [line for line in out.splitlines() if "no benchmark baseline for chip" in line]


def _regressed(out: str) -> list[str]:
    """The tests pytest-benchmark lists under 'Performance has regressed'."""
    return [line.split()[0] for line in out.split("Performance has regressed:", 1)[-1].splitlines()
            if "has failed" in line] if "Performance has regressed" in out else []


def test_slowed_kernel_is_reported_as_regression(probe):
    # First run: no baseline yet (one clear line says so), so it only records one.
    code, out = probe("--benchmark-enable", "--benchmark-compare", "--benchmark-save=normal")
    assert code == 0, out
    notes = _no_baseline_notes(out)
    assert len(notes) == 1 and "--benchmark-save" in notes[0], out
    assert len(list(probe.baselines.glob("0001_normal.json"))) == 1, out
    # Second run: the slowed variant under the same test name, compared at the default threshold.
    code, out = probe("--benchmark-compare", slowed=True)
    assert code != 0, out
    assert "Field 'min' has failed" in out, out
    assert [name for name in _regressed(out) if "probe" in name] == ["test_vector_add_probe"], out


def test_slowed_peer_is_shown_but_never_gated(probe):
    code, out = probe("--benchmark-enable", "--benchmark-compare", "--benchmark-save=normal")
    assert code == 0, out
    code, out = probe("--benchmark-compare", peer_slowed=True)
    assert code == 0, out
    assert "Performance has regressed" not in out, out
    assert "test_peer_probe (NOW)" in out and "test_peer_probe (0001_normal)" in out, out  # shown with its baseline
    assert "peers (torch, mlx) are measured and shown, not gated" in out, out


def test_another_host_cpu_has_no_baseline_and_passes(probe):
    # Recorded under one identity, compared under another: nothing to compare with, one line, exit 0,
    # even for a run whose own kernel is slow.
    code, out = probe("--benchmark-enable", "--benchmark-compare", "--benchmark-save=recorder",
                      host_cpu="Recorder CPU 1")
    assert code == 0, out
    code, out = probe("--benchmark-compare", slowed=True, host_cpu="Another CPU 2")
    assert code == 0, out
    other = simulator_baseline_id(cpu="Another CPU 2")
    notes = _no_baseline_notes(out)
    assert len(notes) == 1 and f"chip {other} " in notes[0], out
    assert "tox -e bench -- --benchmark-save=<label>" in notes[0], out
    assert "Performance has regressed" not in out, out


def test_baseline_from_another_chip_is_an_error():
    here = "linux-x86_64-sim-intel-xeon-processor"
    session = SimpleNamespace(storage=f"baselines/{here}")
    stored = {"machine_info": {"triton_metal_chip": "apple-m2-pro-19c"}}
    with pytest.raises(pytest.UsageError, match=f"baseline chip mismatch.*'apple-m2-pro-19c'.*'{here}'"):
        pytest_benchmark_compare_machine_info(None, session, {"triton_metal_chip": here}, stored)
    # The same chip passes.
    pytest_benchmark_compare_machine_info(None, session, {"triton_metal_chip": "apple-m2-pro-19c"}, stored)
