"""The front-end check for a whole test session (called from compiler/tests/conftest.py and
conformance/conftest.py; the first call wins, so running both suites at once sets up once).

At the start (in the controlling process; pytest-xdist workers and subprocesses inherit the
environment): ``TRITON_METAL_FRONTEND_CHECK=1`` unless the user set it to something else, the check
log in a fresh session directory, and a fresh Triton cache there unless ``TRITON_CACHE_DIR`` is set,
so every kernel of the session is compiled, hence checked, and counted. At the end: one line
"Metal front-end check: N distinct kernels checked, E failed" and ``build/conformance/metal_check.json``.
Without libclang the check cannot run: the summary line says so instead of passing silently.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from triton_metal.metal_check import frontend, stage

_session = {}


def configure(config) -> None:
    if _session or hasattr(config, "workerinput"):  # set up already, or an xdist worker
        return
    _session["root"] = Path(str(config.rootpath))
    if os.environ.get(stage.ENV_FLAG, "").strip() and not stage.requested():
        _session["off"] = f"off ({stage.ENV_FLAG}={os.environ[stage.ENV_FLAG]})"
        return
    if not frontend.available():
        _session["off"] = "NOT RUN: libclang is not installed (pip install libclang, or the `test` extra)"
        return
    directory = tempfile.mkdtemp(prefix="triton-metal-frontend-check-")
    _session["dir"] = directory
    os.environ[stage.ENV_FLAG] = "1"
    if not os.environ.get(stage.ENV_LOG):  # a log the user names is kept (and appended to)
        os.environ[stage.ENV_LOG] = os.path.join(directory, "checks.jsonl")
    if not os.environ.get("TRITON_CACHE_DIR"):
        os.environ["TRITON_CACHE_DIR"] = os.path.join(directory, "triton_cache")
        _session["own_cache"] = True


def terminal_summary(terminalreporter) -> None:
    if not _session or _session.get("reported"):
        return
    _session["reported"] = True
    result = {"enabled": "off" not in _session, "header_sha256": frontend.header_hash()}
    if "off" in _session:
        line = f"Metal front-end check: {_session['off']}"
        result.update(kernels_checked=0, failed=0, reason=_session["off"])
    else:
        result.update(stage.summarize_log(os.environ.get(stage.ENV_LOG)))
        line = f"Metal front-end check: {result['kernels_checked']} distinct kernels checked, {result['failed']} failed"
    terminalreporter.write_line(line)
    for failure in result.get("failures", [])[:10]:
        terminalreporter.write_line(f"  {failure['kernel']}: {failure['errors'][0].splitlines()[0]}")
    out = _session["root"] / "build" / "conformance" / "metal_check.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")


def unconfigure(config) -> None:
    if _session.get("dir") and not hasattr(config, "workerinput"):
        shutil.rmtree(_session["dir"], ignore_errors=True)
        if _session.get("own_cache"):
            os.environ.pop("TRITON_CACHE_DIR", None)


# As a pytest plugin (tests/conftest.py files register this module: register(config)).
pytest_configure = configure
pytest_terminal_summary = terminal_summary
pytest_unconfigure = unconfigure
PLUGIN_NAME = "triton-metal-frontend-check"


def register(config) -> None:
    """Register this module as a plugin once per session; its pytest_configure then runs at once."""
    if not config.pluginmanager.has_plugin(PLUGIN_NAME):
        config.pluginmanager.register(sys.modules[__name__], PLUGIN_NAME)
