"""tl.rand / randn / randint / randint4x kernels, shared by the device run and the reference run
under Triton's interpreter (`python conformance/ops/random_kernels.py OUT.npz` with TRITON_INTERPRET=1)."""
import sys

import numpy as np
import torch
import triton
import triton.language as tl

N = 256
SEEDS = (0, 12345, 2**31 - 1)


@triton.jit
def random_kernel(u_ptr, n_ptr, i_ptr, i4_ptr, seed, N: tl.constexpr):
    offs = tl.program_id(0) * N + tl.arange(0, N)
    tl.store(u_ptr + offs, tl.rand(seed, offs))
    tl.store(n_ptr + offs, tl.randn(seed, offs))
    tl.store(i_ptr + offs, tl.randint(seed, offs))
    a, b, c, d = tl.randint4x(seed, offs)
    tl.store(i4_ptr + offs * 4, a)
    tl.store(i4_ptr + offs * 4 + 1, b)
    tl.store(i4_ptr + offs * 4 + 2, c)
    tl.store(i4_ptr + offs * 4 + 3, d)


def run(device) -> dict:
    out = {}
    for seed in SEEDS:
        u, n = torch.empty(2 * N, device=device), torch.empty(2 * N, device=device)
        i = torch.empty(2 * N, dtype=torch.int32, device=device)
        i4 = torch.empty(8 * N, dtype=torch.int32, device=device)
        random_kernel[(2,)](u, n, i, i4, seed, N=N)
        for name, t in (("rand", u), ("randn", n), ("randint", i), ("randint4x", i4)):
            out[f"{name}_{seed}"] = t.cpu().numpy()
    return out


if __name__ == "__main__":
    np.savez(sys.argv[1], **run("cpu"))
