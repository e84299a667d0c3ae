"""The troubleshooting tools: environment checks, debug options, profiler, shader dumps, hardware
capabilities, bandwidth and throughput tests, memory-access analysis, cache maintenance.

Users reach them as ``triton_metal.backends.metal`` (the import path the troubleshooting guide fixes,
a thin facade over this package).
"""
