"""The skip list of upstream test_core.py (skips.toml, read by skips.py).

The list itself: every entry says why, nothing is listed twice or hidden behind a glob, and every
entry still names a test that upstream's file collects (when the pinned file is at hand: a directory
or the download cache; this test never downloads). Then how names match: `*` in a glob is any text,
everything else literal; the first matching entry gives the reason.
"""
import urllib.error
from collections import Counter

import pytest

from conformance import id_lists
from conformance.upstream import run_test_core, skips, source
from conformance.upstream.skips import Skip

ENTRIES = skips.load()


def test_every_entry_has_a_reason():
    assert [number for number, entry in enumerate(ENTRIES, 1) if not entry.reason.strip()] == []


def test_every_entry_lists_tests_or_globs():
    assert [entry.reason for entry in ENTRIES if not (entry.tests or entry.globs)] == []


def test_no_reason_is_given_twice():
    assert [reason for reason, n in Counter(entry.reason for entry in ENTRIES).items() if n > 1] == []


def test_no_test_or_glob_is_listed_twice():
    listed = Counter(name for entry in ENTRIES for name in entry.tests + entry.globs)
    assert [name for name, n in listed.items() if n > 1] == []


def test_every_glob_has_a_wildcard():
    assert [glob for entry in ENTRIES for glob in entry.globs if "*" not in glob] == []


def test_no_listed_test_is_also_matched_by_a_glob():
    # Then no test's reason depends on the order of the entries.
    globs = [glob for entry in ENTRIES for glob in entry.globs]
    assert [(test, glob) for entry in ENTRIES for test in entry.tests for glob in globs
            if id_lists.glob_regex(glob).match(test)] == []


def _no_download(ref, rel):
    raise urllib.error.URLError("this test reads a directory or the cache only")


def test_every_entry_matches_a_test_the_pinned_test_core_collects(request):
    manifest = source.load_manifest()
    located = source.locate(manifest, list(source.TEST_CORE_FILES), request.config.getoption("--tutorials-dir"),
                            fetch=_no_download)
    if located.unavailable or located.missing or located.mismatched:
        pytest.skip("upstream test_core.py at the pinned ref is not at hand (--tutorials-dir DIR, or the cache "
                    "filled by `tox -e upstream`)")
    names = run_test_core.collected_names(located.root, run_test_core.torch_device())
    assert skips.unmatched(names, ENTRIES) == []


def test_the_plugin_reads_the_reasons_of_the_file():
    assert skips.reason_for("test_abs[float64]") == ENTRIES[0].reason
    assert skips.reason_for("test_bin_op[1-float32-int32-*]").startswith("fp64:")  # a literal star
    assert skips.reason_for("test_abs[float32]") == ""


def test_a_glob_star_matches_any_text_and_brackets_are_literal():
    entry = Skip("fp8", globs=("test_scaled_dot[*e4m3*]",))
    assert entry.matches("test_scaled_dot[32-64-e2m1-e4m3-1]") and entry.matches("test_scaled_dot[e4m3]")
    assert not entry.matches("test_scaled_dot[e5m2]")
    assert not entry.matches("test_scaled_dote")  # fnmatch would read [*e4m3*] as one character of a set


def test_a_listed_test_matches_exactly_even_with_a_star():
    entry = Skip("fp64", tests=("test_bin_op[1-float32-int32-*]",))
    assert entry.matches("test_bin_op[1-float32-int32-*]")
    assert not entry.matches("test_bin_op[1-float32-int32-+]")
    assert not entry.matches("test_bin_op[1-float32-int32-**]")


def test_the_first_matching_entry_gives_the_reason():
    entries = (Skip("first", globs=("test_dot[*float64*]",)), Skip("second", tests=("test_dot[1-float64]",)))
    assert skips.reason_for("test_dot[1-float64]", entries) == "first"
    assert skips.reason_for("test_dot[1-float32]", entries) == ""


def test_unmatched_names_the_entries_no_test_matches():
    entries = (Skip("a", tests=("test_a[1]", "test_a[2]")), Skip("b", globs=("test_b[*]", "test_c[*]")))
    assert skips.unmatched(["test_a[1]", "test_b[x]"], entries) == ["test_a[2]", "test_c[*]"]


def test_a_malformed_entry_is_named_with_its_file(tmp_path):
    path = tmp_path / "skips.toml"
    path.write_text('[[skip]]\nreason = "fp64"\ntests = ["test_abs[float64]"]\n\n[[skip]]\nreasons = "typo"\n')
    with pytest.raises(ValueError, match=r"skips.toml, \[\[skip\]\] number 2: unknown keys \['reasons'\]"):
        skips.load(path)


UPSTREAM_STANDIN = '''
import pytest

@pytest.mark.parametrize("n", [1, 2])
def test_square(n):
    assert n * n == n ** 2

def test_plain():
    pass
'''


def test_collected_names_are_the_names_the_skip_list_uses(tmp_path):
    # A stand-in for an upstream checkout: test_core.py at its path, a pytest.ini, and the --device
    # option upstream's conftest defines.
    test_core = tmp_path / run_test_core.TEST_CORE
    test_core.parent.mkdir(parents=True)
    test_core.write_text(UPSTREAM_STANDIN)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "conftest.py").write_text('def pytest_addoption(parser):\n    parser.addoption("--device")\n')
    assert run_test_core.collected_names(tmp_path, "cpu") == ["test_square[1]", "test_square[2]", "test_plain"]
