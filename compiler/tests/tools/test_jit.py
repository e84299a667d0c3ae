"""triton_metal.jit and triton_metal.Config: triton.jit plus triton.autotune with chip defaults."""
import pytest
import torch
import triton
import triton.language as tl
import triton_metal
from triton.runtime.autotuner import Autotuner
from triton.runtime.jit import JITFunction
from triton_metal.tuning import DEFAULT_TUNING, default_configs


def add_source(x_ptr, y_ptr, out_ptr, n, BLOCK_SIZE: tl.constexpr):
    offs = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) + tl.load(y_ptr + offs, mask=mask), mask=mask)


def test_without_autotune_it_is_triton_jit():
    assert isinstance(triton_metal.jit(add_source), JITFunction)
    assert isinstance(triton_metal.jit()(add_source), JITFunction)


def test_config_defaults_to_one_stage():
    config = triton_metal.Config({"BLOCK_SIZE": 128})
    assert isinstance(config, triton.Config)
    assert (config.kwargs, config.num_warps, config.num_stages) == ({"BLOCK_SIZE": 128}, 4, 1)


def test_autotune_with_given_configs_picks_one_of_them(device):
    configs = [triton_metal.Config({"BLOCK_SIZE": 128}, num_warps=1), triton_metal.Config({"BLOCK_SIZE": 256})]
    kernel = triton_metal.jit(autotune=True, configs=configs, key=["n"])(add_source)
    assert isinstance(kernel, Autotuner) and kernel.keys == ["n"]
    n = 1000
    x, y = torch.rand(n, device=device), torch.rand(n, device=device)
    out = torch.empty_like(x)
    kernel[lambda meta: (triton.cdiv(n, meta["BLOCK_SIZE"]),)](x, y, out, n)
    torch.testing.assert_close(out.cpu(), x.cpu() + y.cpu())
    assert kernel.best_config in configs and len(kernel.cache) == 1


def test_chip_defaults_cover_the_block_parameter_and_num_warps():
    kernel = triton_metal.jit(add_source)
    for chip in ("apple-m1", "apple-m2-pro", "apple-m3-max", "apple-m4"):
        tuning = DEFAULT_TUNING[chip[:8]]
        configs = default_configs(kernel, chip)
        pairs = {(c.kwargs["BLOCK_SIZE"], c.num_warps) for c in configs}
        assert pairs == {(b, w) for b in tuning["block_sizes"] for w in tuning["num_warps"] if b >= 32 * w}
    assert max(c.num_warps for c in default_configs(kernel, "apple-m3")) == 16
    assert max(c.num_warps for c in default_configs(kernel, "apple-m1")) == 8


def test_autotune_without_configs_uses_the_running_chips_defaults(device):
    kernel = triton_metal.jit(autotune=True, key=["n"])(add_source)
    from triton_metal.runtime import get_runtime
    assert [c.__dict__ for c in kernel.configs] == [c.__dict__ for c in default_configs(kernel.fn,
                                                                                        get_runtime().chip.id)]
    n = 777
    x, y = torch.rand(n, device=device), torch.rand(n, device=device)
    out = torch.empty_like(x)
    kernel[lambda meta: (triton.cdiv(n, meta["BLOCK_SIZE"]),)](x, y, out, n)
    torch.testing.assert_close(out.cpu(), x.cpu() + y.cpu())


def test_clear_errors_for_ambiguous_requests():
    with pytest.raises(ValueError, match="configs= is given but autotune is off"):
        triton_metal.jit(configs=[triton_metal.Config({})])

    def two_blocks(x, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
        pass
    with pytest.raises(ValueError, match=r"several block-size parameters \(BLOCK_M, BLOCK_N\)"):
        triton_metal.jit(autotune=True)(two_blocks)
