"""Backend-specific public APIs. ``triton_metal.backends.metal`` is the troubleshooting and
diagnostics API (``import triton_metal.backends.metal as metal``); see docs/troubleshooting.md."""
