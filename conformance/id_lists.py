"""Lists of test ids kept as data (TOML): ``[[<table>]]`` entries, each naming tests exactly (``tests``)
or with globs (``globs``), plus fields of its own (a reason, an expected error ...). Read by the upstream
skip list (upstream/skips.py) and the library suite's refusals (libraries/refusals.py).

Only ``*`` is a wildcard in a glob: test ids are full of brackets, which fnmatch would read as character
sets. An entry that matches none of a run's ids is stale (``unmatched``).
"""
from __future__ import annotations

import re
from functools import cache
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest itself depends on tomli there
    import tomli as tomllib

ID_KEYS = ("tests", "globs")


@cache
def glob_regex(glob: str) -> re.Pattern:
    return re.compile(".*".join(map(re.escape, glob.split("*"))) + r"\Z")


def matches(entry, test_id: str) -> bool:
    """Whether ``entry`` (anything with ``tests`` and ``globs``) names ``test_id``."""
    return test_id in entry.tests or any(glob_regex(g).match(test_id) for g in entry.globs)


def first_match(entries, test_id: str):
    """The first entry naming ``test_id``, or None."""
    return next((entry for entry in entries if matches(entry, test_id)), None)


def unmatched(entries, test_ids) -> list[str]:
    """The listed ids and globs that match none of ``test_ids``: entries that can go."""
    ids = set(test_ids)
    stale = []
    for entry in entries:
        stale += [test for test in entry.tests if test not in ids]
        stale += [glob for glob in entry.globs if not any(glob_regex(glob).match(i) for i in ids)]
    return stale


def load_tables(path: Path, table: str, fields: tuple[str, ...]) -> list[dict]:
    """The ``[[table]]`` entries of ``path``, in file order, each checked: no unknown key, every one of
    ``fields`` a string, ``tests``/``globs`` lists of strings (tuples in the result). A malformed entry
    raises an error naming the file and the entry's number."""
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    if not data:
        return []
    if set(data) != {table} or not isinstance(data[table], list):
        raise ValueError(f"{path}: expected only [[{table}]] entries, found {sorted(data)}")
    return [_checked(f"{path}, [[{table}]] number {number}", entry, fields)
            for number, entry in enumerate(data[table], 1)]


def _checked(where: str, entry: dict, fields: tuple[str, ...]) -> dict:
    if unknown := sorted(set(entry) - set(fields) - set(ID_KEYS)):
        raise ValueError(f"{where}: unknown keys {unknown}; an entry has {', '.join(fields + ID_KEYS)}")
    for key in fields:
        if key not in entry:
            raise ValueError(f"{where}: no `{key}`")
        if not isinstance(entry[key], str):
            raise TypeError(f"{where}: `{key}` must be a string")
    for key in ID_KEYS:
        values = entry.get(key, [])
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise TypeError(f"{where}: `{key}` must be a list of strings")
    return {**entry, **{key: tuple(entry.get(key, ())) for key in ID_KEYS}}
