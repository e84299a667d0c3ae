"""pytest plugin for the upstream language tests (test_core.py), loaded with
``-p conformance.upstream.pytest_plugin``.

It applies our one skip list (``skips.toml``), optionally trims the run to a documented subset (the
first N parametrizations of every test function), prints passed / failed / skipped by reason, writes
every outcome to a JSON file, and checks the pass-count ratchet (``ratchet/<tag>/test_core-<device>.json``):
the run fails when any test fails or when fewer tests pass than recorded.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from triton_metal.metal_check import pytest_plugin as metal_check

from conformance.upstream import ratchet, skips

OUTCOME_CHARS = 300


def pytest_addoption(parser):
    group = parser.getgroup("triton-metal upstream", "upstream test_core.py against the Metal backend")
    group.addoption("--subset", type=int, default=0, metavar="N",
                    help="run only the first N parametrizations of each test function (0: all)")
    group.addoption("--run-skipped", action="store_true",
                    help="ignore the skip list, to see which listed tests pass by now")
    group.addoption("--outcomes", default=None,
                    help="write every test's outcome to this JSON file (and, as they arrive, to <name>.partial.jsonl)")
    group.addoption("--ratchet-file", default=None, help="pass-count ratchet file (no check without it)")
    group.addoption("--update-ratchet", action="store_true", help="record this run's pass count in --ratchet-file")


def pytest_collection_modifyitems(config, items):
    subset = config.getoption("--subset")
    if subset:
        seen, keep, drop = Counter(), [], []
        for item in items:
            seen[item.originalname] += 1
            (keep if seen[item.originalname] <= subset else drop).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep
    if config.getoption("--run-skipped"):
        return
    for item in items:
        if reason := skips.reason_for(item.name):
            item.add_marker(pytest.mark.skip(reason=reason))


class Tally:
    def __init__(self, journal: Path | None = None):
        self.outcomes: dict[str, dict] = {}
        # A long run (the full file takes hours on the simulator) keeps what it learned when it is
        # stopped: every outcome is also appended to a JSON-lines journal as it arrives.
        self.journal = journal.open("w") if journal else None

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or report.outcome != "passed":
            if report.nodeid in self.outcomes and self.outcomes[report.nodeid]["outcome"] != "passed":
                return  # keep the first non-pass (e.g. a setup error) over a teardown report
            self.outcomes[report.nodeid] = {"outcome": report.outcome, "message": _message(report)}
            if self.journal:
                self.journal.write(json.dumps({"test": report.nodeid, **self.outcomes[report.nodeid]}) + "\n")
                self.journal.flush()

    def counts(self):
        return Counter(o["outcome"] for o in self.outcomes.values())

    def skipped_by_reason(self):
        reasons = Counter(o["message"] for o in self.outcomes.values() if o["outcome"] == "skipped")
        return reasons.most_common()


def _message(report) -> str:
    if report.outcome == "passed":
        return ""
    if report.outcome == "skipped" and isinstance(report.longrepr, tuple):
        return report.longrepr[2].removeprefix("Skipped: ")
    text = str(report.longrepr or "")
    lines = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    return " | ".join(lines[:2])[:OUTCOME_CHARS] if lines else text.strip().splitlines()[-1][:OUTCOME_CHARS]


def pytest_configure(config):
    metal_check.configure(config)  # the Metal front-end check on every kernel test_core compiles
    if not hasattr(config, "workerinput"):  # xdist workers report to the controller, which tallies
        outcomes = config.getoption("--outcomes")
        journal = Path(outcomes).with_suffix(".partial.jsonl") if outcomes else None
        config.pluginmanager.register(Tally(journal), "triton_metal_upstream_tally")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    tally = config.pluginmanager.get_plugin("triton_metal_upstream_tally")
    if tally is None:
        return
    counts = tally.counts()
    write = terminalreporter.write_line
    terminalreporter.section("upstream test_core on the Metal backend")
    write(f"passed {counts['passed']}, failed {counts['failed']}, skipped {counts['skipped']}")
    for reason, n in tally.skipped_by_reason():
        write(f"  skipped {n:5d}  {reason}")
    if path := config.getoption("--outcomes"):
        Path(path).write_text(json.dumps(tally.outcomes, indent=1, sort_keys=True) + "\n")
        write(f"outcomes: {path}")
    for line in getattr(config, "_triton_metal_ratchet_lines", []):
        write(line)
    metal_check.terminal_summary(terminalreporter)


def pytest_unconfigure(config):
    metal_check.unconfigure(config)


def _check_ratchet(config, counts) -> tuple[bool, str]:
    """(ok, message) for this run's pass count against the recorded one; records it with --update-ratchet."""
    path = Path(config.getoption("--ratchet-file"))
    key = f"subset={config.getoption('--subset') or 'all'}"
    recorded = ratchet.load(path)
    if config.getoption("--update-ratchet"):
        recorded[key] = {"passed": counts["passed"], "failed": counts["failed"], "skipped": counts["skipped"]}
        ratchet.save(path, recorded)
        return True, f"ratchet updated: {path} [{key}] passed={counts['passed']}"
    expected = recorded.get(key, {}).get("passed")
    if expected is None:
        return True, f"ratchet: no pass count recorded for {key} in {path}; record one with --update-ratchet"
    if counts["passed"] < expected:
        return False, f"RATCHET: {counts['passed']} passed, fewer than the {expected} recorded in {path} [{key}]"
    gain = "; record the gain with --update-ratchet" if counts["passed"] > expected else ""
    return True, f"ratchet: {counts['passed']} passed >= {expected} recorded [{key}]{gain}"


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    tally = config.pluginmanager.get_plugin("triton_metal_upstream_tally")
    if tally is None or not config.getoption("--ratchet-file"):
        return
    ok, line = _check_ratchet(config, tally.counts())
    config._triton_metal_ratchet_lines = [line]
    if not ok and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
