"""refusals.toml is well formed, every entry names a case of the suite, and its matching rules hold."""
from __future__ import annotations

import pytest

from conformance.libraries import refusals, test_liger
from conformance.libraries.cases import params

CASE_IDS = [f"test_liger[{p.id}]" for p in params(test_liger.OPS)]


def test_every_entry_has_a_reason_and_an_error():
    for entry in refusals.entries():
        assert entry.reason.strip(), f"an entry without a reason: {entry}"
        assert entry.error.strip(), f"an entry without the error it must raise: {entry}"
        assert entry.tests or entry.globs, f"an entry naming no case: {entry.reason}"


def test_every_name_and_glob_matches_a_collected_case():
    assert refusals.unmatched(CASE_IDS) == [], "stale refusals.toml entries: no such case"


def test_case_ids_are_unique():
    assert len(CASE_IDS) == len(set(CASE_IDS))


def test_glob_brackets_are_literal():
    entry = refusals.Refusal("r", "E", globs=("test_liger[cross_entropy-*-liger]",))
    assert entry.matches("test_liger[cross_entropy-bf16-bwd-liger]")
    assert not entry.matches("test_liger[cross_entropy-bf16-bwd-small]")
    assert not entry.matches("test_liger[c]")


def test_unmatched_names_stale_entries():
    entry = refusals.Refusal("r", "E", tests=("test_liger[gone]",), globs=("test_liger[kept-*]",))
    assert refusals.unmatched(["test_liger[kept-f32]"], (entry,)) == ["test_liger[gone]"]


def test_error_pattern_matches_type_and_message():
    entry = refusals.Refusal("r", r"ThreadgroupMemoryError: .*32768 bytes", tests=("x",))
    assert entry.raised_by(type("ThreadgroupMemoryError", (Exception,), {})("needs 131072 bytes of 32768 bytes"))
    assert not entry.raised_by(ValueError("needs 32768 bytes"))


@pytest.mark.parametrize("text, message", [
    ('[[refusal]]\nerror = "E"\ntests = ["x"]\n', "no `reason`"),
    ('[[refusal]]\nreason = "r"\ntests = ["x"]\n', "no `error`"),
    ('[[refusal]]\nreason = "r"\nerror = "E"\ntest = ["x"]\n', "unknown keys"),
    ('[[skip]]\nreason = "r"\n', "expected only [[refusal]] entries"),
])
def test_malformed_file_is_an_error(tmp_path, text, message):
    path = tmp_path / "refusals.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        refusals.load(path)
