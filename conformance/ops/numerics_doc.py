"""The "Numerics on Apple GPUs" section of docs/compatibility.md (compatibility.py renders it).

Its accuracy table is generated from apple_numerics.py, the same data the op table's tolerances come from."""
from __future__ import annotations

from conformance.ops import apple_numerics as apple

INTRO = """\
## Numerics on Apple GPUs

What a kernel computes with floating point is decided once per kernel, when it is compiled, and written
into its MSL (`compiler/triton_metal/numerics.py`), so that every runtime compiles it the same way and the
simulator computes what an Apple GPU computes. Sources: Apple's Metal Shading Language specification
(chapter 8 "Numerical Compliance" and section 1.6.3 "Math Intrinsics Compiler Options", the same in MSL
3.2, 4 and 4.1), and measurements of Apple GPUs published by moderately-ai/tiler
(`docs/research/apple-targets/numerical-behaviour.md`: Apple M4 Max, macOS 26 and 27, Xcode 26.6, the
offline and the runtime compiler, safe, relaxed and fast math), with reports of projects running Triton
kernels on Apple GPUs (triton-lang/triton-ext's AppleGPU backend). The op table's rows below
"Subnormal operands and results" and `conformance/ops/test_fuzz.py` check each point; their expectations
are in `conformance/ops/apple_numerics.py`.

**Denormals.** The specification lets float, half and bfloat arithmetic flush subnormal operands and
results to zero ("may be flushed", 8.1), and lists what a function may then return (8.5): its result for
the operands as given, or for the subnormal operands flushed, either of them flushed if subnormal; a
flushed zero's sign is undefined. Conversions are exact from half and bfloat to float, and float -> half
keeps half subnormals (8.6). Measured on an Apple M4 Max, in every math mode and through both compilers:
float and bfloat `+ - * /` flush subnormal operands and results to a zero of the same sign (bfloat as if
computed in float); half arithmetic keeps subnormals (as if computed in float and rounded); loads and
stores keep every bit pattern. Reported: the hardware `fma` flushes float subnormals. What the tests
assert:

| case | asserted |
|---|---|
| float, bfloat `+ - * /`, `fma` with subnormal operands or results | the flushed result (measured) |
| half arithmetic with subnormals | the kept or the flushed result (measured: kept; the specification allows both) |
| any other op reading a subnormal (`sqrt`, `max`, comparisons, `floor`, `abs`, `-x`, ...) | the flushed or the IEEE result (not measured; 8.5) |
| any op's subnormal result | that result, or zero (8.5) |
| loads, stores, half/bfloat -> float, float -> half | the exact value, half subnormals kept (8.6, measured) |

The simulator runs every simulated thread with the CPU's flush-to-zero and denormals-are-zero modes
(x86 MXCSR FTZ and DAZ, aarch64 FPCR.FZ; `fiber_runtime.cpp` sets them around the threadgroups each
worker runs and restores the caller's, so numpy and torch keep gradual underflow). That flushes float
arithmetic, `fma` and the float computations bfloat ops go through exactly as measured, keeps half
subnormals (they are normal floats once converted) and leaves loads, stores and conversions alone.
`TRITON_METAL_SIM_DENORMALS=ieee` turns it off, for comparison.

**Contraction.** Apple's compiler fuses `a*b+c` into one fma by itself: within a statement in safe mode,
across statements in fast and relaxed mode (1.6.3). g++ fuses only where the CPU has FMA instructions and
the flags allow it. So neither decides: every kernel says `#pragma STDC FP_CONTRACT OFF`, and Triton's
`enable_fp_fusion` is carried out by the code generator (`codegen/ops/lower_contraction.py`): with it, an add
or subtract of a float or half product computed in the same block becomes one `fma()`, which is correctly
rounded on Apple GPUs (Tables 8.1, 8.3) and on the simulator (compiled with `-ffp-contract=off`, and
`-mfma` where the CPU has it: `fma()` inline, nothing fused implicitly). As on NVIDIA (LLVM's DAG
combiner): the first operand's product when both are products, also a product with other uses, bfloat
products never (Metal has no bfloat fma). `enable_fp_fusion` defaults as in Triton 3.9: on, unless
`TRITON_DEFAULT_FP_FUSION=0` or `TRITON_FORCE_DISABLE_FP_FUSION=1`. An explicit `tl.fma` is always one
`fma()`.

**Math mode.** Precise by default; fast with the compile option `fast_math=True`, whose default is
`TRITON_METAL_FAST_MATH=1`: read once, when Triton parses the options, so it is in the compile-cache key.
Precise means `metal::precise::` functions (Table 8.1) and Apple's safe math mode (NaN, INF and signed
zeros honoured, no reassociation); fast means `metal::fast::` functions (Table 8.2) and fast mode (the
compiler may assume no NaN or INF, ignore the sign of zero, use reciprocals and reassociate). Which
variant a function call gets would otherwise be the runtime's choice (`-fmetal-math-fp32-functions`,
`MTLCompileOptions.mathFloatingPointFunctions`, fast unless set), so every float function whose two
variants differ names its variant (`precise::exp`, `fast::exp`, `precise::fmax`, `precise::fmod`, ...;
libdevice's `fast_*` functions are `fast::` and the others `precise::` in either mode; `floor`, `fabs`,
`copysign` and the like, exact in both tables, stay unnamed). The kernel's first lines state the math
mode: `#pragma METAL fp math_mode(safe)` or `(fast)`, inside `#if __METAL_VERSION__ >= 320` (the pragma
exists from MSL 3.2). How each runtime gets it:

| runtime | how the kernel's math mode reaches it |
|---|---|
| metal (PyObjC) | `MTLCompileOptions` from the pragma the MSL states: `mathMode` safe/fast and `mathFloatingPointFunctions` precise/fast (macOS 15+), else `fastMathEnabled` |
| metal, torch `mps` tensors (`torch.mps.compile_shader`) | PyTorch takes no options of ours and compiles with safe mode and precise functions unless `PYTORCH_MPS_FAST_MATH=1` (`MetalShaderLibrary::compileLibrary`); the functions are named in the kernel, and from MSL 3.2 (macOS 15) the pragma sets the mode; before, a precise kernel under `PYTORCH_MPS_FAST_MATH=1` is refused (`MetalError`) rather than compiled fast |
| mlx (`mx.fast.metal_kernel`) | MLX compiles every library with fast math off (safe mode, precise functions); the named functions and, from MSL 3.2, the pragma in the header MLX is given make a fast kernel fast |
| simulator | reads the pragma: fast mode compiles the kernel with g++'s reassociation, reciprocal and signed-zero licences (Apple's fast-math results that differ from safe mode's, e.g. `(1 + 2^-24) + 2^-24` is `1 + 2^-23`); NaN and INF stay honoured, where Apple's fast math may not honour them |

On the simulator `fast::` functions are as accurate as `precise::` ones (the CPU's library), more than
Table 8.2 promises: the op table's tolerances for libdevice's `fast_*` functions are Table 8.2's.

**Rounding.** Float, half and bfloat operations round to nearest even or toward zero (8.2; Apple GPUs
were measured rounding to nearest even); the simulator rounds to nearest even. `x / y` on float is
`precise::divide` (`fast::divide` under fast math), correctly rounded in precise mode, as are `tl.div_rn`, `tl.sqrt_rn`,
`libdevice.rsqrt_rn` (`precise::rsqrt`), `rcp_rn` and `fma` (Table 8.1), subnormal results flushed like
all float arithmetic. The simulator's functions are at least as accurate as the table below (glibc, or
computed in double where float would not be: `rsqrt`, `sinpi`, `cospi`, `tanpi`, half `fma`), so the op
table's tolerances are the table's bounds, plus half an ulp for the float64 reference's own rounding,
never what the CPU happens to give.

**Conversions.** Float -> half and bfloat round to nearest even (8.6). Under fast math, Apple's compiler
was seen folding a `(half)` conversion away, so there an explicit `.to(tl.float16)` / `.to(tl.bfloat16)`
rounds on the bits with integer arithmetic (`tm_half_rtne`, `tm_bfloat_rtne`, `codegen/ops/lower_rounding.py`),
and `fp_downcast_rounding="rtz"` is honoured in both modes (`tm_half_rtz`, `tm_bfloat_rtz`; MSL has no
per-conversion rounding mode). Both keep half subnormals, NaN and infinities.

### Accuracy of Metal's functions (MSL specification 8.4)
"""

SOURCES = """\
Float: Table 8.1 (fast math off: `precise::`, safe mode), Table 8.2 (fast math: `fast::`). Half: Table 8.3
(Apple GPU family 4 and later; fast math does not change it). bfloat `+ - * /`: correctly rounded,
`1.0 / x` and `x / y` within 0.6 ulp under fast math (Tables 8.4, 8.5). "Implemented as" entries define
the result by that formula; an op-table row testing one states the bound it derives from it.
"""


def render() -> str:
    names = list(apple.PRECISE_F32)
    names += [n for n in apple.FAST_F32 if n not in names]
    rows = ["| function | float, precise (Table 8.1) | float, fast (Table 8.2) | half (Table 8.3) |", "|---|---|---|---|"]
    for name in names:
        cells = [t[name].text.replace("|", "\\|") if name in t else "" for t in (apple.PRECISE_F32, apple.FAST_F32,
                                                                                 apple.HALF)]
        rows.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return INTRO + "\n" + "\n".join(rows) + "\n\n" + SOURCES
