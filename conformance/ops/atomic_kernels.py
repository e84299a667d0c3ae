"""The histogram kernel of the atomics tests (test_atomics.py: 32-bit; test_subword_atomics.py: 8/16-bit):
every program updates BINS shared elements with one tl.atomic_<OP>, masked, and stores the old values."""
import triton
import triton.language as tl


@triton.jit
def atomic_kernel(acc_ptr, val_ptr, old_ptr, N: tl.constexpr, BINS: tl.constexpr, OP: tl.constexpr):
    offs = tl.program_id(0) * N + tl.arange(0, N)
    val = tl.load(val_ptr + offs)
    target = acc_ptr + offs % BINS
    mask = offs % 3 != 0
    if OP == "add":
        old = tl.atomic_add(target, val, mask=mask)
    elif OP == "max":
        old = tl.atomic_max(target, val, mask=mask)
    elif OP == "min":
        old = tl.atomic_min(target, val, mask=mask)
    elif OP == "and":
        old = tl.atomic_and(target, val, mask=mask)
    elif OP == "or":
        old = tl.atomic_or(target, val, mask=mask)
    elif OP == "xor":
        old = tl.atomic_xor(target, val, mask=mask)
    else:
        old = tl.atomic_xchg(target, val, mask=mask)
    tl.store(old_ptr + offs, old, mask=mask)
