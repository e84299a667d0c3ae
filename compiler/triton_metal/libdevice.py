"""``triton.language.extra.libdevice`` on the Metal backend.

Kernels write ``from triton.language.extra import libdevice`` and call ``libdevice.asin(x)``; the
frontend's module only declares the names. Each backend maps it to its own module through
``BaseBackend.get_module_map()`` (NVIDIA: ``triton.language.extra.cuda.libdevice``, calls into
CUDA's libdevice bitcode). Ours maps every name to a ``tt.extern_elementwise`` call of a
``triton_metal.*`` symbol, which ``codegen/ops/lower_extern.py`` lowers to Metal Shading Language:
``metal::precise::`` math, or small MSL helpers for what Metal lacks (expm1, log1p, cbrt, erfc,
erfinv, hypot, remainder, nextafter, ...). Nothing is linked: ``lib_path`` stays empty.

Differences from the CUDA module, all in the caller's favour or refused clearly:

- float functions also take float16 and bfloat16: computed in float32, rounded once back (nextafter
  works in the argument's own type; float_as_int/float_as_uint take float32 only);
- fmin and fmax exist too (CUDA's module has neither);
- predicates (isnan, isinf, finitef) return int1 directly (CUDA: int32 then ``.to(int1)``);
- float64 variants exist (as in CUDA) but Apple GPUs have no fp64: the compiler refuses them with
  the catalog's fp64 message;
- directed rounding modes (``*_rz``, ``*_rd``, ``*_ru`` of arithmetic and int->float conversions)
  are refused (catalog ``libdevice_rounding_mode``); float->int conversions in every mode work;
- Bessel functions, lgamma and tgamma are refused (catalog ``libdevice_missing``).
"""
from __future__ import annotations

from triton.language import core

from triton_metal.codegen.libdevice_msl import SYMBOL_PREFIX
from triton_metal.refusals import refuse

LIB_NAME = "triton_metal"

F, D = core.float32, core.float64
I, U, L, UL = core.int32, core.uint32, core.int64, core.uint64
B = core.int1
NARROW_FLOATS = (core.float16, core.bfloat16)  # computed in float32
# Functions of the bits or the spacing of their own float type: float32 arithmetic would change them.
OWN_TYPE_ONLY = {"nextafter", "float_as_int", "float_as_uint"}

# name -> {argument dtypes: (symbol without prefix, result dtype)}
SIGNATURES: dict[str, dict[tuple, tuple[str, core.dtype]]] = {}


def _add(name: str, *signatures) -> None:
    """signatures: (argument dtypes, result dtype[, symbol]); the symbol defaults to the name."""
    table = SIGNATURES.setdefault(name, {})
    for args, ret, *symbol in signatures:
        table[tuple(args)] = (symbol[0] if symbol else name, ret)


def _floats(names: str, arity: int) -> None:
    """float32 functions (and their float64 variant, which the compiler refuses)."""
    for name in names.split():
        _add(name, ((F,) * arity, F), ((D,) * arity, D))


_floats("exp exp2 exp10 expm1 log log2 log10 log1p sin cos tan sinpi cospi asin acos atan sinh cosh tanh "
        "asinh acosh atanh erf erfc erfinv erfcinv erfcx normcdf normcdfinv sqrt sqrt_rn rsqrt rsqrt_rn "
        "rcp_rn cbrt rcbrt floor ceil trunc round rint nearbyint saturatef logb", 1)
_floats("fast_sinf fast_cosf fast_tanf fast_tanhf fast_expf fast_exp10f fast_logf fast_log2f fast_log10f", 1)
_floats("atan2 hypot rhypot fmod remainder fmin fmax fdim copysign nextafter div_rn add_rn sub_rn mul_rn "
        "fast_dividef fast_powf", 2)
_floats("fma fma_rn norm3d rnorm3d", 3)
_floats("norm4d rnorm4d", 4)
_add("pow", ((F, F), F), ((D, D), D), ((F, I), F, "powi"), ((D, I), D, "powi"))
_add("nextafter", ((core.float16, core.float16), core.float16), ((core.bfloat16, core.bfloat16), core.bfloat16))
_add("ldexp", ((F, I), F), ((D, I), D))
_add("scalbn", ((F, I), F, "ldexp"), ((D, I), D, "ldexp"))
_add("isnan", ((F,), B), ((D,), B))
_add("isinf", ((F,), B), ((D,), B))
_add("finitef", ((F,), B, "isfinite"))
_add("signbit", ((F,), I), ((D,), I))
_add("ilogb", ((F,), I), ((D,), I))
_add("abs", ((I,), I), ((L,), L), ((F,), F, "fabs"), ((D,), D, "fabs"))
_add("llrint", ((F,), L), ((D,), L))
_add("llround", ((F,), L), ((D,), L))
for _mode in ("rn", "rz", "rd", "ru"):
    _add(f"float2int_{_mode}", ((F,), I))
    _add(f"float2uint_{_mode}", ((F,), U))
    _add(f"float2ll_{_mode}", ((F,), L))
    _add(f"float2ull_{_mode}", ((F,), UL))
_add("int2float_rn", ((I,), F))
_add("uint2float_rn", ((U,), F))
_add("ll2float_rn", ((L,), F))
_add("ull2float_rn", ((UL,), F))
_add("int_as_float", ((I,), F))
_add("uint_as_float", ((U,), F, "int_as_float"))
_add("float_as_int", ((F,), I))
_add("float_as_uint", ((F,), U, "float_as_int"))
# Integer functions.
_add("clz", ((I,), I), ((L,), I))
_add("popc", ((I,), I), ((L,), I))
_add("ffs", ((I,), I), ((L,), I))
_add("brev", ((I,), I), ((L,), L))
_add("mulhi", ((I, I), I), ((U, U), U, "umulhi"), ((L, L), L, "mul64hi"), ((UL, UL), UL, "umul64hi"))
_add("mul24", ((I, I), I), ((U, U), U, "umul24"))
_add("hadd", ((I, I), I), ((U, U), U, "uhadd"))
_add("rhadd", ((I, I), I), ((U, U), U, "urhadd"))
_add("sad", ((I, I, U), I), ((U, U, U), U, "usad"))
_add("byte_perm", ((I, I, I), I))
# float64-only functions: they exist so that calling them names the real cause (no fp64 on Apple GPUs).
for _name, _args, _ret in (
        ("double2float_rn", (D,), F), ("double2int_rn", (D,), I), ("double2uint_rn", (D,), U),
        ("double2ll_rn", (D,), L), ("double2ull_rn", (D,), UL), ("int2double_rn", (I,), D),
        ("uint2double_rn", (U,), D), ("ll2double_rn", (L,), D), ("ull2double_rn", (UL,), D),
        ("hiloint2double", (I, I), D), ("double2loint", (D,), I), ("double2hiint", (D,), I),
        ("longlong_as_double", (L,), D), ("double_as_longlong", (D,), L), ("rcp64h", (D,), D),
        ("isfinited", (D,), B)):
    _add(_name, (_args, _ret))

# Names the Metal backend refuses, with the catalog entry that says why.
_DIRECTED = ("rz", "rd", "ru")
REFUSED: dict[str, str] = {
    **{f"{op}_{mode}": "libdevice_rounding_mode" for mode in _DIRECTED for op in (
        "fma", "div", "rcp", "sqrt", "add", "sub", "mul", "int2float", "uint2float", "ll2float", "ull2float",
        "double2float", "double2int", "double2uint", "double2ll", "double2ull", "ll2double", "ull2double")},
    **{name: "libdevice_missing" for name in (
        "j0", "j1", "y0", "y1", "jn", "yn", "cyl_bessel_i0", "cyl_bessel_i1", "lgamma", "tgamma")},
}


def _signature_text(args) -> str:
    return "(" + ", ".join(str(a) for a in args) + ")"


def call(name: str, args, _semantic):
    """Emit the extern call of libdevice function `name` (float16/bfloat16 computed in float32)."""
    signatures = SIGNATURES[name]
    arity = len(next(iter(signatures)))
    if len(args) != arity:
        raise TypeError(f"libdevice.{name} takes {arity} argument{'s' * (arity != 1)}, got {len(args)}")
    tensors = [_semantic.to_tensor(a) for a in args]
    given = tuple(t.dtype for t in tensors)
    computed = given if name in OWN_TYPE_ONLY else tuple(F if t in NARROW_FLOATS else t for t in given)
    if computed not in signatures:
        accepted = "; ".join(_signature_text(s) for s in signatures)
        raise TypeError(f"libdevice.{name} does not take {_signature_text(given)} on the Metal backend; it takes "
                        f"{accepted}" + ("" if name in OWN_TYPE_ONLY else " (float16 and bfloat16 are computed in float32)"))
    symbol, ret = signatures[computed]
    tensors = [_semantic.cast(t, c) if t.dtype != c else t for t, c in zip(tensors, computed)]
    result = core.extern_elementwise(LIB_NAME, "", tensors, {computed: (SYMBOL_PREFIX + symbol, ret)},
                                     is_pure=True, _semantic=_semantic)
    narrow = next((t for t in given if t in NARROW_FLOATS), None)
    return _semantic.cast(result, narrow) if narrow is not None and ret == F else result


def _provided(name: str):
    def function(*args, _semantic=None):
        return call(name, args, _semantic)
    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"libdevice.{name}: " + "; ".join(
        f"{_signature_text(a)} -> {r}" for a, (_, r) in SIGNATURES[name].items())
    return core.extern(function)


def _refused(name: str, key: str):
    def function(*args, _semantic=None):
        raise refuse(key, name=name)
    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"libdevice.{name}: refused on the Metal backend (catalog entry {key!r})"
    return core.extern(function)


for _name in SIGNATURES:
    globals()[_name] = _provided(_name)
for _name, _key in REFUSED.items():
    globals()[_name] = _refused(_name, _key)

__all__ = list(SIGNATURES) + list(REFUSED)
