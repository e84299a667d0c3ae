"""The op table checks what the MSL specification promises (apple_numerics.py), not what the CPU happens to
give: each Metal function's tolerance is its bound in the specification's accuracy tables."""
import pytest

from conformance.ops import apple_numerics as apple
from conformance.ops import table

# libdevice and tl names whose MSL spelling is another Metal function (libdevice_msl.py, msl_ops.py)
SPELLED = {"sqrt_rn": "sqrt", "rsqrt_rn": "rsqrt", "div_rn": "x / y", "rcp_rn": "1.0 / x", "fma_rn": "fma",
           "pow (x, int32)": "pow"}
METAL_ROWS = [row for row in table.ROWS if row.family == "math" and not row.op.startswith("libdevice.fast_")
              and SPELLED.get(row.op.split(".", 1)[1], row.op.split(".", 1)[1]) in apple.PRECISE_F32]


@pytest.mark.parametrize("row", METAL_ROWS, ids=[row.op for row in METAL_ROWS])
def test_a_metal_functions_tolerance_is_the_specifications_bound(row):
    name = SPELLED.get(row.op.split(".", 1)[1], row.op.split(".", 1)[1])
    bound = apple.PRECISE_F32[name]
    # Correctly rounded to an integer is exact: the integer is a float.
    ulps = 0 if name in ("floor", "ceil", "trunc", "round", "rint") else bound.tolerance_ulps
    assert (row.tol.ulps, row.tol.eps_scale, row.tol.atol) == (ulps, 0, 0), \
        f"{row.op}: MSL Table 8.1 gives {name} {bound.text}"


def test_every_metal_function_of_the_table_is_checked():
    assert {r.op for r in METAL_ROWS} >= {"tl.exp", "tl.sqrt_rn", "tl.rsqrt", "libdevice.tan", "libdevice.pow",
                                          "libdevice.rsqrt_rn", "libdevice.atan2", "tl.div_rn", "libdevice.fmod"}


@pytest.mark.parametrize("table_, name, text, ulps", [
    (apple.PRECISE_F32, "exp", "<= 4 ulp", 4), (apple.PRECISE_F32, "tan", "<= 6 ulp", 6),
    (apple.PRECISE_F32, "pow", "<= 16 ulp", 16), (apple.PRECISE_F32, "x / y", apple.CR, 0.5),
    (apple.PRECISE_F32, "rsqrt", apple.CR, 0.5), (apple.PRECISE_F32, "fmod", "0 ulp", 0),
    (apple.FAST_F32, "x / y", "<= 2.5 ulp for y in the domain of 2^-126 to 2^126", 2.5),
    (apple.FAST_F32, "sqrt", "implemented as x * rsqrt(x) (special cases exact)", None),
    (apple.HALF, "exp", "<= 1 ulp", 1),
])
def test_the_accuracy_tables_read_as_the_specification(table_, name, text, ulps):
    assert table_[name] == apple.Bound(text, ulps)
