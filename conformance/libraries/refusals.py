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

from conformance import id_lists

REFUSALS_FILE = Path(__file__).with_name("refusals.toml")


@dataclass(frozen=True)
class Refusal:
    reason: str  # why the backend refuses it, for the reader and the docs table
    error: str  # a regular expression the raised error (``TypeName: message``) must match
    tests: tuple[str, ...] = ()
    globs: tuple[str, ...] = ()

    def matches(self, case_id: str) -> bool:
        return id_lists.matches(self, case_id)

    def raised_by(self, exc: BaseException) -> bool:
        return re.search(self.error, f"{type(exc).__name__}: {exc}", re.DOTALL) is not None


def load(path: Path = REFUSALS_FILE) -> tuple[Refusal, ...]:
    """The entries of a refusal file, in file order; a malformed entry raises an error naming it."""
    found = []
    for entry in id_lists.load_tables(path, "refusal", ("reason", "error")):
        re.compile(entry["error"])  # a bad pattern fails here, naming nothing else
        found.append(Refusal(entry["reason"], entry["error"], entry["tests"], entry["globs"]))
    return tuple(found)


@cache
def entries() -> tuple[Refusal, ...]:
    return load()


def find(case_id: str, refusals: tuple[Refusal, ...] | None = None) -> Refusal | None:
    """The first entry that lists ``case_id`` (None when the case must simply pass)."""
    return id_lists.first_match(entries() if refusals is None else refusals, case_id)


def unmatched(case_ids, refusals: tuple[Refusal, ...] | None = None) -> list[str]:
    """The listed names and globs that match none of ``case_ids``: stale entries."""
    return id_lists.unmatched(entries() if refusals is None else refusals, case_ids)
