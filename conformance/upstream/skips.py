"""The skip list of upstream test_core.py (skips.toml): which tests we skip, and why.

``reason_for(name)`` is what the plugin asks for every collected test (the name with its parameters,
e.g. ``test_bin_op[1-float64-int8-+]``); the first entry of the file that lists the name exactly, or
has a glob matching it, gives the reason. ``unmatched(names)`` lists the entries that match none of
a run's tests (stale ones). The file's header describes the format.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from conformance import id_lists

SKIPS_FILE = Path(__file__).with_name("skips.toml")


@dataclass(frozen=True)
class Skip:
    reason: str
    tests: tuple[str, ...] = ()
    globs: tuple[str, ...] = ()

    def matches(self, test_name: str) -> bool:
        return id_lists.matches(self, test_name)


def load(path: Path = SKIPS_FILE) -> tuple[Skip, ...]:
    """The entries of a skip-list file, in file order; a malformed entry raises an error naming it."""
    return tuple(Skip(e["reason"], e["tests"], e["globs"]) for e in id_lists.load_tables(path, "skip", ("reason",)))


@cache
def entries() -> tuple[Skip, ...]:
    return load()


def reason_for(test_name: str, skips: tuple[Skip, ...] | None = None) -> str:
    """The reason ``test_name`` is skipped ('' when it is not): the first entry that matches it."""
    skip = id_lists.first_match(entries() if skips is None else skips, test_name)
    return skip.reason if skip else ""


def unmatched(test_names, skips: tuple[Skip, ...] | None = None) -> list[str]:
    """The listed tests and globs that match none of ``test_names``: entries that can go."""
    return id_lists.unmatched(entries() if skips is None else skips, test_names)
