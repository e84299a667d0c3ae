"""pytest option ``--sim-strict``: run every simulator dispatch of the session in strict mode.

    pytest -p triton_metal.sim.pytest_plugin --sim-strict conformance

(the same as ``TRITON_METAL_SIM_STRICT=1 pytest conformance``). Strict mode runs kernels from
their instrumented build: out-of-bounds device and threadgroup accesses, reads of unwritten
threadgroup memory, threadgroup-memory races between simdgroups and threads meeting at different
barriers raise ``triton_metal.sim.SimStrictError``.
"""
from __future__ import annotations

import os


def pytest_addoption(parser):
    parser.addoption("--sim-strict", action="store_true", default=False,
                     help="Metal simulator strict mode (TRITON_METAL_SIM_STRICT=1): bounds, uninitialised "
                          "threadgroup reads, threadgroup races and barrier checks")


def pytest_configure(config):
    if config.getoption("--sim-strict"):
        os.environ["TRITON_METAL_SIM_STRICT"] = "1"


def pytest_report_header(config):
    if os.environ.get("TRITON_METAL_SIM_STRICT", "").strip() not in ("", "0"):
        return "triton-metal simulator: strict mode"
    return None
