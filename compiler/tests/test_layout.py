from triton_metal.codegen.layout import LinearLayout, bits_expr


def blocked_1d():
    # sizePerThread=[4], 32 lanes, 2 warps over 256 elements
    return LinearLayout.from_bases([256], [[1], [2]], [[4], [8], [16], [32], [64]], [[128]])


def test_register_coordinates_follow_the_register_bases():
    assert blocked_1d().reg_coords == ((0,), (1,), (2,), (3,))


def test_thread_coordinate_is_xor_of_lane_and_warp_bases():
    layout = blocked_1d()
    for lane in range(32):
        for warp in range(2):
            assert layout.thread_coord(lane, warp) == (lane * 4 + warp * 128,)


def test_bits_expr_collapses_contiguous_bits_into_mask_and_shift():
    assert bits_expr("lane", ((4,), (8,), (16,), (32,), (64,)), 0) == "((lane & 31) << 2)"


def test_bits_expr_skips_broadcast_bases():
    assert bits_expr("lane", ((1,), (0,), (2,)), 0) == "(lane & 1) ^ (((lane >> 2) & 1) << 1)"


def test_bits_expr_evaluates_like_the_layout():
    bases = ((3,), (0,), (8,), (16,))
    expr = bits_expr("x", bases, 0)
    for x in range(16):
        expected = 0
        for bit, (b,) in enumerate(bases):
            if x >> bit & 1:
                expected ^= b
        assert eval(expr.replace("x", str(x))) == expected
