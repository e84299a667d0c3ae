"""pytest plugin for the upstream language tests (test_core.py), loaded with
``-p conformance.upstream.pytest_plugin``.

It applies our one skip list (``skips.toml``), optionally trims the run to a documented subset (the
first N parametrizations of every test function), prints passed / failed / skipped by reason, writes
every outcome to a JSON file, and checks the pass-count ratchet (``ratchet/<tag>/test_core-<device>.json``):
the run fails when any test fails or when fewer tests pass than recorded. ``--shard K/N`` runs one of N
parts split by recorded durations (``shards.py``); ``merge_shards`` then checks the ratchet on the whole.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from triton_metal.metal_check import pytest_plugin as metal_check

from conformance.upstream import ratchet, shards, skips

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
    group.addoption("--shard", default=None, metavar="K/N",
                    help="run only shard K of N (split by recorded durations; merge the shards' --outcomes "
                         "with `python -m conformance.upstream.merge_shards`, which applies the ratchet)")
    group.addoption("--durations-file", default=str(shards.DURATIONS),
                    help="recorded seconds per test, for --shard (default: %(default)s)")


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
    listed = set()
    if not config.getoption("--run-skipped"):
        for item in items:
            if reason := skips.reason_for(item.name):
                item.add_marker(pytest.mark.skip(reason=reason))
                listed.add(item.name)
    if shard := config.getoption("--shard"):
        _keep_shard(config, items, shard, frozenset(listed))


def _keep_shard(config, items, shard: str, listed: frozenset[str]) -> None:
    k, n = shards.parse_shard(shard)
    durations = shards.load_durations(config.getoption("--durations-file"))
    mine = set(shards.partition([item.name for item in items], durations, n, free=listed)[k - 1])
    drop = [item for item in items if item.name not in mine]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [item for item in items if item.name in mine]


class Tally:
    def __init__(self, journal: Path | None = None):
        self.outcomes: dict[str, dict] = {}
        self.seconds: dict[str, float] = {}  # setup + call + teardown, for the shards' durations file
        # A long run (the full file takes hours on the simulator) keeps what it learned when it is
        # stopped: every outcome is also appended to a JSON-lines journal as it arrives.
        self.journal = journal.open("w") if journal else None

    def pytest_runtest_logreport(self, report):
        self.seconds[report.nodeid] = self.seconds.get(report.nodeid, 0.0) + report.duration
        if report.nodeid in self.outcomes:
            self.outcomes[report.nodeid]["duration"] = round(self.seconds[report.nodeid], 3)
        if report.when == "call" or report.outcome != "passed":
            if report.nodeid in self.outcomes and self.outcomes[report.nodeid]["outcome"] != "passed":
                return  # keep the first non-pass (e.g. a setup error) over a teardown report
            self.outcomes[report.nodeid] = {"outcome": report.outcome, "message": _message(report),
                                            "duration": round(self.seconds[report.nodeid], 3)}
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
    if config.getoption("--shard"):  # one shard passes a part of the count: the merge checks the whole
        return True, "ratchet: checked on the merged shards (python -m conformance.upstream.merge_shards)"
    key = f"subset={config.getoption('--subset') or 'all'}"
    return ratchet.check_pass_count(config.getoption("--ratchet-file"), key, counts,
                                    update=config.getoption("--update-ratchet"))


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    tally = config.pluginmanager.get_plugin("triton_metal_upstream_tally")
    if tally is None or not config.getoption("--ratchet-file"):
        return
    ok, line = _check_ratchet(config, tally.counts())
    config._triton_metal_ratchet_lines = [line]
    if not ok and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
