"""test_memory_bandwidth / test_compute_throughput: the work they report is the work done."""
import numpy as np
import pytest
import torch
from triton_metal.backends import metal
from triton_metal.sim import count_traffic


def test_bandwidth_bytes_are_what_the_simulator_counted(capsys):
    with count_traffic() as traffic:
        result = metal.test_memory_bandwidth(size_mb=1, runs=2, warmup=1)
    n = (1 << 20) // 4
    assert result.bytes_per_run == 2 * n * 4
    assert len(traffic.launches) == result.launches == 3
    for launch in traffic.launches:
        assert launch.kernel == "bandwidth_copy_kernel"
        assert (launch.global_bytes_read, launch.global_bytes_written) == (n * 4, n * 4)
        assert launch.global_bytes_read + launch.global_bytes_written == result.bytes_per_run
    assert result.value == pytest.approx(result.bytes_per_run / (result.mean_ms * 1e-3) / 1e9)
    assert result.unit == "GB/s" and result.simulated


def test_bandwidth_prints_the_chips_expected_range(capsys):
    caps = metal.get_hardware_capabilities()
    result = metal.test_memory_bandwidth(size_mb=0.25, runs=1)
    out = capsys.readouterr().out
    assert result.expected_range == pytest.approx((0.6 * caps.peak_bandwidth_gbs, 0.9 * caps.peak_bandwidth_gbs))
    lo, hi = result.expected_range
    assert f"expected on {caps.chip}: {lo:.1f}-{hi:.1f} GB/s" in out
    assert "simulated: the CPU running the simulator" in out


def _fma_chain_reference(x: np.ndarray, iterations: int) -> np.ndarray:
    """The chain in numpy, in x's dtype: each step one fused multiply-add (Triton's default fp fusion), i.e.
    x * a + b computed in float64 (the product is exact there) and rounded once to x's dtype."""
    a, b = x.dtype.type(0.999), x.dtype.type(0.001)
    for _ in range(iterations):
        x = (x.astype(np.float64) * a + b).astype(x.dtype)
    return x


def test_compute_throughput_counts_two_flops_per_iteration_and_computes_them():
    n, iterations = 4096, 64
    result = metal.test_compute_throughput("float32", n=n, iterations=iterations, runs=1, verbose=False)
    assert result.flops_per_run == 2 * n * iterations
    assert result.value == pytest.approx(result.flops_per_run / (result.mean_ms * 1e-3) / 1e12)
    reference = _fma_chain_reference(np.linspace(0, 1, n, dtype=np.float32), iterations)
    np.testing.assert_allclose(result.output.cpu().numpy(), reference, rtol=1e-5, atol=1e-6)


def test_compute_throughput_in_half_precision():
    result = metal.test_compute_throughput("float16", n=1024, iterations=16, runs=1, verbose=False)
    assert result.output.dtype == torch.float16 and result.expected_range is None
    reference = _fma_chain_reference(np.linspace(0, 1, 1024, dtype=np.float32).astype(np.float16), 16)
    np.testing.assert_allclose(result.output.cpu().numpy().astype(np.float32), reference.astype(np.float32),
                               rtol=5e-3, atol=1e-3)


def test_unknown_dtype_is_refused():
    with pytest.raises(ValueError, match="dtype 'int4' is not one of"):
        metal.test_compute_throughput("int4")
