"""test_core sharding: the partition by recorded durations, the plugin's --shard, merging the shards."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.upstream import merge_shards, shards

REPO = Path(__file__).resolve().parents[2]
NAMES = [f"test_op[{i}]" for i in range(40)]
DURATIONS = {name: float(1 + (i * 7) % 13) for i, name in enumerate(NAMES)}


def test_parse_shard():
    assert shards.parse_shard("2/4") == (2, 4)


@pytest.mark.parametrize("text", ["0/4", "5/4", "2", "a/b", "2/0"])
def test_parse_shard_refuses_nonsense(text):
    with pytest.raises(ValueError, match="K/N"):
        shards.parse_shard(text)


def test_partition_is_a_partition():
    bins = shards.partition(NAMES, DURATIONS, 4)
    flat = [n for b in bins for n in b]
    assert sorted(flat) == sorted(NAMES) and len(flat) == len(set(flat))


def test_partition_balances_recorded_time():
    bins = shards.partition(NAMES, DURATIONS, 4)
    loads = [sum(DURATIONS[n] for n in b) for b in bins]
    # Longest-first greedy: no bin exceeds the mean by more than the longest single test.
    assert max(loads) - sum(loads) / 4 <= max(DURATIONS.values())


def test_partition_keeps_collection_order_within_a_shard():
    for b in shards.partition(NAMES, DURATIONS, 3):
        assert b == sorted(b, key=NAMES.index)


def test_partition_is_deterministic():
    assert shards.partition(NAMES, DURATIONS, 4) == shards.partition(list(NAMES), dict(DURATIONS), 4)


def test_listed_skips_cost_nothing():
    slow = {n: 100.0 for n in NAMES[:4]}
    bins = shards.partition(NAMES[:8], slow, 2, free=frozenset(NAMES[:4]))
    # With the four slow tests free, the other four (median cost) split two and two.
    assert sorted(len([n for n in b if n not in NAMES[:4]]) for b in bins) == [2, 2]


def test_merge_refuses_a_test_in_two_shards():
    with pytest.raises(ValueError, match="two shards"):
        shards.merge([{"a::t[1]": {"outcome": "passed"}}, {"a::t[1]": {"outcome": "passed"}}])


def test_durations_round_trip(tmp_path):
    path = shards.save_durations({"x.py::t[1]": {"outcome": "passed", "duration": 1.5},
                                  "x.py::t[2]": {"outcome": "skipped"}}, tmp_path / "d.json")
    assert shards.load_durations(path) == {"t[1]": 1.5}


# --- through pytest: the plugin's --shard and the merge with its ratchet --------------------------

SUITE = '''
import pytest

@pytest.mark.parametrize("n", range(10))
def test_even(n):
    assert n % 2 == 0 or n % 2 == 1
'''


def run_shard(tmp_path, shard, *args):
    (tmp_path / "test_sharded.py").write_text(SUITE)
    out = tmp_path / f"outcomes-{shard.replace('/', '-')}.json"
    done = subprocess.run([sys.executable, "-m", "pytest", str(tmp_path / "test_sharded.py"),
                           "-p", "conformance.upstream.pytest_plugin", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path), "-c", "/dev/null", "--shard", shard,
                           "--durations-file", str(tmp_path / "durations.json"), "--outcomes", str(out), *args],
                          cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-2000:]
    return json.loads(out.read_text())


def test_shards_of_a_run_cover_it_once(tmp_path):
    parts = [run_shard(tmp_path, f"{k}/3") for k in (1, 2, 3)]
    assert sum(len(p) for p in parts) == 10
    assert len(shards.merge(parts)) == 10
    assert all("duration" in o for p in parts for o in p.values())


def test_merge_applies_the_ratchet(tmp_path, capsys):
    files = []
    for k in (1, 2):
        run_shard(tmp_path, f"{k}/2")
        files.append(str(tmp_path / f"outcomes-{k}-2.json"))
    ratchet_file = tmp_path / "ratchet.json"
    assert merge_shards.main([*files, "--ratchet-file", str(ratchet_file), "--update-ratchet"]) == 0
    assert json.loads(ratchet_file.read_text())["subset=all"]["passed"] == 10
    # One shard alone passes 5 of the 10 recorded: the merge fails the run.
    assert merge_shards.main([files[0], "--ratchet-file", str(ratchet_file)]) == 1
    assert "RATCHET: 5 passed, fewer than the 10 recorded" in capsys.readouterr().out


def test_merge_fails_when_a_shard_is_missing(tmp_path):
    run_shard(tmp_path, "1/2")
    assert merge_shards.main([str(tmp_path / "outcomes-1-2.json"), "--expect-shards", "2",
                              "--ratchet-file", str(tmp_path / "r.json")]) == 1
