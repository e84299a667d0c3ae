"""``triton_metal.backends.metal``: the troubleshooting API at the import path the guide fixes
(``import triton_metal.backends.metal as metal``; code in ``triton_metal.tools``, see docs/troubleshooting.md)."""
