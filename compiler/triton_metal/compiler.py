"""The compiler half of the backend, as Triton discovers it: TTIR -> TTGIR -> MSL.

Kept thin on purpose: ``add_stages`` reads as the pipeline and each stage delegates to
``triton_metal.codegen``.
"""
from __future__ import annotations

import functools
import hashlib
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from triton import knobs
from triton._C.libtriton import ir, passes
from triton.backends.compiler import BaseBackend, GPUTarget, Language

from triton_metal import __version__, cache, numerics
from triton_metal.codegen import generate_msl
from triton_metal.codegen.memory_model import target_msl_version
from triton_metal.debug import log
from triton_metal.errors import check_threads_per_threadgroup
from triton_metal.metal_check import stage as frontend_check
from triton_metal.runtime import chips


@dataclass(frozen=True)
class MetalOptions:
    num_warps: int = 4  # simdgroups per threadgroup
    num_ctas: int = 1
    num_stages: int = 1
    warp_size: int = 32  # Apple SIMD width
    # a*b+c as one fma() (codegen/ops/lower_contraction.py). Triton 3.9's default, which parse_options resolves as
    # Triton's CUDA backend does (TRITON_DEFAULT_FP_FUSION, TRITON_FORCE_DISABLE_FP_FUSION).
    enable_fp_fusion: bool = True
    launch_cooperative_grid: bool = False
    extern_libs: Any = None
    debug: bool = False
    sanitize_overflow: bool = False
    arch: str = "apple-m1"
    # The Metal GPU family of `arch` (runtime/chips.py), set by parse_options: what a kernel may use that
    # not every family has (64-bit atomics: abi.ATOMIC_ULONG_MIN_MAX_FAMILIES). '' = not known, nothing extra.
    metal_family: str = ""
    backend_name: str = "metal"
    # fp8 as storage: loads, stores, conversions (codegen/fp8_msl.py, fp8e4b15.py) and tl.dot operands.
    supported_fp8_dtypes: tuple[str, ...] = ("fp8e4nv", "fp8e5", "fp8e4b8", "fp8e5b16", "fp8e4b15")
    deprecated_fp8_dot_operand_dtypes: tuple[str, ...] = ()
    default_dot_input_precision: str = "ieee"
    allowed_dot_input_precisions: tuple[str, ...] = ("ieee", "tf32", "tf32x3", "bf16x3", "bf16x6")
    max_num_imprecise_acc_default: int = 0
    instrumentation_mode: str = ""
    fpsan_homomorphic_casts: bool = False
    # Metal's fast math (numerics.py): fast:: functions and Apple's fast math mode. Precise by default;
    # TRITON_METAL_FAST_MATH=1 changes the default (parse_options), so the choice is in the cache key.
    fast_math: bool = False
    # Metal Shading Language version the MSL may use ("3.0", "3.1", "3.2"): what the Metal runtime compiles
    # with on this macOS, or TRITON_METAL_MSL_VERSION (codegen/memory_model.py). Atomics that order memory
    # across programs need 3.2.
    msl_version: str = ""
    # AMD tuning knobs that portable kernels pass in their non-CUDA autotune configs (upstream
    # tutorial 03): accepted so those configs run, and ignored.
    matrix_instr_nonkdim: int = 0
    waves_per_eu: int = 0
    kpack: int = 1

    def __post_init__(self):
        if self.num_warps <= 0 or self.num_warps & (self.num_warps - 1):
            # AssertionError, as Triton's other backends raise (upstream tests expect it).
            raise AssertionError(f"num_warps must be a power of 2, got {self.num_warps}")
        check_threads_per_threadgroup(self.num_warps * self.warp_size)

    def hash(self) -> str:
        key = "_".join(f"{f.name}-{getattr(self, f.name)}" for f in fields(self))
        return hashlib.sha256(key.encode()).hexdigest()


@functools.lru_cache(None)
def _source_hash() -> str:
    """Hash of our own code generator (with the kernel ABI it writes to), so Triton's cache never serves
    MSL or metadata from an older version."""
    root = Path(__file__).parent
    h = hashlib.sha256(__version__.encode())
    for path in sorted([*root.glob("codegen/**/*.py"), root / "compiler.py", root / "numerics.py", root / "abi.py"]):
        h.update(path.read_bytes())
    return h.hexdigest()


class MetalBackend(BaseBackend):
    binary_ext = "msl"

    @staticmethod
    def supports_target(target: GPUTarget) -> bool:
        return target.backend == "metal"

    def __init__(self, target: GPUTarget) -> None:
        super().__init__(target)
        cache.install()  # checksummed compile-cache entries (triton_metal.cache)

    def hash(self) -> str:
        # The front-end check's model is in the key when the check is on: a cached kernel was checked by it.
        return f"metal-{__version__}-{self.target.arch}-{_source_hash()}{frontend_check.cache_key()}"

    def parse_options(self, opts: dict) -> MetalOptions:
        known = {f.name for f in fields(MetalOptions)}
        args = {k: v for k, v in opts.items() if k in known and v is not None}
        args["arch"] = self.target.arch
        args["metal_family"] = chips.metal_family(self.target.arch)
        args.setdefault("msl_version", target_msl_version())  # in the options, so in the cache key
        args.setdefault("fast_math", numerics.fast_math_requested())  # likewise: the one place it is decided
        args["enable_fp_fusion"] = knobs.language.fp_fusion_enabled(args.get("enable_fp_fusion"))
        args.pop("warp_size", None)
        for key in ("supported_fp8_dtypes", "deprecated_fp8_dot_operand_dtypes", "allowed_dot_input_precisions"):
            if key in args:
                args[key] = tuple(args[key])
        return MetalOptions(**args)

    def pack_metadata(self, metadata):
        return (metadata.num_warps, metadata.num_ctas, metadata.shared)

    def get_codegen_implementation(self, options) -> dict[str, Any]:
        from triton_metal import fp8e4b15  # imports triton.language: not while Triton discovers backends
        return {"min_dot_size": lambda lhs_type, rhs_type: (1, 1, 1),
                "convert_custom_types": fp8e4b15.convert_custom_types}

    def get_module_map(self) -> dict[str, Any]:
        # `from triton.language.extra import libdevice` resolves to our module (see triton_metal/libdevice.py).
        from triton_metal import libdevice
        return {"triton.language.extra.libdevice": libdevice}

    def load_dialects(self, context) -> None:
        pass  # Triton's core dialects are all we use.

    def add_stages(self, stages: dict, options: MetalOptions, language: Language) -> None:
        if language != Language.TRITON:
            raise NotImplementedError("Gluon kernels are not supported by the Metal backend")
        stages["ttir"] = lambda src, metadata: make_ttir(src, metadata, options)
        stages["ttgir"] = lambda src, metadata: make_ttgir(src, metadata, options)
        stages["msl"] = lambda src, metadata: make_msl(src, metadata, options)


def make_ttir(mod, metadata, opt: MetalOptions):
    pm = ir.pass_manager(mod.context)
    pm.enable_debug()
    passes.common.add_inliner(pm)
    passes.ttir.add_rewrite_tensor_descriptor_to_pointer(pm)
    passes.common.add_canonicalizer(pm)
    passes.ttir.add_combine(pm)
    passes.ttir.add_reorder_broadcast(pm)
    passes.common.add_cse(pm)
    passes.common.add_symbol_dce(pm)
    passes.ttir.add_loop_unroll(pm)
    pm.run(mod, "make_ttir")
    return mod


def make_ttgir(mod, metadata, opt: MetalOptions):
    log(2, "TTIR of %s:\n%s", mod.get_entry_func_name(), mod)
    pm = ir.pass_manager(mod.context)
    pm.enable_debug()
    # warps = simdgroups of 32 lanes. accelerate_matmul is NVIDIA-only and is not run.
    passes.ttir.add_convert_to_ttgpuir(pm, f"metal:{opt.arch}", opt.num_warps, opt.warp_size, opt.num_ctas)
    passes.ttgpuir.add_coalesce(pm)
    passes.ttgpuir.add_remove_layout_conversions(pm)
    passes.ttgpuir.add_optimize_thread_locality(pm)
    passes.ttgpuir.add_remove_layout_conversions(pm)
    # tl.range(..., flatten=True): fuse the loop nest into one loop, as the CUDA backend does.
    passes.ttgpuir.add_fuse_nested_loops(pm)
    passes.common.add_canonicalizer(pm)
    passes.ttir.add_triton_licm(pm)
    passes.common.add_canonicalizer(pm)
    passes.ttir.add_loop_aware_cse(pm)
    passes.ttgpuir.add_remove_layout_conversions(pm)
    passes.ttgpuir.add_reduce_data_duplication(pm)
    passes.ttgpuir.add_reorder_instructions(pm)
    passes.ttir.add_loop_aware_cse(pm)
    passes.common.add_symbol_dce(pm)
    passes.common.add_sccp(pm)
    passes.common.add_cse(pm)
    passes.common.add_canonicalizer(pm)
    pm.run(mod, "make_ttgir")
    return mod


def make_msl(mod, metadata, opt: MetalOptions) -> str:
    log(2, "TTGIR of %s:\n%s", mod.get_entry_func_name(), mod)
    start = time.perf_counter()
    kernel = generate_msl(mod, opt)
    triton_name = mod.get_entry_func_name()
    # The MSL name differs where MSL reserves the Triton one (a leading `_`, a keyword: codegen.msl_kernel_name).
    shown = triton_name if triton_name == kernel.name else f"{triton_name} (MSL kernel {kernel.name})"
    log(1, "compiled %s to MSL in %.1f ms (%d threads, %d bytes threadgroup memory)", shown,
        (time.perf_counter() - start) * 1e3, opt.num_warps * opt.warp_size, kernel.threadgroup_memory_bytes)
    metadata["name"] = kernel.name
    metadata["shared"] = kernel.threadgroup_memory_bytes
    metadata["threadgroup_size"] = opt.num_warps * opt.warp_size
    metadata["arg_kinds"] = kernel.arg_kinds
    metadata["device_print_sites"] = kernel.device_print_sites  # tl.device_print/device_assert sites, for the launcher
    # TRITON_METAL_FRONTEND_CHECK=1: the texts Apple's compiler would get, checked (raises MetalFrontEndError).
    frontend_check.check_generated(kernel.source, kernel.name, opt.msl_version)
    return kernel.source
