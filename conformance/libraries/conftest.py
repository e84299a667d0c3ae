"""Fixtures of the library suite: Liger's device checks patched for Apple GPUs, refusals applied.

A case listed in refusals.toml is an expected failure that must raise the listed error: the test runs,
and passes as `xfailed` only when the backend refuses it as documented. A listed case that passes fails
("remove it from refusals.toml"); one that fails another way fails with its own error.
"""
from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest

from conformance.libraries import refusals

PIN = "liger-kernel==0.8.5"

try:
    import liger_kernel  # noqa: F401
except ModuleNotFoundError as exc:  # a missing library is an error, never a silent skip
    raise ImportError(f"the library suite needs Liger-Kernel: `pip install --no-deps {PIN}` "
                      f"(`tox -e libraries` does it)") from exc

# Markers: liger_size, the cases at Liger's own test shapes (vocabulary 32000, head_dim 128, hidden 4096,
# a few seconds each on the simulator); libraries_slow, the cases over ~20 s each on the simulator (an
# autotune sweep compiling dozens of kernels), which `tox -e libraries-quick` leaves out.
MARKERS = {
    "liger_size": "a library case at the library's own (large) test shapes",
    "libraries_slow": "a library case over ~20 s on the simulator (left out of tox -e libraries-quick)",
}


def pytest_configure(config):
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")


def _gpu_cores() -> int:
    from triton_metal.runtime import get_runtime
    # the simulator does not know one: 8, an M1's
    return get_runtime().capabilities.gpu_cores or 8


# Liger's device checks, each patched here only, and listed in docs/libraries.md. (module, attribute,
# replacement factory, why). Liger asks `infer_device()` (cuda/npu/xpu, else "cpu" -- also on a Mac,
# where the device is mps) and `X.device.type == "cuda"`; every op of the suite runs with no patch except:
DEVICE_PATCHES = (
    # DyT backward sizes its per-program partial sums by the SM count and knows cuda, xpu and npu only:
    # on "cpu" (and on a Mac) NUM_SMS is never assigned and the backward raises UnboundLocalError. Its
    # npu branch is the one that asks no torch device API, so we take it, with Apple's GPU core count.
    ("liger_kernel.ops.dyt", "infer_device", lambda: (lambda: "npu"),
     "DyT backward: NUM_SMS unbound unless the device is cuda/xpu/npu"),
    ("liger_kernel.ops.dyt", "get_npu_core_count", lambda: (lambda default=20: _gpu_cores()),
     "DyT backward: the number of programs of its partial-sum grid (Apple GPU cores)"),
)


@pytest.fixture(autouse=True)
def liger_device_patches(monkeypatch):
    for module, name, make, _why in DEVICE_PATCHES:
        monkeypatch.setattr(importlib.import_module(module), name, make())
    yield SimpleNamespace(patches=DEVICE_PATCHES)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    refusal = refusals.find(pyfuncitem.name)
    if refusal is None:
        return  # the ordinary call: the case must pass
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    try:
        pyfuncitem.obj(**args)
    except Exception as exc:
        if refusal.raised_by(exc):
            pytest.xfail(f"refused as listed: {refusal.reason}")
        raise AssertionError(f"{pyfuncitem.name} is listed in refusals.toml ({refusal.reason}) with error "
                             f"/{refusal.error}/, but raised another error") from exc
    pytest.fail(f"{pyfuncitem.name} passes but is listed in refusals.toml ({refusal.reason}): "
                f"remove it from refusals.toml", pytrace=False)
