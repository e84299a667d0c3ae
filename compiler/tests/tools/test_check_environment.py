"""check_environment: the checks, the command line, --json and --report."""
import importlib.metadata
import json
import platform
import sys

import pytest
from triton_metal.backends import metal

linux_only = pytest.mark.skipif(platform.system() != "Linux", reason="asserts what Linux reports")
MODULE = ("-m", "triton_metal.backends.metal.check_environment")


def test_every_check_has_a_status_and_the_probe_kernel_ran():
    report = metal.check_environment(verbose=False)
    assert [c.name for c in report.checks][:2] == ["Python", "macOS"]
    assert all(c.status in ("OK", "WARN", "FAIL") for c in report.checks)
    compiler = next(c for c in report.checks if c.name.endswith("compiler"))
    assert compiler.status == "OK" and "compiled to a pipeline and ran" in compiler.detail


def test_versions_are_the_installed_ones():
    report = metal.check_environment(verbose=False)
    v = sys.version_info
    assert report.info["python"].startswith(f"{v.major}.{v.minor}.{v.micro}")
    assert report.info["triton"] == importlib.metadata.version("triton")
    assert report.info["triton_metal"] == importlib.metadata.version("triton-metal")


@linux_only
def test_linux_says_kernels_run_on_the_simulator():
    report = metal.check_environment(verbose=False)
    assert report["macOS"].status == "WARN" and "Metal simulator" in report["macOS"].detail
    assert report["GPU"].status == "OK" and report["GPU"].detail.startswith("simulator emulating apple-m1")
    assert report.info["simulated"] is True and report.ok


@linux_only
def test_report_prints_a_complete_block_and_exits_0(run_python):
    proc = run_python(args=[*MODULE, "--report"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    block = proc.stdout.split("### triton-metal bug report", 1)[1]
    for key in ("chip", "gpu_cores", "metal_family", "os", "python", "mlx", "triton", "triton_metal", "device",
                "runtime", "simulated"):
        line = next(ln for ln in block.splitlines() if ln.startswith(f"{key} "))
        assert line.split(":", 1)[1].strip() not in ("", "unknown"), line
    assert "chip         : apple-m1" in block and "runtime      : sim" in block
    assert f"triton       : {importlib.metadata.version('triton')}" in block


def test_json_output_is_machine_readable(capsys):
    from triton_metal.tools.check_environment_cli import main
    code = main(["--json", "--report"])
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] == (code == 0)
    assert {c["status"] for c in data["checks"]} <= {"OK", "WARN", "FAIL"}
    assert data["info"]["triton"] == importlib.metadata.version("triton")
    assert data["bug_report"].startswith("### triton-metal bug report")


@pytest.fixture
def metal_requested_on_linux(monkeypatch):
    """TRITON_METAL_DEVICE=metal in this process (the runtime is chosen again, and restored after)."""
    from triton_metal.runtime import get_runtime
    monkeypatch.setenv("TRITON_METAL_DEVICE", "metal")
    get_runtime.cache_clear()
    yield
    monkeypatch.undo()
    get_runtime.cache_clear()


@linux_only
def test_a_failing_check_gives_the_fix_and_a_nonzero_exit(metal_requested_on_linux, capsys):
    from triton_metal.tools.check_environment_cli import main
    assert main([]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] GPU: MetalNotSupportedError: " in out and "TRITON_METAL_DEVICE=sim" in out
    assert "fix: unset TRITON_METAL_DEVICE (auto) or set TRITON_METAL_DEVICE=sim" in out


def test_importing_the_command_module_refuses_and_keeps_check_environment_callable():
    with pytest.raises(ImportError, match="python -m triton_metal.backends.metal.check_environment"):
        import triton_metal.backends.metal.check_environment  # noqa: F401
    assert metal.check_environment(verbose=False).checks


def test_compiler_probe_runs_through_the_metal_runtime():
    # The PyObjC path against the recorded fake Metal API (which runs dispatches on the simulator).
    from fake_metal import FakeMetal  # compiler/tests/runtime, on pytest's pythonpath (pyproject.toml)
    from triton_metal.runtime.metal_runtime import MetalRuntime, detect_chip
    from triton_metal.tools.environment import PROBE_GROUPS, PROBE_THREADS, _run_probe
    fake = FakeMetal(device_name="Apple M3")
    runtime = MetalRuntime(metal=fake, chip_info=detect_chip(device_name="Apple M3", ioreg_output=""), macos=(14, 4))
    got = _run_probe(runtime)
    assert got == [2.0 * i + 1.0 for i in range(PROBE_GROUPS * PROBE_THREADS)]
    assert fake.find("newComputePipelineStateWithFunction")  # compiled all the way to a pipeline
