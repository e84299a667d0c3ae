"""tl.device_print and tl.device_assert (kept by Triton with debug=True) on the device.

Every expected line is built from numpy's values with C's printf conventions, in the format of
Triton's CUDA lowering (``pid (x, y, z) idx (i, ...)<prefix>[(operand n) ]<value>``); the order is
the backend's documented one (program id, execution order, operand, element index), so whole
outputs are compared, not just sets of lines.
"""
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import triton
import triton.language as tl
from triton_metal.device_print import RECORDS_ENV, DeviceAssertionError
from triton_metal.errors import MetalError


@pytest.fixture(autouse=True, scope="module")
def fresh_triton_cache(tmp_path_factory):
    """Compile this module's kernels into an empty Triton cache.

    Triton keys its cache by kernel source, not file path, so a cache filled from another checkout
    of this file would name that checkout's path in the assertion messages these tests compare.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRITON_CACHE_DIR", str(tmp_path_factory.mktemp("triton-cache")))
        yield


def printed(capfd) -> list:
    return capfd.readouterr().out.splitlines()


def idx(i: int, n: int) -> str:
    """An index as CUDA pads it: to the digits of n - 1 (ceil(log10(n)))."""
    return f"{i:{len(str(n - 1))}d}" if n > 1 else str(i)


def c_value(v) -> str:
    """printf of one element as CUDA's lowering formats it: %f for floats, %i / %u for integers."""
    if isinstance(v, (np.floating, float)):
        return f"{float(v):f}"
    return str(int(v))


def source_line(fn, text: str) -> str:
    """`file:line` of the line of `fn` containing `text` (what the assertion error names)."""
    lines, start = inspect.getsourcelines(fn.fn)
    offset = next(k for k, line in enumerate(lines) if text in line)
    return f"{inspect.getsourcefile(fn.fn)}:{start + offset}"


# ---- device_print ---------------------------------------------------------------------------------

@triton.jit
def print_kernel(x_ptr, N: tl.constexpr):
    tl.device_print("x", tl.load(x_ptr + tl.arange(0, N)))


def _values(dtype, n, seed=0):
    rng = np.random.default_rng(seed)
    if dtype in (np.float32, np.float16):
        return (rng.standard_normal(n) * 100).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, n, endpoint=True, dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int32, np.int8, np.int64])
def test_print_tensor(device, capfd, dtype):
    ref = _values(dtype, 128)
    print_kernel[(1,)](torch.from_numpy(ref).to(device), N=128)
    assert printed(capfd) == [f"pid (0, 0, 0) idx ({idx(i, 128)}) x: {c_value(v)}" for i, v in enumerate(ref)]



def test_print_bfloat16(device, capfd):
    x = torch.from_numpy(_values(np.float32, 32, seed=6)).to(torch.bfloat16)
    print_kernel[(1,)](x.to(device), N=32)
    ref = x.float().numpy()  # bf16 -> f32 is exact
    assert printed(capfd) == [f"pid (0, 0, 0) idx ({idx(i, 32)}) x: {c_value(v)}" for i, v in enumerate(ref)]

@triton.jit
def print_bool_and_unsigned_kernel(x_ptr, N: tl.constexpr):
    x = tl.load(x_ptr + tl.arange(0, N))
    tl.device_print("positive", x > 0)
    tl.device_print("bits", x.to(tl.uint32, bitcast=True))


def test_print_bool_and_unsigned(device, capfd):
    ref = _values(np.int32, 64, seed=1)
    print_bool_and_unsigned_kernel[(1,)](torch.from_numpy(ref).to(device), N=64)
    expected = [f"pid (0, 0, 0) idx ({idx(i, 64)}) positive: {int(v)}" for i, v in enumerate(ref > 0)]
    expected += [f"pid (0, 0, 0) idx ({idx(i, 64)}) bits: {int(v)}" for i, v in enumerate(ref.view(np.uint32))]
    assert printed(capfd) == expected


@triton.jit
def print_hex_kernel(x_ptr, N: tl.constexpr):
    tl.device_print("h", tl.load(x_ptr + tl.arange(0, N)), hex=True)


@pytest.mark.parametrize("dtype, unsigned", [(np.int8, np.uint8), (np.int16, np.uint16), (np.int32, np.uint32),
                                             (np.int64, np.uint64)])
def test_print_hex_integers_pad_to_the_type_width(device, capfd, dtype, unsigned):
    ref = _values(dtype, 32, seed=2)
    print_hex_kernel[(1,)](torch.from_numpy(ref).to(device), N=32)
    digits = np.dtype(dtype).itemsize * 2
    assert printed(capfd) == [f"pid (0, 0, 0) idx ({idx(i, 32)}) h: 0x{int(u):0{digits}x}"
                              for i, u in enumerate(ref.view(unsigned))]


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_print_hex_floats_as_c_hex_floats(device, capfd, dtype):
    ref = np.array([1.0, 1.5, 0.1, -1.5, -0.0, np.inf, -np.inf, 6.0, 0.0, 1e-3, -250.25, 3.0], dtype=dtype)
    print_hex_kernel[(1,)](torch.from_numpy(np.resize(ref, 16)).to(device), N=16)
    values = [line.rsplit(" ", 1)[1] for line in printed(capfd)]
    # C's %a spells a value one way up to trailing zeros: compare through Python's parser.
    assert [float.fromhex(v) for v in values] == [float(v) for v in np.resize(ref, 16)]
    assert all(v.startswith(("0x", "-0x", "inf", "-inf")) for v in values)


@triton.jit
def print_scalars_kernel(x_ptr, n):
    pid = tl.program_id(0)
    tl.device_print("pid", pid)
    tl.device_print("n", n)
    tl.device_print("x", tl.load(x_ptr + pid))
    print("no arg")


def test_print_scalars_once_per_program(device, capfd):
    ref = np.array([2.5, -1.0, 1e6], dtype=np.float32)
    print_scalars_kernel[(3,)](torch.from_numpy(ref).to(device), 7)
    expected = []
    for p in range(3):
        expected += [f"pid ({p}, 0, 0) idx () pid: {p}", f"pid ({p}, 0, 0) idx () n: 7",
                     f"pid ({p}, 0, 0) idx () x: {c_value(ref[p])}", f"pid ({p}, 0, 0) no arg"]
    assert printed(capfd) == expected


@triton.jit
def print_two_operands_kernel(x_ptr, N: tl.constexpr):
    x = tl.load(x_ptr + tl.arange(0, N))
    tl.device_print("", x, x * 2 + 1)


def test_print_multiple_operands(device, capfd):
    ref = _values(np.int32, 32, seed=3) // 4
    print_two_operands_kernel[(1,)](torch.from_numpy(ref).to(device), N=32)
    expected = [f"pid (0, 0, 0) idx ({idx(i, 32)}): (operand 0) {v}" for i, v in enumerate(ref)]
    expected += [f"pid (0, 0, 0) idx ({idx(i, 32)}): (operand 1) {v}" for i, v in enumerate(ref * 2 + 1)]
    assert printed(capfd) == expected


@triton.jit
def builtin_print_kernel(x_ptr, N: tl.constexpr):
    print("x:", tl.load(x_ptr + tl.arange(0, N)))


def test_builtin_print_gets_a_spaced_prefix(device, capfd):
    ref = np.arange(8, dtype=np.float32) / 4
    builtin_print_kernel[(1,)](torch.from_numpy(ref).to(device), N=8)
    assert printed(capfd) == [f"pid (0, 0, 0) idx ({i}) x: {c_value(v)}" for i, v in enumerate(ref)]


@triton.jit
def print_2d_kernel(x_ptr, M: tl.constexpr, N: tl.constexpr):
    pid_m, pid_n = tl.program_id(0), tl.program_id(1)
    rows = pid_m * M + tl.arange(0, M)[:, None]
    cols = pid_n * N + tl.arange(0, N)[None, :]
    tl.device_print("", tl.load(x_ptr + rows * (2 * N) + cols))


def test_print_2d_blocks_on_a_2d_grid(device, capfd):
    M, N = 4, 16
    ref = _values(np.int32, 3 * M * 2 * N, seed=4).reshape(3 * M, 2 * N)
    print_2d_kernel[(3, 2)](torch.from_numpy(ref).to(device), M=M, N=N)
    expected = [f"pid ({pm}, {pn}, 0) idx ({r}, {idx(c, N)}): {ref[pm * M + r, pn * N + c]}"
                for pm in range(3) for pn in range(2) for r in range(M) for c in range(N)]
    assert printed(capfd) == expected


@triton.jit
def print_duplicated_kernel(x_ptr, M: tl.constexpr, N: tl.constexpr):
    x = tl.load(x_ptr + tl.arange(0, M)[:, None] * N + tl.arange(0, N)[None, :])
    tl.device_print("row sums", tl.sum(x, axis=1))  # a slice layout: lanes hold copies of each sum
    tl.device_print("column", tl.arange(0, M)[:, None] * 10)  # M x 1 in a layout spread over 128 threads


def test_elements_held_by_several_threads_print_once(device, capfd):
    M, N = 8, 32
    ref = _values(np.int32, M * N, seed=5).reshape(M, N) // 1024
    print_duplicated_kernel[(1,)](torch.from_numpy(ref).to(device), M=M, N=N, num_warps=4)
    expected = [f"pid (0, 0, 0) idx ({r}) row sums: {v}" for r, v in enumerate(ref.sum(axis=1, dtype=np.int32))]
    expected += [f"pid (0, 0, 0) idx ({r}, 0) column: {10 * r}" for r in range(M)]
    assert printed(capfd) == expected


@triton.jit
def print_in_control_flow_kernel(x_ptr, N: tl.constexpr):
    x = tl.load(x_ptr + tl.arange(0, N))
    if tl.program_id(0) % 2 == 0:
        for i in range(3):
            tl.device_print("step", x * (i + 1))


def test_print_in_loops_and_branches_keeps_execution_order(device, capfd):
    ref = np.arange(4, dtype=np.int32) + 1
    print_in_control_flow_kernel[(3,)](torch.from_numpy(ref).to(device), N=4)
    expected = [f"pid ({p}, 0, 0) idx ({i}) step: {v * (step + 1)}"
                for p in (0, 2) for step in range(3) for i, v in enumerate(ref)]
    assert printed(capfd) == expected


@triton.jit
def print_pointer_kernel(x_ptr, N: tl.constexpr):
    tl.device_print("ptr", x_ptr + tl.arange(0, N))


def test_print_pointers_as_addresses(device, capfd):
    from triton_metal.runtime import get_runtime
    x = torch.zeros(8, dtype=torch.float32, device=device)
    print_pointer_kernel[(1,)](x, N=8)
    lines = printed(capfd)
    values = [int(line.rsplit(" ", 1)[1], 16) for line in lines]
    assert [line.rsplit(" ", 1)[0] for line in lines] == [f"pid (0, 0, 0) idx ({i}) ptr:" for i in range(8)]
    assert np.all(np.diff(values) == 4)  # consecutive float32 addresses
    if get_runtime().capabilities.simulated:  # the simulator's addresses are the host's
        assert values[0] == x.data_ptr()


def _compile(fn, signature, constexprs, **options):
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    kernel = triton.compile(ASTSource(fn, signature, constexprs), target=GPUTarget("metal", "apple-m1", 32),
                            options=options)
    return kernel.asm["msl"].decode(), kernel.metadata


def test_only_kernels_that_print_or_assert_take_the_hidden_buffer():
    msl, metadata = _compile(print_kernel, {"x_ptr": "*fp32", "N": "constexpr"}, {"N": 4})
    assert "device uint* tm_diag [[buffer(1)]]" in msl
    assert [k[1] for k in metadata.arg_kinds] == ["buffer", "device print"]
    signature = {"x_ptr": "*i32", "n": "i32", "BLOCK": "constexpr"}
    msl, metadata = _compile(assert_kernel, signature, {"BLOCK": 4})  # debug off: Triton drops the assertion
    assert "tm_diag" not in msl and metadata.device_print_sites == []
    msl, metadata = _compile(assert_kernel, signature, {"BLOCK": 4}, debug=True)
    assert "device uint* tm_diag [[buffer(2)]]" in msl and metadata.device_print_sites[0]["kind"] == "assert"


# ---- overflow -------------------------------------------------------------------------------------

def test_overflow_prints_what_fits_and_how_to_raise_the_limit(device, capfd, monkeypatch):
    monkeypatch.setenv(RECORDS_ENV, "10")
    ref = np.arange(64, dtype=np.int32) * 3
    print_kernel[(1,)](torch.from_numpy(ref).to(device), N=64)
    *lines, last = printed(capfd)
    everything = {f"pid (0, 0, 0) idx ({idx(i, 64)}) x: {v}" for i, v in enumerate(ref)}
    assert len(lines) == 10 and set(lines) <= everything
    assert last == (f"[triton-metal] kernel 'print_kernel': 54 of 64 device_print/device_assert records did not fit "
                    f"in the diagnostics buffer (10 records) and were dropped; set {RECORDS_ENV}=64 to keep them")


def test_invalid_record_limit_is_a_clear_error(device, monkeypatch):
    monkeypatch.setenv(RECORDS_ENV, "lots")
    with pytest.raises(MetalError, match=f"{RECORDS_ENV}='lots': give the number of device_print/device_assert "
                                         "records a launch may keep, an integer from 1 to"):
        print_kernel[(1,)](torch.zeros(4, dtype=torch.int32, device=device), N=4)


# ---- device_assert ----------------------------------------------------------------------------------

@triton.jit
def assert_kernel(x_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs, mask=offs < n, other=0)
    tl.device_assert(x < 100, "x must stay below 100", mask=offs < n)


def test_passing_assertion_prints_nothing(device, capfd):
    x = torch.arange(100, dtype=torch.int32, device=device)
    assert_kernel[(4,)](x, 100, BLOCK=32, debug=True)
    assert capfd.readouterr().out == ""


def test_failing_assertion_raises_after_the_launch_naming_kernel_line_message_pids_and_indices(device):
    BLOCK, n = 32, 100
    ref = np.arange(n, dtype=np.int32)
    ref[[3, 40, 41, 99]] = [100, 500, 101, 1000]
    bad = np.flatnonzero(ref >= 100)  # numpy's verdict; the masked-off tail (offs >= n) must not fail
    with pytest.raises(DeviceAssertionError) as info:
        assert_kernel[(4,)](torch.from_numpy(ref).to(device), n, BLOCK=BLOCK, debug=True)
    location = source_line(assert_kernel, "tl.device_assert")
    lines = str(info.value).splitlines()
    assert lines[0] == f"device-side assertion failed in kernel 'assert_kernel' at {location}: x must stay below 100"
    assert lines[1:1 + len(bad)] == [f"  pid ({p // BLOCK}, 0, 0) idx ({idx(p % BLOCK, BLOCK)})" for p in bad]
    programs = len(set(bad // BLOCK))
    assert lines[1 + len(bad)] == f"  {len(bad)} failing element(s) in {programs} program(s)"
    assert isinstance(info.value, AssertionError)  # as the interpreter's device_assert


def test_without_debug_triton_drops_the_assertion(device, capfd):
    x = torch.full((64,), 1000, dtype=torch.int32, device=device)
    assert_kernel[(2,)](x, 64, BLOCK=32)
    assert capfd.readouterr().out == ""


@triton.jit
def print_then_assert_kernel(x_ptr, N: tl.constexpr):
    x = tl.load(x_ptr + tl.arange(0, N))
    tl.device_print("x", x)
    tl.device_assert(x < 0, "x must be negative")


def test_a_full_buffer_cannot_hide_a_failed_assertion(device, capfd, monkeypatch):
    monkeypatch.setenv(RECORDS_ENV, "16")
    x = torch.arange(64, dtype=torch.int32, device=device)
    with pytest.raises(DeviceAssertionError) as info:
        print_then_assert_kernel[(1,)](x, N=64, debug=True)
    message = str(info.value)
    location = source_line(print_then_assert_kernel, "tl.device_assert")
    assert message.startswith(f"device-side assertion failed in kernel 'print_then_assert_kernel' at {location}: "
                              "x must be negative\n")
    # Which 16 of the 128 records (64 prints, 64 failures) fit depends on the order threads ran in;
    # every failure is counted either way.
    shown = re.search(r"\n  (\d+) failing element\(s\) in 1 program\(s\)", message)
    hidden = re.search(r"\n(\d+) more failing element\(s\) were not recorded: the diagnostics buffer was full", message)
    assert (int(shown.group(1)) if shown else 0) + int(hidden.group(1)) == 64
    lines = printed(capfd)
    assert len(lines) <= 16 + 1 and lines[-1].endswith(f"set {RECORDS_ENV}=128 to keep them")



@triton.jit
def checked_kernel(x_ptr, N: tl.constexpr):
    x = tl.load(x_ptr + tl.arange(0, N))
    tl.device_print("x", x)
    tl.device_assert(x < 3, "x must stay below 3")


# Run in a fresh process from this file (it inherits the module's empty TRITON_CACHE_DIR), started in
# the repository root so that `python -c` imports this module by its package name.
REPO = Path(__file__).resolve().parents[2]
SCRIPT = """
import torch, triton
from conformance.ops.test_debug_ops import checked_kernel
device = triton.runtime.driver.active.get_active_torch_device()
checked_kernel[(1,)](torch.arange(4, dtype=torch.int32, device=device), N=4)
"""


def test_triton_debug_env_keeps_assertions_and_a_process_sees_prints_on_stdout():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True,
                          timeout=300, check=False, env={**os.environ, "TRITON_DEBUG": "1"})
    assert proc.stdout.splitlines() == [f"pid (0, 0, 0) idx ({i}) x: {i}" for i in range(4)]
    assert proc.returncode != 0
    location = source_line(checked_kernel, "tl.device_assert")
    assert (f"DeviceAssertionError: device-side assertion failed in kernel 'checked_kernel' at {location}: "
            "x must stay below 3\n  pid (0, 0, 0) idx (3)\n  1 failing element(s) in 1 program(s)\n") in proc.stderr, \
        proc.stderr


@triton.jit(noinline=True)
def print_from_function(x_ptr):
    tl.device_print("in fn ", tl.load(x_ptr + tl.arange(0, 4)))


@triton.jit
def print_in_kernel_and_function(x_ptr):
    tl.device_print("in kernel ", tl.load(x_ptr))
    print_from_function(x_ptr)


def test_print_inside_a_noinline_function(device, capfd):
    x = np.array([7, -3, 11, 0], dtype=np.int32)
    print_in_kernel_and_function[(1,)](torch.from_numpy(x).to(device))
    assert printed(capfd) == [f"pid (0, 0, 0) idx () in kernel: {x[0]}"] + \
        [f"pid (0, 0, 0) idx ({i}) in fn: {v}" for i, v in enumerate(x)]
