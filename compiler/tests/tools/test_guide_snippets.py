"""The four snippets of the troubleshooting guide that failed as written (issue 20), one test each
behaviour. test_troubleshooting_doc.py runs the whole page; these pin the objects' protocols."""
import copy
import pickle
from dataclasses import fields

import pytest
import torch
import triton
import triton.language as tl
import triton_metal
from triton_metal.backends import metal
from triton_metal.sim import count_traffic
from triton_metal.tools.benchmarks import BenchmarkResult

# --- `import triton_metal` then `triton_metal.backends.metal.check_environment()` --------------------

REACH = """
import sys
import triton_metal
assert "triton_metal.backends" not in sys.modules, "import triton_metal must not import the diagnostics API"
print(triton_metal.backends.metal.check_environment.__module__)
"""


def test_backends_reachable_after_import_triton_metal_alone(run_python):
    proc = run_python(REACH)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "triton_metal.tools.environment"


def test_package_attribute_is_the_backends_package():
    from triton_metal import backends
    assert triton_metal.backends is backends and backends.metal is metal
    assert "backends" in dir(triton_metal)


# --- capabilities["supports_fast_atomics"] ------------------------------------------------------------

@pytest.fixture(scope="module")
def caps():
    return metal.get_hardware_capabilities()


def test_capabilities_subscript_reads_the_field(caps):
    for f in fields(caps):
        assert caps[f.name] == getattr(caps, f.name)
    assert caps["supports_fast_atomics"] is caps.supports_fast_atomics


def test_capabilities_membership_get_and_len(caps):
    assert "supports_fast_atomics" in caps and "supports_slow_atomics" not in caps and 7 not in caps
    assert caps.get("chip") == caps.chip and caps.get("nope", "default") == "default"
    assert len(caps) == len(fields(caps))


def test_capabilities_unknown_key_is_a_key_error(caps):
    with pytest.raises(KeyError, match="nope"):
        caps["nope"]


def test_capabilities_iterate_and_convert_like_a_dict(caps):
    assert list(caps) == [f.name for f in fields(caps)]
    assert dict(caps) == caps.as_dict() == dict(caps.items())
    assert {**caps}["chip"] == caps.chip


def test_capabilities_mapping_is_read_only(caps):
    with pytest.raises(TypeError):
        caps["chip"] = "apple-m9"
    assert not hasattr(caps, "__setitem__")


def test_capabilities_print_unchanged(caps):
    # The table as it was before the record became a mapping: one `name  value` line per field.
    width = max(len(f.name) for f in fields(caps))
    lines = str(caps).splitlines()
    assert [line[:width].rstrip() for line in lines] == [f.name for f in fields(caps)]
    assert f"{'simd_width':<{width}}  32" in lines


# --- f"{bandwidth:.2f}" ------------------------------------------------------------------------------

def _result(value=12.345):
    return BenchmarkResult(value, name="memory bandwidth (copy)", chip="apple-m1", runtime="sim", simulated=True,
                           launches=6, timed_runs=5, mean_ms=0.17, bytes_per_run=2 << 20, flops_per_run=0,
                           unit="GB/s", expected_range=(40.95, 61.425), note="a note")


def test_benchmark_result_formats_as_a_number():
    r = _result()
    assert f"{r:.2f}" == format(12.345, ".2f") and f"{r:8.1e}" == format(12.345, "8.1e")


def test_benchmark_result_compares_and_computes_as_a_float():
    r = _result()
    assert isinstance(r, float) and r == 12.345 and 12 < r < 13 and r != _result(1.0)
    assert r * 2 == 24.69 and r - 2.345 == pytest.approx(10.0) and round(r, 1) == 12.3
    assert type(r + 1) is float  # arithmetic gives plain numbers
    assert sorted([_result(3.0), _result(1.0)]) == [1.0, 3.0]


def test_benchmark_result_keeps_its_details_as_attributes():
    r = _result()
    assert (r.value, r.unit, r.bytes_per_run, r.mean_ms, r.expected_range) == (12.345, "GB/s", 2 << 20, 0.17,
                                                                             (40.95, 61.425))
    assert r.as_dict()["value"] == 12.345 and r.as_dict()["chip"] == "apple-m1"


def test_benchmark_result_prints_its_description():
    r = _result()
    assert str(r) == f"{r}" == ("memory bandwidth (copy): 12.35 GB/s on apple-m1, sim runtime (simulated: the CPU "
                                "running the simulator), mean of 5 runs\n  expected on apple-m1: 41.0-61.4 GB/s (a note)")


def test_benchmark_result_copies_and_pickles_with_its_details():
    r = _result()
    for twin in (copy.copy(r), copy.deepcopy(r), pickle.loads(pickle.dumps(r))):
        assert twin == r and twin.as_dict() == r.as_dict()


def test_benchmark_result_refuses_unknown_details():
    with pytest.raises(TypeError, match="no detail colour"):
        BenchmarkResult(1.0, colour="red")


def test_measured_bandwidth_formats_like_its_value(capsys):
    bandwidth = metal.test_memory_bandwidth(size_mb=0.25, runs=1, verbose=False)
    assert f"Memory bandwidth: {bandwidth:.2f} GB/s" == f"Memory bandwidth: {bandwidth.value:.2f} GB/s"
    assert bandwidth == pytest.approx(bandwidth.bytes_per_run / (bandwidth.mean_ms * 1e-3) / 1e9)


# --- metal.analyze_memory_access(kernel, sample_inputs) -----------------------------------------------

@triton.jit
def _add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK_SIZE: tl.constexpr):
    offs = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) + tl.load(y_ptr + offs, mask=mask), mask=mask)


_tuned_add = triton_metal.jit(autotune=True, configs=[triton_metal.Config({"BLOCK_SIZE": 128}),
                                                      triton_metal.Config({"BLOCK_SIZE": 256})])(_add_kernel.fn)


def _data(device, n=1000):
    x, y = torch.rand(n, device=device), torch.rand(n, device=device)
    return x, y, torch.zeros(n, device=device), n


@pytest.mark.parametrize("kernel", [_add_kernel, _tuned_add], ids=["jit", "autotuned"])
def test_kernel_without_grid_is_refused_with_both_forms(kernel, device):
    x, y, out, n = _data(device)
    with count_traffic() as traffic, pytest.raises(TypeError) as info:
        metal.analyze_memory_access(kernel, (x, y, out, n))
    message = str(info.value)
    assert "needs the launch grid of kernel '_add_kernel'" in message
    assert "metal.analyze_memory_access(_add_kernel, (x, y, out, n), grid=" in message
    assert "metal.analyze_memory_access(_add_kernel[(triton.cdiv(n, 1024),)], (x, y, out, n)" in message
    assert traffic.launches == [] and not out.any()  # refused before anything ran


def test_jit_kernel_with_grid_is_analysed_like_a_bound_launch(device):
    x, y, out, n = _data(device)
    grid = (triton.cdiv(n, 256),)
    report = metal.analyze_memory_access(_add_kernel, (x, y, out, n), grid=grid, BLOCK_SIZE=256)
    torch.testing.assert_close(out.cpu(), x.cpu() + y.cpu(), rtol=0, atol=0)
    bound = metal.analyze_memory_access(_add_kernel[grid], (x, y, out, n), BLOCK_SIZE=256)
    assert [(launch.global_bytes_read, launch.global_bytes_written) for launch in report.launches] == \
        [(launch.global_bytes_read, launch.global_bytes_written) for launch in bound.launches] == [(2 * n * 4, n * 4)]
    assert report.launches[0].kernel == bound.launches[0].kernel


def test_autotuned_kernel_with_grid_function_runs(device):
    x, y, out, n = _data(device)
    report = metal.analyze_memory_access(_tuned_add, (x, y, out, n),
                                         grid=lambda meta: (triton.cdiv(n, meta["BLOCK_SIZE"]),))
    torch.testing.assert_close(out.cpu(), x.cpu() + y.cpu(), rtol=0, atol=0)
    # Every launch is counted, the autotuner's timing runs included; each adds x and y once.
    assert report.launches and all(launch.global_bytes_read == 2 * n * 4 for launch in report.launches)


def test_grid_with_a_host_function_is_refused(device):
    x, y, _, _ = _data(device)
    with pytest.raises(TypeError, match="grid= applies to a kernel"):
        metal.analyze_memory_access(lambda a, b: a + b, (x, y), grid=(1,))
