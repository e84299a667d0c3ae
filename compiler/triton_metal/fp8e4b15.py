"""``tl.float8e4b15`` conversions, as Triton-language code (Triton's ``convert_custom_types`` hook).

Triton 3.9 has no MLIR type for float8e4b15: it is ``i8`` in the IR, and Triton asks the backend's
``codegen_fns["convert_custom_types"]`` for its casts. The format is the one Triton's CUDA backend
defines with PTX (python/triton/language/extra/cuda/utils.py), which we follow bit for bit with
integer operations:

* e4b15 -> float16: the code's 4 exponent and 3 mantissa bits become float16's low 4 exponent bits
  (same bias, 15) and top 3 mantissa bits: ``(code & 0x80) << 8 | (code & 0x7F) << 7``. Exact; there
  are no NaNs or infinities (0x7F is 1.875). float32 / bfloat16 results convert that float16 (exact).
* float16 -> e4b15: the magnitude clamped to 1.75 (NaN and infinities too), then rounded to the
  nearest code with ties away from zero; the sign bit is kept (-0 stays 0x80). float32 first converts
  to float16 toward zero (as Triton's CUDA backend does), bfloat16 and the other fp8 types through float32;
  ``fp_downcast_rounding`` does not change these steps.
"""
from __future__ import annotations

from triton.language import core

_SIGN, _MAGNITUDE = 0x80, 0x7F
_MAX_F16 = 0x3F00  # 1.75: the largest magnitude Triton's conversion produces


def _to_float16(x, _semantic):
    bits = x.to(core.uint8, bitcast=True, _semantic=_semantic).to(core.uint16, _semantic=_semantic)
    sign = bits.__and__(_SIGN, _semantic=_semantic).__lshift__(8, _semantic=_semantic)
    body = bits.__and__(_MAGNITUDE, _semantic=_semantic).__lshift__(7, _semantic=_semantic)
    return sign.__or__(body, _semantic=_semantic).to(core.float16, bitcast=True, _semantic=_semantic)


def _from_float16(x, _semantic):
    bits = x.to(core.uint16, bitcast=True, _semantic=_semantic).to(core.uint32, _semantic=_semantic)
    magnitude = core.minimum(bits.__and__(0x7FFF, _semantic=_semantic), _MAX_F16, _semantic=_semantic)
    # ((magnitude << 1) + 0x80) >> 8: the top 8 of the 16 bits, rounded half away from zero
    code = magnitude.__lshift__(1, _semantic=_semantic).__add__(0x80, _semantic=_semantic)
    code = code.__rshift__(8, _semantic=_semantic)
    sign = bits.__rshift__(8, _semantic=_semantic).__and__(_SIGN, _semantic=_semantic)
    return sign.__or__(code, _semantic=_semantic).to(core.uint8, _semantic=_semantic).to(
        core.int8, bitcast=True, _semantic=_semantic)


def convert_custom_types(input, dst_ty, fp_downcast_rounding=None, _semantic=None):
    """Triton's hook: cast `input` to `dst_ty` when either side is float8e4b15."""
    if input.type.scalar.is_fp8e4b15():
        value = _to_float16(input, _semantic)
        return value if dst_ty.scalar.is_fp16() else value.to(dst_ty.scalar, _semantic=_semantic)
    if not dst_ty.scalar.is_fp8e4b15() or not input.type.scalar.is_floating():
        raise TypeError(f"float8e4b15 converts to and from floating-point types, not {input.type.scalar}")
    value = input
    if value.type.scalar.is_bf16() or value.type.scalar.is_fp8():  # exact in float32
        value = value.to(core.float32, _semantic=_semantic)
    if value.type.scalar.is_fp32():
        value = value.to(core.float16, fp_downcast_rounding="rtz", _semantic=_semantic)
    result = _from_float16(value, _semantic)
    return core.tensor(result.handle, result.type.with_element_ty(dst_ty.scalar)) if result.type.is_block() \
        else core.tensor(result.handle, dst_ty.scalar)
