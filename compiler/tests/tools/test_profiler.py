"""start_profiling / stop_profiling."""
import pytest
import torch
import triton
import triton.language as tl
from triton_metal.backends import metal


def _bytes(grid, kernel, args):
    return {"bytes": 2 * args["n"] * 4}


@triton.jit(launch_metadata=_bytes)
def _profiled_copy(x, out, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(out + offs, tl.load(x + offs, mask=offs < n), mask=offs < n)


@triton.jit
def _profiled_fill(out, value, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(out + offs, tl.zeros([BLOCK], tl.float32) + value, mask=offs < n)


def test_calls_times_and_bytes_per_kernel(device):
    n = 3000
    x = torch.rand(n, device=device)
    out = torch.empty_like(x)
    metal.start_profiling()
    try:
        for _ in range(3):
            _profiled_copy[(triton.cdiv(n, 512),)](x, out, n, BLOCK=512)
        _profiled_fill[(triton.cdiv(n, 256),)](out, 1.5, n, BLOCK=256)
    finally:
        report = metal.stop_profiling()
    assert torch.equal(out.cpu(), torch.full((n,), 1.5))
    copy, fill = report["_profiled_copy"], report["_profiled_fill"]
    assert (copy.calls, fill.calls) == (3, 1)
    assert copy.compile_ms > 0 and fill.compile_ms > 0  # first launches in this process: built while profiling
    assert copy.total_ms > 0 and copy.mean_ms == pytest.approx(copy.total_ms / 3)
    assert copy.bytes_moved == 3 * 2 * n * 4 and copy.bytes_source == "launch_metadata"
    assert copy.gb_per_s == pytest.approx(copy.bytes_moved / (copy.total_ms * 1e-3) / 1e9)
    assert fill.bytes_moved is None and fill.gb_per_s is None


def test_report_prints_a_table_and_converts_to_a_dict(device):
    x = torch.rand(100, device=device)
    metal.start_profiling()
    _profiled_copy[(1,)](x, torch.empty_like(x), 100, BLOCK=128)
    report = metal.stop_profiling()
    table = str(report).splitlines()
    assert table[1].split() == ["kernel", "calls", "compile", "ms", "total", "ms", "mean", "ms", "GB/s"]
    assert table[2].split()[:2] == ["triton_profiled_copy", "1"]  # the MSL name; report[] takes either
    d = report.as_dict()
    assert d["simulated"] == report.simulated and d["kernels"][0]["calls"] == 1
    assert d["kernels"][0]["gb_per_s"] == report["_profiled_copy"].gb_per_s


def test_profiling_twice_or_stopping_unstarted_is_an_error():
    with pytest.raises(RuntimeError, match="profiling is not on"):
        metal.stop_profiling()
    metal.start_profiling()
    try:
        with pytest.raises(RuntimeError, match="profiling is already on"):
            metal.start_profiling()
    finally:
        metal.stop_profiling()


def test_launches_after_stopping_are_not_counted(device):
    x = torch.rand(64, device=device)
    metal.start_profiling()
    _profiled_copy[(1,)](x, torch.empty_like(x), 64, BLOCK=64)
    report = metal.stop_profiling()
    _profiled_copy[(1,)](x, torch.empty_like(x), 64, BLOCK=64)
    assert report["_profiled_copy"].calls == 1


def test_simulator_traffic_counters_give_the_bytes(device):
    n = 1000
    out = torch.empty(n, device=device)
    metal.start_profiling(count_traffic=True)
    try:
        for _ in range(2):
            _profiled_fill[(triton.cdiv(n, 256),)](out, 2.0, n, BLOCK=256)
    finally:
        report = metal.stop_profiling()
    fill = report["_profiled_fill"]
    assert fill.calls == 2 and fill.bytes_moved == 2 * n * 4  # each launch writes n floats, reads nothing
    assert fill.bytes_source == "simulator traffic counters"
    assert fill.gb_per_s == pytest.approx(fill.bytes_moved / (fill.total_ms * 1e-3) / 1e9)
