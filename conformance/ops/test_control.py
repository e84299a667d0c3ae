"""Control flow (scf.while, scf.if with results) and device_assert without debug, against numpy.
Early returns and noinline calls: test_calls_and_returns.py; device_print and device_assert with
debug=True: test_debug_ops.py."""
import numpy as np
import torch
import triton
import triton.language as tl


@triton.jit
def collatz_steps_kernel(n_ptr, out_ptr):
    # scf.while with a scalar condition: steps of the Collatz sequence of a per-program number.
    n = tl.load(n_ptr + tl.program_id(0))
    steps = 0
    while n != 1:
        n = tl.where(n % 2 == 0, n // 2, 3 * n + 1)
        steps += 1
    tl.store(out_ptr + tl.program_id(0), steps)


def _collatz(n):
    steps = 0
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


def test_while_loop(device):
    starts = np.array([1, 6, 7, 27, 97, 871], dtype=np.int32)
    out = torch.zeros(len(starts), dtype=torch.int32, device=device)
    collatz_steps_kernel[(len(starts),)](torch.from_numpy(starts).to(device), out)
    assert out.cpu().tolist() == [_collatz(int(n)) for n in starts]


@triton.jit
def loop_carried_tensor_kernel(x_ptr, out_ptr, steps, N: tl.constexpr):
    offs = tl.arange(0, N)
    acc = tl.load(x_ptr + offs)
    total = tl.zeros([N], tl.float32)
    for _ in range(steps):
        acc = acc * 0.5 + 1.0
        if tl.sum(acc, axis=0) > 0:  # scf.if with results, on a uniform condition
            total = total + acc
        else:
            total = total - acc
    tl.store(out_ptr + offs, total)


def test_for_loop_with_if_results(device):
    x = np.random.default_rng(0).standard_normal(64).astype(np.float32) * 4
    acc, total = x.copy(), np.zeros(64, np.float32)
    for _ in range(5):
        acc = acc * np.float32(0.5) + np.float32(1.0)
        total = total + acc if acc.sum() > 0 else total - acc
    out = torch.empty(64, device=device)
    loop_carried_tensor_kernel[(1,)](torch.from_numpy(x).to(device), out, 5, N=64)
    np.testing.assert_allclose(out.cpu().numpy(), total, rtol=1e-6)


@triton.jit
def assert_kernel(x_ptr, N: tl.constexpr):
    tl.device_assert(tl.load(x_ptr + tl.arange(0, N)) < 100, "value too large")


def test_device_assert_is_dropped_without_debug(device):
    x = torch.tensor([1, 2, 300, 4], dtype=torch.int32, device=device)
    assert_kernel[(1,)](x, N=4)  # as on every Triton backend: no check unless debug=True
