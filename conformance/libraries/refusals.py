"""The refusal list of the library suite (refusals.toml): which cases the backend refuses, and why.

``find(case_id)`` is what conftest.py asks for every collected case (its pytest name with parameters,
e.g. ``test_cross_entropy[bf16-bwd-liger]``); the first entry listing the name exactly, or with a glob
matching it, is the refusal. ``unmatched(names)`` lists the names and globs that match no collected case.
The file's header describes the format.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest itself depends on tomli there
    import tomli as tomllib

REFUSALS_FILE = Path(__file__).with_name("refusals.toml")
KEYS = ("reason", "error", "tests", "globs")


@dataclass(frozen=True)
class Refusal:
    reason: str  # why the backend refuses it, for the reader and the docs table
    error: str  # a regular expression the raised error (``TypeName: message``) must match
    tests: tuple[str, ...] = ()
    globs: tuple[str, ...] = ()

    def matches(self, case_id: str) -> bool:
        return case_id in self.tests or any(glob_regex(g).match(case_id) for g in self.globs)

    def raised_by(self, exc: BaseException) -> bool:
        return re.search(self.error, f"{type(exc).__name__}: {exc}", re.DOTALL) is not None


@cache
def glob_regex(glob: str) -> re.Pattern:
    # Only `*` is a wildcard: case ids are full of brackets, which fnmatch would read as character sets.
    return re.compile(".*".join(map(re.escape, glob.split("*"))) + r"\Z")


def load(path: Path = REFUSALS_FILE) -> tuple[Refusal, ...]:
    """The entries of a refusal file, in file order; a malformed entry raises an error naming it."""
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    if not data:
        return ()
    if set(data) != {"refusal"} or not isinstance(data["refusal"], list):
        raise ValueError(f"{path}: expected only [[refusal]] entries, found {sorted(data)}")
    return tuple(_entry(path, number, entry) for number, entry in enumerate(data["refusal"], 1))


def _entry(path: Path, number: int, entry: dict) -> Refusal:
    where = f"{path}, [[refusal]] number {number}"
    if unknown := sorted(set(entry) - set(KEYS)):
        raise ValueError(f"{where}: unknown keys {unknown}; an entry has {', '.join(KEYS)}")
    for key in ("reason", "error"):
        if key not in entry:
            raise ValueError(f"{where}: no `{key}`")
        if not isinstance(entry[key], str):
            raise TypeError(f"{where}: `{key}` must be a string")
    for key in ("tests", "globs"):
        values = entry.get(key, [])
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise TypeError(f"{where}: `{key}` must be a list of strings")
    re.compile(entry["error"])  # a bad pattern fails here, naming nothing else
    return Refusal(entry["reason"], entry["error"], tuple(entry.get("tests", ())), tuple(entry.get("globs", ())))


@cache
def entries() -> tuple[Refusal, ...]:
    return load()


def find(case_id: str, refusals: tuple[Refusal, ...] | None = None) -> Refusal | None:
    """The first entry that lists ``case_id`` (None when the case must simply pass)."""
    for refusal in entries() if refusals is None else refusals:
        if refusal.matches(case_id):
            return refusal
    return None


def unmatched(case_ids, refusals: tuple[Refusal, ...] | None = None) -> list[str]:
    """The listed names and globs that match none of ``case_ids``: stale entries."""
    ids = list(case_ids)
    stale = []
    for refusal in entries() if refusals is None else refusals:
        stale += [t for t in refusal.tests if t not in ids]
        stale += [g for g in refusal.globs if not any(glob_regex(g).match(i) for i in ids)]
    return stale
