"""The op table (table.py), run on the device against numpy: every (op, dtype) pair passes or is
refused with the exact message of the refusal catalog."""
import numpy as np
import pytest
from triton_metal.errors import UnsupportedOperationError
from triton_metal.refusals import refusal

from conformance.ops import table
from conformance.ops.runner import alternative_of, compare, compile_only, inputs_of, reference_of, run_batch

PAIRS = [(row, dtype) for row in table.ROWS for dtype in row.dtypes]


def _unsupported(exc):
    while exc is not None and not isinstance(exc, UnsupportedOperationError):
        exc = exc.__cause__ or exc.__context__
    return exc


@pytest.mark.parametrize("row,dtype", PAIRS, ids=[f"{r.op}-{d}" for r, d in PAIRS])
def test_op(row, dtype, device):
    refused = row.refusal(dtype)
    if refused:
        key, fields = refused
        with pytest.raises(Exception) as info:
            compile_only(row, dtype, row.variants[0])
        err = _unsupported(info.value)
        assert err is not None, f"expected the refusal {key!r}, got {info.value!r}"
        assert str(err).split("\n")[0] == refusal(key).message(**fields)
        return
    results = run_batch(row.batch, dtype, str(device))
    problems = []
    for variant in row.variants:
        got = results[(row.op, variant)]
        if isinstance(got, Exception):
            raise got
        x = inputs_of(row, dtype, variant)[0]
        scale = float(np.nanmax(np.abs(np.where(np.isfinite(x), x, 0)))) if x.dtype.kind == "f" else 1.0
        scale *= max(variant[0][variant[1]] if variant[1] is not None else 1, 1)
        refs = reference_of(row, dtype, variant)
        alts = alternative_of(row, dtype, variant) or (None,) * len(refs)
        for g, r, a, odt in zip(got, refs, alts, row.out_dtypes(dtype)):
            msg = compare(g, r, dtype, odt, row.tol, scale, a, row.may_flush)
            if msg:
                problems.append(f"shape {variant[0]} axis {variant[1]}: {msg}")
    assert not problems, "\n".join(problems)
