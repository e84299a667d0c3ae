"""conftest.py's refusal hook: a listed case must raise its listed error; passing, or failing otherwise, fails."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from conformance.libraries import conftest, refusals

LISTED = "test_liger[op-bf16-bwd-small]"


@pytest.fixture
def listed(monkeypatch):
    entry = refusals.Refusal("a documented gap", r"ThreadgroupMemoryError: needs \d+ bytes", tests=(LISTED,))
    monkeypatch.setattr(refusals, "entries", lambda: (entry,))


def _item(name, body):
    return SimpleNamespace(name=name, obj=body, funcargs={}, _fixtureinfo=SimpleNamespace(argnames=()))


class ThreadgroupMemoryError(Exception):
    pass


def test_listed_case_raising_the_listed_error_is_an_expected_failure(listed):
    def body():
        raise ThreadgroupMemoryError("needs 131072 bytes")
    with pytest.raises(pytest.xfail.Exception, match="a documented gap"):
        conftest.pytest_pyfunc_call(_item(LISTED, body))


def test_listed_case_that_passes_fails_saying_remove_it(listed):
    with pytest.raises(pytest.fail.Exception, match="remove it from refusals.toml"):
        conftest.pytest_pyfunc_call(_item(LISTED, lambda: None))


def test_listed_case_raising_another_error_fails(listed):
    def body():
        raise ValueError("wrong result")
    with pytest.raises(AssertionError, match="raised another error"):
        conftest.pytest_pyfunc_call(_item(LISTED, body))


def test_unlisted_case_is_left_to_the_ordinary_call(listed):
    calls = []
    assert conftest.pytest_pyfunc_call(_item("test_liger[other-f32-fwd-small]", lambda: calls.append(1))) is None
    assert calls == []
