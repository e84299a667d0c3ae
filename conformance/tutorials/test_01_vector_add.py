"""Our port of upstream tutorial 01 (vector addition), checked against torch on the CPU."""
import pytest
import torch
import triton
import triton.language as tl


@triton.jit
def add_kernel(x_ptr, y_ptr, output_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    pid = tl.program_id(axis=0)
    block_start = pid * BLOCK_SIZE
    offsets = block_start + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    x = tl.load(x_ptr + offsets, mask=mask)
    y = tl.load(y_ptr + offsets, mask=mask)
    tl.store(output_ptr + offsets, x + y, mask=mask)


def add(x, y, block_size=1024):
    output = torch.empty_like(x)
    n = output.numel()
    grid = lambda meta: (triton.cdiv(n, meta["BLOCK_SIZE"]),)
    add_kernel[grid](x, y, output, n, BLOCK_SIZE=block_size)
    return output


@pytest.mark.parametrize("size", [1, 1000, 98432, 2**20, 1025, 4097])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_vector_add(size, dtype, device, rng):
    x = torch.rand(size, generator=rng).to(dtype)
    y = torch.rand(size, generator=rng).to(dtype)
    out = add(x.to(device), y.to(device)).cpu()
    torch.testing.assert_close(out, x + y, rtol=0, atol=0)


@pytest.mark.parametrize("block_size", [16, 128, 256, 2048])
def test_vector_add_block_sizes(block_size, device, rng):
    x = torch.randn(5000, generator=rng)
    y = torch.randn(5000, generator=rng)
    out = add(x.to(device), y.to(device), block_size).cpu()
    torch.testing.assert_close(out, x + y, rtol=0, atol=0)
