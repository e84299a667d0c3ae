"""A FAKE of ``torch.mps.compile_shader``, for testing the Metal runtime's torch path on Linux.

It is not PyTorch. A kernel call binds its positional arguments by the rules of PyTorch's own
binding code, read (not run): the ``_mps_MetalKernel.__call__`` loop and ``OptionalArgCaster::setValue``
in torch/csrc/mps/Module.cpp, ``mtl_setBuffer`` in aten/src/ATen/native/mps/OperationUtils.h and
``MetalKernelFunction::setArg`` in OperationUtils.mm:

- a tensor on mps: ``setBuffer(storage, storage_offset * element_size)``; a 0-d CPU tensor:
  ``setBytes`` of ``element_size`` bytes from the start of its storage (a double as a float); any
  other CPU tensor: "Passed CPU tensor to MPS op";
- a non-empty list or tuple of ints: ``setBytes`` of one int64 each; of floats: one float32 each;
- an int: ``setBytes`` of one int64; a float: of one float32; anything else: "Unsupported argument type".

Linux has no mps tensors: here every tensor of rank >= 1 stands for one (bound at its data
pointer), and 0-d tensors are CPU scalars. Every binding is recorded in ``FakeTorchMPS.calls``;
a call then runs the kernel on the Metal simulator (``dispatchThreads`` with threads a multiple of
the group size, as the runtime passes them).
"""
from __future__ import annotations

import struct


class FakeTorchMPS:
    def __init__(self):
        self.calls: list = []
        self.sources: list = []

    def compile_shader(self, source: str):
        source.encode("ascii")  # PyTorch reads the source as a std::string; ours must be ASCII anyway
        self.sources.append(source)
        return FakeShaderLibrary(self, source)

    def bindings(self) -> dict:
        """{index: bytes or tensor} of the last kernel call."""
        out = {}
        for call in self.calls:
            if call[0] == "startEncoding":
                out = {}
            elif call[0] in ("setBytes", "setBuffer"):
                out[call[1]] = call[2]
        return out


class FakeShaderLibrary:
    def __init__(self, fake, source):
        self.fake, self.source = fake, source

    def __getattr__(self, name):
        return FakeMetalKernel(self.fake, self.source, name)


def _bytes_of(arg) -> bytes:
    """What PyTorch's setBytes copies for a non-tensor argument."""
    if isinstance(arg, (list, tuple)):
        if not arg:
            raise RuntimeError("Empty list/tuple can not be an argument to metal kernel")
        if isinstance(arg[0], int):
            return struct.pack(f"<{len(arg)}q", *arg)  # std::vector<int64_t>: raises if a value does not fit
        if isinstance(arg[0], float):
            return struct.pack(f"<{len(arg)}f", *arg)
        raise RuntimeError("Unexpected argument types")
    if isinstance(arg, float):
        return struct.pack("<f", arg)
    if isinstance(arg, int):
        return struct.pack("<q", arg)
    raise RuntimeError("Unsupported argument type")


class FakeMetalKernel:
    def __init__(self, fake, source, name):
        self.fake, self.source, self.name = fake, source, name

    def __call__(self, *args, threads=None, group_size=None):
        import torch
        record = self.fake.calls.append
        record(("startEncoding", self.name))
        for index, arg in enumerate(args):
            if isinstance(arg, torch.Tensor):
                if arg.dim() == 0:  # a CPU scalar: one element, from the start of its storage
                    data = bytes(arg.untyped_storage())[:arg.element_size()]
                    record(("setBytes", index, data))
                else:
                    record(("setBuffer", index, arg))
            else:
                record(("setBytes", index, _bytes_of(arg)))
        grid = [t // g for t, g in zip(threads, group_size)]
        assert [g * s for g, s in zip(grid, group_size)] == list(threads), "threads must be whole threadgroups"
        record(("dispatchThreads", tuple(threads), tuple(group_size)))
        from triton_metal.sim import build_kernel
        bound = {index: value if isinstance(value, bytes) else value.data_ptr()
                 for index, value in self.fake.bindings().items()}
        build_kernel(self.source, self.name).dispatch(tuple(grid), tuple(group_size), bound)
