"""get_hardware_capabilities on the simulator (the emulated chip) and on the Metal runtime (fake Metal)."""
import os
import sys
from pathlib import Path

import pytest
from triton_metal.backends import metal
from triton_metal.runtime.sim_runtime import SimRuntime

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))


@pytest.mark.parametrize("emulated, cores, bandwidth, fp32, family", [
    ("apple-m1", 8, 68.25, 2.6, "apple7"),         # no core count: the full configuration
    ("apple-m1-7c", 7, 68.25, None, "apple7"),
    ("apple-m2-pro-19c", 19, 200, None, "apple8"),
    ("apple-m4-max-40c", 40, 546, None, "apple9"),
])
def test_simulator_reports_the_emulated_chip(monkeypatch, emulated, cores, bandwidth, fp32, family):
    monkeypatch.setenv("TRITON_METAL_SIM_CHIP", emulated)
    caps = metal.get_hardware_capabilities(SimRuntime())
    assert caps.simulated is True and caps.runtime == "sim"
    assert caps.chip == emulated.rsplit("-", 1)[0] if emulated.endswith("c") else emulated
    assert (caps.gpu_cores, caps.peak_bandwidth_gbs, caps.peak_fp32_tflops, caps.metal_family) == \
        (cores, bandwidth, fp32, family)


def test_limits_and_features_are_apples_documented_ones():
    caps = metal.get_hardware_capabilities()
    # Metal Feature Set Tables: every Apple7+ GPU.
    assert (caps.simd_width, caps.max_threads_per_threadgroup, caps.threadgroup_memory_bytes) == (32, 1024, 32768)
    assert caps.supports_simdgroup_matrix and caps.supports_bfloat and caps.supports_fast_atomics


def test_simulated_unified_memory_is_the_hosts_ram():
    caps = metal.get_hardware_capabilities()
    assert caps.unified_memory_bytes == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert "host" in caps.memory_source


def test_as_dict_and_table_hold_the_same_values():
    caps = metal.get_hardware_capabilities()
    d = caps.as_dict()
    assert d["chip"] == caps.chip and d["simulated"] is True
    assert f"max_threads_per_threadgroup  {caps.max_threads_per_threadgroup}" in str(caps)


def test_metal_runtime_reports_the_detected_chip_and_the_devices_memory():
    from fake_metal import FakeMetal
    from triton_metal.runtime.metal_runtime import MetalRuntime, detect_chip
    detected = detect_chip(device_name="Apple M2 Pro", ioreg_output='"gpu-core-count" = 19')  # as macOS reports
    runtime = MetalRuntime(metal=FakeMetal(device_name="Apple M2 Pro", memory_budget=3 << 30), chip_info=detected,
                           macos=(14, 4))
    caps = metal.get_hardware_capabilities(runtime)
    assert caps.simulated is False and caps.runtime == "metal"
    assert (caps.chip, caps.gpu_cores, caps.peak_bandwidth_gbs, caps.metal_family) == ("apple-m2-pro", 19, 200, "apple8")
    assert caps.unified_memory_bytes == 3 << 30 and caps.memory_source == "the Metal device"
