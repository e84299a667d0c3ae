"""Splitting test_core across CI runners by recorded durations, and merging what the shards report.

Every shard collects the same tests and computes the same partition, so shard K of N needs nothing
but K, N and the durations file: longest-first greedy packing of the tests into N bins by recorded
duration (a test without a record counts as the median; a listed skip costs nothing). Durations are
keyed by test name (``test_abs[float64]``), as the skip list is, and rewritten from a merged run.

    python -m conformance.upstream.merge_shards outcomes-1.json ... --ratchet-file FILE
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from statistics import median

DURATIONS = Path(__file__).resolve().parent / "durations" / "test_core.json"
_SHARD = re.compile(r"^([1-9][0-9]*)/([1-9][0-9]*)$")


def parse_shard(text: str) -> tuple[int, int]:
    """'2/4' -> (2, 4): shard 2 of 4, counted from 1."""
    m = _SHARD.match(text.strip())
    if not m or int(m.group(1)) > int(m.group(2)):
        raise ValueError(f"--shard {text!r}: expected K/N with 1 <= K <= N, e.g. --shard 2/4")
    return int(m.group(1)), int(m.group(2))


def load_durations(path: Path = DURATIONS) -> dict[str, float]:
    return json.loads(Path(path).read_text()) if Path(path).exists() else {}


def save_durations(outcomes: dict[str, dict], path: Path = DURATIONS) -> Path:
    """Seconds per test name from a (merged) outcomes record; tests without a duration are left out."""
    durations = {test_name(nodeid): round(o["duration"], 3) for nodeid, o in outcomes.items() if "duration" in o}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(sorted(durations.items())), indent=0) + "\n")
    return path


def test_name(nodeid: str) -> str:
    return nodeid.rsplit("::", 1)[-1]


def partition(names: list[str], durations: dict[str, float], shards: int,
              free: frozenset[str] = frozenset()) -> list[list[str]]:
    """`names` in `shards` bins of about equal recorded time; each bin keeps the collection order.

    Tests in `free` (listed skips) cost nothing; unknown tests cost the median recorded duration.
    Deterministic: the same inputs give the same bins on every runner.
    """
    known = [durations[n] for n in names if n in durations and n not in free]
    default = median(known) if known else 1.0
    cost = {n: 0.0 if n in free else durations.get(n, default) for n in names}
    order = {n: i for i, n in enumerate(names)}
    loads, bins = [0.0] * shards, [[] for _ in range(shards)]
    for name in sorted(names, key=lambda n: (-cost[n], order[n])):
        k = min(range(shards), key=lambda i: (loads[i], len(bins[i]), i))
        bins[k].append(name)
        loads[k] += cost[name]
    return [sorted(b, key=order.__getitem__) for b in bins]


def merge(records: list[dict[str, dict]]) -> dict[str, dict]:
    """One outcomes record from the shards' records; a test reported by two shards is an error
    (the shards would not be a partition, and a pass would be counted twice)."""
    merged: dict[str, dict] = {}
    for record in records:
        for nodeid, outcome in record.items():
            if nodeid in merged:
                raise ValueError(f"{nodeid} is reported by two shards: shards must split the tests, "
                                 "run every shard with the same --shard N and durations file")
            merged[nodeid] = outcome
    return merged
