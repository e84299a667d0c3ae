"""Ratchet files: what passed last time must still pass.

``ratchet/<tag>/tutorials-<device>.json`` holds one verdict per tutorial; ``test_core-<device>.json``
holds the pass count of the upstream language tests. Both are rewritten from a run by the commands
in the README ("Upstream tutorials and tests"), never by hand.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

RATCHETS = Path(__file__).resolve().parent / "ratchet"


def device_key() -> str:
    """'sim' on the Metal simulator, 'metal' on an Apple GPU: verdicts may differ between the two."""
    from triton_metal.runtime import get_runtime
    return get_runtime().name


def ratchet_path(kind: str, tag: str, device: str, directory: Path = RATCHETS) -> Path:
    return directory / tag / f"{kind}-{device}.json"


def load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def save(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def check_pass_count(path: Path, key: str, counts: dict, update: bool = False) -> tuple[bool, str]:
    """(ok, message) for a test_core run's pass count against the one recorded under `key`
    (``subset=all``, ``subset=1``); with `update`, records this run's counts instead."""
    path = Path(path)
    recorded = load(path)
    if update:
        recorded[key] = {"passed": counts["passed"], "failed": counts["failed"], "skipped": counts["skipped"]}
        save(path, recorded)
        return True, f"ratchet updated: {path} [{key}] passed={counts['passed']}"
    expected = recorded.get(key, {}).get("passed")
    if expected is None:
        return True, f"ratchet: no pass count recorded for {key} in {path}; record one with --update-ratchet"
    if counts["passed"] < expected:
        return False, f"RATCHET: {counts['passed']} passed, fewer than the {expected} recorded in {path} [{key}]"
    gain = "; record the gain with --update-ratchet" if counts["passed"] > expected else ""
    return True, f"ratchet: {counts['passed']} passed >= {expected} recorded [{key}]{gain}"


@dataclass
class VerdictComparison:
    regressions: list[str] = field(default_factory=list)   # expected pass, not passing now
    improvements: list[str] = field(default_factory=list)  # passing now, not expected to
    new: list[str] = field(default_factory=list)           # no expectation recorded yet


def compare_verdicts(expected: dict[str, str], actual: dict[str, str]) -> VerdictComparison:
    result = VerdictComparison()
    for name, verdict in sorted(actual.items()):
        before = expected.get(name)
        if before is None:
            result.new.append(name)
        elif before == "pass" and verdict != "pass":
            result.regressions.append(name)
        elif before != "pass" and verdict == "pass":
            result.improvements.append(name)
    return result
