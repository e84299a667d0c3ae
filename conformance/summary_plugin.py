"""pytest plugin: the end of a conformance run, one summary a CI reader can act on.

Registered by conformance/conftest.py. At the end of the session it prints, and writes as JSON and
Markdown (for ``$GITHUB_STEP_SUMMARY``) next to the JUnit XML under ``build/conformance/``:

* per suite (``SUITES``: the conformance harness's unit tests, op table, op tests, fuzz, tutorial
  ports, upstream tutorials, traffic, ...) passed / failed / skipped / xfail; the unit tests of
  ``tox -e py`` (compiler/tests) from their JUnit XML when it is there, with its age;
* the op-table coverage: ops, (op, dtype) pairs passing, refused as documented, failing;
* each upstream tutorial's verdict, against the recorded one;
* the Metal front-end check (``build/conformance/metal_check.json``, written by its own plugin
  earlier in the same hook: this one runs last);
* the device and chip, the tests that failed, and where the reports are.

``--conformance-report-dir DIR`` moves the reports; ``--junitxml`` given explicitly still wins.
Benchmark timing runs (``tox -e bench``) are not summarised here: they end with their own table.
"""
from __future__ import annotations

import datetime
import json
import platform
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

JUNIT_NAME, JSON_NAME, MARKDOWN_NAME = "junit.xml", "summary.json", "summary.md"
UNIT_JUNIT = "unit.xml"            # written by `tox -e py` (tox.ini)
METAL_CHECK = "metal_check.json"   # written by triton_metal/metal_check/pytest_plugin.py
MAX_FAILED_LISTED = 20

UNIT = "unit (compiler/tests)"
# (suite, test file or folder, relative to the rootdir as in pytest's node ids): the first match names a
# test's suite. The unit tests count here when they run in the same session (`pytest compiler/tests
# conformance`); otherwise from the JUnit XML `tox -e py` wrote.
SUITES = (
    (UNIT, "compiler/tests/"),
    ("unit (harness)", "conformance/perf/test_chips.py"),
    ("unit (harness)", "conformance/perf/test_regression_detection.py"),
    ("unit (harness)", "conformance/tutorials/test_upstream_runner.py"),
    ("unit (harness)", "conformance/upstream/test_skips.py"),
    ("unit (harness)", "conformance/ops/test_compatibility_doc.py"),
    ("unit (harness)", "conformance/test_summary_plugin.py"),
    ("unit (harness)", "conformance/libraries/test_refusal"),
    ("unit (harness)", "conformance/libraries/test_report.py"),
    ("libraries (Liger)", "conformance/libraries/"),
    ("op table", "conformance/ops/test_op_table.py"),
    ("fuzz", "conformance/ops/test_fuzz.py"),
    ("op tests", "conformance/ops/"),
    ("upstream tutorials", "conformance/tutorials/test_upstream_tutorials.py"),
    ("tutorial ports", "conformance/tutorials/"),
    ("traffic", "conformance/perf/test_traffic.py"),
    ("benchmark kernels", "conformance/perf/test_bench_kernels.py"),
    ("simulator vs interpreter", "conformance/perf/test_sim_vs_interpreter.py"),
)
OTHER = "other"
# One outcome per test; a later report of the same test replaces an earlier one only if it ranks higher
# (a test that passed and then errored in teardown counts as an error).
RANK = {"passed": 0, "skipped": 1, "xfailed": 1, "xpassed": 1, "failed": 2, "error": 3}
COLUMNS = ("passed", "failed", "skipped", "xfail")


def pytest_addoption(parser):
    parser.addoption("--conformance-report-dir", default=None,
                     help="where the conformance summary (JSON, Markdown) and the JUnit XML go "
                          "(default: build/conformance/ under the rootdir)")


def report_dir(config) -> Path:
    return Path(config.getoption("conformance_report_dir") or Path(str(config.rootpath)) / "build" / "conformance")


@pytest.hookimpl(tryfirst=True)  # before pytest's junitxml plugin reads --junitxml
def pytest_configure(config):
    from conformance.perf.baseline_plugin import timing_requested
    # Not in an xdist worker (the controller summarises), a collection, or a benchmark run (tox -e bench: it
    # reports with its own table, and must not overwrite the conformance run's reports).
    if hasattr(config, "workerinput") or config.option.collectonly or timing_requested(config):
        return
    if not config.option.xmlpath:
        report_dir(config).mkdir(parents=True, exist_ok=True)
        config.option.xmlpath = str(report_dir(config) / JUNIT_NAME)
    config.pluginmanager.register(Summary(config), "triton-metal-conformance-summary-session")


def outcome_of(report) -> str | None:
    """The test's outcome this report decides, as pytest's terminal counts it (None: nothing yet)."""
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed" if report.passed else "failed"
    if report.when == "call":
        return report.outcome
    if report.failed:
        return "error"
    return "skipped" if report.skipped else None


def suite_of(path: str) -> str:
    """The suite of a test file, given relative to the rootdir ("conformance/ops/test_op_table.py")."""
    for suite, prefix in SUITES:
        if path == prefix or (prefix.endswith("/") and path.startswith(prefix)):
            return suite
    return OTHER


def suite_counts(outcomes: dict) -> dict:
    counts = {}
    for nodeid, outcome in outcomes.items():
        suite = counts.setdefault(suite_of(nodeid.split("::", 1)[0]), dict.fromkeys(
            ("passed", "failed", "error", "skipped", "xfailed", "xpassed"), 0))
        suite[outcome] += 1
    order = [s for s, _ in SUITES] + [OTHER]
    return {s: counts[s] for s in sorted(counts, key=order.index)}


def op_table_coverage(outcomes: dict) -> dict | None:
    """Ops and (op, dtype) pairs of the op table that ran: passing, refused as documented, failing."""
    pairs = {nodeid.rsplit("[", 1)[1][:-1]: outcome for nodeid, outcome in outcomes.items()
             if "ops/test_op_table.py::test_op[" in nodeid}
    if not pairs:
        return None
    from conformance.ops import table
    rows = {f"{row.op}-{dtype}": (row.op, bool(row.refusal(dtype))) for row in table.ROWS for dtype in row.dtypes}
    ran = {test_id: rows[test_id] for test_id in pairs if test_id in rows}
    ok = [test_id for test_id in ran if pairs[test_id] == "passed"]
    return {"ops": len({op for op, _ in ran.values()}), "ops_in_table": len({op for op, _ in rows.values()}),
            "pairs": len(ran), "pairs_in_table": len(rows),
            "pairs_passing": sum(not ran[t][1] for t in ok), "pairs_refused": sum(ran[t][1] for t in ok),
            "pairs_failing": sum(pairs[t] in ("failed", "error") for t in ran),
            "pairs_skipped": sum(pairs[t] == "skipped" for t in ran)}


def upstream_tutorials(config) -> dict | None:
    session = getattr(config, "_triton_metal_upstream_tutorials", None)
    if session is None:
        return None
    if session.located.unavailable:
        return {"unavailable": session.located.unavailable, "tutorials": []}
    return {"triton": session.manifest.tag, "tutorials": [
        {"name": r.name, "verdict": r.verdict, "expected": session.expected.get(r.name), "detail": r.detail}
        for r in session.results]}


def device() -> dict:
    from triton_metal.runtime import get_runtime
    runtime = get_runtime()
    info = {"runtime": runtime.name, "chip": runtime.chip.id, "simulated": runtime.capabilities.simulated,
            "host": f"{platform.system()} {platform.machine()}"}
    if runtime.capabilities.simulated:
        from triton_metal.runtime.chips import host_cpu_model
        info["host_cpu"] = host_cpu_model()
    return info


def metal_check_path(config) -> Path:
    return Path(str(config.rootpath)) / "build" / "conformance" / METAL_CHECK


def read_json(path: Path, not_before: float) -> dict | None:
    """A JSON report written during this session (an older file is another run's)."""
    try:
        if path.stat().st_mtime >= not_before:
            return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    return None


def unit_suite(path: Path, now: float) -> dict | None:
    """The counts of the JUnit XML `tox -e py` wrote, and how long before this summary."""
    try:
        root = ET.parse(path).getroot()
        age_s = now - path.stat().st_mtime
    except (OSError, ET.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    total = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    return {"passed": total["tests"] - total["failures"] - total["errors"] - total["skipped"],
            "failed": total["failures"], "error": total["errors"], "skipped": total["skipped"], "xfailed": 0,
            "xpassed": 0, "report": str(path), "age_s": round(age_s)}


def build_summary(config, outcomes: dict, started: float, exitstatus: int) -> dict:
    directory = report_dir(config)
    suites = suite_counts(outcomes)
    unit = None if UNIT in suites else unit_suite(directory / UNIT_JUNIT, time.time())
    if unit:
        suites = {UNIT: unit, **suites}
    return {
        "result": "passed" if exitstatus == 0 else "failed",
        "exit_status": int(exitstatus),
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": device(),
        "suites": suites,
        "op_table": op_table_coverage(outcomes),
        "upstream_tutorials": upstream_tutorials(config),
        "metal_check": read_json(metal_check_path(config), started),
        "failed_tests": sorted(n for n, o in outcomes.items() if o in ("failed", "error")),
        "reports": {"junit": config.option.xmlpath, "json": str(directory / JSON_NAME),
                    "markdown": str(directory / MARKDOWN_NAME)},
    }


# --- rendering ------------------------------------------------------------------------------------

def _row(counts: dict) -> tuple:
    return (counts["passed"] + counts["xpassed"], counts["failed"] + counts["error"], counts["skipped"],
            counts["xfailed"])


def _age(seconds: int) -> str:
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}{'s' if unit == 'day' and seconds >= 2 * size else ''}"
    return f"{seconds} s"


def _device_line(d: dict) -> str:
    if d["simulated"]:
        return f"Metal simulator ({d['runtime']} runtime) emulating {d['chip']}, on {d['host']}, CPU {d['host_cpu']}"
    return f"Apple GPU {d['chip']} ({d['runtime']} runtime), {d['host']}"


def _coverage_line(c: dict) -> str:
    partial = "" if c["pairs"] == c["pairs_in_table"] else f" (of {c['pairs_in_table']} in the table)"
    return (f"{c['ops']} ops, {c['pairs']} (op, dtype) pairs{partial}: {c['pairs_passing']} pass, "
            f"{c['pairs_refused']} refused as documented, {c['pairs_failing']} fail"
            + (f", {c['pairs_skipped']} skipped" if c["pairs_skipped"] else ""))


def _tutorial_lines(t: dict) -> list[str]:
    if t.get("unavailable"):
        return [f"not run: {t['unavailable']}"]
    lines = [] if t["tutorials"] else ["none ran in this session"]
    for r in t["tutorials"]:
        note = "" if r["expected"] in (None, r["verdict"]) else f" (recorded: {r['expected']})"
        lines.append(f"{r['name']}: {r['verdict']}{note}" + (f": {r['detail']}" if r["detail"] else ""))
    return lines


def _metal_check_line(m: dict | None) -> str:
    if m is None:
        return "no report (build/conformance/metal_check.json was not written by this run)"
    if not m.get("enabled", True):
        return m.get("reason", "not run")
    failures = ", ".join(list(dict.fromkeys(f["kernel"] for f in m.get("failures", [])))[:5])
    return f"{m['kernels_checked']} kernels checked, {m['failed']} failed" + (f": {failures}" if failures else "")


def text_lines(s: dict) -> list[str]:
    lines = [f"result: {s['result'].upper()} (exit status {s['exit_status']}) on {_device_line(s['device'])}", ""]
    width = max(len(name) for name in s["suites"]) if s["suites"] else 5
    lines.append(f"{'suite':<{width}}  " + "  ".join(f"{c:>7}" for c in COLUMNS))
    for name, counts in s["suites"].items():
        extra = f"  ({_shown(counts['report'])}, written {_age(counts['age_s'])} before)" if "report" in counts else ""
        lines.append(f"{name:<{width}}  " + "  ".join(f"{v:>7}" for v in _row(counts)) + extra)
    lines.append("")
    if s["op_table"]:
        lines.append(f"op table coverage: {_coverage_line(s['op_table'])}")
    if s["upstream_tutorials"] is not None:
        lines.append("upstream tutorials:")
        lines += [f"  {line}" for line in _tutorial_lines(s["upstream_tutorials"])]
    lines.append(f"Metal front-end check: {_metal_check_line(s['metal_check'])}")
    failed = s["failed_tests"]
    if failed:
        lines.append(f"failed ({len(failed)}):")
        lines += [f"  {n}" for n in failed[:MAX_FAILED_LISTED]]
        if len(failed) > MAX_FAILED_LISTED:
            lines.append(f"  ... and {len(failed) - MAX_FAILED_LISTED} more (in the JUnit XML)")
    r = {k: _shown(v) for k, v in s["reports"].items()}
    lines.append(f"reports: JUnit XML {r['junit']}; JSON {r['json']}; Markdown {r['markdown']}")
    return lines


def _shown(path: str) -> str:
    """A report path as the reader would type it: relative to the current directory when under it."""
    try:
        return Path(path).resolve().relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)


def markdown(s: dict) -> str:
    icon = "✅" if s["result"] == "passed" else "❌"
    out = [f"## {icon} triton-metal conformance: {s['result']}", "", f"Device: {_device_line(s['device'])}", "",
           "| suite | " + " | ".join(COLUMNS) + " |", "|---|" + "---:|" * len(COLUMNS)]
    for name, counts in s["suites"].items():
        where = f" (`tox -e py`, {_age(counts['age_s'])} before)" if "report" in counts else ""
        out.append(f"| {name}{where} | " + " | ".join(str(v) for v in _row(counts)) + " |")
    out.append("")
    if s["op_table"]:
        out.append(f"**Op table coverage:** {_coverage_line(s['op_table'])}")
        out.append("")
    if s["upstream_tutorials"] is not None:
        out.append("**Upstream tutorials:**")
        out += [f"- {line}" for line in _tutorial_lines(s["upstream_tutorials"])]
        out.append("")
    out += [f"**Metal front-end check:** {_metal_check_line(s['metal_check'])}", ""]
    if s["failed_tests"]:
        out.append(f"**Failed ({len(s['failed_tests'])}):**")
        out += [f"- `{n}`" for n in s["failed_tests"][:MAX_FAILED_LISTED]]
        out.append("")
    return "\n".join(out) + "\n"


def write(s: dict) -> None:
    Path(s["reports"]["json"]).parent.mkdir(parents=True, exist_ok=True)
    Path(s["reports"]["json"]).write_text(json.dumps(s, indent=1) + "\n")
    Path(s["reports"]["markdown"]).write_text(markdown(s))


class Summary:
    """The session's outcomes, then its summary."""

    def __init__(self, config):
        self.config = config
        self.started = time.time()
        self.outcomes = {}  # nodeid -> outcome
        self.summary = None

    def pytest_runtest_logreport(self, report):
        outcome = outcome_of(report)
        previous = self.outcomes.get(report.nodeid)
        if outcome is not None and (previous is None or RANK[outcome] > RANK[previous]):
            self.outcomes[report.nodeid] = outcome

    @pytest.hookimpl(trylast=True)  # after the other summaries, the Metal front-end check's report included
    def pytest_terminal_summary(self, terminalreporter, exitstatus):
        self.summary = build_summary(self.config, self.outcomes, self.started, exitstatus)
        write(self.summary)
        terminalreporter.write_sep("=", "triton-metal conformance summary", bold=True)
        for line in text_lines(self.summary):
            terminalreporter.write_line(line)

    def pytest_unconfigure(self, config):
        # A front-end check report written after the terminal summary still reaches the JSON and Markdown.
        if self.summary is None or self.summary["metal_check"] is not None:
            return
        late = read_json(metal_check_path(config), self.started)
        if late is not None:
            write(dict(self.summary, metal_check=late))
