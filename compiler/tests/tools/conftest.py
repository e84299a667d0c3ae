import os
import subprocess
import sys
import textwrap

import pytest


@pytest.fixture
def run_python(tmp_path):
    """Run Python code (or `-m module` args) in a fresh process with its own caches; returns the process."""
    def run(code=None, args=(), env=None, timeout=300):
        full_env = dict(os.environ, TRITON_CACHE_DIR=str(tmp_path / "triton-cache"))
        full_env.update(env or {})
        if code is not None:
            script = tmp_path / "script.py"
            script.write_text(textwrap.dedent(code))
            cmd = [sys.executable, str(script), *args]
        else:
            cmd = [sys.executable, *args]
        return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout, check=False,
                              cwd=tmp_path)
    return run
