"""docs/compatibility.md is generated from the op table and the refusal catalog, never edited."""
from conformance.ops import compatibility


def test_compatibility_doc_is_current():
    assert compatibility.DOC.exists(), f"run `{compatibility.COMMAND}`"
    assert compatibility.DOC.read_text() == compatibility.render(), \
        f"docs/compatibility.md is stale: run `{compatibility.COMMAND}`"


def test_every_refusal_in_the_table_is_in_the_catalog():
    from triton_metal.refusals import CATALOG

    from conformance.ops.table import ROWS
    keys = {row.refusal(d)[0] for row in ROWS for d in row.dtypes if row.refusal(d)}
    assert keys <= set(CATALOG)
