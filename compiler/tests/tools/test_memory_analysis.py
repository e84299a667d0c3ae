"""analyze_memory_access: per-site bytes, coalescing, stride pattern, layout and suggestion."""
import torch
import triton
import triton.language as tl
from triton_metal.backends import metal


@triton.jit
def _rows_copy(x, out, n_cols, BLOCK: tl.constexpr):
    # one program per row, lanes along the row: contiguous
    cols = tl.arange(0, BLOCK)
    row = tl.program_id(0)
    tl.store(out + row * n_cols + cols, tl.load(x + row * n_cols + cols))


@triton.jit
def _column_copy(x, out, n_rows, n_cols, BLOCK: tl.constexpr):
    # one program per column, lanes down the column: each lane n_cols elements from the next
    rows = tl.arange(0, BLOCK)
    col = tl.program_id(0)
    tl.store(out + col * n_rows + rows, tl.load(x + rows * n_cols + col))


def _copy_rows(x, num_warps=4):
    out = torch.empty_like(x)
    _rows_copy[(x.shape[0],)](x, out, x.shape[1], BLOCK=x.shape[1], num_warps=num_warps)
    torch.testing.assert_close(out.cpu(), x.cpu())
    return out


def test_contiguous_access_is_fully_coalesced(device):
    x = torch.rand(8, 128, device=device)  # 128 elements per row = 4 simdgroups x 32 lanes, one each
    report = metal.analyze_memory_access(_copy_rows, (x,))
    assert report.simulated and len(report.launches) == 1
    load, store = report.launches[0].sites
    assert (load.kind, store.kind) == ("load", "store")
    assert load.bytes == store.bytes == x.numel() * 4
    assert load.coalescing_efficiency == store.coalescing_efficiency == 1.0
    assert load.stride_pattern.startswith("contiguous")
    assert "tl.load(x + row * n_cols + cols)" in load.source and load.source.startswith("test_memory_analysis.py:")
    assert load.layout.startswith("1 contiguous element(s) per thread") and "#ttg.blocked" in load.layout


def test_several_elements_per_thread_are_moved_as_vectors(device):
    # 256 elements over 128 threads: the layout gives each thread 2 neighbouring elements, which the MSL
    # moves with one 8-byte vector access (codegen/vector_access.py), so each access's lanes touch 256
    # consecutive bytes: fully coalesced (one scalar access per register was 1/2 as efficient).
    x = torch.rand(4, 256, device=device)
    report = metal.analyze_memory_access(_copy_rows, (x,), num_warps=4)
    for site in report.sites:
        assert site.layout.startswith("2 contiguous element(s) per thread (8-byte vectors)")
        assert site.coalescing_efficiency == 1.0 and site.transactions == site.ideal_transactions
        assert site.stride_pattern.startswith("contiguous")
        assert site.suggestion == "coalesced: nothing to change"


def test_column_walk_is_reported_as_strided_with_a_fix(device):
    n_rows, n_cols = 128, 64
    x = torch.rand(n_rows, n_cols, device=device)
    out = torch.empty(n_cols, n_rows, device=device)
    report = metal.analyze_memory_access(_column_copy[(n_cols,)], (x, out, n_rows, n_cols), BLOCK=n_rows)
    torch.testing.assert_close(out.cpu(), x.cpu().T)
    load = next(s for s in report.sites if s.kind == "load")
    store = next(s for s in report.sites if s.kind == "store")
    assert load.bytes == store.bytes == n_rows * n_cols * 4
    assert load.coalescing_efficiency < 0.25 and store.coalescing_efficiency == 1.0
    assert load.stride_pattern.startswith("scattered or large stride")
    assert "contiguous memory" in load.suggestion and store.suggestion == "coalesced: nothing to change"


def test_report_prints_and_converts(device):
    report = metal.analyze_memory_access(_copy_rows, torch.rand(2, 64, device=device), num_warps=2)
    text = str(report)
    assert "kernel triton_rows_copy:" in text and "100% coalesced" in text  # the MSL name of _rows_copy
    assert report.as_dict()["launches"][0]["sites"][0]["bytes"] == 2 * 64 * 4
