"""The `sem` and `scope` of tl.atomic_*: the fences and coherent buffers of the MSL, per Metal version
(codegen/memory_model.py), the refusals where a version cannot order, and locks and split-K
reductions across many programs on the device (the simulator in CI) against numpy."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import triton
import triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from triton_metal.codegen import memory_model
from triton_metal.errors import UnsupportedOperationError
from triton_metal.refusals import refusal

FENCE = "atomic_thread_fence(mem_flags::mem_device, memory_order_seq_cst, thread_scope_device);"
BARRIER = "threadgroup_barrier(mem_flags::mem_device | mem_flags::mem_threadgroup);"


@triton.jit
def rmw_kernel(ptr, out, SEM: tl.constexpr, SCOPE: tl.constexpr):
    offs = tl.arange(0, 64)
    tl.store(out + offs, tl.atomic_add(ptr + offs, 1, sem=SEM, scope=SCOPE))


@triton.jit
def default_rmw_kernel(ptr, out):
    offs = tl.arange(0, 64)
    tl.store(out + offs, tl.atomic_add(ptr + offs, 1))


@triton.jit
def cas_kernel(ptr, out, SEM: tl.constexpr, SCOPE: tl.constexpr):
    tl.store(out, tl.atomic_cas(ptr, 0, 1, sem=SEM, scope=SCOPE))


@triton.jit
def poll_kernel(flag, out, SEM: tl.constexpr, SCOPE: tl.constexpr):
    tl.store(out, tl.atomic_poll(flag, 1, sem=SEM, scope=SCOPE))


SIGNATURE = {"ptr": "*i32", "out": "*i32", "SEM": "constexpr", "SCOPE": "constexpr"}
POLL_SIGNATURE = {"flag": "*i32", "out": "*i32", "SEM": "constexpr", "SCOPE": "constexpr"}


def _body(msl: str) -> list:
    """The kernel body's statements, one per line, comments dropped."""
    body = msl[msl.index("{", msl.index("kernel void")):]
    return [line.split("//")[0].strip() for line in body.splitlines() if line.split("//")[0].strip()]


def _around(msl: str, call: str) -> tuple:
    """(lines before, lines after) the line of the first `call`, each up to the next barrier pair."""
    lines = _body(msl)
    at = next(i for i, line in enumerate(lines) if call in line)
    start = max(i for i in range(at) if lines[i] == BARRIER)
    end = next(i for i in range(at, len(lines)) if lines[i] == BARRIER)
    return lines[start + 1:at], lines[end + 1:end + 2]


def _refusal(fn, signature, constexprs, **options) -> str:
    with pytest.raises(Exception) as info:
        triton.compile(ASTSource(fn, signature, constexprs), target=GPUTarget("metal", "apple-m1", 32),
                       options=options)
    err = info.value
    while err is not None and not isinstance(err, UnsupportedOperationError):
        err = err.__cause__ or err.__context__
    assert err is not None, f"not refused: {info.value!r}"
    return str(err).splitlines()[0]


# ---- Metal 3.2: device-scope fences and coherent buffers -----------------------------------------

@pytest.mark.parametrize("sem,before,after", [("release", True, False), ("acquire", False, True),
                                              ("acq_rel", True, True)])
def test_gpu_scope_fences_every_thread_before_a_release_and_after_an_acquire(sem, before, after, compile_msl):
    msl, _ = compile_msl(rmw_kernel, SIGNATURE, {"SEM": sem, "SCOPE": "gpu"}, msl_version="3.2")
    lines_before, lines_after = _around(msl, "atomic_fetch_add_explicit")
    # Outside the owner's `if`: each thread orders its own accesses, not only the one doing the atomic.
    assert (FENCE in lines_before[:1]) == before
    assert (lines_after == [FENCE]) == after
    assert msl.count(FENCE) == before + after


def test_the_default_sem_is_acq_rel_at_gpu_scope(compile_msl):
    msl, _ = compile_msl(default_rmw_kernel, {"ptr": "*i32", "out": "*i32"}, msl_version="3.2")
    assert msl.count(FENCE) == 2


@pytest.mark.parametrize("sem", ["acquire", "release", "acq_rel"])
def test_gpu_scope_ordering_makes_every_buffer_device_coherent(sem, compile_msl):
    msl, _ = compile_msl(rmw_kernel, SIGNATURE, {"SEM": sem, "SCOPE": "gpu"}, msl_version="3.2")
    assert "coherent(device) device int* ptr [[buffer(0)]]" in msl
    assert "coherent(device) device int* out [[buffer(1)]]" in msl
    assert "(coherent(device) device atomic_int*)" in msl  # the atomic's pointer keeps the qualifier


@pytest.mark.parametrize("sem", ["relaxed", "acquire", "release", "acq_rel"])
def test_cta_scope_and_relaxed_atomics_need_no_fence_nor_coherence(sem, compile_msl):
    for scope in ("cta",) if sem != "relaxed" else ("cta", "gpu"):
        msl, _ = compile_msl(rmw_kernel, SIGNATURE, {"SEM": sem, "SCOPE": scope}, msl_version="3.2")
        assert "atomic_thread_fence" not in msl and "coherent" not in msl
        # The threadgroup barriers on both sides order the program's accesses for its own threads.
        lines = _body(msl)
        at = next(i for i, line in enumerate(lines) if "atomic_fetch_add_explicit" in line)
        assert BARRIER in lines[at - 2:at] and lines.index(BARRIER, at) - at <= 6


def test_compare_and_swap_acquire_fences_after_it(compile_msl):
    msl, _ = compile_msl(cas_kernel, SIGNATURE, {"SEM": "acquire", "SCOPE": "gpu"}, msl_version="3.2")
    lines_before, lines_after = _around(msl, "tm_atomic_cas((")
    assert FENCE not in lines_before and lines_after == [FENCE]
    assert "inline int tm_atomic_cas(coherent(device) device atomic_int* p," in msl


def test_poll_acquire_fences_after_each_threads_own_poll(compile_msl):
    msl, _ = compile_msl(poll_kernel, POLL_SIGNATURE, {"SEM": "acquire", "SCOPE": "gpu"}, msl_version="3.2")
    lines = _body(msl)
    loop_end = next(i for i, line in enumerate(lines) if "atomic_load_explicit" in line) + 2
    assert lines[loop_end:loop_end + 2] == [FENCE, "threadgroup_barrier(mem_flags::mem_device);"]
    relaxed, _ = compile_msl(poll_kernel, POLL_SIGNATURE, {"SEM": "relaxed", "SCOPE": "gpu"}, msl_version="3.2")
    assert "atomic_thread_fence" not in relaxed


# ---- refusals -----------------------------------------------------------------------------------

@pytest.mark.parametrize("version,macos", [("3.0", "13"), ("3.1", "14")])
@pytest.mark.parametrize("sem", ["acquire", "release", "acq_rel"])
def test_ordering_across_programs_is_refused_before_metal_3_2(version, macos, sem):
    msg = _refusal(rmw_kernel, SIGNATURE, {"SEM": sem, "SCOPE": "gpu"}, msl_version=version)
    assert msg == refusal("atomic_order_needs_msl32").message(sem=sem, version=version, macos=macos)


def test_the_default_sem_is_refused_before_metal_3_2():
    msg = _refusal(default_rmw_kernel, {"ptr": "*i32", "out": "*i32"}, {}, msl_version="3.1")
    assert msg == refusal("atomic_order_needs_msl32").message(sem="acq_rel", version="3.1", macos="14")


def test_poll_and_cas_are_refused_before_metal_3_2():
    for fn, sig in ((poll_kernel, POLL_SIGNATURE), (cas_kernel, SIGNATURE)):
        msg = _refusal(fn, sig, {"SEM": "acquire", "SCOPE": "gpu"}, msl_version="3.1")
        assert msg == refusal("atomic_order_needs_msl32").message(sem="acquire", version="3.1", macos="14")


@pytest.mark.parametrize("sem,scope", [("relaxed", "gpu"), ("acq_rel", "cta"), ("release", "cta")])
def test_what_metal_3_1_can_express_compiles_without_fences(sem, scope, compile_msl):
    msl, _ = compile_msl(rmw_kernel, SIGNATURE, {"SEM": sem, "SCOPE": scope}, msl_version="3.1")
    assert "atomic_thread_fence" not in msl and "coherent" not in msl


@pytest.mark.parametrize("sem", ["relaxed", "acq_rel"])
@pytest.mark.parametrize("version", ["3.1", "3.2"])
def test_system_scope_is_refused(sem, version):
    msg = _refusal(rmw_kernel, SIGNATURE, {"SEM": sem, "SCOPE": "sys"}, msl_version=version)
    assert msg == refusal("atomic_scope_sys").message(sem=sem)


# ---- blind updates: no program can observe another's order -------------------------------------

@triton.jit
def blind_add_kernel(ptr, x_ptr, SEM: tl.constexpr):
    offs = tl.arange(0, 64)
    tl.atomic_add(ptr + offs % 8, tl.load(x_ptr + offs), sem=SEM)  # result unused: a sum, a histogram


@triton.jit
def volatile_flag_kernel(flag, data, out):
    tl.atomic_add(flag, 1)  # result unused, but another program spins on the flag with a volatile load
    while tl.load(flag, volatile=True) == 0:
        pass
    tl.store(out, tl.load(data))


BLIND_SIGNATURE = {"ptr": "*i32", "x_ptr": "*i32", "SEM": "constexpr"}


@pytest.mark.parametrize("version", ["3.1", "3.2"])
@pytest.mark.parametrize("sem", ["acq_rel", "release"])
def test_blind_updates_need_no_fence_in_any_version(sem, version, compile_msl):
    msl, _ = compile_msl(blind_add_kernel, BLIND_SIGNATURE, {"SEM": sem}, msl_version=version)
    assert "atomic_fetch_add_explicit" in msl
    assert "atomic_thread_fence" not in msl and "coherent" not in msl


def test_a_volatile_spin_wait_observes_other_programs(compile_msl):
    msl, _ = compile_msl(volatile_flag_kernel, {"flag": "*i32", "data": "*i32", "out": "*i32"}, {},
                         msl_version="3.2")
    assert FENCE in msl and "coherent(device)" in msl
    msg = _refusal(volatile_flag_kernel, {"flag": "*i32", "data": "*i32", "out": "*i32"}, {}, msl_version="3.1")
    assert msg == refusal("atomic_order_needs_msl32").message(sem="acq_rel", version="3.1", macos="14")


def test_blind_histogram_adds_up_across_programs(device):
    x = np.random.default_rng(0).integers(-50, 50, size=64 * 32).astype(np.int32)
    hist = torch.zeros(8, dtype=torch.int32, device=device)
    xs = torch.from_numpy(x).to(device)
    for pid in range(32):
        blind_add_kernel[(1,)](hist, xs[pid * 64:], SEM="acq_rel")
    expected = np.zeros(8, np.int64)
    np.add.at(expected, np.arange(64 * 32) % 64 % 8, x)
    np.testing.assert_array_equal(hist.cpu().numpy(), expected)


# ---- the target version -------------------------------------------------------------------------

@pytest.mark.parametrize("macos,version", [((13, 6), "3.0"), ((14, 5), "3.1"), ((15, 0), "3.2"), ((26, 1), "3.2")])
def test_code_is_generated_for_the_version_the_runtime_compiles_with(macos, version, monkeypatch):
    from triton_metal import abi
    from triton_metal.runtime import metal_runtime
    monkeypatch.delenv(memory_model.VERSION_ENV, raising=False)
    monkeypatch.setattr(abi, "macos_version", lambda: macos)
    assert memory_model.target_msl_version() == version
    assert metal_runtime.language_version_name(macos) == f"MTLLanguageVersion{version.replace('.', '_')}"


def test_off_macos_the_simulator_targets_the_newest_version(monkeypatch):
    from triton_metal import abi
    monkeypatch.delenv(memory_model.VERSION_ENV, raising=False)
    monkeypatch.setattr(abi, "macos_version", lambda: (0, 0))
    assert memory_model.target_msl_version() == "3.2"


def test_the_version_can_be_chosen_and_is_checked(monkeypatch):
    monkeypatch.setenv(memory_model.VERSION_ENV, "3.1")
    assert memory_model.target_msl_version() == "3.1"
    monkeypatch.setenv(memory_model.VERSION_ENV, "3.3")
    with pytest.raises(ValueError, match="TRITON_METAL_MSL_VERSION='3.3': use one of 3.0, 3.1, 3.2"):
        memory_model.target_msl_version()


# ---- on the device: locks and split-K reductions across many programs ---------------------------

@triton.jit
def locked_accumulate_kernel(x_ptr, partial_ptr, locks_ptr, counts_ptr, N: tl.constexpr, GROUPS: tl.constexpr):
    # Upstream tutorial 05's backward lock: each program adds its row into one of GROUPS shared
    # partial rows, with plain loads and stores, under that row's spin lock.
    row = tl.program_id(0)
    group = row % GROUPS
    cols = tl.arange(0, N)
    x = tl.load(x_ptr + row * N + cols)
    lock = locks_ptr + group
    while tl.atomic_cas(lock, 0, 1) == 1:
        pass
    count = tl.load(counts_ptr + group)
    if count == 0:
        tl.atomic_xchg(counts_ptr + group, 1)
    else:
        x += tl.load(partial_ptr + group * N + cols)
    tl.store(partial_ptr + group * N + cols, x)
    tl.debug_barrier()
    tl.atomic_xchg(lock, 0)


@pytest.mark.parametrize("programs,groups", [(96, 4), (64, 1)])
def test_lock_protected_accumulation_across_programs(programs, groups, device):
    n = 128
    x = np.random.default_rng(programs).integers(-64, 64, size=(programs, n)).astype(np.float32)  # exact sums
    partial = torch.full((groups, n), np.nan, dtype=torch.float32, device=device)  # initialised under the lock
    locks = torch.zeros(groups, dtype=torch.int32, device=device)
    counts = torch.zeros(groups, dtype=torch.int32, device=device)
    locked_accumulate_kernel[(programs,)](torch.from_numpy(x).to(device), partial, locks, counts, N=n, GROUPS=groups)
    want = np.stack([x[g::groups].sum(axis=0) for g in range(groups)])
    np.testing.assert_array_equal(partial.cpu().numpy(), want)
    assert locks.cpu().tolist() == [0] * groups and counts.cpu().tolist() == [1] * groups


@triton.jit
def split_k_kernel(a_ptr, b_ptr, c_ptr, partial_ptr, arrivals_ptr, M: tl.constexpr, N: tl.constexpr,
                   K: tl.constexpr, SPLIT: tl.constexpr):
    # Split-K without a second kernel: each program writes the partial product of its K slice with
    # plain stores; the last of the SPLIT programs of a tile to arrive (its ticket from the acq_rel
    # atomic) reads every partial with plain loads and writes C. No program waits for another.
    tile, part = tl.program_id(0), tl.program_id(1)
    rows = tile * M + tl.arange(0, M)
    ks = part * K + tl.arange(0, K)
    cols = tl.arange(0, N)
    a = tl.load(a_ptr + rows[:, None] * (K * SPLIT) + ks[None, :])
    b = tl.load(b_ptr + ks[:, None] * N + cols[None, :])
    acc = tl.dot(a, b)
    tile_offs = tl.arange(0, M)[:, None] * N + cols[None, :]
    tl.store(partial_ptr + (tile * SPLIT + part) * M * N + tile_offs, acc)
    ticket = tl.atomic_add(arrivals_ptr + tile, 1)
    if ticket == SPLIT - 1:
        total = tl.zeros([M, N], dtype=tl.float32)
        for p in range(SPLIT):
            total += tl.load(partial_ptr + (tile * SPLIT + p) * M * N + tile_offs)
        tl.store(c_ptr + rows[:, None] * N + cols[None, :], total)


def test_split_k_reduction_by_the_last_program_to_arrive(device):
    tiles, m, n, k, split = 6, 16, 16, 16, 8
    rng = np.random.default_rng(1)
    a = rng.integers(-4, 5, size=(tiles * m, k * split)).astype(np.float32)  # exact in float32
    b = rng.integers(-4, 5, size=(k * split, n)).astype(np.float32)
    c = torch.full((tiles * m, n), np.nan, dtype=torch.float32, device=device)
    partial = torch.empty(tiles * split * m * n, dtype=torch.float32, device=device)
    arrivals = torch.zeros(tiles, dtype=torch.int32, device=device)
    split_k_kernel[(tiles, split)](torch.from_numpy(a).to(device), torch.from_numpy(b).to(device), c, partial,
                                   arrivals, M=m, N=n, K=k, SPLIT=split)
    np.testing.assert_array_equal(c.cpu().numpy(), a @ b)
    assert arrivals.cpu().tolist() == [split] * tiles


# ---- tl.atomic_load / tl.atomic_store -----------------------------------------------------------

@triton.jit
def load_store_kernel(src, dst, n, SEM_LOAD: tl.constexpr, SEM_STORE: tl.constexpr, SCOPE: tl.constexpr):
    offs = tl.arange(0, 64)
    x = tl.atomic_load(src + offs, mask=offs < n, sem=SEM_LOAD, scope=SCOPE)
    tl.atomic_store(dst + offs, x * 2, mask=offs < n, sem=SEM_STORE, scope=SCOPE)


LOAD_STORE_SIGNATURE = {"src": "*fp32", "dst": "*fp32", "n": "i32", "SEM_LOAD": "constexpr",
                        "SEM_STORE": "constexpr", "SCOPE": "constexpr"}


def test_atomic_load_acquires_after_and_atomic_store_releases_before(compile_msl):
    msl, _ = compile_msl(load_store_kernel, LOAD_STORE_SIGNATURE,
                         {"SEM_LOAD": "acquire", "SEM_STORE": "release", "SCOPE": "gpu"}, msl_version="3.2")
    load_before, load_after = _around(msl, "atomic_load_explicit")
    store_before, store_after = _around(msl, "atomic_store_explicit")
    assert FENCE not in load_before and load_after == [FENCE]
    assert store_before[:1] == [FENCE] and store_after != [FENCE]
    assert "(coherent(device) device atomic_float*)" in msl


def test_atomic_load_and_store_move_values_under_their_masks(device):
    src = torch.arange(64, dtype=torch.float32, device=device) - 20
    dst = torch.full((64,), -1.0, dtype=torch.float32, device=device)
    load_store_kernel[(1,)](src, dst, 50, SEM_LOAD="acquire", SEM_STORE="release", SCOPE="gpu")
    want = np.full(64, -1.0, np.float32)
    want[:50] = (np.arange(50, dtype=np.float32) - 20) * 2
    np.testing.assert_array_equal(dst.cpu().numpy(), want)


@triton.jit
def publish_kernel(partial_ptr, flags_ptr, arrivals_ptr, total_ptr, PROGRAMS: tl.constexpr, N: tl.constexpr):
    # Each program publishes a row with plain stores and a release flag; the last to arrive waits only for
    # flags of programs that already arrived, reads each with an acquire load, then the rows.
    pid = tl.program_id(0)
    cols = tl.arange(0, N)
    tl.store(partial_ptr + pid * N + cols, (pid * N + cols).to(tl.float32))
    tl.atomic_store(flags_ptr + pid, 1, sem="release")
    if tl.atomic_add(arrivals_ptr, 1, sem="relaxed") == PROGRAMS - 1:
        total = tl.zeros([N], dtype=tl.float32)
        for p in range(PROGRAMS):
            while tl.atomic_load(flags_ptr + p, sem="acquire") != 1:
                pass
            total += tl.load(partial_ptr + p * N + cols)
        tl.store(total_ptr + cols, total)


def test_release_store_and_acquire_load_publish_rows_to_the_last_program(device):
    programs, n = 40, 32
    partial = torch.zeros(programs * n, dtype=torch.float32, device=device)
    flags = torch.zeros(programs, dtype=torch.int32, device=device)
    arrivals = torch.zeros(1, dtype=torch.int32, device=device)
    total = torch.full((n,), np.nan, dtype=torch.float32, device=device)
    publish_kernel[(programs,)](partial, flags, arrivals, total, PROGRAMS=programs, N=n)
    np.testing.assert_array_equal(total.cpu().numpy(),
                                  np.arange(programs * n, dtype=np.float32).reshape(programs, n).sum(0))
