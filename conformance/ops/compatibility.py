"""Generates docs/compatibility.md from the op table (table.py) and the refusal catalog.

    python conformance/ops/compatibility.py           # rewrite docs/compatibility.md
    python conformance/ops/compatibility.py --check   # exit 1 when the file is stale

The status of every (op, dtype) pair is what the table declares; test_op_table.py checks each
claim on the device (pass against the reference, or the exact refusal message).
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `ops` importable as the tests do
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import triton  # noqa: F401  (first: triton_metal.errors imported before triton is a circular import)
from triton_metal.refusals import CATALOG

from ops import table
from ops.dtypes import ALL

DOC = Path(__file__).resolve().parents[2] / "docs" / "compatibility.md"
COMMAND = "python conformance/ops/compatibility.py"
SECTIONS = {
    "arith": "Arithmetic", "bitwise": "Bitwise and integer", "minmax": "Min, max, clamp", "select": "Select",
    "compare": "Comparisons", "math": "Math", "cast": "Casts", "bitcast": "Bitcasts",
    "reduce": "Reductions", "scan": "Scans", "shape": "Shape ops, sort, gather, histogram",
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
- **Signed overflow** wraps (two's complement), as in Triton.
- **Float -> integer casts** truncate toward zero and saturate to the target range; NaN becomes 0
  (what PTX `cvt.rzi.sat` gives on NVIDIA GPUs; Metal leaves out-of-range conversions undefined,
  so the backend emits the saturation explicitly).
- **Anything -> bool** is `x != 0` (NaN is true).
- **Shifts** by the bit width or more are undefined (as in Triton); smaller amounts are tested.
- **min/max NaN rules**: `tl.maximum`/`tl.minimum` return the non-NaN operand (IEEE maxNum,
  `propagate_nan=NONE`), or NaN with `propagate_nan=ALL`; `tl.max`/`tl.min` reductions likewise.
- **Float precision**: float32 math uses `metal::precise::` functions by default; the compile
  option `fast_math=True` selects `metal::fast::` (faster, flushes denormals, larger errors).
  `x / y` on float32 is `precise::divide` (correctly rounded, as Triton's `/` on NVIDIA);
  `tl.div_rn` and `tl.sqrt_rn` are always `precise::`. The Metal runtime must compile shaders with
  fast math off (`MTLCompileOptions.mathMode = .safe`) so that `half` arithmetic is IEEE too.
  Half and bfloat elementwise math is computed in float and rounded once.
- **Tolerances** in the tables below are set for Metal's documented precise-mode accuracy
  (<= 4 ulp for exp/exp2/log/log2/sin/cos in float32), not for the simulator, whose CPU libm is
  more accurate. `tl.erf` is our own helper (Metal has none): absolute error < 3e-7.
- **bfloat16** uses Metal's `bfloat` type (Metal 3.1, Apple GPU family 6+), computing in float.
- **fp64** is refused (Apple GPUs have no 64-bit floating point). **fp8**: the backend declares no
  supported fp8 types, so Triton's frontend rejects `x.to(tl.float8e5)` etc. itself ("type fp8e5 not
  supported in this architecture"); fp8 tensors passed as arguments are refused by the catalog entry below.
- **Atomics** (`atomic_add/max/min/and/or/xor/xchg/cas`) work on int32, uint32 and float32
  (add/xchg/cas for float32; float max/min through Triton's integer rewrite); each element is
  updated once, by its owning thread, and every thread holding a copy receives the old value.
  Metal's device atomics are relaxed: every `sem` (relaxed, acquire, release, acq_rel) is emitted
  as `memory_order_relaxed` and every `scope` as device scope, so atomics are atomic but do not
  order *other* memory accesses across threadgroups. Other element types are refused.
- **Scans** (`tl.cumsum`, `tl.cumprod`, `tl.associative_scan`) go through threadgroup memory and
  scan each line serially: correct for any axis, layout and combine function, not yet fast. A half
  or bfloat cumsum / cumprod carries its running value in float and rounds each output once (a
  serial loop rounding every step drifts past 1% on long lines); so does the FMA path of `tl.dot`
  with a half accumulator over K.
- **Layout conversions** go through threadgroup memory; one larger than what is left of the
  32 KiB runs in rounds, a power-of-two slab of the tensor per round.
- **`tl.cat(..., can_reorder=True)`** and **`x.view(...)`** keep row-major order.
- **`tl.sort`**, **`tl.flip`**, **`tl.interleave`** are Triton library code over the shape ops and run as such;
  `tl.gather` and `tl.histogram` stage their input in threadgroup memory (input size <= 32 KiB).

## Also tested, outside the table

| feature | test | status |
|---|---|---|
| atomics add/max/min/and/or/xor (i32, u32), add/max/min (f32), xchg, cas, scalar tickets | `conformance/ops/test_atomics.py` | pass |
| `tl.debug_barrier` | `conformance/ops/test_atomics.py` | pass |
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
    out += [SEMANTICS, "## Refused", "",
            "Each refusal is one entry of `compiler/triton_metal/refusals.py`; the compiler raises it as",
            "`UnsupportedOperationError` with the kernel source line.", ""]
    for key, entry in CATALOG.items():
        fields = {name: f"<{name}>" for name in ("dtype", "kind", "symbol", "name")}
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
