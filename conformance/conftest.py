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
    kind = "simulated on the CPU" if rt.capabilities.simulated else "Apple GPU"
    return f"triton-metal: device={rt.name} chip={rt.chip.id} ({kind})"


@pytest.fixture(scope="session")
def device():
    return triton.runtime.driver.active.get_active_torch_device()


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(0)


def pytest_addoption(parser, pluginmanager):
    parser.addoption("--fuzz-cases", type=int, default=None,
                     help="expression trees for ops/test_fuzz.py (default 1000, or TRITON_METAL_FUZZ_CASES)")
    parser.addoption("--name-fuzz-cases", type=int, default=None,
                     help="expression trees for ops/test_name_fuzz.py, every variable under a random name, checked "
                          "against Triton's interpreter (default 48, or TRITON_METAL_NAME_FUZZ_CASES)")
    # Options of the upstream-tutorial runner (conformance/tutorials/upstream_runner.py).
    from conformance.tutorials.upstream_runner import add_pytest_options
    add_pytest_options(parser)
    # The end-of-run summary, with its JSON, Markdown and JUnit reports (conformance/summary_plugin.py).
    # Registered here, before configuration, so its options exist and it can default --junitxml.
    from conformance import summary_plugin
    if not pluginmanager.has_plugin("triton-metal-conformance-summary"):
        pluginmanager.register(summary_plugin, "triton-metal-conformance-summary")


# The Metal front-end check on every kernel this session compiles (triton_metal/metal_check): on for
# the session, one summary line at the end and build/conformance/metal_check.json.
def pytest_configure(config):
    from triton_metal.metal_check import pytest_plugin
    pytest_plugin.register(config)
