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
