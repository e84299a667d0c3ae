"""tl.range(..., flatten=True): the loop nest becomes one loop (Triton's fuse-nested-loops pass, as on
CUDA), whose trip count needs rounding integer divisions (arith.ceildivsi). Checked against Python loops."""
import pytest
import torch
import triton
import triton.language as tl


@triton.jit
def flattened_kernel(out_ptr, outer, inner, STEP: tl.constexpr):
    k = 0
    for i in tl.range(0, outer, flatten=True):
        for j in tl.range(0, inner, STEP):
            tl.store(out_ptr + k, i * 100 + j)
            k += 1


@pytest.mark.parametrize("outer,inner,step", [(3, 7, 3), (4, 9, 3), (1, 1, 1), (2, 0, 2), (5, 8, 4)])
def test_flattened_loop_nest_visits_every_iteration_in_order(outer, inner, step, device):
    out = torch.full((64,), -1, dtype=torch.int32, device=device)
    compiled = flattened_kernel[(1,)](out, outer, inner, step)
    expected = [i * 100 + j for i in range(outer) for j in range(0, inner, step)]
    assert out[:len(expected)].tolist() == expected
    assert (out[len(expected):] == -1).all()
    assert compiled.asm["ttgir"].count("scf.for") <= 1  # one loop (none when the bounds are constants)
