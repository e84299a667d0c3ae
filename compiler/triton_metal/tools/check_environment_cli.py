"""The command line of ``check_environment``: ``python -m triton_metal.backends.metal.check_environment
[--json] [--report]`` (the guide's spelling, see backends/metal/check_environment.py). Exit status 1 when
a check FAILs."""
from __future__ import annotations

import argparse
import json

from triton_metal.tools.environment import check_environment as _check_environment


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m triton_metal.backends.metal.check_environment",
                                     description="Check that triton-metal can compile and run kernels here.")
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.add_argument("--report", action="store_true", help="print the block to paste into a bug report")
    args = parser.parse_args(argv)
    report = _check_environment(verbose=False)
    if args.json:
        data = report.as_dict()
        if args.report:
            data["bug_report"] = report.bug_report()
        print(json.dumps(data, indent=2, default=str))
    else:
        print(report)
        if args.report:
            print()
            print(report.bug_report())
    return report.exit_code
