"""When a reshape that may reorder keeps every thread's registers (lower_shape.registers_permute): exactly
when that maps the source's elements one to one onto the result's, checked here against a brute-force
enumeration of which element each (register, lane, simdgroup) holds."""
import itertools

import pytest
from triton_metal.codegen.layout import LinearLayout
from triton_metal.codegen.ops.lower_shape import registers_permute


def _blocked_1d(n, per_thread, lanes=4, warps=2):
    """A 1-D blocked layout over n elements: `per_thread` contiguous, then lanes, simdgroups, repeats."""
    bits = n.bit_length() - 1
    order = [1 << b for b in range(bits)]
    pt, ln, wp = (per_thread.bit_length() - 1, lanes.bit_length() - 1, warps.bit_length() - 1)
    inner, lane, warp, outer = order[:pt], order[pt:pt + ln], order[pt + ln:pt + ln + wp], order[pt + ln + wp:]
    pad = lambda bases, k: [(b,) for b in bases] + [(0,)] * (k - len(bases))  # zero bases: copies
    return LinearLayout.from_bases((n,), pad(inner + outer, 0), pad(lane, ln), pad(warp, wp))


def _held(layout):
    """Element held at every (register, lane, simdgroup) index, by enumeration."""
    out = []
    for r, lane, warp in itertools.product(range(layout.num_regs), range(1 << len(layout.lane_bases)),
                                           range(1 << len(layout.warp_bases))):
        out.append(tuple(a ^ b for a, b in zip(layout.reg_coords[r], layout.thread_coord(lane, warp))))
    return out


def _one_to_one(src, dst):
    if (len(src.reg_bases), len(src.lane_bases), len(src.warp_bases)) != \
            (len(dst.reg_bases), len(dst.lane_bases), len(dst.warp_bases)):
        return False
    pairs = set(zip(_held(src), _held(dst)))
    return len({s for s, _ in pairs}) == len(pairs) == len({d for _, d in pairs})


@pytest.mark.parametrize("src_per_thread,dst_per_thread", [(4, 1), (1, 4), (2, 8), (4, 4)])
def test_layouts_of_the_same_elements_per_thread_permute(src_per_thread, dst_per_thread):
    src, dst = _blocked_1d(256, src_per_thread), _blocked_1d(256, dst_per_thread)
    assert registers_permute(src, dst) == _one_to_one(src, dst) is True


def test_layouts_with_copies_in_different_places_do_not_permute():
    # 8 elements over 8 threads of 2 registers: every element twice, lane bit 0 selecting the copy in the
    # source and lane bit 1 in the result, so the registers do not pair one to one.
    src = LinearLayout.from_bases((8,), [(1,)], [(0,), (2,)], [(4,)])
    dst = LinearLayout.from_bases((8,), [(1,)], [(2,), (0,)], [(4,)])
    assert not _one_to_one(src, dst)
    assert not registers_permute(src, dst)


def test_layouts_with_copies_in_the_same_places_permute():
    src = LinearLayout.from_bases((8,), [(1,)], [(0,), (2,)], [(4,)])
    dst = LinearLayout.from_bases((8,), [(4,)], [(0,), (1,)], [(2,)])
    assert registers_permute(src, dst) == _one_to_one(src, dst) is True


def test_two_dimensional_source_to_one_dimension():
    # [8, 32] with 4 contiguous per thread along dim 1 to [256] with one per thread.
    src = LinearLayout.from_bases((8, 32), [(0, 1), (0, 2), (4, 0)], [(0, 4), (0, 8), (0, 16), (1, 0), (2, 0)], [])
    dst = LinearLayout.from_bases((256,), [(32,), (64,), (128,)], [(1,), (2,), (4,), (8,), (16,)], [])
    assert registers_permute(src, dst) == _one_to_one(src, dst) is True
