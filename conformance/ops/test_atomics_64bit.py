"""64-bit atomics: exactly what Metal has, and a refusal naming what it lacks for everything else.

Metal's only 64-bit atomics (MSL specification 6.15.4.6 "Atomic Modify Functions (64 Bits)", MSL 2.4+)
are `void atomic_max_explicit / atomic_min_explicit(device atomic_ulong*, ulong, memory_order_relaxed)`,
on GPU families Apple8 (M2 Macs) and Apple9+ (abi.ATOMIC_ULONG_MIN_MAX_FAMILIES). The backend lowers
tl.atomic_max / tl.atomic_min on uint64 whose old value is not used to them, for targets of those
families; the tests pick the target with `target_chip` (the simulator runs the MSL of any target).
"""
import numpy as np
import pytest
import torch
import triton
import triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from triton_metal.driver import MetalDriver
from triton_metal.errors import UnsupportedOperationError

PROGRAMS, N = 16, 64


@pytest.fixture
def target_chip(monkeypatch):
    """Compile launches for the given chip (the Triton target arch), as if the runtime had that GPU."""
    def use(chip_id):
        monkeypatch.setattr(MetalDriver, "get_current_target", lambda self: GPUTarget("metal", chip_id, 32))
    return use


@triton.jit
def minmax_kernel(acc_ptr, val_ptr, N: tl.constexpr, BINS: tl.constexpr, OP: tl.constexpr):
    # Every program updates the same BINS elements: contended atomics, a third of the lanes masked off.
    offs = tl.program_id(0) * N + tl.arange(0, N)
    vals = tl.load(val_ptr + offs)
    mask = offs % 3 != 0
    if OP == "max":
        tl.atomic_max(acc_ptr + offs % BINS, vals, mask=mask)
    else:
        tl.atomic_min(acc_ptr + offs % BINS, vals, mask=mask)


def _u64(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a.view(np.int64).copy()).view(torch.uint64)


def _numpy_u64(t: torch.Tensor) -> np.ndarray:
    return t.view(torch.int64).cpu().numpy().view(np.uint64)


def _values_beyond_32_bits(seed: int) -> np.ndarray:
    # Full 64-bit values, with some that agree in their high word and differ in the low one, and some
    # whose low words order the other way round: a 32-bit (or truncating) atomic gets them wrong.
    rng = np.random.default_rng(seed)
    vals = rng.integers(0, 2**64, size=PROGRAMS * N, dtype=np.uint64)
    vals[::7] = np.uint64(0xFFFF_FFFF_0000_0000) + rng.integers(0, 2**32, size=len(vals[::7]), dtype=np.uint64)
    vals[::11] = np.uint64(0x0000_0001_0000_0000) - rng.integers(1, 2**16, size=len(vals[::11]), dtype=np.uint64)
    return vals


@pytest.mark.parametrize("chip", ["apple-m2", "apple-m3"])
@pytest.mark.parametrize("bins", [1, 5])
@pytest.mark.parametrize("op", ["max", "min"])
def test_contended_uint64_max_min_match_numpy(op, bins, chip, target_chip, device):
    target_chip(chip)
    vals = _values_beyond_32_bits(bins)
    init = np.full(bins, 0 if op == "max" else 2**64 - 1, dtype=np.uint64)
    init[0] = np.uint64(0x8000_0000_0000_0001)  # an initial value some updates beat and some do not
    acc = _u64(init).to(device)
    minmax_kernel[(PROGRAMS,)](acc, _u64(vals).to(device), N=N, BINS=bins, OP=op)
    offs = np.arange(PROGRAMS * N)
    reduce = np.maximum if op == "max" else np.minimum
    expected = [reduce.reduce(np.append(vals[(offs % 3 != 0) & (offs % bins == b)], init[b])) for b in range(bins)]
    np.testing.assert_array_equal(_numpy_u64(acc), np.array(expected, dtype=np.uint64))


def _msl(kernel, signature, constexprs, arch="apple-m2") -> str:
    compiled = triton.compile(ASTSource(kernel, signature, constexprs), target=GPUTarget("metal", arch, 32))
    msl = compiled.asm["msl"]
    return msl.decode() if isinstance(msl, bytes) else msl


MINMAX_SIGNATURE = {"acc_ptr": "*u64", "val_ptr": "*u64", "N": "constexpr", "BINS": "constexpr", "OP": "constexpr"}


@pytest.mark.parametrize("op", ["max", "min"])
def test_msl_calls_metals_void_ulong_atomic_on_device_memory(op):
    msl = _msl(minmax_kernel, MINMAX_SIGNATURE, {"N": N, "BINS": 4, "OP": op})
    calls = [line.strip() for line in msl.splitlines() if "_explicit(" in line]
    assert len(calls) == 1, calls
    assert f"atomic_{op}_explicit((device atomic_ulong*)(" in calls[0]
    assert calls[0].endswith(", memory_order_relaxed);") and "ulong(" in calls[0]
    assert "old_values" not in msl  # no value comes back, so none is shared between threads


@triton.jit
def ordered_max_kernel(acc_ptr, val_ptr, flag_ptr, old_ptr):
    # The int32 exchange's old value is read, so the acq_rel max orders memory across programs (memory_model).
    offs = tl.arange(0, 16)
    tl.atomic_max(acc_ptr + offs, tl.load(val_ptr + offs), sem="acq_rel")
    tl.store(old_ptr + offs, tl.atomic_xchg(flag_ptr + offs, offs))


def test_an_ordered_uint64_max_uses_coherent_buffers_and_device_fences():
    msl = _msl(ordered_max_kernel, {"acc_ptr": "*u64", "val_ptr": "*u64", "flag_ptr": "*i32", "old_ptr": "*i32"}, {})
    lines = [line.strip() for line in msl.splitlines()]
    call = next(i for i, line in enumerate(lines) if "atomic_max_explicit(" in line)
    assert "atomic_max_explicit((coherent(device) device atomic_ulong*)(" in lines[call]
    fence = "atomic_thread_fence(mem_flags::mem_device, memory_order_seq_cst, thread_scope_device);"
    assert any(line.startswith(fence) and "release" in line for line in lines[call - 3:call])
    assert any(line.startswith(fence) and "acquire" in line for line in lines[call + 1:call + 5])


# --- refusals ---------------------------------------------------------------------------------------

def _refusal(kernel, signature, constexprs=None, arch="apple-m2") -> str:
    with pytest.raises(Exception) as info:
        triton.compile(ASTSource(kernel, signature, constexprs or {}), target=GPUTarget("metal", arch, 32))
    err = info.value
    while err is not None and not isinstance(err, UnsupportedOperationError):
        err = err.__cause__ or err.__context__
    assert err is not None, f"not refused by the Metal backend: {info.value!r}"
    return str(err).split("\n")[0]


@triton.jit
def rmw_kernel(acc_ptr, val_ptr, OP: tl.constexpr):
    offs = tl.arange(0, 16)
    vals = tl.load(val_ptr + offs)
    if OP == "add":
        tl.atomic_add(acc_ptr + offs, vals)
    elif OP == "xchg":
        tl.atomic_xchg(acc_ptr + offs, vals)
    elif OP == "and":
        tl.atomic_and(acc_ptr + offs, vals)
    elif OP == "or":
        tl.atomic_or(acc_ptr + offs, vals)
    elif OP == "xor":
        tl.atomic_xor(acc_ptr + offs, vals)
    elif OP == "max":
        tl.atomic_max(acc_ptr + offs, vals)
    else:
        tl.atomic_min(acc_ptr + offs, vals)


@triton.jit
def max_returning_kernel(acc_ptr, val_ptr, old_ptr):
    offs = tl.arange(0, 16)
    old = tl.atomic_max(acc_ptr + offs, tl.load(val_ptr + offs))
    tl.store(old_ptr + offs, old)


@triton.jit
def cas_kernel(acc_ptr, val_ptr):
    offs = tl.arange(0, 16)
    tl.atomic_cas(acc_ptr + offs, tl.zeros([16], acc_ptr.dtype.element_ty), tl.load(val_ptr + offs))


NOT_IN_METAL = ("Metal's only 64-bit atomics are max and min of unsigned 64-bit integers whose old value is not "
                "used (atomic_max_explicit / atomic_min_explicit on atomic_ulong, MSL 6.15.4.6)")


@pytest.mark.parametrize("dtype", ["i64", "u64"])
@pytest.mark.parametrize("op, kind", [("add", "add"), ("xchg", "exch"), ("and", "and"), ("or", "or"),
                                      ("xor", "xor")])
def test_64bit_atomics_metal_lacks_are_refused(op, kind, dtype):
    msg = _refusal(rmw_kernel, {"acc_ptr": f"*{dtype}", "val_ptr": f"*{dtype}", "OP": "constexpr"}, {"OP": op})
    assert msg.startswith(f"Operation atomic {kind} on i64 is not supported by the Metal backend: {NOT_IN_METAL}")


@pytest.mark.parametrize("dtype", ["i64", "u64"])
def test_64bit_compare_and_swap_is_refused(dtype):
    msg = _refusal(cas_kernel, {"acc_ptr": f"*{dtype}", "val_ptr": f"*{dtype}"})
    assert msg.startswith(f"Operation atomic cas on i64 is not supported by the Metal backend: {NOT_IN_METAL}")


def test_float64_atomic_add_is_refused():
    msg = _refusal(rmw_kernel, {"acc_ptr": "*fp64", "val_ptr": "*fp64", "OP": "constexpr"}, {"OP": "add"})
    assert "fp64" in msg or "f64" in msg, msg


@pytest.mark.parametrize("op", ["max", "min"])
def test_signed_int64_max_min_are_refused_as_metal_compares_unsigned(op):
    msg = _refusal(rmw_kernel, {"acc_ptr": "*i64", "val_ptr": "*i64", "OP": "constexpr"}, {"OP": op})
    assert msg == (f"Operation atomic {op} on int64 is not supported by the Metal backend: Metal's 64-bit max/min "
                   "compare unsigned values (atomic_ulong; there is no atomic_long), which orders negative int64 "
                   "values after positive ones. Instead: use uint64 values (e.g. add 2**63 to map int64 order onto "
                   "uint64 order) or int32")


def test_a_used_old_value_of_uint64_max_is_refused():
    msg = _refusal(max_returning_kernel, {"acc_ptr": "*u64", "val_ptr": "*u64", "old_ptr": "*u64"})
    assert msg == ("Operation the old value of atomic max on uint64 is not supported by the Metal backend: Metal's "
                   "64-bit atomic_max_explicit / atomic_min_explicit return nothing (MSL 6.15.4.6). Instead: do not "
                   "use the result (call tl.atomic_max / tl.atomic_min as a statement), or use 32-bit values")


@pytest.mark.parametrize("op", ["max", "min"])
def test_uint64_max_min_are_refused_on_apple7_naming_the_family(op):
    msg = _refusal(minmax_kernel, MINMAX_SIGNATURE, {"N": N, "BINS": 4, "OP": op}, arch="apple-m1")
    assert msg == (f"Operation atomic {op} on uint64 for apple-m1 is not supported by the Metal backend: Metal's "
                   "64-bit atomics (max/min on atomic_ulong) need GPU family Apple8 (M2) or later, and apple-m1 is "
                   "of family apple7. Instead: run on an M2 or later Mac (simulator: TRITON_METAL_SIM_CHIP=apple-m2 "
                   "or newer), or use 32-bit values")


# --- the simulator's library and the front-end model: Apple's set, no more ----------------------------

ULONG_STATEMENTS = {
    "max on device atomic_ulong": ("atomic_max_explicit((device atomic_ulong*)p, 5UL, memory_order_relaxed);", True),
    "min on device atomic_ulong": ("atomic_min_explicit((device atomic_ulong*)p, 5UL, memory_order_relaxed);", True),
    "the value of a 64-bit max": ("ulong r = atomic_max_explicit((device atomic_ulong*)p, 5UL, memory_order_relaxed);",
                                  False),
    "fetch_add on atomic_ulong": ("atomic_fetch_add_explicit((device atomic_ulong*)p, 5UL, memory_order_relaxed);",
                                  False),
    "fetch_max on atomic_ulong": ("atomic_fetch_max_explicit((device atomic_ulong*)p, 5UL, memory_order_relaxed);",
                                  False),
    "exchange on atomic_ulong": ("atomic_exchange_explicit((device atomic_ulong*)p, 5UL, memory_order_relaxed);",
                                 False),
    "load of atomic_ulong": ("ulong r = atomic_load_explicit((device atomic_ulong*)p, memory_order_relaxed);", False),
    "max on atomic<long>": ("atomic_max_explicit((device atomic<long>*)p, 5L, memory_order_relaxed);", False),
}


def _shim_accepts(statement: str) -> bool:
    import shutil
    import subprocess

    from triton_metal.sim.build import INCLUDE_DIR
    if shutil.which("g++") is None:
        pytest.skip("no g++: the simulator's header cannot be compiled")
    source = f'#include "metal_shim.h"\nusing namespace metal;\nvoid k(ulong* p) {{\n{statement}\n}}\n'
    done = subprocess.run(["g++", "-std=c++17", "-fsyntax-only", f"-I{INCLUDE_DIR}", "-x", "c++", "-"],
                          input=source, capture_output=True, text=True, check=False)
    return done.returncode == 0


def _model_accepts(statement: str, space: str = "device") -> bool:
    pytest.importorskip("clang.cindex", reason="the Metal front-end check needs libclang")
    from triton_metal.metal_check import check_msl
    source = ("#include <metal_stdlib>\nusing namespace metal;\n"
              f"kernel void k(device ulong* p [[buffer(0)]]) {{\n{statement}\n}}\n")
    return not [d for d in check_msl(source, "k", "3.2") if d.severity == "error"]


@pytest.mark.parametrize("statement, apple_accepts", ULONG_STATEMENTS.values(), ids=ULONG_STATEMENTS.keys())
def test_the_simulator_library_has_metals_64bit_atomics_only(statement, apple_accepts):
    assert _shim_accepts(statement) == apple_accepts


@pytest.mark.parametrize("statement, apple_accepts", ULONG_STATEMENTS.values(), ids=ULONG_STATEMENTS.keys())
def test_the_front_end_model_has_metals_64bit_atomics_only(statement, apple_accepts):
    assert _model_accepts(statement) == apple_accepts


def test_the_front_end_model_rejects_64bit_max_on_threadgroup_memory():
    assert not _model_accepts("threadgroup atomic_ulong a;\n"
                              "atomic_max_explicit(&a, 5UL, memory_order_relaxed);")
    assert _model_accepts("threadgroup atomic_uint a;\natomic_fetch_max_explicit(&a, 5u, memory_order_relaxed);")
