"""``triton_metal.jit`` and ``triton_metal.Config`` (exported by the package): ``triton.jit`` plus,
with ``autotune=True``, ``triton.autotune``.

    @triton_metal.jit(autotune=True, configs=[triton_metal.Config({"BLOCK_SIZE": 128}), ...], key=["n"])
    def kernel(x_ptr, n, BLOCK_SIZE: tl.constexpr): ...

Without ``configs``, the chip's default configurations are tuned over: the kernel's block-size
constexpr (the one parameter whose name contains ``BLOCK``) times the chip's ``num_warps`` choices.
The result is an ordinary Triton ``Autotuner`` / ``JITFunction``: nothing here is Metal-specific
at run time.
"""
from __future__ import annotations

import itertools

import triton

# Starting points per GPU generation, not measurements. Apple9 and later (M3, M4, M5) allocate
# registers and threadgroup memory dynamically ("Dynamic Caching"), so big threadgroups cost them
# less occupancy than on Apple7/8 (M1, M2): their defaults add 16 simdgroups and 2048-element blocks.
DEFAULT_TUNING = {
    "apple-m1": {"block_sizes": (256, 512, 1024), "num_warps": (2, 4, 8)},
    "apple-m2": {"block_sizes": (256, 512, 1024), "num_warps": (2, 4, 8)},
    "apple-m3": {"block_sizes": (256, 512, 1024, 2048), "num_warps": (4, 8, 16)},
    "apple-m4": {"block_sizes": (256, 512, 1024, 2048), "num_warps": (4, 8, 16)},
    "apple-m5": {"block_sizes": (256, 512, 1024, 2048), "num_warps": (4, 8, 16)},
}
SIMD_WIDTH = 32


class Config(triton.Config):
    """``triton.Config`` with Metal's defaults: ``num_stages=1`` (no software pipelining on Apple GPUs)."""

    def __init__(self, kwargs, num_warps=4, num_stages=1, num_ctas=1, maxnreg=None, pre_hook=None, ir_override=None):
        super().__init__(kwargs, num_warps=num_warps, num_stages=num_stages, num_ctas=num_ctas, maxnreg=maxnreg,
                         pre_hook=pre_hook, ir_override=ir_override)


def current_chip() -> str:
    from triton_metal.runtime import get_runtime
    return get_runtime().chip.id


def _generation(chip_id: str) -> str:
    from triton_metal.runtime.chips import chip
    return chip(chip_id).id


def block_parameter(fn) -> str | None:
    """The one constexpr parameter of ``fn`` whose name contains BLOCK (None when there is none)."""
    names = [p.name for p in fn.params if p.is_constexpr and "BLOCK" in p.name.upper()]
    if len(names) > 1:
        raise ValueError(f"{fn.__name__} has several block-size parameters ({', '.join(names)}): the default "
                         "configurations tune a single one; pass configs=[triton_metal.Config({...}), ...]")
    return names[0] if names else None


def default_configs(fn, chip_id: str | None = None) -> list:
    """The chip's default configurations for JIT function ``fn``."""
    generation = _generation(chip_id or current_chip())
    tuning = DEFAULT_TUNING[generation]
    block = block_parameter(fn)
    if block is None:
        return [Config({}, num_warps=w) for w in tuning["num_warps"]]
    # A block smaller than the threadgroup leaves threads holding copies: not worth timing.
    return [Config({block: size}, num_warps=w) for size, w in itertools.product(tuning["block_sizes"],
                                                                               tuning["num_warps"])
            if size >= w * SIMD_WIDTH]


def jit(fn=None, *, autotune: bool = False, configs=None, key=None, prune_configs_by=None, reset_to_zero=None,
        restore_value=None, warmup=None, rep=None, **jit_kwargs):
    """``triton.jit`` (keyword arguments passed on); with ``autotune=True`` also ``triton.autotune``."""
    if configs is not None and not autotune:
        raise ValueError("configs= is given but autotune is off: pass autotune=True")

    def decorate(f):
        jitted = triton.jit(f, **jit_kwargs)
        if not autotune:
            return jitted
        return triton.autotune(configs=list(configs) if configs else default_configs(jitted), key=list(key or []),
                               prune_configs_by=prune_configs_by, reset_to_zero=reset_to_zero,
                               restore_value=restore_value, warmup=warmup, rep=rep)(jitted)

    return decorate if fn is None else decorate(fn)
