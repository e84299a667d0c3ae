"""Our blocked/slice linear layouts agree with Gluon's builder on the layouts real kernels get."""
import json
import subprocess
import sys
import textwrap

from triton_metal.codegen.layout_parse import blocked_layout, layout_from_encoding


def test_blocked_layout_repeats_the_tile_in_registers():
    layout = blocked_layout([1, 4], [2, 16], [4, 1], [1, 0], (16, 64))
    assert layout.reg_bases == ((0, 1), (0, 2), (8, 0))
    assert layout.lane_bases == ((0, 4), (0, 8), (0, 16), (0, 32), (1, 0))
    assert layout.warp_bases == ((2, 0), (4, 0))


def test_blocked_layout_larger_than_the_tensor_duplicates_lanes_and_warps():
    layout = blocked_layout([1], [32], [4], [0], (16,))
    assert layout.reg_bases == ()
    assert layout.lane_bases == ((1,), (2,), (4,), (8,), (0,))
    assert layout.warp_bases == ((0,), (0,))


def test_slice_layout_drops_the_dimension():
    enc = ("#ttg.slice<{dim = 1, parent = #ttg.blocked<{sizePerThread = [1, 4], threadsPerWarp = [2, 16], "
           "warpsPerCTA = [4, 1], order = [1, 0]}>}>")
    layout = layout_from_encoding(enc, (16,))
    assert layout.reg_bases == ((8,),)
    assert layout.lane_bases == ((0,), (0,), (0,), (0,), (1,))
    assert layout.warp_bases == ((2,), (4,))


CHECK = textwrap.dedent('''
    import json, sys
    import triton, triton.language as tl
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    import triton_metal.codegen.ir_reader as reader
    from triton_metal.codegen.layout_parse import layout_from_encoding

    seen, mismatches = 0, []
    def gluon_only(self, handle, ty):
        global seen
        ref = self.gluon_layout(handle, ty)
        seen += 1
        if layout_from_encoding(ty.encoding, ty.shape) != ref:
            mismatches.append([ty.encoding, list(ty.shape)])
        return ref
    reader.ModuleReader._layout = gluon_only

    @triton.jit
    def kernel(x_ptr, out_ptr, M: tl.constexpr, N: tl.constexpr, K: tl.constexpr):
        rm = tl.arange(0, M)
        rn = tl.arange(0, N)
        rk = tl.arange(0, K)
        x = tl.load(x_ptr + rm[:, None, None] * N * K + rn[None, :, None] * K + rk[None, None, :])
        tl.store(out_ptr + rm[:, None] * N + rn[None, :], tl.sum(x, axis=2))
        tl.store(out_ptr + rn[None, :] * M + rm[:, None], tl.max(x, axis=2))

    target = GPUTarget("metal", "apple-m1", 32)
    sig = {"x_ptr": "*fp32", "out_ptr": "*fp32", "M": "constexpr", "N": "constexpr", "K": "constexpr"}
    for m, n, k, w in [(2, 4, 8, 1), (16, 8, 4, 4), (4, 64, 2, 8), (1, 32, 32, 2), (8, 8, 64, 16)]:
        triton.compile(ASTSource(kernel, sig, {"M": m, "N": n, "K": k}), target=target,
                       options={"num_warps": w})
    print(json.dumps({"seen": seen, "mismatches": mismatches}))
''')


def test_layouts_match_gluons_builder(tmp_path):
    script = tmp_path / "check_layouts.py"  # @triton.jit needs its source in a file
    script.write_text(CHECK)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=False,
                          env={"TRITON_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin",
                               "HOME": str(tmp_path)}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["seen"] > 50
    assert result["mismatches"] == []
