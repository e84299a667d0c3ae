"""Words no identifier the code generator spells for a user's name may be, or contain: one table per
source, each citing it.

``msl_text`` applies them (to identifiers and to comment text); the MLX runtime names its own
parameters from ``MLX_INPUT_PREFIX`` / ``MLX_OUTPUT_PREFIX`` so the two agree. Names the code generator
introduces itself all begin with ``OWN_PREFIX``, which no table word and no user's name does.
"""
from __future__ import annotations

from itertools import product

from triton_metal.abi import MLX_INPUT_PREFIX, MLX_KERNEL_ATTRIBUTES, MLX_OUTPUT_PREFIX
from triton_metal.codegen.msl_builtin_names import MODEL_MACROS, MODEL_NAMES


def _words(text: str) -> frozenset:
    return frozenset(text.split())


# C++14 keywords ([lex.key], Table 4) and alternative tokens ([lex.digraph], Table 5): MSL is C++14
# (MSL specification 1.4, "Metal and C++14"). Plus the keywords C++17 and C++20 added, so that a
# newer language version cannot turn a name we emit into a keyword.
CXX_KEYWORDS = _words("""
    alignas alignof asm auto bool break case catch char char16_t char32_t class const constexpr const_cast
    continue decltype default delete do double dynamic_cast else enum explicit export extern false float for
    friend goto if inline int long mutable namespace new noexcept nullptr operator private protected public
    register reinterpret_cast return short signed sizeof static static_assert static_cast struct switch
    template this thread_local throw true try typedef typeid typename union unsigned using virtual void
    volatile wchar_t while
    and and_eq bitand bitor compl not not_eq or or_eq xor xor_eq
    char8_t concept consteval constinit co_await co_return co_yield requires import module
""")

_SCALARS = ("bool", "char", "uchar", "short", "ushort", "int", "uint", "long", "ulong", "half", "bfloat", "float")

# The Metal Shading Language specification's own words (section numbers of MSL 3.1):
MSL_KEYWORDS = frozenset(
    # 1.4.4 Restrictions: `main` cannot name a Metal function.
    ["main"]
    # 2.1 Scalar Data Types (with the <metal_stdlib> aliases of the fixed-width ones).
    + list(_SCALARS) + ["size_t", "ptrdiff_t"]
    + [f"{s}int{n}_t" for s, n in product(("", "u"), (8, 16, 32, 64))]
    # 2.2 Vector Data Types, 2.2.3 Packed Vector Types, 2.3 Matrix Data Types.
    + [f"{t}{n}" for t, n in product(_SCALARS, (2, 3, 4))]
    + [f"packed_{t}{n}" for t, n in product(_SCALARS, (2, 3, 4))]
    + [f"{t}{c}x{r}" for t, c, r in product(("half", "float", "bfloat"), (2, 3, 4), (2, 3, 4))]
    + ["vec", "matrix", "packed_vec"]
    # 2.5-2.14: atomics, arrays, textures, samplers, imageblocks, function tables, SIMD-group matrices.
    + ["atomic", "atomic_bool", "atomic_int", "atomic_uint", "atomic_long", "atomic_ulong", "atomic_float",
       "array", "array_ref", "sampler", "texture_buffer", "texture1d", "texture1d_array", "texture2d",
       "texture2d_array", "texture2d_ms", "texture2d_ms_array", "texture3d", "texturecube", "texturecube_array",
       "depth2d", "depth2d_array", "depth2d_ms", "depth2d_ms_array", "depthcube", "depthcube_array",
       "imageblock", "visible_function_table", "intersection_function_table", "acceleration_structure",
       "simdgroup_matrix", "simdgroup_float8x8", "simdgroup_half8x8", "simdgroup_bfloat8x8", "access"]
    # 4 Address Spaces.
    + ["device", "constant", "thread", "threadgroup", "threadgroup_imageblock", "ray_data", "object_data"]
    # 5.1 Function Qualifiers.
    + ["kernel", "vertex", "fragment", "visible", "stitchable", "mesh", "object", "intersection",
       "patch", "coherent"])

# Namespaces our MSL names: `using namespace metal;` brings metal::precise and metal::fast into scope.
NAMESPACES = frozenset({"metal", "std", "precise", "fast"})

# Macros <metal_stdlib> defines (6.5 Math Functions constants, 6.16/6.17 numeric limits): a local
# of that name would be replaced by the preprocessor.
MSL_MACROS = _words("""
    MAXFLOAT HUGE_VALF HUGE_VALH INFINITY NAN FLT_DIG FLT_MANT_DIG FLT_MAX_10_EXP FLT_MAX_EXP FLT_MIN_10_EXP
    FLT_MIN_EXP FLT_RADIX FLT_MAX FLT_MIN FLT_EPSILON HALF_DIG HALF_MANT_DIG HALF_MAX_10_EXP HALF_MAX_EXP
    HALF_MIN_10_EXP HALF_MIN_EXP HALF_RADIX HALF_MAX HALF_MIN HALF_EPSILON CHAR_BIT SCHAR_MAX SCHAR_MIN UCHAR_MAX
    CHAR_MAX CHAR_MIN USHRT_MAX SHRT_MAX SHRT_MIN UINT_MAX INT_MAX INT_MIN ULONG_MAX LONG_MAX LONG_MIN
    M_E_F M_LOG2E_F M_LOG10E_F M_LN2_F M_LN10_F M_PI_F M_PI_2_F M_PI_4_F M_1_PI_F M_2_PI_F M_2_SQRTPI_F
    M_SQRT2_F M_SQRT1_2_F M_E_H M_LOG2E_H M_LOG10E_H M_LN2_H M_LN10_H M_PI_H M_PI_2_H M_PI_4_H M_1_PI_H
    M_2_PI_H M_2_SQRTPI_H M_SQRT2_H M_SQRT1_2_H
""")

# Every name our model of <metal_stdlib> declares or defines (generated from it by clang:
# msl_builtin_names.py). The model declares each builtin the code generator can call, and the
# front-end check rejects calls of anything else, so this table holds every builtin generated code
# names.
METAL_STDLIB_NAMES = MODEL_NAMES | MODEL_MACROS

# The rest of the specification's standard library and types (MSL 3.1 sections), which the model
# leaves out because the code generator never calls them: reserved all the same, so that using one
# later cannot meet a user's variable of that name.
SPEC_LIBRARY_NAMES = _words("""
    all any
    determinant transpose
    faceforward reflect refract distance_squared
    quad_ballot quad_vote quad_active_threads_mask quad_shuffle_rotate_up quad_shuffle_rotate_down
    quad_shuffle_and_fill_up quad_shuffle_and_fill_down quad_prefix_inclusive_product
    quad_prefix_exclusive_product simd_is_helper_thread
    dfdx dfdy fwidth discard_fragment get_num_samples get_sample_position interpolant interpolation
    pack_float_to_unorm4x8 pack_float_to_snorm4x8 pack_half_to_unorm4x8 pack_half_to_snorm4x8
    pack_float_to_srgb_unorm4x8 pack_half_to_srgb_unorm4x8 pack_float_to_unorm2x16 pack_float_to_snorm2x16
    pack_half_to_unorm2x16 pack_half_to_snorm2x16 pack_float_to_unorm10a2 pack_float_to_unorm565
    pack_half_to_unorm10a2 pack_half_to_unorm565 unpack_unorm4x8_to_float unpack_snorm4x8_to_float
    unpack_unorm4x8_to_half unpack_snorm4x8_to_half unpack_unorm4x8_srgb_to_float unpack_unorm4x8_srgb_to_half
    unpack_unorm2x16_to_float unpack_snorm2x16_to_float unpack_unorm2x16_to_half unpack_snorm2x16_to_half
    unpack_unorm10a2_to_float unpack_unorm565_to_float unpack_unorm10a2_to_half unpack_unorm565_to_half
    atomic_compare_exchange_strong_explicit numeric_limits
    coord address filter mag_filter min_filter mip_filter compare_func border_color s_address t_address
    r_address max_anisotropy lod_clamp
    render_command compute_command command_buffer rasterization_rate_map_decoder rasterization_rate_map_data
    ray intersector intersection_result intersection_query intersection_params triangle_data
    primitive_acceleration_structure instance_acceleration_structure mesh_grid_properties patch_control_point
    uniform
""")
# (6.4 relational all/any; 6.6 matrix; 6.8 geometric; 6.9.2/6.9.3 SIMD- and quad-group functions the model
# omits; 6.10-6.11 graphics and interpolation; 6.14 pack/unpack; 6.15 atomics; 2.10 sampler state enums;
# 6.16 indirect command buffers; 6.17 rasterization rate maps; 2.17/6.18 ray tracing; 5.2 mesh and
# tessellation; 2.12 uniform<T>.)

# What the simulator compiles kernels with besides the model's words: g++'s <stddef.h> and <stdint.h>
# (C11 7.19, 7.20 and the *_WIDTH macros of ISO/IEC TS 18661-1). A macro of these names would replace a
# local variable; a typedef would clash with a kernel or function name.
_C_INTEGERS = [f"{kind}{n}" for kind, n in product(("INT", "INT_LEAST", "INT_FAST"), (8, 16, 32, 64))]
C_LIBRARY_NAMES = frozenset(
    ["NULL", "offsetof", "size_t", "ptrdiff_t", "max_align_t", "nullptr_t", "wchar_t", "intptr_t", "uintptr_t",
     "intmax_t", "uintmax_t"]
    + [f"{s}int{kind}{n}_t" for s, kind, n in product(("", "u"), ("", "_least", "_fast"), (8, 16, 32, 64))]
    + [f"{s}{i}_{m}" for s, i, m in product(("", "U"), _C_INTEGERS, ("MIN", "MAX", "WIDTH"))]
    + [f"{s}INT{n}_C" for s, n in product(("", "U"), (8, 16, 32, 64))]
    + [f"{s}{i}_{m}" for s, i, m in product(("", "U"), ("INTPTR", "INTMAX"), ("MIN", "MAX", "WIDTH"))]
    + ["INTMAX_C", "UINTMAX_C"]
    + [f"{i}_{m}" for i, m in product(("PTRDIFF", "SIG_ATOMIC", "SIZE", "WCHAR", "WINT"), ("MIN", "MAX", "WIDTH"))])

# The type names of the signature mx.fast.metal_kernel writes around our body, declared by MLX's
# preamble (mlx/backend/metal/kernels/bf16.h and utils.h: `typedef half float16_t;`, `bfloat16_t`): a
# kernel or noinline function of that name would clash there.
MLX_TYPE_NAMES = frozenset({"float16_t", "bfloat16_t"})

RESERVED_WORDS = CXX_KEYWORDS | MSL_KEYWORDS | NAMESPACES | MSL_MACROS | METAL_STDLIB_NAMES | SPEC_LIBRARY_NAMES | \
    C_LIBRARY_NAMES | MLX_TYPE_NAMES

# Every name the code generator introduces itself (loop indices, accumulators, scratch pointers, builtin
# parameters, helper functions) begins with this, in any letter case (the simulator's macros are TM_*,
# its runtime functions tm_rt_*); msl_text.identifier never returns such a name for a user's.
OWN_PREFIX = "tm_"

# mx.fast.metal_kernel writes the kernel signature itself and adds one parameter for every Metal
# attribute whose name occurs in the body *as a substring* (comments included): MLX's table
# (abi.MLX_KERNEL_ATTRIBUTES), name -> type. These are also all the attributes of kernel function
# inputs the MSL specification lists (abi.KERNEL_BUILTINS).
MLX_ATTRIBUTES = dict(MLX_KERNEL_ATTRIBUTES)

# Substrings no identifier or comment the code generator emits may contain.
FORBIDDEN_SUBSTRINGS = (*MLX_ATTRIBUTES, MLX_INPUT_PREFIX, MLX_OUTPUT_PREFIX)
