"""Generates docs/compatibility.md from the op table (table.py) and the refusal catalog.

    python -m conformance.ops.compatibility           # rewrite docs/compatibility.md (from the repository root)
    python -m conformance.ops.compatibility --check   # exit 1 when the file is stale

The status of every (op, dtype) pair is what the table declares; test_op_table.py checks each
claim on the device (pass against the reference, or the exact refusal message).
"""
from __future__ import annotations

import string
import sys
from pathlib import Path

import triton  # noqa: F401  (first: triton_metal.errors imported before triton is a circular import)
from triton_metal.codegen import memory_model
from triton_metal.refusals import CATALOG

from conformance.ops import numerics_doc, table
from conformance.ops.dtypes import ALL

DOC = Path(__file__).resolve().parents[2] / "docs" / "compatibility.md"
COMMAND = "python -m conformance.ops.compatibility"
SECTIONS = {
    "arith": "Arithmetic", "bitwise": "Bitwise and integer", "minmax": "Min, max, clamp", "select": "Select",
    "compare": "Comparisons", "math": "Math", "cast": "Casts", "bitcast": "Bitcasts",
    "reduce": "Reductions", "scan": "Scans", "shape": "Shape ops, sort, gather, histogram",
    "denormals": "Subnormal operands and results (see [Numerics on Apple GPUs](#numerics-on-apple-gpus))",
}
DTYPE_NAMES = {"i1": "bool", "i8": "i8", "i16": "i16", "i32": "i32", "i64": "i64", "u8": "u8", "u16": "u16",
               "u32": "u32", "u64": "u64", "f16": "f16", "bf16": "bf16", "f32": "f32", "f64": "f64"}

SEMANTICS = """\
## Semantics the Metal backend defines

- **Integer division by zero** is unspecified in Triton (and on NVIDIA GPUs). The Metal backend
  never faults: `x // 0 == x` and `x % 0 == 0` (the divisor is guarded only where it is not a
  known nonzero constant). `MIN // -1` wraps to `MIN`, `MIN % -1 == 0`.
- **Integer division and remainder** truncate toward zero (C semantics, as Triton: `-7 // 2 == -3`,
  `-7 % 2 == -1`), unlike Python.
- **Signed overflow** wraps (two's complement), as in Triton. MSL follows C++, where signed overflow
  is undefined, so 32- and 64-bit signed `+`, `-`, `*` and `<<` are computed in the unsigned type
  (`as_type<int>(uint(a) + uint(b))`); the simulator builds without `-fwrapv` and its strict mode traps
  on any remaining signed overflow.
- **Float -> integer casts** truncate toward zero and saturate to the target range; NaN becomes 0
  (what PTX `cvt.rzi.sat` gives on NVIDIA GPUs; Metal leaves out-of-range conversions undefined,
  so the backend emits the saturation explicitly).
- **Anything -> bool** is `x != 0` (NaN is true).
- **Shifts** by the bit width or more are undefined (as in Triton); smaller amounts are tested.
- **min/max NaN rules**: `tl.maximum`/`tl.minimum` return the non-NaN operand (IEEE maxNum,
  `propagate_nan=NONE`), or NaN with `propagate_nan=ALL`; `tl.max`/`tl.min` reductions likewise.
- **Float precision**: float32 math uses `metal::precise::` functions by default; the compile
  option `fast_math=True` (or `TRITON_METAL_FAST_MATH=1`) selects `metal::fast::` and Apple's fast math
  mode. `x / y` on float32 is `precise::divide` (correctly rounded, as Triton's `/` on NVIDIA);
  `tl.div_rn` and `tl.sqrt_rn` are always `precise::`. `a*b+c` is one `fma()` unless
  `enable_fp_fusion=False`. Half and bfloat elementwise math is computed in float and rounded once.
  Float and bfloat arithmetic flushes subnormals to zero on Apple GPUs, and on the simulator. See
  [Numerics on Apple GPUs](#numerics-on-apple-gpus).
- **Tolerances** in the tables below are the MSL specification's accuracy bounds for Metal's functions
  (Table 8.1: e.g. 4 ulp for exp, log, sin, cos, 6 for tan, 16 for pow; correctly rounded division, sqrt
  and rsqrt), not what the simulator's CPU library gives. `tl.erf` is our own helper (Metal has none):
  absolute error < 3e-7.
- **bfloat16** uses Metal's `bfloat` type (Metal 3.1, Apple GPU family 6+). MSL has arithmetic
  operators and explicit conversions on `bfloat`, but no implicit conversion from `float` or `half` and
  no `bfloat` overloads of the math and simd functions: every bf16 math function, NaN-propagating
  max/min and lane exchange is computed in float with explicit conversions, and bf16 sums and products
  keep a float accumulator and round once (as torch does). The simulator's `bfloat` has the same rules.
- **fp64** is refused (Apple GPUs have no 64-bit floating point).
- **fp8** is a storage type (Apple GPUs have no 8-bit float arithmetic): all five Triton fp8 types
  (`float8e4nv`, `float8e5`, `float8e4b8`, `float8e5b16`, `float8e4b15`) load, store, bitcast, `tl.abs`
  and convert to and from float16/bfloat16/float32 in `uchar` bit manipulation (`codegen/fp8_msl.py`).
  fp8 -> wider is exact. Narrowing rounds once from the exact value, to nearest even or, with
  `fp_downcast_rounding="rtz"`, toward zero; finite values beyond the largest finite fp8 value
  saturate to it (as Triton's CUDA `.satfinite` conversions do; torch gives NaN/inf there), and so do
  infinities except in e5m2, which keeps them; NaN stays NaN; the FNUZ types have no -0.
  `float8e4b15` (`i8` in Triton's IR) follows Triton's CUDA conversion: magnitude clamped to 1.75,
  rounded half away from zero, float32 through float16 toward zero. `tl.dot` takes fp8 operands
  (decoded to half, exact; float accumulator); any other op on fp8 values is refused (catalog below).
  Tested over every code, every half and bfloat value and a dense float sweep
  (`conformance/ops/test_fp8.py`).
- **`tl.dot_scaled`** dequantises each operand exactly into float32 (e2m1 two per byte along K,
  low nibble first; e4m3/e5m2 codes; bf16/fp16 values; e8m0 scales 2^(s-127), one per 32 K
  elements, 255 = NaN) and accumulates exact products in float32, in K order: Triton's GPUs
  upcast to bf16/fp16 instead, which gives the same values except where a scaled value overflows
  fp16 (Triton: inf, here finite) or is a float32 subnormal (Apple's fast math may flush it).
  Operands are staged in K chunks of float tiles, so every tile shape fits 32 KiB
  (`conformance/ops/test_dot_scaled.py`).
- **Atomics** (`atomic_add/max/min/and/or/xor/xchg/cas`) work on int32, uint32 and float32
  (add/xchg/cas for float32; float max/min through Triton's integer rewrite); each element is
  updated once, by its owning thread, and every thread holding a copy receives the old value.
  **8- and 16-bit atomics** (`atomic_add` on float16/bfloat16, added in float and rounded once to
  nearest even as CUDA's atomicAdd does; `atomic_cas` on 16-bit elements; `atomic_load`/`atomic_store`
  of any 8/16-bit type; and the 8/16-bit integer add/max/min/and/or/xor/xchg that Triton 3.9's frontend
  itself still refuses) are a compare-and-swap loop on the aligned 32-bit word that holds the element:
  exact, and the word's other elements keep their values. The word of the last element of a tensor whose
  size is not a multiple of 4 bytes reaches past the tensor's end (inside the page-granular Metal buffer
  and the 64-byte-aligned CPU allocation), and is written back unchanged; the simulator's strict mode
  checks such an access as an access to the element. **64-bit atomics**: Metal has only
  `atomic_max_explicit` / `atomic_min_explicit` on `atomic_ulong` in device memory, returning nothing
  (MSL specification 6.15.4.6), on Apple8 (M2) and later GPUs; so `tl.atomic_max` / `tl.atomic_min` on
  uint64 whose result is not used run on M2 and later, and every other 64-bit atomic (add, xchg, cas,
  and/or/xor, signed int64 max/min, a used old value, float64, any 64-bit atomic on M1) is refused with
  the operation and what Metal lacks. What `sem` and `scope`
  mean on Metal: see [Atomics: sem and scope](#atomics-sem-and-scope) below.
- **Scans** (`tl.cumsum`, `tl.cumprod`, `tl.associative_scan`) go through threadgroup memory and
  are scanned there by simd lanes: `simd_prefix_inclusive_sum` / `_product` for a single add or
  multiply (float, half and bfloat in float; integers of 32 bits or less in uint, wrapping), a
  `simd_shuffle_up` tree for any other combine function (tuples, max, custom), then across
  simdgroups through threadgroup memory and across chunks of 32 x num_warps elements with a carry;
  any axis, layout, direction. A half or bfloat cumsum / cumprod rounds each output once from its
  float prefix; so does the FMA path of `tl.dot` with a half accumulator over K.
- **Layout conversions** go through threadgroup memory; one larger than what is left of the
  32 KiB runs in rounds, a power-of-two slab of the tensor per round.
- **`tl.dot` tiles larger than threadgroup memory**: operands that do not fit whole are staged from
  registers in K chunks (a divisor of K, a multiple of 8 on the simdgroup_matrix path), and a result
  or accumulator tile that does not fit is converted a band of rows per round; the sums are the same
  (K order within each 8-deep step is the hardware's). Costs two barriers per chunk.
- **`tl.cat(..., can_reorder=True)`** keeps row-major order; so does **`x.view(...)`** (any reshape that may
  reorder) when that moves no element between threads. Otherwise, between layouts of as many elements per
  thread, each thread keeps its registers (Triton's own lowering; Triton allows any order): that is how
  `tl.sum(x)` / `tl.max(x)` without an axis reshape a block without threadgroup memory.
- **`tl.sort`**, **`tl.flip`**, **`tl.interleave`** are Triton library code over the shape ops and run as such;
  `tl.gather` and `tl.histogram` stage their input in threadgroup memory (input size <= 32 KiB).

## Also tested, outside the table

| feature | test | status |
|---|---|---|
| atomics add/max/min/and/or/xor (i32, u32), add/max/min (f32), xchg, cas, scalar tickets | `conformance/ops/test_atomics.py` | pass |
| 8/16-bit atomics: add on f16/bf16 (exact histograms, RNE rounding bit for bit, bf16 accumulation over many programs), 16-bit cas, i8/u8/i16/u16 add/max/min/and/or/xor/xchg, atomic_load/store, a contended word, strict-mode bounds | `conformance/ops/test_subword_atomics.py` | pass |
| `tl.debug_barrier` | `conformance/ops/test_atomics.py` | pass |
| atomics' `sem`/`scope` (fences, coherent buffers, refusals per Metal version), `tl.atomic_load`/`atomic_store`, a lock-protected accumulation over many programs, split-K reduced by the last program to arrive | `compiler/tests/test_atomic_ordering.py` | pass |
| `tl.rand`, `randn`, `randint`, `randint4x`: same numbers as `TRITON_INTERPRET=1` | `conformance/ops/test_random.py` | pass |
| `scf.while`, `scf.for` with loop-carried tensors, `scf.if` with results | `conformance/ops/test_control.py` | pass |
| early `return` in a branch (kernels and functions), `@triton.jit(noinline=True)` calls (scalars, tensors, several results, nested, in loops, with reductions and `tl.dot`) | `conformance/ops/test_calls_and_returns.py` | pass |
| `tl.device_print` / `print` (tensors, scalars, `hex=True`, several operands, pointers) | `conformance/ops/test_debug_ops.py` | pass: CUDA's line format, each element once, sorted (see docs/troubleshooting.md) |
| `tl.device_assert` | `conformance/ops/test_debug_ops.py` | dropped unless `debug=True` (as on every backend); with `debug=True` a failure raises `DeviceAssertionError` after the launch |
| random expression trees (elementwise, casts, reductions, masks) | `conformance/ops/test_fuzz.py` | 1000 trees in CI, `--fuzz-cases N` for more |
"""


def _status(row, dtype) -> str:
    if dtype not in row.dtypes:
        return ""
    refused = row.refusal(dtype)
    if refused:
        return f"no ([{refused[0]}](#refused-{refused[0]}))"
    return "yes"


ATOMICS = """\
Metal's atomic functions are relaxed only (MSL specification 6.15.4: "For atomic operations other
than atomic_thread_fence, memory_order_relaxed is the only enumeration value"), and
`threadgroup_barrier(mem_flags::mem_device)` orders device memory for the threads of one threadgroup
(6.9.1, Table 6.13), not across programs. Metal 3.2 adds `atomic_thread_fence(mem_flags,
memory_order, thread_scope)` with `memory_order_seq_cst` and `thread_scope_device`, and device
coherence: "By default, memory in the device address space has threadgroup coherence", unless a
buffer is `coherent(device)` (4.8 Memory Coherency). The backend builds each `sem`/`scope` from
these (`compiler/triton_metal/codegen/memory_model.py`):

- Every atomic is a relaxed Metal atomic between two threadgroup barriers, so for **cta** scope the
  program's own threads are ordered around it in every version.
- **gpu** scope with acquire, release or acq_rel (the default of `atomic_add`/`xchg`/`cas`/...;
  `atomic_poll` defaults to acquire) needs Metal 3.2: every thread of the program runs a
  device-scope seq_cst fence after the barrier before the atomic (release) and after the barrier
  after it (acquire), and every buffer argument of the kernel becomes `coherent(device)`, without
  which plain loads and stores would stay threadgroup-coherent and the fences would order nothing
  another program sees. seq_cst is stronger than asked (Metal 3.2 fences have no acquire or
  release order). Coherent buffers may make loads slower: an atomic that only accumulates (a sum,
  a histogram, a counter) is best written with `sem="relaxed"`, which keeps the kernel free of both.
- Before Metal 3.2 no fence or coherent buffer exists, so an ordered gpu-scope atomic is refused
  (`atomic_order_needs_msl32`) rather than emitted without its ordering.
- **sys** scope (the CPU or another device) has no Metal equivalent (no public `thread_scope`
  reaches beyond the device) and is refused in every version (`atomic_scope_sys`).
- The version is the one the Metal runtime compiles with on the macOS in use: 3.0 on macOS 13,
  3.1 on macOS 14, 3.2 on macOS 15 and later (PyTorch's `torch.mps.compile_shader` and MLX also use
  3.2 or newer there). The compile option `msl_version` or `TRITON_METAL_MSL_VERSION` overrides it;
  the simulator models 3.2.
- `tl.debug_barrier()` is a threadgroup barrier: it orders one program's threads, as
  `__syncthreads()` does on CUDA. `tl.atomic_poll` with acquire fences each thread after its own
  poll; 16-bit flags are read with an atomic load of their 32-bit word, 64-bit ones with volatile loads
  (Metal has no 64-bit atomic load).
  `tl.atomic_load` (acquire by default) and `tl.atomic_store` (release by default) are Metal's relaxed
  atomic load and store on int32, uint32 and float32 (an atomic load of the word, and an exchange in it,
  on 8- and 16-bit elements), with the same fences.

**Forward progress.** The specification promises independent forward progress to the SIMD-groups
of one threadgroup ("SIMD-groups execute concurrently within a given threadgroup and make
independent forward progress with respect to each other", in its kernel attribute table under
`[[thread_index_in_simdgroup]]`) and to nothing larger: no
threadgroup is guaranteed to run while another waits for it. A program that spins until another
program acts can hang (until the GPU watchdog ends the command buffer) if that program has not
been scheduled: a flag set by a later program, a grid-wide barrier, a work queue fed by other
programs. A lock held only inside a critical section (upstream tutorial 05's layer-norm backward)
waits for a holder that is running, which works on GPUs in practice but is not promised either.
The split-K pattern where the last program to arrive (its ticket from an acq_rel `atomic_add`)
reduces the partial results never waits and needs no such promise. The simulator runs programs on
`TRITON_METAL_SIM_THREADS` OS threads (default: the CPU count), each to completion, so it hangs
the same way when a program waits for one that has not started and every thread is busy.
"""


CHECKED_WITHOUT_A_MAC = """\
## What is checked without a Mac, and how

Nothing here has run on an Apple GPU. Four layers stand in for one, each catching what the one
before cannot; only a run on a Mac (the self-hosted `apple-silicon` workflow) can claim more.

| layer | what it runs | what it catches |
|---|---|---|
| simulator execution | the generated MSL, compiled as C++ by g++ against our Metal shim (`triton_metal/sim`), threads of a threadgroup as fibers or phases, against numpy/torch CPU references | wrong values; barriers and simd collectives are exact; `bfloat` has MSL's conversion rules; signed overflow is not defined (no `-fwrapv`) |
| strict mode (`TRITON_METAL_SIM_STRICT=1`) | an instrumented build of the same MSL | out-of-bounds device and threadgroup accesses, uninitialised threadgroup reads, races between simdgroups, divergent barriers, stores to `constant`, mixed `device`/`threadgroup`/`constant` pointers, signed overflow and shifts past the width (trap) |
| Metal front-end check (`triton_metal/metal_check`, on in every test session) | clang (pip `libclang`) in C++-for-OpenCL mode with distinct address spaces, against a declarations-only `metal_stdlib` written from Apple's MSL specification, on the exact text each runtime hands to Apple: the metal runtime's, torch's `compile_shader`'s and the source `mx.fast.metal_kernel` generates around our body | calls with no overload in the specification (`fmax` on `bfloat`, simd functions on 8-bit, 64-bit or `bfloat` values), implicit conversions to `bfloat`, `as_type` on pointers, address-space mismatches, pointers without an address space, recursion, reserved words as names, kernel attributes and buffer indices, MLX attribute-name collisions, fences and memory orders a Metal version lacks |
| traffic counters | the simulator's deterministic counts, compared exactly with `baselines/traffic/` | regressions in coalescing, threadgroup traffic and barrier counts |

The front-end check's header is our written model of Apple's compiler: where the specification is
unclear it is stricter than Apple (e.g. `as_type` on pointers, simd functions on `char`), so a kernel it
rejects may still compile on a Mac; one it accepts may still fail there where the model is wrong. On a
Mac, the `apple-silicon` workflow compiles every kernel the suites produced with `xcrun metal` too.

None of them sees: timing and occupancy on Apple GPUs; the rounding of Apple's math functions (the
CPU's libm is more accurate, so tolerances are set from the specification's ULP bounds instead) and of
fast math; denormal behaviour beyond what was measured on Apple GPUs (the simulator flushes as
measured: see [Numerics on Apple GPUs](#numerics-on-apple-gpus)); the order in which a GPU's simd reductions add; weak memory between
threadgroups (x86 is strongly ordered, so a missing fence cannot show); forward progress between
threadgroups; threadgroup memory bank conflicts; driver and OS differences between macOS versions.
"""


def _atomics_section() -> str:
    versions = list(memory_model.MSL_VERSIONS.values())
    out = ["## Atomics: sem and scope", "", ATOMICS,
           "| sem | scope | " + " | ".join(f"Metal {v.name} (macOS {v.macos}{'+' if v.name == memory_model.NEWEST else ''})"
                                          for v in versions) + " |",
           "|---|---|" + "---|" * len(versions)]
    for sem in memory_model.SEMS:
        for scope in memory_model.SCOPES:
            out.append(f"| {sem} | {scope} | " + " | ".join(memory_model.meaning(sem, scope, v) for v in versions)
                       + " |")
    return "\n".join(out) + "\n"


def render() -> str:
    rows = table.ROWS
    pairs = [(r, d) for r in rows for d in r.dtypes]
    refused = sum(1 for r, d in pairs if r.refusal(d))
    out = [
        "# Operation coverage of the Metal backend",
        "",
        f"<!-- Generated by `{COMMAND}` from conformance/ops/table.py and",
        "     compiler/triton_metal/refusals.py. Do not edit: a test fails when this file is stale. -->",
        "",
        (f"{len(rows)} ops, {len(pairs)} (op, dtype) pairs: **{len(pairs) - refused} run and match their reference**, "
         f"{refused} are refused at compile time with the message listed under [Refused](#refused)."),
        "Every pair is checked by `conformance/ops/test_op_table.py` on the device (the Metal simulator in CI):",
        "a \"yes\" runs and matches a numpy reference within the tolerance shown, a \"no\" raises",
        "`UnsupportedOperationError` with exactly the catalog's message.",
        "",
    ]
    dtypes = [d for d in ALL]
    for family, title in SECTIONS.items():
        section = [r for r in rows if r.family == family]
        if not section:
            continue
        out += [f"## {title}", "", "| op | " + " | ".join(DTYPE_NAMES[d] for d in dtypes) + " | tolerance | notes |",
                "|---|" + "---|" * (len(dtypes) + 2)]
        for r in section:
            shapes = ", ".join("x".join(map(str, s)) + (f" axis {a}" if a is not None else "") for s, a in r.variants)
            note = "; ".join(x for x in (r.note, f"shapes {shapes}") if x)
            out.append(f"| `{r.op}` | " + " | ".join(_status(r, d) for d in dtypes)
                       + f" | {r.tol.describe()} | {note} |")
        out.append("")
    out += [SEMANTICS, numerics_doc.render(), _atomics_section(), CHECKED_WITHOUT_A_MAC, "## Refused", "",
            "Each refusal is one entry of `compiler/triton_metal/refusals.py`; the compiler raises it as",
            "`UnsupportedOperationError` with the kernel source line.", ""]
    for key, entry in CATALOG.items():
        # Every {placeholder} of the entry, shown as <placeholder>.
        text = entry.op + entry.reason + entry.alternative
        fields = {name: f"<{name}>" for _, name, _, _ in string.Formatter().parse(text) if name}
        out += [f"### refused: {key}", "", f"`{entry.message(**fields)}`", ""]
    return "\n".join(out).rstrip() + "\n"


def main(argv) -> int:
    text = render()
    if "--check" in argv:
        if not DOC.exists() or DOC.read_text() != text:
            print(f"{DOC} is stale: run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
