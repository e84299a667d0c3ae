"""Atomics against numpy: every element updated once per program, old values returned to all holders."""
import numpy as np
import pytest
import torch
import triton
import triton.language as tl

from conformance.ops.atomic_kernels import atomic_kernel

REDUCE = {"add": np.add, "max": np.maximum, "min": np.minimum, "and": np.bitwise_and, "or": np.bitwise_or,
          "xor": np.bitwise_xor}
CASES = [(op, dt) for op in ("add", "max", "min", "and", "or", "xor") for dt in ("i32", "u32")] + \
    [("add", "f32"), ("max", "f32"), ("min", "f32")]
NP = {"i32": np.int32, "u32": np.uint32, "f32": np.float32}
TORCH = {"i32": torch.int32, "u32": torch.uint32, "f32": torch.float32}


@pytest.mark.parametrize("op,dtype", CASES)
def test_atomic_rmw_accumulates_every_element_once(op, dtype, device):
    n, bins, programs = 128, 16, 4
    rng = np.random.default_rng(5)
    if dtype == "f32":
        vals = (rng.integers(-50, 50, size=n * programs) / 4).astype(np.float32)  # sums are exact
    else:
        vals = rng.integers(0 if dtype == "u32" else -1000, 1000, size=n * programs).astype(NP[dtype])
    init = (np.zeros(bins) if op in ("add", "or", "xor") else np.full(bins, 7)).astype(NP[dtype])
    if op == "and":
        init = np.full(bins, -1).astype(NP[dtype])
    acc = torch.from_numpy(init.copy()).to(device)
    old = torch.zeros(n * programs, dtype=TORCH[dtype], device=device)
    atomic_kernel[(programs,)](acc, torch.from_numpy(vals).to(device), old, N=n, BINS=bins, OP=op)
    offs = np.arange(n * programs)
    mask = offs % 3 != 0
    want = init.copy()
    for b in range(bins):
        sel = vals[mask & (offs % bins == b)]
        want[b] = REDUCE[op].reduce(np.concatenate([[init[b]], sel]).astype(NP[dtype]))
    np.testing.assert_array_equal(acc.cpu().numpy(), want)
    if op == "add" and dtype != "f32":
        # The old values of one bin are the distinct prefix sums of its updates, in some order.
        got_old = old.cpu().numpy()
        for b in range(bins):
            sel = mask & (offs % bins == b)
            olds = np.sort(got_old[sel].astype(np.int64))
            final = int(acc.cpu().numpy()[b].astype(np.int64))
            # Adding each update to its old value gives the next old value (or the final sum).
            nxt = {int(o) + int(v) for o, v in zip(got_old[sel].astype(np.int64), vals[sel].astype(np.int64))}
            assert set(olds.tolist()) - {int(init[b])} <= nxt and final in nxt


@triton.jit
def counter_kernel(counter_ptr, seen_ptr, N: tl.constexpr):
    # Each program takes a ticket; every thread of the program sees the same ticket.
    ticket = tl.atomic_add(counter_ptr, 1)
    tl.store(seen_ptr + tl.program_id(0) * N + tl.arange(0, N), tl.zeros([N], tl.int32) + ticket)


def test_scalar_atomic_returns_the_old_value_to_every_thread(device):
    programs, n = 8, 64
    counter = torch.zeros(1, dtype=torch.int32, device=device)
    seen = torch.full((programs, n), -1, dtype=torch.int32, device=device)
    counter_kernel[(programs,)](counter, seen, N=n)
    seen = seen.cpu().numpy()
    assert counter.item() == programs
    assert (seen == seen[:, :1]).all()  # one ticket per program
    assert sorted(seen[:, 0].tolist()) == list(range(programs))


@triton.jit
def cas_kernel(lock_ptr, out_ptr):
    old = tl.atomic_cas(lock_ptr + tl.program_id(0), 0, tl.program_id(0) + 1)
    tl.store(out_ptr + tl.program_id(0), old)


def test_atomic_cas_swaps_only_when_equal(device):
    lock = torch.tensor([0, 5, 0, 9], dtype=torch.int32, device=device)
    out = torch.full((4,), -1, dtype=torch.int32, device=device)
    cas_kernel[(4,)](lock, out)
    assert lock.cpu().tolist() == [1, 5, 3, 9]
    assert out.cpu().tolist() == [0, 5, 0, 9]


@triton.jit
def xchg_kernel(ptr, val_ptr, old_ptr, N: tl.constexpr):
    offs = tl.arange(0, N)
    tl.store(old_ptr + offs, tl.atomic_xchg(ptr + offs, tl.load(val_ptr + offs)))


def test_atomic_xchg_returns_previous_values(device):
    before = torch.arange(64, dtype=torch.float32, device=device)
    vals = torch.arange(64, dtype=torch.float32, device=device) * -2
    old = torch.empty(64, device=device)
    xchg_kernel[(1,)](before, vals, old, N=64)
    assert old.cpu().tolist() == list(map(float, range(64)))
    assert before.cpu().tolist() == (vals.cpu()).tolist()


@triton.jit
def i64_atomic_kernel(ptr):
    tl.atomic_add(ptr + tl.arange(0, 32), tl.full([32], 1, tl.int64))


def test_i64_atomic_add_is_refused(compile_refusal):
    # 8- and 16-bit atomics run as compare-and-swap on their word (test_subword_atomics.py); 64-bit
    # ones have no Metal atomic to build on.
    from triton_metal.refusals import refusal
    msg = compile_refusal(i64_atomic_kernel, {"ptr": "*i64"})
    assert msg == refusal("atomic_dtype").message(kind="add", dtype="i64")


@triton.jit
def barrier_kernel(x_ptr, tmp_ptr, out_ptr, N: tl.constexpr):
    offs = tl.arange(0, N)
    tl.store(tmp_ptr + offs, tl.load(x_ptr + offs) + 1)
    tl.debug_barrier()
    # Elements another thread stored are visible after the barrier.
    tl.store(out_ptr + offs, tl.load(tmp_ptr + (N - 1 - offs)) * 2)


def test_debug_barrier_orders_global_memory_within_a_program(device):
    x = torch.arange(128, dtype=torch.float32, device=device)
    tmp, out = torch.empty(128, device=device), torch.empty(128, device=device)
    barrier_kernel[(1,)](x, tmp, out, N=128)
    np.testing.assert_array_equal(out.cpu().numpy(), (np.arange(128, dtype=np.float32)[::-1] + 1) * 2)


@triton.jit
def poll_kernel(flag_ptr, out_ptr, timeout_ns):
    tl.store(out_ptr, tl.atomic_poll(flag_ptr, 1, timeout_ns=timeout_ns, sem="acquire"))


@pytest.mark.parametrize("dtype", [torch.int16, torch.int32, torch.int64])
@pytest.mark.parametrize("initial", [0, 1])
def test_atomic_poll_reports_whether_the_flag_matched_before_the_timeout(dtype, initial, device):
    flag = torch.full((1,), initial, dtype=dtype, device=device)
    out = torch.zeros(1, dtype=torch.bool, device=device)
    poll_kernel[(1,)](flag, out, 0, num_warps=4)
    assert out.item() == (initial == 1)


@triton.jit
def handoff_kernel(flag_ptr, payload_ptr, out_ptr):
    # Program 0 waits (no timeout) for program 1's flag, then reads the payload it published.
    if tl.program_id(0) == 0:
        tl.atomic_poll(flag_ptr, 1, sem="acquire", scope="gpu")
        tl.store(out_ptr, tl.load(payload_ptr))
    else:
        tl.store(payload_ptr, 42)
        tl.atomic_xchg(flag_ptr, 1, sem="release", scope="gpu")


def test_atomic_poll_waits_for_another_program(device):
    flag, payload, out = (torch.zeros(1, dtype=torch.int32, device=device) for _ in range(3))
    handoff_kernel[(2,)](flag, payload, out, num_warps=4)
    assert (flag.item(), out.item()) == (1, 42)


@triton.jit
def pairwise_sum_kernel(out_ptr, val_ptr, NUM: tl.constexpr):
    # Two neighbours add into one element; the atomic's layout differs from the load's, and at
    # NUM=128 (64 KiB of f32) the conversion between them is larger than threadgroup memory.
    off = tl.arange(0, NUM)
    offset = off[:, None] * NUM + off[None, :]
    tl.atomic_add(out_ptr + offset // 2, tl.load(val_ptr + offset))


@pytest.mark.parametrize("num", [64, 128])
def test_layout_conversion_larger_than_threadgroup_memory_runs_in_rounds(num, device):
    val = np.random.default_rng(num).standard_normal(num * num).astype(np.float32)
    out = torch.zeros(num * num // 2, dtype=torch.float32, device=device)
    compiled = pairwise_sum_kernel[(1,)](out, torch.from_numpy(val).to(device), num, num_warps=1)
    np.testing.assert_allclose(out.cpu().numpy(), val[0::2] + val[1::2], rtol=1e-6)
    assert (b"per round" in compiled.asm["msl"]) == (num * num * 4 > 32 * 1024)
