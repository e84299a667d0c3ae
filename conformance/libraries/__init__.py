"""Library conformance: real Triton libraries (Liger-Kernel, pinned) run on triton-metal.

Each Liger op runs forward and backward in float32, bfloat16 and float16 against a plain-PyTorch
reference computed in float64 on the CPU. A case either passes or is listed in refusals.toml with the
error the backend raises for it (conftest.py turns it into an expected failure that must raise that
error). docs/libraries.md has the table and how to run it.
"""
