"""The upstream Triton tutorials at our pinned tag, run unmodified (see upstream_runner.py).

A tutorial recorded as passing must pass; one that does not pass yet is reported as xfail with its
verdict (fail + summary, or unsupported + our refusal). Without the upstream files (no directory,
no cache, no network) a single test is skipped with the reason in one line.
"""
import pytest

from conformance.tutorials.upstream_runner import PytestSession, run_tutorial, tutorial_name
from conformance.upstream.verdicts import PASS


def pytest_generate_tests(metafunc):
    if "upstream_tutorial" not in metafunc.fixturenames:
        return
    located = PytestSession.open(metafunc.config).located
    if located.unavailable:
        metafunc.parametrize("upstream_tutorial", [None], ids=["unavailable"])
        return
    rels = sorted({**located.files, **located.mismatched})
    metafunc.parametrize("upstream_tutorial", rels, ids=[tutorial_name(rel) for rel in rels])


def test_upstream_tutorial(upstream_tutorial, request):
    config = request.config
    session = PytestSession.open(config)
    if upstream_tutorial is None:
        pytest.skip(session.located.unavailable)
    if upstream_tutorial in session.located.mismatched:
        pytest.fail(f"{session.located.mismatched[upstream_tutorial]} is not the {upstream_tutorial} of Triton "
                    f"{session.manifest.tag} (sha256 differs from conformance/upstream/manifests/)")
    result = run_tutorial(session.located.files[upstream_tutorial], config.getoption("--upstream-benchmarks"),
                          timeout_s=config.getoption("--upstream-timeout"))
    session.results.append(result)
    if result.verdict == PASS:
        return
    if session.expected.get(result.name) == PASS:
        pytest.fail(f"{result.name} passed before and now is {result.verdict}: {result.detail}")
    pytest.xfail(f"{result.verdict}: {result.detail}")
