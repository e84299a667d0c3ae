"""The diagnostics buffer of tl.device_print / tl.device_assert: formatting against C's printf,
the hidden-argument limit, the lowering registry (runtime path: runtime/test_device_print_fake.py)."""
from __future__ import annotations

import ctypes
import math
import platform
import struct
from types import SimpleNamespace

import numpy as np
import pytest
from triton_metal.abi import BUFFER_SLOTS
from triton_metal.codegen.emitter import LOWERINGS
from triton_metal.codegen.ops import lower_debug_ops
from triton_metal.device_print import c_hex_float, format_value, index_widths
from triton_metal.errors import UnsupportedOperationError


def libc_printf(fmt: str, value: float) -> str:
    libc = ctypes.CDLL(None)
    buf = ctypes.create_string_buffer(64)
    libc.snprintf(buf, 64, fmt.encode(), ctypes.c_double(value))
    return buf.value.decode()


@pytest.mark.skipif(platform.system() != "Linux", reason="ctypes calls glibc's variadic snprintf (Linux CI)")
@pytest.mark.parametrize("value", [1.0, 1.5, 0.1, -1.5, -0.0, 0.0, 6.0, 1e-3, -250.25, 3.4028234663852886e38,
                                   float(np.float32(0.1)), float(np.float16(0.1)), 2.0 ** -149, float("inf"),
                                   float("-inf"), 123456.789])
def test_hex_and_decimal_floats_match_glibc_printf(value):
    assert c_hex_float(value) == libc_printf("%a", value)
    f32 = float(np.float32(value))
    assert format_value(struct.unpack("<I", struct.pack("<f", f32))[0], "f32", False, False) == \
        libc_printf("%f", f32)


@pytest.mark.parametrize("dim", [1, 2, 9, 10, 11, 32, 99, 100, 101, 128, 1000, 1024])
def test_index_width_is_cudas_ceil_log10(dim):
    assert index_widths([dim]) == [math.ceil(math.log10(dim))]


@pytest.mark.parametrize("bits, dtype, signed, text", [
    (0xFF, "i8", True, "-1"), (0xFF, "i8", False, "255"), (0xFFFFFFFFFFFFFFFF, "i8", True, "-1"),
    (1, "i1", False, "1"), (0x8000000000000000, "i64", True, str(-2 ** 63)),
    (0x8000000000000000, "i64", False, str(2 ** 63)),
])
def test_integers_read_with_their_signedness(bits, dtype, signed, text):
    assert format_value(bits, dtype, signed, False) == text


def test_hidden_buffer_counts_against_metals_buffer_limit():
    emitter = SimpleNamespace(device_print_sites=[{"kind": "print"}])  # a kernel that printed
    assert lower_debug_ops.device_print_parameter(emitter, BUFFER_SLOTS - 1, BUFFER_SLOTS).param \
        == f"device uint* tm_diag [[buffer({BUFFER_SLOTS - 1})]]"
    with pytest.raises(UnsupportedOperationError, match="printing and assertions take one hidden buffer argument, "
                                                        f"and Metal binds at most {BUFFER_SLOTS} buffers"):
        lower_debug_ops.device_print_parameter(emitter, BUFFER_SLOTS, BUFFER_SLOTS)


def test_print_and_assert_are_lowered_by_the_diagnostics_module():
    assert LOWERINGS["tt.print"] is lower_debug_ops.lower_print
    assert LOWERINGS["tt.assert"] is lower_debug_ops.lower_assert

