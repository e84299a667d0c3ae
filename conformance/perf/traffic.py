"""Deterministic traffic check: the simulator's counted memory traffic per benchmarked kernel.

Timings need a quiet machine; counted traffic does not. For each benchmark case at its ``traffic``
size, the simulator counts every dispatch's global bytes read and written, transactions (against
the ideal count), coalescing efficiency, threadgroup-memory bytes and atomics
(``triton_metal.sim.count_traffic``). The counts are stored in ``baselines/traffic/<chip>.json``
(``<chip>`` = the Apple chip the simulator emulates) and compared exactly: any change fails, a
worse figure as a regression, a better one as a stale baseline to re-record with

    TRITON_METAL_RECORD_TRAFFIC=1 pytest conformance/perf/test_traffic.py
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from conformance.perf.baseline_plugin import baselines_root
from conformance.perf.cases import CASES

RECORD_ENV = "TRITON_METAL_RECORD_TRAFFIC"
RECORD_HINT = f"{RECORD_ENV}=1 pytest conformance/perf/test_traffic.py"

# Counted figures, and which direction is worse. ideal_transactions belongs to the access pattern
# (what the addresses need at best): it is compared exactly but is neither better nor worse.
METRICS = {
    "global_bytes_read": "higher",
    "global_bytes_written": "higher",
    "global_transactions": "higher",
    "ideal_transactions": None,
    "coalescing_efficiency": "lower",
    "threadgroup_bytes_read": "higher",
    "threadgroup_bytes_written": "higher",
    "atomics": "higher",
}


def recording() -> bool:
    return os.environ.get(RECORD_ENV, "") not in ("", "0")


def baseline_file(emulated_chip: str) -> Path:
    return baselines_root() / "traffic" / f"{emulated_chip}.json"


def launch_record(stats) -> dict:
    record = {"kernel": stats.kernel}
    for metric in METRICS:
        value = getattr(stats, metric)
        record[metric] = round(float(value), 6) if metric == "coalescing_efficiency" else int(value)
    return record


def measure(launch, reference=None, rtol: float = 0.0, atol: float = 0.0) -> list[dict]:
    """Counts the dispatches of one ``launch()``; checks its output against ``reference()`` when given."""
    from triton_metal.sim import count_traffic
    launch()  # compile (and warm the caches) outside the counted region
    with count_traffic() as traffic:
        out = launch()
    if reference is not None:
        torch.testing.assert_close(out.cpu(), reference(), rtol=rtol, atol=atol)
    return [launch_record(stats) for stats in traffic.launches]


def measure_case(case_name: str, device) -> dict:
    workload = CASES[case_name].workload(device, "traffic")
    return {"label": workload.label, "ideal_global_bytes": workload.ideal_bytes,
            "launches": measure(workload.launch, workload.reference, workload.rtol, workload.atol)}


def load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def record(path: Path, emulated_chip: str, case_name: str, measured: dict) -> None:
    data = load(path) or {
        "about": "Simulator-counted memory traffic per benchmark case (conformance/perf/traffic.py). Compared "
                 f"exactly; re-record with: {RECORD_HINT}",
        "emulated_chip": emulated_chip, "cases": {}}
    data["cases"][case_name] = measured
    data["cases"] = dict(sorted(data["cases"].items()))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def compare(case_name: str, measured: list[dict], stored: list[dict]) -> list[str]:
    """Every difference between measured and stored launches, each as one readable line."""
    if len(measured) != len(stored):
        return [f"{case_name}: {len(measured)} dispatches counted, the baseline has {len(stored)}"]
    problems = []
    for i, (now, then) in enumerate(zip(measured, stored)):
        where = f"{case_name} dispatch {i} ({now['kernel']})"
        if now["kernel"] != then["kernel"]:
            problems.append(f"{where}: kernel {now['kernel']!r}, the baseline has {then['kernel']!r}")
        for metric, worse in METRICS.items():
            old, new = then.get(metric), now[metric]
            if old == new:
                continue
            if old is None:
                problems.append(f"{where}: {metric} = {new} has no baseline value")
                continue
            change = f"{metric} {old} -> {new}" + (f" ({new / old - 1:+.1%})" if old else "")
            if worse is None:
                verdict = "the access pattern changed"
            elif (new > old) == (worse == "higher"):
                verdict = "REGRESSION (more traffic / worse coalescing)"
            else:
                verdict = "improved: the baseline is stale"
            problems.append(f"{where}: {change}: {verdict}")
    return problems
