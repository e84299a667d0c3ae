"""Shared fixtures of the conformance suites.

Kernels run on the device Triton's active driver reports: the Apple GPU (`mps`) on a Mac, the
CPU through the Metal simulator elsewhere. References are always computed on the CPU.
"""
from __future__ import annotations

import pytest
import torch
import triton


def pytest_report_header(config):
    from triton_metal.runtime import get_runtime
    rt = get_runtime()
    kind = "simulated on the CPU" if rt.simulated else "Apple GPU"
    return f"triton-metal: device={rt.name} chip={rt.chip.id} ({kind})"


@pytest.fixture(scope="session")
def device():
    return triton.runtime.driver.active.get_active_torch_device()


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(0)
