"""Our port of upstream tutorial 02 (fused softmax), checked against torch.softmax on the CPU."""
import pytest
import torch
import triton
import triton.language as tl


@triton.jit
def softmax_kernel(output_ptr, input_ptr, input_row_stride, output_row_stride, n_rows, n_cols,
                   BLOCK_SIZE: tl.constexpr, num_stages: tl.constexpr):
    row_start = tl.program_id(0)
    row_step = tl.num_programs(0)
    for row_idx in tl.range(row_start, n_rows, row_step, num_stages=num_stages):
        row_start_ptr = input_ptr + row_idx * input_row_stride
        col_offsets = tl.arange(0, BLOCK_SIZE)
        input_ptrs = row_start_ptr + col_offsets
        mask = col_offsets < n_cols
        row = tl.load(input_ptrs, mask=mask, other=-float("inf"))
        row_minus_max = row - tl.max(row, axis=0)
        numerator = tl.exp(row_minus_max)
        denominator = tl.sum(numerator, axis=0)
        softmax_output = numerator / denominator
        output_row_start_ptr = output_ptr + row_idx * output_row_stride
        tl.store(output_row_start_ptr + col_offsets, softmax_output, mask=mask)


def softmax(x, num_programs=None, num_warps=None):
    n_rows, n_cols = x.shape
    block_size = triton.next_power_of_2(n_cols)
    num_warps = num_warps or (8 if block_size >= 2048 else 4)
    y = torch.empty_like(x)
    grid = (min(n_rows, num_programs or n_rows),)
    softmax_kernel[grid](y, x, x.stride(0), y.stride(0), n_rows, n_cols, BLOCK_SIZE=block_size, num_stages=1,
                         num_warps=num_warps)
    return y


@pytest.mark.parametrize("shape", [(1, 1), (7, 33), (128, 781), (1823, 781), (64, 1024), (16, 4096), (3, 1000)])
def test_softmax(shape, device, rng):
    x = torch.randn(*shape, generator=rng)
    torch.testing.assert_close(softmax(x.to(device)).cpu(), torch.softmax(x, dim=1), rtol=1e-6, atol=1e-6)


def test_softmax_persistent_grid(device, rng):
    # Fewer programs than rows: each program loops over rows (the tutorial's persistent style).
    x = torch.randn(100, 300, generator=rng)
    torch.testing.assert_close(softmax(x.to(device), num_programs=7).cpu(), torch.softmax(x, dim=1),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("num_warps", [1, 2, 16])
def test_softmax_num_warps(num_warps, device, rng):
    x = torch.randn(33, 517, generator=rng)
    torch.testing.assert_close(softmax(x.to(device), num_warps=num_warps).cpu(), torch.softmax(x, dim=1),
                               rtol=1e-6, atol=1e-6)


def test_softmax_large_values(device):
    # The max subtraction keeps exp from overflowing.
    x = torch.tensor([[1000.0, 1001.0, 999.0], [-1000.0, -1000.0, -1000.0]])
    torch.testing.assert_close(softmax(x.to(device)).cpu(), torch.softmax(x, dim=1), rtol=1e-6, atol=1e-6)
