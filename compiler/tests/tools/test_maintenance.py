"""clear_cache and synchronize."""
import torch
import triton
import triton.language as tl
from triton_metal.backends import metal

CLEAR = '''
import json, os, pathlib, torch, triton, triton.language as tl
import triton_metal.backends.metal as metal
from triton import knobs

@triton.jit
def inc(x, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    tl.store(x + offs, tl.load(x + offs) + 1)

cache = pathlib.Path(os.environ["TRITON_CACHE_DIR"])
sim = pathlib.Path(os.environ["TRITON_METAL_SIM_CACHE_DIR"])
(cache / "other-backend").mkdir(parents=True)
(cache / "other-backend" / "k.json").write_text(json.dumps({"target": {"backend": "cuda"}}))
x = torch.zeros(32)
inc[(1,)](x, BLOCK=32)
groups = [p for p in cache.iterdir() if list(p.glob("inc.msl"))]
kernel_files = [p for p in sim.iterdir() if not p.name.startswith("tm_runtime-")]
compiles = []
knobs.compilation.listener = lambda **kw: compiles.append(kw["cache_hit"])
result = metal.clear_cache()
assert result["triton_cache_entries"] == len(groups) == 1, result
assert result["simulator_files"] == len(kernel_files) > 0, (result, kernel_files)
assert not groups[0].exists() and (cache / "other-backend").exists()
assert result["jit_functions"] >= 1
inc[(1,)](x, BLOCK=32)   # compiled again: neither the in-process nor the disk cache holds it
assert compiles == [False], compiles
assert x.tolist() == [2.0] * 32
print("OK")
'''


def test_clear_cache_forgets_metal_kernels_in_process_and_on_disk(run_python, tmp_path):
    proc = run_python(CLEAR, env={"TRITON_METAL_SIM_CACHE_DIR": str(tmp_path / "sim"), "TRITON_METAL_DEVICE": "sim"})
    assert proc.returncode == 0 and proc.stdout.strip() == "OK", proc.stdout + proc.stderr


@triton.jit
def _fill(out, value, BLOCK: tl.constexpr):
    tl.store(out + tl.arange(0, BLOCK), tl.zeros([BLOCK], tl.float32) + value)


def test_synchronize_makes_results_visible(device):
    out = torch.zeros(128, device=device)
    _fill[(1,)](out, 3.0, BLOCK=128)
    assert metal.synchronize() is None
    assert out.cpu().tolist() == [3.0] * 128
