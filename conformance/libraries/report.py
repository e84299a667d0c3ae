"""The op x dtype table of docs/libraries.md, from a run's JUnit XML.

    python -m pytest conformance/libraries -n 2 --junitxml=build/libraries.xml
    python -m conformance.libraries.report build/libraries.xml

A cell is fwd/bwd for one size: "pass", "refused" (an expected failure that raised the listed error; the
reason is listed under the table), "FAIL", or "-" (not run: e.g. the quick subset skips the liger size).
"""
from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict

from conformance.libraries import refusals, test_liger
from conformance.libraries.cases import LIGER_SIZE
from conformance.libraries.numerics import DTYPES

CASE = re.compile(r"test_liger\[(?P<op>[a-z0-9_]+)-(?P<dtype>[a-z0-9]+)-(?P<dir>fwd|bwd)-(?P<size>\w+)\]")


def outcomes(junit_path: str) -> dict:
    result = {}
    for case in ET.parse(junit_path).getroot().iter("testcase"):
        if not (m := CASE.fullmatch(case.get("name", ""))):
            continue
        skipped = case.find("skipped")
        if skipped is not None and "xfail" in (skipped.get("type", "") + skipped.get("message", "")):
            verdict = "refused"
        elif case.find("failure") is not None or case.find("error") is not None:
            verdict = "FAIL"
        elif skipped is not None:
            verdict = "skipped"
        else:
            verdict = "pass"
        result[m["op"], m["dtype"], m["dir"], m["size"]] = verdict
    return result


def table(results: dict, listed: tuple | None = None) -> str:
    """The markdown table of `results`, refused cases citing their entry of `listed` (refusals.toml's)."""
    listed = refusals.entries() if listed is None else listed
    lines = ["| op | dtype | small fwd | small bwd | liger-size fwd | liger-size bwd |", "|---|---|---|---|---|---|"]
    reasons = defaultdict(list)
    for op in test_liger.OPS:
        for dtype in DTYPES:
            cells = []
            for size in ("small", LIGER_SIZE):
                for direction in ("fwd", "bwd"):
                    verdict = results.get((op.name, dtype, direction, size), "-")
                    if verdict == "refused":
                        case_id = f"test_liger[{op.name}-{dtype}-{direction}-{size}]"
                        refusal = refusals.find(case_id, listed)
                        number = list(listed).index(refusal) + 1
                        reasons[number].append(case_id)
                        verdict = f"refused [{number}]"
                    cells.append(verdict)
            lines.append(f"| {op.name} | {dtype} | " + " | ".join(cells) + " |")
    for number in sorted(reasons):
        lines.append(f"\n[{number}] {listed[number - 1].reason}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(outcomes(sys.argv[1])))
