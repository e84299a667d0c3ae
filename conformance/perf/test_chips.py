"""The chip table and baseline ids (pure data and functions: no device needed)."""
from __future__ import annotations

import json

import pytest
from triton_metal.runtime.chips import (
    CHIP_CONFIGS,
    CHIPS,
    HOST_CPU_ENV,
    VARIANTS,
    ChipIdentity,
    chip,
    chip_config,
    cpu_slug,
    host_cpu_model,
    simulator_baseline_id,
)

from conformance.perf.baseline_plugin import baselines_root, stored_runs
from conformance.perf.report import format_table


def test_every_generation_m1_to_m5_has_base_and_variants():
    variants = {config.variant for config in CHIP_CONFIGS}
    for gen in range(1, 6):
        assert f"apple-m{gen}" in CHIPS
        for name in (f"apple-m{gen}", *(f"apple-m{gen}-{v}" for v in VARIANTS)):
            assert name in variants, name


def test_every_config_names_its_source_and_generation():
    for config in CHIP_CONFIGS:
        assert config.source and len(config.source) > 20, config
        assert config.generation.metal_family.startswith("apple")


def test_metal_family_never_decreases_with_generation():
    families = [int(CHIPS[f"apple-m{gen}"].metal_family.removeprefix("apple")) for gen in range(1, 6)]
    assert families == sorted(families)


def test_bandwidth_grows_with_cores_and_tier():
    # Within a variant, more GPU cores never come with less bandwidth; Pro <= Max <= Ultra per generation.
    by_variant = {}
    for config in CHIP_CONFIGS:
        if config.dram_bandwidth_gbs is not None:
            by_variant.setdefault(config.variant, []).append((config.gpu_cores, config.dram_bandwidth_gbs))
    for rows in by_variant.values():
        assert [bw for _, bw in sorted(rows)] == sorted(bw for _, bw in rows)
    for gen in range(1, 6):
        tiers = [max(bw for _, bw in by_variant[name]) for name in
                 (f"apple-m{gen}", *(f"apple-m{gen}-{v}" for v in VARIANTS)) if name in by_variant]
        assert tiers == sorted(tiers), gen


def test_chip_accepts_variant_and_binned_ids():
    assert chip("apple-m2") is CHIPS["apple-m2"]
    assert chip("apple-m2-pro") is CHIPS["apple-m2"]
    assert chip("apple-m2-pro-19c") is CHIPS["apple-m2"]
    with pytest.raises(ValueError, match="unknown Apple chip 'apple-m9'"):
        chip("apple-m9")


def test_baseline_ids():
    assert ChipIdentity("apple-m2-pro", 19).baseline_id == "apple-m2-pro-19c"
    assert ChipIdentity("apple-m2-pro", None).baseline_id == "apple-m2-pro"


def test_simulator_baseline_id_carries_the_host_cpu():
    # Simulator times are the CPU's: two hosts with different CPUs never share a baseline.
    assert simulator_baseline_id("Linux", "x86_64", "Intel(R) Xeon(R) Processor") == \
        "linux-x86_64-sim-intel-xeon-processor"
    assert simulator_baseline_id("Linux", "x86_64", "AMD EPYC 7763 64-Core Processor") == \
        "linux-x86_64-sim-amd-epyc-7763-64-core-processor"
    assert simulator_baseline_id("Darwin", "arm64", "Apple M2 Pro") == "darwin-arm64-sim-apple-m2-pro"


@pytest.mark.parametrize("model, slug", [
    ("Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz", "intel-core-i7-8700"),  # marks and clock dropped
    ("Intel(R) Core(TM) i7-8700 CPU @ 4.60GHz", "intel-core-i7-8700"),  # the same part at another clock
    ("arm 0x41 0xd0c", "arm-0x41-0xd0c"),                               # ARM Linux without a model name
    ("", "unknown-cpu"),
])
def test_cpu_slug(model, slug):
    assert cpu_slug(model) == slug


def test_host_cpu_override(monkeypatch):
    monkeypatch.setenv(HOST_CPU_ENV, "Test Processor 9000")
    assert host_cpu_model() == "Test Processor 9000"
    assert simulator_baseline_id("Linux", "x86_64").endswith("-sim-test-processor-9000")


def test_stored_baselines_sit_in_the_folder_of_their_chip():
    # Each stored run names the chip it was recorded on; a simulator run's id is its host's, CPU included.
    runs = [path for folder in baselines_root().iterdir() for path in stored_runs(folder)]
    assert runs
    for path in runs:
        info = json.loads(path.read_text())["machine_info"]
        assert info["triton_metal_chip"] == path.parent.name, path
        if info["simulated"]:
            assert path.parent.name == simulator_baseline_id(info["system"], info["machine"], info["cpu"]), path


def test_binned_config_lookup():
    full, binned = chip_config("apple-m4-max", 40), chip_config("apple-m4-max", 32)
    assert full.dram_bandwidth_gbs > binned.dram_bandwidth_gbs
    assert chip_config("apple-m4-max", 33) is None
    assert ChipIdentity("apple-m4-max", 40).config is full


def test_peer_table_ratio_is_peer_time_over_triton_time():
    rows = [{"label": "softmax 4x4 f32", "impl": "triton-metal", "min": 0.002, "baseline_min": 0.001, "gbps": 1.0},
            {"label": "softmax 4x4 f32", "impl": "torch", "min": 0.001, "gbps": 2.0}]
    header, line = format_table(rows)
    cells = line.split()
    assert "speed vs torch" in header
    assert "0.50x" in cells           # torch took half as long: triton-metal runs at 0.5x its speed
    assert "+100%" in cells           # twice the baseline time
