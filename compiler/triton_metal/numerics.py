"""A kernel's floating-point semantics on Apple GPUs: decided once per kernel, stated in its MSL.

What Apple specifies (Metal Shading Language specification, chapter 8 "Numerical Compliance" and
section 1.6.3 "Math Intrinsics Compiler Options"; the same text in MSL 3.2, 4 and 4.1) and what was
measured on Apple GPUs (docs/compatibility.md, "Numerics on Apple GPUs", has the sources):

- **Math mode.** Precise (Apple's "safe" mode with precise fp32 functions, Table 8.1) by default;
  fast (Table 8.2: no NaN/INF, no signed zeros, reciprocals, reassociation) with the compile option
  ``fast_math=True`` or ``TRITON_METAL_FAST_MATH=1``. Both are read in one place,
  ``MetalBackend.parse_options`` (``fast_math_requested``), so the mode is a compile option and part of
  Triton's cache key.
- **Contraction.** Apple's compiler may fuse ``a*b+c`` into one fma (within a statement in safe mode,
  across statements in fast mode), g++ only where the CPU has FMA instructions. Neither is left to
  choose: every kernel turns implicit contraction off, and Triton's ``enable_fp_fusion`` is carried
  out by the code generator writing ``fma()`` (codegen/ops/lower_contraction.py), correctly rounded on both.
- **Denormals.** The specification lets any float, half or bfloat arithmetic flush subnormal operands
  and results to zero (section 8.1; 8.5 lists the results a flushing function may return). Measured
  on Apple GPUs, in every math mode: float and bfloat ``+ - * /`` and ``fma`` flush both, keeping the
  sign; half arithmetic keeps subnormals; loads, stores and conversions keep every bit pattern. The
  simulator models that: its worker threads compute with the CPU's flush-to-zero and
  denormals-are-zero modes (fiber_runtime.cpp), unless ``TRITON_METAL_SIM_DENORMALS=ieee``.

``MathMode.pragmas()`` is how a kernel's MSL states its mode, so a runtime whose compile options are
not ours (``torch.mps.compile_shader``, ``mx.fast.metal_kernel``) compiles it the same way; every float
function whose precise and fast variants differ is called by its variant's name (``precise::exp``,
``fast::exp``, ``precise::fmax``: codegen/emitter.KernelEmitter.math_prefix), which no compile option
changes. ``MathMode.of_msl`` reads the mode back for the Metal runtime's compile options and the
simulator's flags.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

FAST_MATH_ENV = "TRITON_METAL_FAST_MATH"
SIM_DENORMALS_ENV = "TRITON_METAL_SIM_DENORMALS"
SIM_DENORMAL_MODELS = ("apple", "ieee")

_TRUE = ("1", "true", "yes", "on")
# `#pragma METAL fp math_mode(...)` exists from MSL 3.2 (Xcode 16, macOS 15): older compilers would not know
# it, so it is guarded; before 3.2 the compile options decide (metal_runtime passes the matching ones).
_MATH_MODE_GUARD = "#if __METAL_VERSION__ >= 320"
_MATH_MODE = re.compile(r"^\s*#\s*pragma\s+METAL\s+fp\s+math_mode\s*\(\s*(\w+)\s*\)", re.MULTILINE)
_CONTRACT = re.compile(r"^\s*#\s*pragma\s+(?:METAL\s+fp\s+contract\s*\(\s*(\w+)\s*\)|STDC\s+FP_CONTRACT\s+(\w+))",
                       re.MULTILINE)
# Spellings of each contraction setting in the two pragmas, as g++'s -ffp-contract values.
_CONTRACT_VALUES = {"off": "off", "on": "on", "fast": "fast", "OFF": "off", "ON": "on", "DEFAULT": "on"}


def fast_math_requested() -> bool:
    """``TRITON_METAL_FAST_MATH=1``: the default of the ``fast_math`` compile option."""
    return os.environ.get(FAST_MATH_ENV, "0").strip().lower() in _TRUE


@dataclass(frozen=True)
class MathMode:
    """How one kernel computes: ``fast`` math or precise, and the implicit contraction compilers may do
    (``"off"`` in every generated kernel; ``"on"``: within a statement, ``"fast"``: across statements)."""
    fast: bool = False
    contract: str = "off"

    @classmethod
    def of_options(cls, options) -> MathMode:
        return cls(fast=bool(getattr(options, "fast_math", False)))

    @property
    def metal_name(self) -> str:
        """The name in ``#pragma METAL fp math_mode`` and ``-fmetal-math-mode``."""
        return "fast" if self.fast else "safe"

    def pragmas(self) -> list:
        """The MSL lines that state this mode; after ``using namespace metal;``, before any code."""
        return [f"{_MATH_MODE_GUARD}  // math mode: precise unless fast_math (older MSL: the compile options)",
                f"#pragma METAL fp math_mode({self.metal_name})",
                "#endif",
                f"#pragma STDC FP_CONTRACT {self.contract.upper()}  // no implicit fma: fusion is written as fma()"]

    @classmethod
    def of_msl(cls, msl: str) -> MathMode:
        """The mode ``msl`` states (the last pragma of each kind wins, as in a compiler). MSL without them
        (written by hand) gets Apple's defaults for the options our runtimes pass: safe mode, which
        contracts within a statement."""
        modes = _MATH_MODE.findall(msl)
        fast = bool(modes) and modes[-1] == "fast"
        contracts = [metal or stdc for metal, stdc in _CONTRACT.findall(msl)]
        contract = _CONTRACT_VALUES.get(contracts[-1], "on") if contracts else ("fast" if fast else "on")
        return cls(fast=fast, contract=contract)

    @property
    def flushes_float_denormals(self) -> bool:
        """Apple's float and bfloat arithmetic flushes subnormals in this mode: in both (measured)."""
        return True


def sim_denormal_model() -> str:
    """``TRITON_METAL_SIM_DENORMALS``: ``apple`` (the default: float and bfloat arithmetic flush subnormal
    operands and results to zero, as measured on Apple GPUs in every math mode) or ``ieee`` (the CPU's own
    gradual underflow, for comparison)."""
    model = os.environ.get(SIM_DENORMALS_ENV, "").strip().lower() or "apple"
    if model not in SIM_DENORMAL_MODELS:
        raise ValueError(f"{SIM_DENORMALS_ENV}={model!r}: use one of {', '.join(SIM_DENORMAL_MODELS)}")
    return model


def sim_flushes_denormals(mode: MathMode) -> bool:
    """Whether the simulator runs a kernel of ``mode`` with float subnormals flushed: what Apple does in that
    mode (``MathMode.flushes_float_denormals``), unless ``TRITON_METAL_SIM_DENORMALS=ieee``."""
    return mode.flushes_float_denormals and sim_denormal_model() == "apple"
