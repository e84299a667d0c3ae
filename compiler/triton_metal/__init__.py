"""triton-metal: a Triton compiler backend for Apple Silicon GPUs (Metal).

Triton discovers this package through the ``triton.backends`` entry point and imports its
``compiler`` and ``driver`` submodules. Kernels are lowered TTIR -> TTGIR -> Metal Shading
Language; they run on the GPU through Metal, or on the CPU through the Metal simulator.
"""

__version__ = "0.1.0"
