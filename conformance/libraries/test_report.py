"""report.py turns a run's JUnit XML into the op x dtype table of docs/libraries.md."""
from __future__ import annotations

from conformance.libraries import refusals, report

JUNIT = """<testsuites><testsuite>
<testcase classname="conformance.libraries.test_liger" name="test_liger[rms_norm-bf16-fwd-small]"/>
<testcase classname="conformance.libraries.test_liger" name="test_liger[rms_norm-bf16-bwd-small]">
  <failure message="AssertionError">...</failure></testcase>
<testcase classname="conformance.libraries.test_liger" name="test_liger[fused_neighborhood_attention-f32-fwd-liger]">
  <skipped type="pytest.xfail" message="refused as listed: tl.dot tiles"/></testcase>
<testcase classname="conformance.libraries.test_liger" name="test_liger[llama4_rope-f16-bwd-liger]"/>
<testcase classname="conformance.libraries.test_refusals_file" name="test_case_ids_are_unique"/>
</testsuite></testsuites>"""


def test_outcomes_read_pass_fail_and_refused(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT)
    assert report.outcomes(str(path)) == {
        ("rms_norm", "bf16", "fwd", "small"): "pass",
        ("rms_norm", "bf16", "bwd", "small"): "FAIL",
        ("fused_neighborhood_attention", "f32", "fwd", "liger"): "refused",
        ("llama4_rope", "f16", "bwd", "liger"): "pass",  # op names may hold digits
    }


def test_table_rows_cite_the_refusal_reason(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT)
    listed = (refusals.Refusal("tl.dot tiles: too large", "ThreadgroupMemoryError",
                               globs=("test_liger[fused_neighborhood_attention-f32-*-liger]",)),)
    text = report.table(report.outcomes(str(path)), listed)
    assert "| rms_norm | bf16 | pass | FAIL | - | - |" in text
    row = next(line for line in text.splitlines() if line.startswith("| fused_neighborhood_attention | f32 |"))
    number = row.split("refused [")[1].split("]")[0]
    assert f"[{number}] tl.dot tiles" in text
