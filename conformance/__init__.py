"""Conformance suites of the Metal backend: the op table and op tests (ops/), Triton's tutorials ported
and run unmodified (tutorials/, upstream/), benchmarks and the traffic check (perf/), the stress suite
(stress/). A package, so that pytest and `python -m conformance.<module>` import every module by the
same name from the repository root.
"""
