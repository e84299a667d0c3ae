"""One verdict per upstream tutorial, read from what its run printed.

pass: it exited cleanly and none of its own checks reported a mismatch. unsupported: our backend
refused an op or hit an Apple hardware limit (the message is ours). fail: anything else, with a
short summary (the tensor-comparison lines, or the final exception line).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

PASS, FAIL, UNSUPPORTED = "pass", "fail", "unsupported"
DETAIL_CHARS = 240

# Our refusals: UnsupportedOperationError and the Apple limit errors (errors.py).
REFUSALS = (
    re.compile(r"Operation .+ is not supported by the Metal backend.*"),
    re.compile(r"out of resource: (threadgroup memory|threads per threadgroup).*"),
)
# Lines that summarize a failed comparison (torch.testing.assert_close, numpy.testing).
MISMATCH_LINES = re.compile(r"^(?:E)?\s*(Mismatched elements:.*|Greatest absolute difference:.*|"
                            r"Greatest relative difference:.*|Tensor-likes are not close!.*|Max absolute difference.*)$",
                            re.MULTILINE)
EXCEPTION_LINE = re.compile(r"^(?:E\s+)?([\w.]*(?:Error|Exception|Interrupt)\b.*)$", re.MULTILINE)
# Printed checks of the tutorials themselves ("❌ Triton and Torch differ", "max difference ... is X").
PRINTED_FAILURE = re.compile(r"^.*❌.*$", re.MULTILINE)
MAX_DIFFERENCE = re.compile(r"maximum difference between torch and triton is\s+([-+0-9.eE]+|nan|inf)")
MAX_DIFFERENCE_TOLERANCE = 1e-5
# A tutorial's own "this device cannot run me" exit (10: "⛔ This example requires GPU support for
# block scaled matmul", 11: "PDL is not supported on this device"): it ran nothing, so it is no pass.
NOT_APPLICABLE = re.compile(r"^.*(?:⛔|is not supported on this device|requires CUDA).*$", re.MULTILINE)
PYTEST_COUNTS = re.compile(r"^=*\s*((?:\d+ \w+(?:, )?)+) in [\d.]+s", re.MULTILINE)


@dataclass(frozen=True)
class Verdict:
    verdict: str
    detail: str = ""


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 3] + "..."


def classify(returncode: int | None, output: str, timeout_s: float | None = None) -> Verdict:
    """``returncode`` None means the run was stopped after ``timeout_s`` seconds."""
    if returncode is None:
        return Verdict(FAIL, f"timed out after {timeout_s:g} s")
    for refusal in REFUSALS:
        if match := refusal.search(output):
            return Verdict(UNSUPPORTED, _short(match.group(0)))
    if returncode != 0:
        return Verdict(FAIL, _failure_summary(output, returncode))
    if match := NOT_APPLICABLE.search(output):
        return Verdict(UNSUPPORTED, _short(f"the tutorial's own check: {match.group(0).strip()}"))
    if match := PRINTED_FAILURE.search(output):
        return Verdict(FAIL, _short(match.group(0)))
    for value in MAX_DIFFERENCE.findall(output):
        if not float(value) <= MAX_DIFFERENCE_TOLERANCE:
            return Verdict(FAIL, f"maximum difference between torch and triton is {value}")
    return Verdict(PASS)


def _failure_summary(output: str, returncode: int) -> str:
    parts = []
    if counts := PYTEST_COUNTS.findall(output):
        parts.append(f"pytest: {counts[-1]}")
    if mismatch := MISMATCH_LINES.findall(output):
        parts.append("; ".join(line.strip() for line in dict.fromkeys(mismatch)))
    elif exceptions := EXCEPTION_LINE.findall(output):
        parts.append(exceptions[-1] + _failing_source_line(output, exceptions[-1]))
    elif returncode == -9:
        parts.append("killed (SIGKILL: out of memory? see --memory-limit-gb)")
    elif returncode < 0:
        parts.append(f"crashed (signal {-returncode})")
    else:
        lines = [line for line in output.splitlines() if line.strip()]
        parts.append(lines[-1] if lines else f"exit status {returncode}, no output")
    return _short(" | ".join(parts))


def _failing_source_line(output: str, exception: str) -> str:
    """A bare ``AssertionError`` says nothing: add the traceback's source line (``assert x.is_cuda``)."""
    if exception.strip() not in ("AssertionError", "AssertionError:"):
        return ""
    lines = output.splitlines()
    index = max(i for i, line in enumerate(lines) if line.strip() == exception.strip())
    code = next((line.strip() for line in reversed(lines[:index])
                 if line.startswith("    ") and line.strip().strip("^~ ")), "")
    return f" at `{code}`" if code else ""
