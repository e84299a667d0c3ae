"""Merges the outcomes of test_core shards and applies the pass-count ratchet to the whole run.

    python -m conformance.upstream.merge_shards build/upstream/outcomes-*.json \\
        [--ratchet-file FILE | --tag v3.9.0 --device sim] [--update-ratchet] [--record-durations]

Fails (exit 1) when a test failed, when two shards report the same test, when a shard is missing
(``--expect-shards N`` and fewer files), or when fewer tests pass than the ratchet records.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from conformance.upstream import ratchet, shards


def summary_lines(merged: dict[str, dict]) -> list[str]:
    counts = Counter(o["outcome"] for o in merged.values())
    lines = [f"passed {counts['passed']}, failed {counts['failed']}, skipped {counts['skipped']}"]
    reasons = Counter(o["message"] for o in merged.values() if o["outcome"] == "skipped")
    lines += [f"  skipped {n:5d}  {reason}" for reason, n in reasons.most_common()]
    lines += [f"  FAILED {nodeid}: {o['message']}" for nodeid, o in sorted(merged.items()) if o["outcome"] == "failed"]
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outcomes", nargs="+", help="the shards' --outcomes JSON files")
    parser.add_argument("--expect-shards", type=int, default=0, help="fail unless this many files are given")
    parser.add_argument("--ratchet-file", default=None)
    parser.add_argument("--tag", default=None, help="ratchet of this Triton tag (default: the installed one)")
    parser.add_argument("--device", default="sim", help="ratchet of this device key (sim or metal)")
    parser.add_argument("--update-ratchet", action="store_true")
    parser.add_argument("--record-durations", action="store_true", help=f"rewrite {shards.DURATIONS.name}")
    parser.add_argument("--merged", default=None, help="write the merged outcomes to this JSON file")
    args = parser.parse_args(argv)

    if args.expect_shards and len(args.outcomes) != args.expect_shards:
        print(f"merge_shards: {len(args.outcomes)} outcome files for {args.expect_shards} shards: "
              "a shard did not report (see its job log)")
        return 1
    try:
        merged = shards.merge([json.loads(Path(p).read_text()) for p in args.outcomes])
    except ValueError as e:
        print(f"merge_shards: {e}")
        return 1
    for line in summary_lines(merged):
        print(line)
    if args.merged:
        Path(args.merged).write_text(json.dumps(merged, indent=1, sort_keys=True) + "\n")
    if args.record_durations:
        print(f"durations: {shards.save_durations(merged)}")
    counts = Counter(o["outcome"] for o in merged.values())
    path = Path(args.ratchet_file) if args.ratchet_file else ratchet.ratchet_path(
        "test_core", args.tag or _installed_tag(), args.device)
    ok, line = ratchet.check_pass_count(path, "subset=all", counts, update=args.update_ratchet)
    print(line)
    return 0 if ok and counts["failed"] == 0 else 1


def _installed_tag() -> str:
    from conformance.upstream.source import pinned_tag
    return pinned_tag()


if __name__ == "__main__":
    sys.exit(main())
