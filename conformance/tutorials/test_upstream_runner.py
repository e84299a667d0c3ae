"""The upstream-tutorial runner itself, on small tutorial-style scripts written here.

Each script stands for one shape of upstream tutorial: module-level checks, pytest ``test_*``
functions, a ``perf_report`` sweep, a CUDA-only branch with its fallback, an op our backend refuses.
"""
import json
import textwrap
import urllib.error
from pathlib import Path

import pytest

from conformance.tutorials import upstream_runner
from conformance.upstream import ratchet, source
from conformance.upstream.verdicts import FAIL, PASS, UNSUPPORTED, classify

REPO = Path(__file__).resolve().parents[2]

VECTOR_ADD = '''
import torch, triton, triton.language as tl

DEVICE = triton.runtime.driver.active.get_active_torch_device()

@triton.jit
def add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) + tl.load(y_ptr + offs, mask=mask), mask=mask)

def add(x, y):
    out = torch.empty_like(x)
    add_kernel[(triton.cdiv(x.numel(), 256),)](x, y, out, x.numel(), BLOCK=256)
    return out

x, y = torch.rand(1000, device=DEVICE), torch.rand(1000, device=DEVICE)
{check}
'''

SWEEP = '''
import triton.testing

@triton.testing.perf_report(triton.testing.Benchmark(
    x_names=["size"], x_vals=[2**i for i in range(4, 10)], line_arg="provider", line_vals=["torch", "triton"],
    line_names=["Torch", "Triton"], ylabel="GB/s", plot_name="sweep", args={}))
def benchmark(size, provider):
    print(f"measured size={size} provider={provider}")
    return 1.0

benchmark.run(print_data=True, show_plots=True)
'''


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_module_level_check_passes_with_our_backend(tmp_path):
    script = write(tmp_path, "01-add.py", VECTOR_ADD.format(check="torch.testing.assert_close(add(x, y), x + y)"))
    result = upstream_runner.run_tutorial(script)
    assert (result.verdict, result.detail) == (PASS, ""), result.output_tail


def test_printed_max_difference_within_tolerance_passes(tmp_path):
    check = "print(f'The maximum difference between torch and triton is {(add(x, y) - (x + y)).abs().max()}')"
    result = upstream_runner.run_tutorial(write(tmp_path, "01-print.py", VECTOR_ADD.format(check=check)))
    assert result.verdict == PASS, result.output_tail


def test_module_level_mismatch_fails_with_diff_summary(tmp_path):
    check = "torch.testing.assert_close(add(x, y), x + y + 1.0)"
    result = upstream_runner.run_tutorial(write(tmp_path, "02-wrong.py", VECTOR_ADD.format(check=check)))
    assert result.verdict == FAIL
    assert "Mismatched elements: 1000 / 1000" in result.detail and result.detail.startswith("[script]")


def test_printed_cross_mark_fails(tmp_path):
    script = write(tmp_path, "03-print.py", 'print("❌ Triton and Torch differ")\n')
    result = upstream_runner.run_tutorial(script)
    assert (result.verdict, result.detail) == (FAIL, "[script] ❌ Triton and Torch differ")


def test_test_functions_run_under_pytest(tmp_path):
    script = write(tmp_path, "05-tests.py", '''
        import pytest, torch

        @pytest.mark.parametrize("n", [1, 7])
        def test_ok(n):
            assert torch.arange(n).sum().item() == n * (n - 1) // 2

        def test_wrong():
            torch.testing.assert_close(torch.ones(4), torch.zeros(4))
    ''')
    result = upstream_runner.run_tutorial(script)
    assert result.phases == ["script", "pytest"]
    assert result.verdict == FAIL
    assert result.detail.startswith("[pytest] pytest: 1 failed, 2 passed")
    assert "Mismatched elements: 4 / 4" in result.detail


def test_benchmark_sweep_is_skipped_by_default(tmp_path):
    result = upstream_runner.run_tutorial(write(tmp_path, "06-sweep.py", SWEEP))
    assert result.verdict == PASS
    assert "benchmark sweep skipped" in result.output_tail and "measured" not in result.output_tail


def test_benchmark_sweep_shrinks_to_first_points(tmp_path):
    result = upstream_runner.run_tutorial(write(tmp_path, "06-sweep.py", SWEEP), benchmarks="shrink", points=2)
    measured = [line for line in result.output_tail.splitlines() if line.startswith("measured")]
    assert measured == [f"measured size={s} provider={p}" for s in (16, 32) for p in ("torch", "triton")]


def test_cuda_only_branch_takes_the_fallback(tmp_path):
    script = write(tmp_path, "07-cuda.py", '''
        import torch, triton

        def is_cuda():
            return triton.runtime.driver.active.get_current_target().backend == "cuda"

        if is_cuda():
            raise RuntimeError("the CUDA-only branch ran")
        DEVICE = triton.runtime.driver.active.get_active_torch_device()
        assert torch.ones(3, device=DEVICE).sum().item() == 3
    ''')
    result = upstream_runner.run_tutorial(script)
    assert result.verdict == PASS, result.output_tail


def test_refused_op_is_unsupported_with_our_message(tmp_path):
    check = "add(x.double(), y.double())"
    result = upstream_runner.run_tutorial(write(tmp_path, "08-fp64.py", VECTOR_ADD.format(check=check)))
    assert result.verdict == UNSUPPORTED
    assert result.detail.startswith("[script] Operation fp64 argument 'x_ptr' is not supported by the Metal backend")


def test_timeout_is_a_failure(tmp_path):
    result = upstream_runner.run_tutorial(write(tmp_path, "09-slow.py", "import time\ntime.sleep(30)\n"),
                                          timeout_s=1)
    assert (result.verdict, result.detail) == (FAIL, "[script] timed out after 1 s")


def test_classify_reads_the_last_exception_line():
    output = "Traceback (most recent call last):\n  File 'x.py'\nKeyError: 'unknown option'\n"
    assert classify(1, output).detail == "KeyError: 'unknown option'"


def test_classify_names_the_failing_assert_of_a_bare_assertion_error():
    output = ("Traceback (most recent call last):\n  File \"07.py\", line 57, in <module>\n"
              "    assert x.is_cuda and y.is_cuda\n           ^^^^^^^^^\nAssertionError\n")
    assert classify(1, output).detail == "AssertionError at `assert x.is_cuda and y.is_cuda`"


# --- where the upstream files come from -------------------------------------------------------------

def manifest_for(files: dict) -> source.Manifest:
    return source.Manifest(tag="v0.0.0", ref="abc123", note="", files={
        rel: __import__("hashlib").sha256(data).hexdigest() for rel, data in files.items()})


TUTORIAL = b"print('hello')\n"
REL = "python/tutorials/01-vector-add.py"


@pytest.mark.parametrize("layout", ["checkout", "tutorials-folder"])
def test_locate_accepts_a_checkout_or_the_tutorials_folder(tmp_path, layout):
    folder = tmp_path / "python" / "tutorials"
    folder.mkdir(parents=True)
    (folder / "01-vector-add.py").write_bytes(TUTORIAL)
    given = tmp_path if layout == "checkout" else folder
    found = source.locate(manifest_for({REL: TUTORIAL}), [REL], given)
    assert found.files == {REL: folder / "01-vector-add.py"} and not found.unavailable


def test_locate_refuses_files_with_another_hash(tmp_path):
    (tmp_path / "01-vector-add.py").write_bytes(b"print('edited')\n")
    found = source.locate(manifest_for({REL: TUTORIAL}), [REL], tmp_path)
    assert found.files == {} and list(found.mismatched) == [REL]


def test_locate_downloads_once_into_the_cache(tmp_path):
    calls = []

    def fetch(ref, rel):
        calls.append((ref, rel))
        return TUTORIAL

    manifest = manifest_for({REL: TUTORIAL})
    for _ in range(2):
        found = source.locate(manifest, [REL], None, cache_dir=tmp_path, fetch=fetch)
        assert found.files == {REL: tmp_path / "abc123" / REL}
    assert calls == [("abc123", REL)]


def test_locate_without_network_says_so_in_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv(source.DIR_ENV, raising=False)

    def offline(ref, rel):
        raise urllib.error.URLError("Name or service not known")

    found = source.locate(manifest_for({REL: TUTORIAL}), [REL], None, cache_dir=tmp_path, fetch=offline)
    assert found.files == {} and "\n" not in found.unavailable
    assert found.unavailable.startswith("upstream Triton files unavailable: no --tutorials-dir")
    assert "download from GitHub failed (Name or service not known)" in found.unavailable


def test_manifest_of_the_pinned_tag_lists_the_tutorials():
    manifest = source.load_manifest()
    assert [upstream_runner.tutorial_name(t)[:2] for t in manifest.tutorials][:2] == ["01", "02"]
    assert "python/test/unit/language/test_core.py" in manifest.files


# --- the ratchet -------------------------------------------------------------------------------------

def test_ratchet_flags_a_tutorial_that_passed_before():
    comparison = ratchet.compare_verdicts({"01": "pass", "03": "fail"}, {"01": "fail", "03": "pass", "04": "fail"})
    assert (comparison.regressions, comparison.improvements, comparison.new) == (["01"], ["03"], ["04"])


def test_update_expected_from_a_report(tmp_path, monkeypatch):
    monkeypatch.setattr(ratchet, "RATCHETS", tmp_path)
    monkeypatch.setattr(ratchet, "ratchet_path", lambda kind, tag, device, directory=tmp_path:
                        directory / tag / f"{kind}-{device}.json")
    report = {"triton": "v0.0.0", "device": "sim", "results": [
        {"name": "01-vector-add", "verdict": "pass"}, {"name": "03-matmul", "verdict": "fail", "detail": "x"}]}
    (tmp_path / "report.json").write_text(json.dumps(report))
    assert upstream_runner.main(["--update-expected-from", str(tmp_path / "report.json")]) == 0
    written = json.loads((tmp_path / "v0.0.0" / "tutorials-sim.json").read_text())
    assert written["tutorials"] == {"01-vector-add": "pass", "03-matmul": "fail"}


# --- the test_core plugin: subset, skip list, pass-count ratchet --------------------------------------

SMALL_SUITE = '''
import pytest

@pytest.mark.parametrize("n", [1, 2, 3])
def test_square(n):
    assert n * n == n ** 2

@pytest.mark.parametrize("n", [1, 2])
def test_cube(n):
    assert n ** 3 == {cube}
'''


def run_plugin(tmp_path, cube, *args):
    import subprocess
    import sys
    (tmp_path / "test_small.py").write_text(SMALL_SUITE.format(cube="n * n * n" if cube else "0"))
    # From the repository root, as run_test_core starts it: `python -m pytest` imports the plugin's package from there.
    done = subprocess.run([sys.executable, "-m", "pytest", str(tmp_path / "test_small.py"),
                           "-p", "conformance.upstream.pytest_plugin",
                           "-p", "no:cacheprovider", "--rootdir", str(tmp_path), "-c", "/dev/null",
                           "--ratchet-file", str(tmp_path / "ratchet.json"), *args],
                          cwd=REPO, capture_output=True, text=True, check=False)
    return done.returncode, done.stdout


def test_plugin_runs_the_subset_and_records_the_pass_count(tmp_path):
    code, out = run_plugin(tmp_path, True, "--subset", "1", "--update-ratchet")
    assert code == 0 and "passed 2, failed 0, skipped 0" in out
    assert json.loads((tmp_path / "ratchet.json").read_text()) == {
        "subset=1": {"passed": 2, "failed": 0, "skipped": 0}}


def test_plugin_fails_the_run_when_passes_drop(tmp_path):
    run_plugin(tmp_path, True, "--update-ratchet")
    code, out = run_plugin(tmp_path, True, "-k", "square")  # 3 pass instead of the 5 recorded
    assert code == 1 and "RATCHET: 3 passed, fewer than the 5 recorded" in out


def test_plugin_reports_failures(tmp_path):
    code, out = run_plugin(tmp_path, False)
    assert code == 1 and "passed 3, failed 2, skipped 0" in out

