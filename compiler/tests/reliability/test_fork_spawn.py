"""multiprocessing with triton-metal: spawn always works; fork works on the simulator, and on a
real Metal device a forked child is refused with a clear error instead of crashing (Metal and PyObjC
are not fork-safe)."""
from __future__ import annotations

import multiprocessing as mp
from types import SimpleNamespace

import pytest
import torch
import triton
import triton.language as tl
from triton_metal import arg_checks
from triton_metal.errors import ForkedAfterDeviceOpenedError
from triton_metal.runtime import get_runtime


@triton.jit
def double_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) * 2.0, mask=mask)


def _double_in_child(seed: int) -> bool:
    x = torch.rand(500, generator=torch.Generator().manual_seed(seed))
    out = torch.empty(500)
    double_kernel[(triton.cdiv(500, 128),)](x, out, 500, BLOCK=128)
    return bool(torch.equal(out, x * 2.0))


def _metal_launch_checks_in_child(_) -> str:
    metal = SimpleNamespace(name="metal", capabilities=SimpleNamespace(fork_safe=False, torch_device="mps"))
    try:
        arg_checks.LaunchChecks("double_kernel", {"x_ptr": "*fp32"}, metal)
    except ForkedAfterDeviceOpenedError as e:
        return str(e)
    return "no error"


def test_spawned_workers_compile_and_launch():
    with mp.get_context("spawn").Pool(2) as pool:
        assert pool.map(_double_in_child, [1, 2]) == [True, True]


@pytest.mark.skipif(not get_runtime().capabilities.fork_safe, reason="fork after opening a Metal device is refused (next test)")
def test_forked_children_launch_on_the_simulator():
    assert _double_in_child(0)  # the parent has loaded the kernel and run the simulator before forking
    with mp.get_context("fork").Pool(2) as pool:
        assert pool.map(_double_in_child, [3, 4]) == [True, True]


def test_a_child_forked_after_the_device_was_opened_is_refused_on_metal():
    get_runtime()  # the parent has opened its device
    with mp.get_context("fork").Pool(1) as pool:
        (message,) = pool.map(_metal_launch_checks_in_child, [0])
    assert "forked after its parent opened the metal device" in message
    assert "multiprocessing.get_context('spawn')" in message


def test_a_process_that_did_not_fork_is_not_refused():
    metal = SimpleNamespace(name="metal", capabilities=SimpleNamespace(fork_safe=False, torch_device="mps"))
    arg_checks.LaunchChecks("double_kernel", {"x_ptr": "*fp32"}, metal)  # no error
