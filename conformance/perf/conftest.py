"""The benchmark harness's pytest hooks (per-chip baselines, peer table, chart): see baseline_plugin."""
from conformance.perf.baseline_plugin import (  # noqa: F401  (pytest finds hooks by name in this module)
    pytest_benchmark_compare_machine_info,
    pytest_benchmark_generate_machine_info,
    pytest_configure,
    pytest_report_header,
    pytest_sessionstart,
    pytest_terminal_summary,
)
