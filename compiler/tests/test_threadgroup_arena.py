"""The threadgroup arena (codegen/threadgroup_arena.py): the interval allocator, live ranges over the op
order, and kernels whose buffers fit 32 KiB only when buffers that are never live at once share bytes
(checked against torch on the CPU)."""
import itertools
import re

import torch
import triton
import triton.language as tl
from triton_metal.codegen.ir_reader import Block as IrBlock
from triton_metal.codegen.ir_reader import Op, Value
from triton_metal.codegen.threadgroup_arena import END, Block, LiveRange, OpOrder, buffer_ranges, first_fit
from triton_metal.codegen.types import TensorType


# ---- the allocator ----------------------------------------------------------------------------------
def test_blocks_never_live_together_share_offset_zero():
    a, b = Block("a", 4096, 0, 3), Block("b", 4096, 4, 7)
    assert first_fit([a, b]) == 4096
    assert (a.offset, b.offset) == (0, 0)


def test_blocks_live_together_get_disjoint_bytes():
    a, b, c = Block("a", 4096, 0, 5), Block("b", 2048, 3, 7), Block("c", 1024, 5, 9)
    total = first_fit([a, b, c])
    spans = sorted((x.offset, x.offset + x.size) for x in (a, b, c))
    assert all(end <= start for (_, end), (start, _) in itertools.pairwise(spans))
    assert total == 4096 + 2048 + 1024


def test_offsets_are_16_byte_aligned():
    blocks = [Block("a", 20, 0, 9), Block("b", 20, 0, 9), Block("c", 20, 0, 9)]
    first_fit(blocks)
    assert sorted(b.offset for b in blocks) == [0, 32, 64]


def test_a_block_takes_the_hole_a_dead_block_left():
    # `big` ends before `small2` starts: small2 goes below `small1` (which lives on), at offset 0.
    big, small1, small2 = Block("big", 8192, 0, 2), Block("small1", 1024, 0, 9), Block("small2", 4096, 3, 9)
    assert first_fit([big, small1, small2]) == 8192 + 1024
    assert big.offset == 0 and small1.offset == 8192 and small2.offset == 0


def test_placed_blocks_keep_their_offsets():
    fixed = Block("fixed", 1024, 0, 9, offset=0)
    late = Block("late", 512, 4, 4)
    assert first_fit([late], [fixed]) == 1536
    assert (fixed.offset, late.offset) == (0, 1024)


# ---- live ranges over the op order (a hand-built IR) ---------------------------------------------------
_ids = iter(range(1, 10**6))
MEMDESC = "!ttg.memdesc<64x64xf16, #shared, #smem, mutable>"


def _value(element=MEMDESC):
    return Value(next(_ids), TensorType((), element))


def _op(name, operands=(), results=(), regions=()):
    return Op(name, None, list(operands), list(results), list(regions))


def _func(ops):
    return _op("tt.func", regions=[IrBlock([], ops)])


def _ranges(ops):
    func = _func(ops)
    order = OpOrder(func.regions[0])
    return order, buffer_ranges(func, order)


def test_a_buffer_lives_from_its_alloc_to_the_reader_of_its_load():
    regs, buf, loaded, out = _value("f16"), _value(), _value("f16"), _value("f32")
    alloc = _op("ttg.local_alloc", [regs], [buf])
    load = _op("ttg.local_load", [buf], [loaded])
    dot = _op("tt.dot", [loaded], [out])  # tt.dot reads the buffer its operand was loaded from
    after = _op("arith.addf", [out], [_value("f32")])
    _, ranges = _ranges([alloc, load, dot, after])
    assert (ranges[buf.id].start, ranges[buf.id].end) == (0, 2)
    assert ranges[buf.id].release_after is dot


def test_a_buffer_used_in_a_loop_lives_for_the_whole_loop():
    buf = _value()
    alloc = _op("ttg.local_alloc", [_value("f16")], [buf])
    use = _op("ttg.local_load", [buf], [_value("f16")])
    body = IrBlock([_value("i32")], [_op("arith.addi"), use, _op("arith.muli"), _op("scf.yield")])
    loop = _op("scf.for", [_value("i32")] * 3, [], [body])
    order, ranges = _ranges([alloc, loop, _op("tt.store")])
    assert ranges[buf.id].end == order.span[id(loop)][1]  # to the loop's last op, not the use
    assert ranges[buf.id].release_after is loop


def test_a_buffer_allocated_in_a_loop_lives_within_an_iteration():
    buf = _value()
    alloc = _op("ttg.local_alloc", [_value("f16")], [buf])
    use = _op("ttg.local_load", [buf], [_value("f16")])
    body = IrBlock([_value("i32")], [alloc, use, _op("arith.muli"), _op("scf.yield")])
    loop = _op("scf.for", [_value("i32")] * 3, [], [body])
    order, ranges = _ranges([loop])
    assert (ranges[buf.id].start, ranges[buf.id].end) == (order.span[id(alloc)][0], order.span[id(use)][1])


def test_views_and_loop_carried_memdescs_keep_the_buffer_live():
    buf, view, carried_arg, carried_res = _value(), _value(), _value(), _value()
    alloc = _op("ttg.local_alloc", [], [buf])
    trans = _op("ttg.memdesc_trans", [buf], [view])
    body = IrBlock([_value("i32"), carried_arg], [_op("arith.addi"), _op("scf.yield", [carried_arg])])
    loop = _op("scf.for", [_value("i32")] * 3 + [view], [carried_res], [body])
    late_use = _op("ttg.local_load", [carried_res], [_value("f16")])
    order, ranges = _ranges([alloc, trans, loop, _op("arith.addf"), late_use, _op("tt.store")])
    assert (ranges[buf.id].start, ranges[buf.id].end) == (0, order.span[id(late_use)][1])


def test_a_dealloc_ends_the_range():
    buf = _value()
    ops = [_op("ttg.local_alloc", [], [buf]), _op("ttg.local_store", [_value("f16"), buf]),
           _op("ttg.local_dealloc", [buf]), _op("arith.addf"), _op("tt.store")]
    _, ranges = _ranges(ops)
    assert (ranges[buf.id].start, ranges[buf.id].end) == (0, 2)


def test_live_range_defaults_to_the_whole_kernel():
    assert LiveRange(0, END).end == END


# ---- kernels --------------------------------------------------------------------------------------
@triton.jit
def chained_dots_kernel(a_ptr, b_ptr, c_ptr, d_ptr, out_ptr, N: tl.constexpr):
    r = tl.arange(0, N)
    idx = r[:, None] * N + r[None, :]
    x = tl.dot(tl.load(a_ptr + idx), tl.load(b_ptr + idx)).to(tl.float16)
    y = tl.dot(x, tl.load(c_ptr + idx)).to(tl.float16)
    tl.store(out_ptr + idx, tl.dot(y, tl.load(d_ptr + idx)))


def test_sequential_dots_share_the_bytes_of_their_operands(device):
    # Six 64x64 f16 operand buffers (48 KiB in all; the old one-array-per-buffer layout raised), two live
    # at a time.
    g = torch.Generator().manual_seed(0)
    a, b, c, d = ((torch.randn(64, 64, generator=g) / 8).to(torch.float16) for _ in range(4))
    out = torch.empty(64, 64, device=device)
    kernel = chained_dots_kernel[(1,)](a.to(device), b.to(device), c.to(device), d.to(device), out, N=64)
    x = (a.float() @ b.float()).half()
    y = (x.float() @ c.float()).half()
    torch.testing.assert_close(out.cpu(), y.float() @ d.float(), rtol=1e-3, atol=1e-3)
    assert kernel.metadata.shared <= 32768 < 6 * 64 * 64 * 2


@triton.jit
def loop_invariant_operand_kernel(q_ptr, k_ptr, v_ptr, out_ptr, M: tl.constexpr, D: tl.constexpr,
                                  BN: tl.constexpr, N: tl.constexpr):
    rm, rd, rn = tl.arange(0, M), tl.arange(0, D), tl.arange(0, BN)
    q = tl.load(q_ptr + rm[:, None] * D + rd[None, :])
    acc = tl.zeros((M, D), dtype=tl.float32)
    for start in range(0, N, BN):
        kt = tl.load(k_ptr + (start + rn)[None, :] * D + rd[:, None])
        s = tl.dot(q, kt)
        v = tl.load(v_ptr + (start + rn)[:, None] * D + rd[None, :])
        acc = tl.dot(s.to(tl.float16), v, acc)
    tl.store(out_ptr + rm[:, None] * D + rd[None, :], acc)


def test_a_loop_invariant_operand_is_written_again_before_each_read_when_it_does_not_fit(device):
    # q (128x64 f16, 16 KiB) is read by the first dot of every iteration; kept for the whole loop, it would
    # live beside s (16 KiB) and v (8 KiB): 40 KiB. Written again before each read: 24 KiB in the loop.
    g = torch.Generator().manual_seed(1)
    q, k, v = ((torch.randn(n, 64, generator=g) / 8).to(torch.float16) for n in (128, 128, 128))
    out = torch.empty(128, 64, device=device)
    kernel = loop_invariant_operand_kernel[(1,)](q.to(device), k.to(device), v.to(device), out,
                                                 M=128, D=64, BN=64, N=128)
    ref = torch.zeros(128, 64)
    for start in range(0, 128, 64):
        s = (q.float() @ k[start:start + 64].float().T).half()
        ref += s.float() @ v[start:start + 64].float()
    torch.testing.assert_close(out.cpu(), ref, rtol=1e-3, atol=1e-3)
    assert kernel.metadata.shared <= 32768  # (the epilogue's layout conversion of acc takes 32 KiB itself)


def test_the_arena_is_one_array_with_a_typed_pointer_per_buffer(compile_msl):
    msl, metadata = compile_msl(chained_dots_kernel, {f"{n}_ptr": "*fp16" for n in "abcd"} | {
        "out_ptr": "*fp32", "N": "constexpr"}, {"N": 64})
    assert len(re.findall(r"^\s*threadgroup float4 tm_arena_storage\[(\d+)\];", msl, re.MULTILINE)) == 1
    assert f"tm_arena_storage[{metadata.shared // 16}]" in msl
    pointers = re.findall(r"threadgroup half\* (\w+) = \(threadgroup half\*\)\(tm_arena \+ (\d+)\);  // 64x64 f16, live",
                          msl)
    assert len(pointers) == 6 and all(int(offset) % 16 == 0 for _, offset in pointers)
    assert not re.search(r"threadgroup half \w+\[", msl)  # no array per buffer


@triton.jit
def wide_dot_kernel(a_ptr, b_ptr, c_ptr, M: tl.constexpr, N: tl.constexpr, K: tl.constexpr):
    rm, rn, rk = tl.arange(0, M), tl.arange(0, N), tl.arange(0, K)
    a = tl.load(a_ptr + rm[:, None] * K + rk[None, :])
    b = tl.load(b_ptr + rk[:, None] * N + rn[None, :])
    tl.store(c_ptr + rm[:, None] * N + rn[None, :], tl.dot(a, b))


def test_dot_operand_buffers_that_do_not_fit_get_no_bytes(compile_msl):
    # 128x64 + 64x128 f32 local_alloc buffers (64 KiB) read only by the dot: planned again without them,
    # the dot staging its operands from registers in K chunks beside its scratch.
    sig = {"a_ptr": "*fp32", "b_ptr": "*fp32", "c_ptr": "*fp32", "M": "constexpr", "N": "constexpr",
           "K": "constexpr"}
    msl, metadata = compile_msl(wide_dot_kernel, sig, {"M": 128, "N": 128, "K": 64})
    assert metadata.shared <= 32768
    assert "_smem" not in msl and re.search(r"operands staged in K chunks of \d+", msl)
