"""TRITON_METAL_DEBUG levels and shader dumps."""
import logging
import re

import pytest
import torch
import triton
import triton.language as tl
from triton_metal.backends import metal

KERNEL = '''
import torch, triton, triton.language as tl

@triton.jit
def twice(x, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    tl.store(x + offs, tl.load(x + offs) * 2)

x = torch.ones(64, device=triton.runtime.driver.active.get_active_torch_device())
twice[(1,)](x, BLOCK=64)
assert x.cpu().tolist() == [2.0] * 64
'''


@triton.jit
def _twice(x, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    tl.store(x + offs, tl.load(x + offs) * 2)


class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_each_debug_level_logs_its_own_information(monkeypatch, device, level):
    from triton import knobs
    from triton_metal.tools import shaders
    monkeypatch.setattr(knobs.compilation, "always_compile", True)  # compile (and log) even on a cache hit
    _twice.device_caches.clear()
    monkeypatch.setattr(shaders, "_hardware_logged", False)
    records = _Records()
    logger = logging.getLogger("triton_metal")
    logger.addHandler(records)
    metal.set_debug_option("debug_level", level)
    try:
        x = torch.ones(64, device=device)
        _twice[(1,)](x, BLOCK=64)
    finally:
        metal.set_debug_option("debug_level", None)
        logger.removeHandler(records)
    assert x.cpu().tolist() == [2.0] * 64
    log = "\n".join(records.messages)
    # C++ reserves global names with a leading `_`: the MSL kernel is triton_twice (codegen.msl_kernel_name).
    assert bool(re.search(r"compiled _twice \(MSL kernel triton_twice\) to MSL in [\d.]+ ms", log)) == (level >= 1)
    assert ("launched triton_twice grid=(1, 1, 1)" in log) == (level >= 1)
    assert ("TTIR of _twice:" in log and "TTGIR of _twice:" in log) == (level >= 2)
    assert ("op mapping: tt.load -> lower_memory.lower_load" in log) == (level >= 2)
    assert ("kernel void triton_twice(" in log) == (level >= 3)
    assert log.count("hardware (sim runtime):") == (1 if level >= 3 else 0)  # hardware details, once
    assert ("threadgroup_memory_bytes     32768" in log) == (level >= 3)


def test_environment_variables_reach_stderr_and_the_dump_directory(run_python, tmp_path):
    proc = run_python(KERNEL, env={"TRITON_METAL_DEBUG": "3", "TRITON_METAL_DUMP_SHADERS": "1",
                                   "TRITON_METAL_SHADER_DUMP_DIR": str(tmp_path / "dumps")})
    assert proc.returncode == 0, proc.stderr
    assert "[triton-metal] TTGIR of twice:" in proc.stderr and "[triton-metal] hardware (sim runtime):" in proc.stderr
    [dump] = (tmp_path / "dumps").glob("twice-*.metal")
    assert "kernel void twice(" in dump.read_text() and f"dumped the MSL of twice to {dump}" in proc.stderr


def test_debug_options_are_listed_with_their_values(monkeypatch):
    monkeypatch.setenv("TRITON_METAL_SHADER_DUMP_DIR", "/tmp/somewhere")
    options = metal.get_debug_options()
    assert set(options) == {"debug_level", "dump_shaders", "shader_dump_dir"}
    assert options["shader_dump_dir"]["value"] == "/tmp/somewhere"
    with pytest.raises(KeyError, match="unknown debug option 'dump_shader'; the options are: debug_level"):
        metal.set_debug_option("dump_shader", True)


@triton.jit
def _negate(x, out, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    tl.store(out + offs, -tl.load(x + offs))


def test_dump_shaders_writes_the_msl_that_runs(tmp_path, device):
    metal.set_debug_option("dump_shaders", True)
    metal.set_debug_option("shader_dump_dir", str(tmp_path))
    try:
        x = torch.arange(32, dtype=torch.float32, device=device)
        out = torch.empty_like(x)
        kernel = _negate[(1,)](x, out, BLOCK=32)
    finally:
        metal.set_debug_option("dump_shaders", None)
        metal.set_debug_option("shader_dump_dir", None)
    assert torch.equal(out.cpu(), -x.cpu())
    dumps = list(tmp_path.glob("triton_negate-*.metal"))  # the MSL name (see above)
    assert len(dumps) == 1 and re.fullmatch(r"triton_negate-[0-9a-f]{16}\.metal", dumps[0].name)
    text = dumps[0].read_text()
    assert "kernel void triton_negate(" in text and text == kernel.asm["msl"].decode()
