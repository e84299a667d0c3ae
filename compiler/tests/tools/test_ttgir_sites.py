"""ttgir_sites: each source comment of the MSL matched to its TTGIR op, as the code generator wrote it."""
import triton
import triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from triton_metal.tools import ttgir_sites


@triton.jit
def _load_twice(p, offs):
    return tl.load(p + offs) + 1.0


@triton.jit
def _print_and_store(x, out, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    v = _load_twice(x, offs)  # an inlined function: its load's location is a call site
    tl.device_print("v", v); tl.store(out + offs, v)  # two commented ops on one line


def _compiled():
    src = ASTSource(_print_and_store, {"x": "*fp32", "out": "*fp32"}, {"BLOCK": 64})
    kernel = triton.compile(src, target=GPUTarget("metal", "apple-m1", 32))
    return kernel.asm["msl"].decode(), kernel.asm["ttgir"]


def test_every_source_comment_finds_its_op():
    msl, ttgir = _compiled()
    sites = ttgir_sites.site_ops(msl, ttgir)
    matched = [(op.name if op else None, file, line) for file, line, _, op in sites.values()]
    assert [name for name, _, _ in matched] == ["tt.load", "tt.print", "tt.store"], matched
    # each op on the line its comment names
    assert all(op.file == file and op.line == line for file, line, _, op in sites.values())

