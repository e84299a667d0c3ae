"""A few seconds of the stress suite (conformance/stress, tox -e stress): two spawned processes x
two threads compile the same kernels at once into one fresh cache and check every launch."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_stress_smoke_two_processes_by_two_threads(tmp_path):
    report_path = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "conformance.stress.run_stress", "--processes", "2", "--threads", "2", "--launches", "4",
         "--kernels", "leaky_relu_f16,int_mix", "--cache-dir", str(tmp_path / "caches"), "--json", str(report_path)],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False, env=dict(os.environ))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(report_path.read_text())
    assert report["ok"] and report["launches"] == 16
    assert report["mismatches"] == 0 and report["errors"] == 0
    assert report["corrupt_entries"] == 0 and report["leftover_temporaries"] == 0 and report["cache_rebuilds"] == 0
    assert report["triton_compiles"] >= 1 and report["cache_entries"] >= 2
