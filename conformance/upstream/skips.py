"""The skip list of upstream test_core.py (skips.toml): which tests we skip, and why.

``reason_for(name)`` is what the plugin asks for every collected test (the name with its parameters,
e.g. ``test_bin_op[1-float64-int8-+]``); the first entry of the file that lists the name exactly, or
has a glob matching it, gives the reason. ``unmatched(names)`` lists the entries that match none of
a run's tests (stale ones). The file's header describes the format.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest itself depends on tomli there
    import tomli as tomllib

SKIPS_FILE = Path(__file__).with_name("skips.toml")
KEYS = ("reason", "tests", "globs")


@dataclass(frozen=True)
class Skip:
    reason: str
    tests: tuple[str, ...] = ()
    globs: tuple[str, ...] = ()

    @cached_property
    def _names(self) -> frozenset[str]:
        return frozenset(self.tests)

    def matches(self, test_name: str) -> bool:
        return test_name in self._names or any(glob_regex(g).match(test_name) for g in self.globs)


@cache
def glob_regex(glob: str) -> re.Pattern:
    # Only `*` is a wildcard: test names are full of brackets, which fnmatch would read as character sets.
    return re.compile(".*".join(map(re.escape, glob.split("*"))) + r"\Z")


def load(path: Path = SKIPS_FILE) -> tuple[Skip, ...]:
    """The entries of a skip-list file, in file order; a malformed entry raises an error naming it."""
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    if set(data) != {"skip"} or not isinstance(data["skip"], list):
        raise ValueError(f"{path}: expected only [[skip]] entries, found {sorted(data)}")
    return tuple(_entry(path, number, entry) for number, entry in enumerate(data["skip"], 1))


def _entry(path: Path, number: int, entry: dict) -> Skip:
    where = f"{path}, [[skip]] number {number}"
    if unknown := sorted(set(entry) - set(KEYS)):
        raise ValueError(f"{where}: unknown keys {unknown}; an entry has {', '.join(KEYS)}")
    if "reason" not in entry:
        raise ValueError(f"{where}: no reason")
    if not isinstance(entry["reason"], str):
        raise TypeError(f"{where}: the reason must be a string")
    for key in ("tests", "globs"):
        if not isinstance(entry.get(key, []), list) or not all(isinstance(v, str) for v in entry.get(key, [])):
            raise TypeError(f"{where}: {key} must be a list of strings")
    return Skip(entry["reason"], tuple(entry.get("tests", ())), tuple(entry.get("globs", ())))


@cache
def entries() -> tuple[Skip, ...]:
    return load()


def reason_for(test_name: str, skips: tuple[Skip, ...] | None = None) -> str:
    """The reason ``test_name`` is skipped ('' when it is not): the first entry that matches it."""
    for skip in entries() if skips is None else skips:
        if skip.matches(test_name):
            return skip.reason
    return ""


def unmatched(test_names, skips: tuple[Skip, ...] | None = None) -> list[str]:
    """The listed tests and globs that match none of ``test_names``: entries that can go."""
    names = set(test_names)
    stale = []
    for skip in entries() if skips is None else skips:
        stale += [test for test in skip.tests if test not in names]
        stale += [glob for glob in skip.globs if not any(glob_regex(glob).match(name) for name in names)]
    return stale
