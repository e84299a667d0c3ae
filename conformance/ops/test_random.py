"""tl.rand, randn, randint, randint4x give the numbers Triton's interpreter gives (same seeds, offsets)."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conformance.ops import random_kernels


@pytest.fixture(scope="module")
def interpreter_results(tmp_path_factory):
    path = tmp_path_factory.mktemp("random") / "interpreter.npz"
    env = dict(os.environ, TRITON_INTERPRET="1")
    subprocess.run([sys.executable, str(Path(random_kernels.__file__)), str(path)], check=True, env=env, timeout=600)
    return dict(np.load(path))


def test_random_streams_match_the_interpreter(interpreter_results, device):
    got = random_kernels.run(device)
    assert set(got) == set(interpreter_results)
    for key, want in interpreter_results.items():
        if key.startswith("randint"):
            np.testing.assert_array_equal(got[key], want, err_msg=key)
        else:  # uint -> float and Box-Muller use float math: a few ulp apart at most
            np.testing.assert_allclose(got[key], want, rtol=2e-6, atol=2e-6, err_msg=key)
