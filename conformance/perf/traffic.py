"""Deterministic traffic check: the simulator's counted memory traffic per benchmarked kernel.

Timings need a quiet machine; counted traffic does not. For each benchmark case at its ``traffic``
size, the simulator counts every dispatch's global bytes read and written, transactions (against
the ideal count), coalescing efficiency, threadgroup-memory bytes and atomics, and the work counters:
barriers per program, simdgroup_matrix loads / stores / multiply-accumulates, their FMAs, threadgroup
bytes read per FMA and the threadgroup memory a program allocates (``triton_metal.sim.count_traffic``). The counts are stored in ``baselines/traffic/<chip>.json``
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
    "barriers_per_program": "higher",
    "simdgroup_matrix_loads": "higher",
    "simdgroup_matrix_stores": "higher",
    "simdgroup_matrix_multiply_accumulates": None,  # the dot's work (more when tiles are padded)
    "fmas": None,  # 8*8*8 per multiply-accumulate; a dot moving off scalar FMAs raises it
    "threadgroup_bytes_read_per_fma": "higher",  # None when the kernel has no simdgroup-matrix FMA
    "threadgroup_memory_bytes": "higher",  # fewer threadgroups fit on a core
}
FRACTIONS = ("coalescing_efficiency", "barriers_per_program", "threadgroup_bytes_read_per_fma")


def recording() -> bool:
    return os.environ.get(RECORD_ENV, "") not in ("", "0")


def baseline_file(emulated_chip: str) -> Path:
    return baselines_root() / "traffic" / f"{emulated_chip}.json"


def launch_record(stats) -> dict:
    record = {"kernel": stats.kernel}
    for metric in METRICS:
        value = getattr(stats, metric)
        if value is None:
            record[metric] = None
        else:
            record[metric] = round(float(value), 6) if metric in FRACTIONS else int(value)
    return record


def work_summary(launches: list[dict], workload_fmas: int | None = None) -> dict:
    """The work counters of one case's dispatches, for the benchmark table: barriers per program and
    simdgroup-matrix operations summed over the dispatches, the largest threadgroup memory, and the
    threadgroup bytes read per FMA: per FMA of the workload (M*N*K of a matmul) when given, which does
    not depend on how the dot was lowered, else per counted simdgroup-matrix FMA (None without any)."""
    def total(metric):
        return sum(launch.get(metric) or 0 for launch in launches)
    if workload_fmas:
        ratios, fmas = [total("threadgroup_bytes_read")], workload_fmas
    else:
        fmas = total("fmas")
        ratios = [launch["threadgroup_bytes_read_per_fma"] * launch["fmas"] for launch in launches
                  if launch.get("threadgroup_bytes_read_per_fma") is not None]
    return {"barriers_per_program": total("barriers_per_program"),
            "simdgroup_matrix_loads": total("simdgroup_matrix_loads"),
            "simdgroup_matrix_stores": total("simdgroup_matrix_stores"),
            "simdgroup_matrix_multiply_accumulates": total("simdgroup_matrix_multiply_accumulates"),
            "threadgroup_memory_bytes": max((launch.get("threadgroup_memory_bytes") or 0 for launch in launches),
                                            default=0),
            "threadgroup_bytes_read_per_fma": sum(ratios) / fmas if fmas and ratios else None}


def stored_work_summary(emulated_chip: str, case_name: str) -> dict | None:
    """work_summary of a case's stored traffic baseline (chips where nothing is counted), or None."""
    case = load(baseline_file(emulated_chip)).get("cases", {}).get(case_name)
    if not case or any("barriers_per_program" not in launch for launch in case["launches"]):
        return None
    return work_summary(case["launches"], case.get("fmas"))


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
            "fmas": workload.flops // 2 if workload.flops else None,  # a multiply-add is 2 flops
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
            if metric not in then:
                problems.append(f"{where}: {metric} = {new} has no baseline value")
                continue
            change = f"{metric} {old} -> {new}" + (f" ({new / old - 1:+.1%})" if old and new is not None else "")
            if worse is None or old is None or new is None:
                verdict = "the access pattern or the work changed"
            elif (new > old) == (worse == "higher"):
                verdict = "REGRESSION (more traffic / worse coalescing)"
            else:
                verdict = "improved: the baseline is stale"
            problems.append(f"{where}: {change}: {verdict}")
    return problems
