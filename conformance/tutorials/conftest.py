"""The end-of-run summary of the upstream tutorials: a table, the JSON report, the ratchet verdict."""
import json
from pathlib import Path

from conformance.tutorials.upstream_runner import PytestSession, report_dict, summary_table
from conformance.upstream import ratchet


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    session = getattr(config, "_triton_metal_upstream_tutorials", None)
    if session is None:
        return
    write = terminalreporter.write_line
    terminalreporter.section("upstream Triton tutorials")
    if session.located.unavailable:
        write(f"upstream tutorials: {session.located.unavailable}")
        return
    if not session.results:
        return
    write(f"Triton {session.manifest.tag} from {session.located.origin}, device {session.device}")
    write(summary_table(session.results, session.expected))
    report = report_dict(session.results, session.manifest, session.located, session.device,
                         config.getoption("--upstream-benchmarks"))
    path = Path(config.getoption("--upstream-report") or PytestSession.default_report_path(session))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    write(f"report: {path}")
    comparison = ratchet.compare_verdicts(session.expected, {r.name: r.verdict for r in session.results})
    if comparison.improvements or comparison.new:
        write(f"not yet recorded as passing: {', '.join(comparison.improvements + comparison.new)}; record with "
              f"`python -m conformance.tutorials.upstream_runner --update-expected-from {path}`")
