"""triton-metal: a Triton compiler backend for Apple Silicon GPUs (Metal).

Triton discovers this package through the ``triton.backends`` entry point and imports its
``compiler`` and ``driver`` submodules. Kernels are lowered TTIR -> TTGIR -> Metal Shading
Language; they run on the GPU through Metal, or on the CPU through the Metal simulator.
"""

__version__ = "0.1.0"

# Import Triton first, whichever of our modules is imported first: Triton's backend discovery
# imports our compiler and driver, and they must not meet a half-initialised module of ours.
import triton  # noqa: F401


def __getattr__(name):
    # Lazy: Triton imports this package while it is itself being imported (backend discovery), and
    # `import triton_metal` stays as cheap as importing Triton.
    import importlib
    if name in ("jit", "Config"):
        module = importlib.import_module("triton_metal.tuning")
        globals()["jit"], globals()["Config"] = module.jit, module.Config
        return globals()[name]
    if name == "backends":
        # The troubleshooting guide's `import triton_metal; triton_metal.backends.metal.check_environment()`:
        # importing the troubleshooting API binds `backends` (and `backends.metal`) on this package.
        importlib.import_module("triton_metal.backends.metal")
        return globals()["backends"]
    raise AttributeError(f"module 'triton_metal' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), "jit", "Config", "backends"})
