"""Fixtures of the runtime tests, and the ``apple_gpu`` marker.

Tests marked ``@pytest.mark.apple_gpu`` need a real Metal GPU: they are skipped, with that reason,
on machines without one, and run on the self-hosted Apple Silicon runner
(.github/workflows/apple-silicon.yml). Everything else here runs on Linux, the Metal runtime
against the recorded FAKE of the Metal API in ``fake_metal.py``.
"""
from __future__ import annotations

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "apple_gpu: needs a real Metal GPU (runs on the self-hosted Apple Silicon "
                                       "runner; skipped elsewhere)")


def _metal_gpu_present() -> bool:
    from triton_metal.runtime.metal_runtime import metal_device_available
    return metal_device_available()


def pytest_collection_modifyitems(config, items):
    if _metal_gpu_present():
        return
    skip = pytest.mark.skip(reason="needs a Metal GPU: no Metal device here (these tests run on the self-hosted "
                                   "Apple Silicon runner)")
    for item in items:
        if "apple_gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def shader_dump_dir(tmp_path, monkeypatch):
    directory = tmp_path / "shaders"
    monkeypatch.setenv("TRITON_METAL_SHADER_DUMP_DIR", str(directory))
    return directory
