"""8- and 16-bit atomics against numpy: Metal has none, so each is a compare-and-swap loop on the aligned
32-bit word holding the element (codegen/msl_helpers.subword_atomic). Every test makes many programs
update the same elements and their neighbours in the same word at once, so a loop that lost or
clobbered a neighbour's update would show.

Triton 3.9's frontend emits tl.atomic_add on f16/bf16 and tl.atomic_cas on 16-bit elements; it refuses
the other 8/16-bit integer atomics itself (`_validate_atomic_rmw_element_type`), so their tests lift that
one check (`frontend_allows_subword_ints`) to reach the backend's lowering of the IR.
"""
import numpy as np
import pytest
import torch
import triton
import triton.language as tl
from triton.language import semantic

from conformance.ops.atomic_kernels import atomic_kernel

PROGRAMS, N = 16, 64




def _masked_bins(bins):
    offs = np.arange(PROGRAMS * N)
    mask = offs % 3 != 0
    return [mask & (offs % bins == b) for b in range(bins)]


def _run_histogram(init, vals, op, device):
    acc = torch.from_numpy(init.copy()).to(device)
    old = torch.from_numpy(np.zeros_like(vals)).to(device)
    atomic_kernel[(PROGRAMS,)](acc, torch.from_numpy(vals).to(device), old, N=N, BINS=len(init), OP=op)
    return acc.cpu().numpy(), old.cpu().numpy()


def _assert_old_values_chain(init, vals, final, olds, sel):
    """Each update's old value plus its operand is another update's old value or the final value: the
    old values of one element are the distinct partial sums of its updates, in some order."""
    got = sorted(olds[sel].astype(np.float64).tolist())
    nxt = sorted((olds[sel].astype(np.float64) + vals[sel].astype(np.float64)).tolist())
    assert sorted([float(init)] + nxt) == sorted(got + [float(final)])


FLOAT_TYPES = {"f16": torch.float16, "bf16": torch.bfloat16}


@pytest.mark.parametrize("bins", [2, 3, 4])  # 3: the last element's word reaches past the tensor
@pytest.mark.parametrize("dtype", ["f16", "bf16"])
def test_half_atomic_add_histogram_is_exact(dtype, bins, device):
    # Every partial sum of a bin, in any order, is bounded by the sum of its operands' magnitudes
    # (checked below) and is a multiple of the step: exact in f16 (11-bit significand: multiples of
    # 0.5 up to 1024) and bf16 (8 bits: integers up to 256), so every order gives the numpy sum exactly.
    rng = np.random.default_rng(bins)
    choices = [-1.0, 0.0, 0.0, 0.0, 1.0] if dtype == "bf16" else [-1.0, -0.5, 0.0, 0.5, 1.0]
    vals64 = rng.choice(choices, size=PROGRAMS * N)
    exact_to = 256 if dtype == "bf16" else 1024
    assert all(np.abs(vals64[sel]).sum() <= exact_to for sel in _masked_bins(bins))
    tdtype = FLOAT_TYPES[dtype]
    vals = torch.from_numpy(vals64.astype(np.float32)).to(tdtype)
    acc = torch.zeros(bins, dtype=tdtype, device=device)
    old = torch.zeros(PROGRAMS * N, dtype=tdtype, device=device)
    atomic_kernel[(PROGRAMS,)](acc, vals.to(device), old, N=N, BINS=bins, OP="add")
    final, olds = acc.cpu().float().numpy(), old.cpu().float().numpy()
    for b, sel in enumerate(_masked_bins(bins)):
        assert final[b] == vals64[sel].sum()
        _assert_old_values_chain(0.0, vals64, final[b], olds, sel)


@triton.jit
def sequential_add_kernel(acc_ptr, val_ptr, K: tl.constexpr, N: tl.constexpr):
    # One program adds K rows in order into one row (the atomic of Liger's group norm backward, whose
    # programs accumulate bf16 partial gradients), so the order of the roundings is known.
    offs = tl.arange(0, N)
    for k in range(K):
        tl.atomic_add(acc_ptr + offs, tl.load(val_ptr + k * N + offs))


@pytest.mark.parametrize("dtype", ["f16", "bf16"])
def test_half_atomic_add_rounds_each_addition_to_nearest_even(dtype, device):
    # Reference: torch CPU's f16/bf16 addition, which adds in float and rounds once to nearest even,
    # as CUDA's atomicAdd on half/bfloat16 does; applied in the kernel's order, it must match bit for bit.
    k, n = 24, 128
    gen = torch.Generator().manual_seed(7)
    tdtype = FLOAT_TYPES[dtype]
    vals = (torch.randn(k, n, generator=gen) * torch.logspace(-3, 3, n)).to(tdtype)
    acc = torch.randn(n, generator=gen).to(tdtype)
    want = acc.clone()
    for row in vals:
        want = want + row
    acc_dev = acc.to(device)
    sequential_add_kernel[(1,)](acc_dev, vals.to(device), K=k, N=n)
    assert torch.equal(acc_dev.cpu().view(torch.int16), want.view(torch.int16))


@triton.jit
def accumulate_rows_kernel(acc_ptr, val_ptr, N: tl.constexpr):
    offs = tl.arange(0, N)
    tl.atomic_add(acc_ptr + offs, tl.load(val_ptr + tl.program_id(0) * N + offs))


def test_bf16_atomic_accumulation_over_many_programs(device):
    # Liger's group norm backward: many programs atomic_add bf16 partial sums into one bf16 row, in
    # whatever order they arrive. Each addition rounds to bf16 (relative error <= 2^-9), so the result
    # is within sum_k 2^-9 |S_k| <= K * 2^-9 * sum_k |v_k| of the exact (f64) sum, per element.
    k, n = 32, 256
    gen = torch.Generator().manual_seed(3)
    vals = torch.randn(k, n, generator=gen).to(torch.bfloat16)
    acc = torch.zeros(n, dtype=torch.bfloat16, device=device)
    accumulate_rows_kernel[(k,)](acc, vals.to(device), N=n)
    exact = vals.double().sum(0)
    bound = k * 2.0 ** -9 * vals.double().abs().sum(0)
    err = (acc.cpu().double() - exact).abs()
    assert (err <= bound).all(), float((err - bound).max())


@triton.jit
def cas_claim_kernel(slot_ptr, old_ptr, SLOTS: tl.constexpr):
    # Every program tries to claim slot pid % SLOTS (0 means free) with its own id + 1.
    pid = tl.program_id(0)
    ty = slot_ptr.dtype.element_ty
    tl.store(old_ptr + pid, tl.atomic_cas(slot_ptr + pid % SLOTS, (pid * 0).to(ty), (pid + 1).to(ty)))


@pytest.mark.parametrize("dtype", [torch.int16, torch.uint16, torch.float16, torch.bfloat16])
def test_16bit_atomic_cas_has_one_winner_per_element(dtype, device):
    programs, slots = 64, 4  # four 16-bit slots: two words, each claimed by 16 programs at once
    slot = torch.zeros(slots, dtype=dtype, device=device)
    old = torch.full((programs,), 7, dtype=dtype, device=device)
    cas_claim_kernel[(programs,)](slot, old, SLOTS=slots)
    as_int = (lambda t: t.cpu().float().numpy().astype(np.int64)) if dtype.is_floating_point else \
        (lambda t: t.cpu().view(torch.int16).numpy().astype(np.int64))
    final, olds = as_int(slot), as_int(old)
    for s in range(slots):
        contenders = np.arange(s, programs, slots)
        winner = final[s] - 1
        assert winner in contenders
        assert olds[winner] == 0
        assert (olds[contenders[contenders != winner]] == final[s]).all()


# ---- 8- and 16-bit integer read-modify-writes (beyond what Triton 3.9's frontend emits) ----------------

@pytest.fixture
def frontend_allows_subword_ints(monkeypatch):
    """Lifts Triton's frontend check that refuses 8/16-bit integer atomic_rmw, for these tests only."""
    original = semantic.TritonSemantic._validate_atomic_rmw_element_type

    def validate(self, element_ty, op):
        if element_ty.is_int() and element_ty.primitive_bitwidth in (8, 16):
            return
        return original(self, element_ty, op)
    monkeypatch.setattr(semantic.TritonSemantic, "_validate_atomic_rmw_element_type", validate)


INT_TYPES = {"i8": np.int8, "u8": np.uint8, "i16": np.int16, "u16": np.uint16}
REDUCE = {"add": np.add, "max": np.maximum, "min": np.minimum, "and": np.bitwise_and, "or": np.bitwise_or,
          "xor": np.bitwise_xor}


@pytest.mark.parametrize("op", ["add", "max", "min", "and", "or", "xor", "xchg"])
@pytest.mark.parametrize("dtype", list(INT_TYPES))
def test_subword_integer_atomics_on_one_word(dtype, op, frontend_allows_subword_ints, device):
    # All bins in one 32-bit word (four 8-bit or two 16-bit ones), updated by 16 programs at once.
    npt = INT_TYPES[dtype]
    info = np.iinfo(npt)
    bins = 4 // npt().itemsize
    rng = np.random.default_rng(len(op) * 10 + bins)
    if op == "xchg":  # distinct operands, so the exchanges can be told apart
        vals = rng.permutation(np.arange(PROGRAMS * N) % (int(info.max) - int(info.min) + 1) + int(info.min))
        vals = vals.astype(npt)
    else:
        vals = rng.integers(info.min, int(info.max) + 1, size=PROGRAMS * N).astype(npt)
    init = rng.integers(info.min, int(info.max) + 1, size=bins).astype(npt)
    final, olds = _run_histogram(init, vals, op, device)
    for b, sel in enumerate(_masked_bins(bins)):
        if op == "xchg":
            # The exchanges form one chain: the old values and the final value are the initial
            # value and the operands, each once.
            assert sorted(olds[sel].tolist() + [final[b]]) == sorted(vals[sel].tolist() + [init[b]])
            continue
        with np.errstate(over="ignore"):
            want = REDUCE[op].reduce(np.concatenate([[init[b]], vals[sel]]).astype(npt), dtype=npt)  # add wraps
        assert final[b] == want, (b, final[b], want)
        if op == "add":  # the old values are the wrapped partial sums, in some order
            wrap = 2 ** (8 * npt().itemsize)
            got = sorted((olds[sel].astype(np.int64) % wrap).tolist())
            nxt = sorted(((olds[sel].astype(np.int64) + vals[sel].astype(np.int64)) % wrap).tolist())
            assert sorted([int(init[b]) % wrap] + nxt) == sorted(got + [int(final[b]) % wrap])


# ---- atomic_load / atomic_store of 8- and 16-bit elements -------------------------------------------

@triton.jit
def load_store_kernel(src_ptr, dst_ptr, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    mask = offs < n
    val = tl.atomic_load(src_ptr + offs, mask=mask, sem="relaxed")
    tl.atomic_store(dst_ptr + offs, val + 1, mask=mask, sem="relaxed")


@pytest.mark.parametrize("dtype", [torch.int8, torch.int16, torch.float16, torch.bfloat16])
def test_subword_atomic_load_and_store_keep_neighbours(dtype, device):
    # Neighbouring threads store the elements of one word at once; each store must keep the others.
    n = 37  # odd: the last word is partly outside the tensor
    src = torch.arange(n).to(dtype)
    dst = torch.full((n,), 5, dtype=dtype, device=device)
    load_store_kernel[(1,)](src.to(device), dst, n, BLOCK=64)
    assert torch.equal(dst.cpu(), (src.float() + 1).to(dtype))


# ---- strict mode: the containing word is checked as the element ---------------------------------------

@triton.jit
def add_at_kernel(ptr, index):
    tl.atomic_add(ptr + index, 1.0)


@pytest.fixture
def strict_simulator(monkeypatch, device):
    if str(device) != "cpu":
        pytest.skip("strict mode is the simulator's")
    monkeypatch.setenv("TRITON_METAL_SIM_STRICT", "1")


def test_strict_mode_accepts_the_word_of_the_last_element(strict_simulator):
    # Three f16 elements are 6 bytes; element 2's word is bytes 4..7, two of them past the tensor. The
    # exchange writes them back unchanged (and on Metal they are inside the page-granular buffer).
    x = torch.zeros(3, dtype=torch.float16)
    add_at_kernel[(1,)](x, 2)
    assert x.tolist() == [0.0, 0.0, 1.0]


def test_strict_mode_accepts_a_word_starting_before_a_view(strict_simulator):
    # x[1:] of an f16 tensor starts 2 bytes into a word: its element 0's word begins before the view.
    base = torch.zeros(4, dtype=torch.float16)
    add_at_kernel[(1,)](base[1:], 0)
    assert base.tolist() == [0.0, 1.0, 0.0, 0.0]


def test_strict_mode_reports_an_element_past_the_end(strict_simulator):
    # Element 3 of a 3-element f16 tensor lies in the same word as element 2, but is itself outside.
    from triton_metal.sim import SimStrictError
    x = torch.zeros(3, dtype=torch.float16)
    with pytest.raises(SimStrictError, match="out-of-bounds atomic of 2 bytes at byte offset 6"):
        add_at_kernel[(1,)](x, 3)


# ---- contention: programs on parallel threads updating one word for a long time ---------------------

@triton.jit
def hammer_kernel(acc_ptr, K: tl.constexpr, N: tl.constexpr, BINS: tl.constexpr):
    # Every thread adds +1 then -1 (alternately, K times) to one bin of a single 32-bit word. The programs
    # overlap in time (the simulator runs threadgroups on parallel OS threads, a GPU on parallel cores),
    # so a compare-and-swap often fails on another program's update and must retry; an update lost or
    # written over a neighbour's would leave a bin away from 0. Each thread's running contribution is 0
    # or 1, so every partial sum is an integer of at most programs * N / BINS: exact in f16 and bf16.
    offs = tl.arange(0, N)
    one = tl.full([N], 1, acc_ptr.dtype.element_ty)
    for k in range(K):
        tl.atomic_add(acc_ptr + offs % BINS, one if k % 2 == 0 else -one, sem="relaxed")


# dtype -> programs: at most 256 (bf16's exact integers) / (N / BINS) programs for bf16
HAMMER_PROGRAMS = {torch.float16: 32, torch.bfloat16: 8, torch.int8: 32, torch.int16: 32}


@pytest.mark.parametrize("dtype", list(HAMMER_PROGRAMS))
def test_contended_word_loses_no_update(dtype, device, frontend_allows_subword_ints):
    n, k = 64, 1024
    bins = 4 // dtype.itemsize
    acc = torch.zeros(bins, dtype=dtype, device=device)
    hammer_kernel[(HAMMER_PROGRAMS[dtype],)](acc, K=k, N=n, BINS=bins)
    assert acc.cpu().float().tolist() == [0.0] * bins
