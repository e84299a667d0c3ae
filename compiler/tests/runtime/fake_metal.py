"""A FAKE of the PyObjC ``Metal`` module, for testing the Metal runtime on Linux.

It is not Apple's Metal. It implements the few selectors ``metal_runtime`` calls, with PyObjC's
conventions (``(result, error)`` tuples for ``error:`` out-parameters, ``contents().as_buffer(n)``),
and records every call in order in ``FakeMetal.calls`` so tests can check what the runtime asked
of Metal: call order, buffer sizes, threadgroup sizes, compile options. To give launches real
results, committed command buffers run each dispatch on the Metal simulator
(``triton_metal.sim``), binding buffers at their contents' address plus offset.

What the fake decides on its own, as Metal would: a source containing ``#error`` fails to compile
with a log in Apple's format; ``max_threads`` is the pipelines' maxTotalThreadsPerThreadgroup;
allocations beyond ``max_buffer_length`` or ``memory_budget`` return nil; ``fail_next_commit``
makes the next command buffer end with an error code.
"""
from __future__ import annotations

import ctypes
import re

# Enum values from Apple's headers (MTLLibrary.h, MTLResource.h, MTLCommandBuffer.h).
MTLLanguageVersion3_0 = (3 << 16) + 0
MTLLanguageVersion3_1 = (3 << 16) + 1
MTLLanguageVersion3_2 = (3 << 16) + 2
MTLMathModeSafe, MTLMathModeRelaxed, MTLMathModeFast = 0, 1, 2
MTLMathFloatingPointFunctionsFast, MTLMathFloatingPointFunctionsPrecise = 0, 1
MTLResourceStorageModeShared = 0
MTLCommandBufferStatusCompleted, MTLCommandBufferStatusError = 4, 5
MTLCommandBufferErrorInternal, MTLCommandBufferErrorOutOfMemory = 1, 8


class FakeNSError:
    def __init__(self, code: int, description: str):
        self._code, self._description = code, description

    def code(self):
        return self._code

    def localizedDescription(self):
        return self._description


class FakeMetal:
    """One fake ``Metal`` module (a fresh one per test): module functions, constants, the call log."""

    def __init__(self, device_name="Apple M2 Pro", max_threads=1024, max_buffer_length=1 << 32,
                 memory_budget=1 << 34, supports_math_mode=True, has_device=True):
        self.calls: list = []
        self.device_name = device_name
        self.max_threads = max_threads
        self.max_buffer_length = max_buffer_length
        self.memory_budget = memory_budget
        self.supports_math_mode = supports_math_mode
        self.has_device = has_device
        self.fail_next_commit = None  # (code, description) for the next command buffer
        self.allocated = 0
        fake = self

        class MTLCompileOptions:
            @classmethod
            def alloc(cls):
                return cls()

            def init(self):
                fake.record("MTLCompileOptions.init")
                self.languageVersion, self.mathMode, self.mathFloatingPointFunctions = None, None, None
                self.fastMathEnabled = True  # Metal's default: the runtime must turn it off explicitly
                return self

            def respondsToSelector_(self, selector):
                return selector != "setMathMode:" or fake.supports_math_mode

            def setLanguageVersion_(self, value):
                fake.record("setLanguageVersion", value=value)
                self.languageVersion = value

            def setMathMode_(self, value):
                assert fake.supports_math_mode, "setMathMode: does not exist before macOS 15"
                fake.record("setMathMode", value=value)
                self.mathMode = value

            def setMathFloatingPointFunctions_(self, value):
                fake.record("setMathFloatingPointFunctions", value=value)
                self.mathFloatingPointFunctions = value

            def setFastMathEnabled_(self, value):
                fake.record("setFastMathEnabled", value=bool(value))
                self.fastMathEnabled = bool(value)

        self.MTLCompileOptions = MTLCompileOptions

    def __getattr__(self, name):
        value = globals().get(name)
        if name.startswith("MTL") and value is not None:
            return value
        raise AttributeError(name)

    def record(self, call, **details):
        self.calls.append((call, details))

    def names(self) -> list:
        return [name for name, _ in self.calls]

    def find(self, name) -> list:
        return [details for n, details in self.calls if n == name]

    # module-level functions
    def MTLCreateSystemDefaultDevice(self):
        self.record("MTLCreateSystemDefaultDevice")
        return FakeDevice(self) if self.has_device else None

    def MTLSizeMake(self, width, height, depth):
        return (int(width), int(height), int(depth))


class FakeDevice:
    def __init__(self, fake: FakeMetal):
        self.fake = fake

    def name(self):
        return self.fake.device_name

    def recommendedMaxWorkingSetSize(self):
        return self.fake.memory_budget

    def currentAllocatedSize(self):
        return self.fake.allocated

    def maxBufferLength(self):
        return self.fake.max_buffer_length

    def newCommandQueue(self):
        self.fake.record("newCommandQueue")
        return FakeCommandQueue(self.fake)

    def newLibraryWithSource_options_error_(self, source, options, error):
        assert error is None, "PyObjC returns the NSError: pass None for the out-parameter"
        self.fake.record("newLibraryWithSource", language_version=options.languageVersion,
                         math_mode=options.mathMode, fast_math_enabled=options.fastMathEnabled,
                         math_functions=options.mathFloatingPointFunctions, source_chars=len(source))
        m = re.search(r"#error\s+(.*)", source)
        if m:
            line = source[:m.start()].count("\n") + 1
            return None, FakeNSError(3, f"program_source:{line}:2: error: {m.group(1).strip()}\n#error "
                                        f"{m.group(1).strip()}\n ^")
        return FakeLibrary(self.fake, source), None

    def newComputePipelineStateWithFunction_error_(self, function, error):
        assert error is None
        self.fake.record("newComputePipelineStateWithFunction", function=function.name)
        return FakePipelineState(self.fake, function), None

    def _allocate(self, length):
        if length > self.fake.max_buffer_length or self.fake.allocated + length > self.fake.memory_budget:
            return None
        self.fake.allocated += length
        return FakeBuffer(length)

    def newBufferWithLength_options_(self, length, options):
        self.fake.record("newBufferWithLength", length=length, options=options)
        assert options == MTLResourceStorageModeShared
        return self._allocate(length)


class FakeLibrary:
    def __init__(self, fake, source):
        self.fake, self.source = fake, source

    def functionNames(self):
        return re.findall(r"kernel\s+void\s+(\w+)\s*\(", self.source)

    def newFunctionWithName_(self, name):
        self.fake.record("newFunctionWithName", name=name)
        return FakeFunction(name, self.source) if name in self.functionNames() else None


class FakeFunction:
    def __init__(self, name, source):
        self.name, self.source = name, source


class FakePipelineState:
    def __init__(self, fake, function):
        self.fake, self.function = fake, function

    def maxTotalThreadsPerThreadgroup(self):
        return self.fake.max_threads

    def threadExecutionWidth(self):
        return 32

    def staticThreadgroupMemoryLength(self):
        return 0


class _Contents:
    def __init__(self, memory):
        self._memory = memory

    def as_buffer(self, count):
        return memoryview(self._memory)[:count]


class FakeBuffer:
    def __init__(self, length):
        self.memory = bytearray(length)
        self.address = ctypes.addressof(ctypes.c_char.from_buffer(self.memory))

    def length(self):
        return len(self.memory)

    def contents(self):
        return _Contents(self.memory)


class FakeCommandQueue:
    def __init__(self, fake):
        self.fake = fake

    def commandBuffer(self):
        self.fake.record("commandBuffer")
        return FakeCommandBuffer(self.fake)


class FakeCommandBuffer:
    def __init__(self, fake):
        self.fake = fake
        self.dispatches: list = []
        self._status = 0
        self._error = None
        self._completed = False

    def computeCommandEncoder(self):
        self.fake.record("computeCommandEncoder")
        return FakeEncoder(self)

    def commit(self):
        self.fake.record("commit")
        if self.fake.fail_next_commit is not None:
            code, description = self.fake.fail_next_commit
            self.fake.fail_next_commit = None
            self._status, self._error = MTLCommandBufferStatusError, FakeNSError(code, description)
            return
        for dispatch in self.dispatches:
            dispatch()
        self._status = MTLCommandBufferStatusCompleted

    def waitUntilCompleted(self):
        self.fake.record("waitUntilCompleted")

    def status(self):
        return self._status

    def error(self):
        return self._error


class FakeEncoder:
    def __init__(self, command_buffer):
        self.command_buffer = command_buffer
        self.fake = command_buffer.fake
        self.pipeline = None
        self.bindings: dict = {}
        self.threadgroup_lengths: dict = {}

    def setComputePipelineState_(self, pipeline):
        self.fake.record("setComputePipelineState", function=pipeline.function.name)
        self.pipeline = pipeline

    def setBuffer_offset_atIndex_(self, buffer, offset, index):
        self.fake.record("setBuffer", index=index, offset=offset, length=buffer.length())
        self.bindings[index] = (buffer, offset)

    def setBytes_length_atIndex_(self, data, length, index):
        assert isinstance(data, bytes) and len(data) == length
        self.fake.record("setBytes", index=index, length=length, data=data)
        self.bindings[index] = data

    def setThreadgroupMemoryLength_atIndex_(self, length, index):
        self.fake.record("setThreadgroupMemoryLength", index=index, length=length)
        self.threadgroup_lengths[index] = length

    def dispatchThreadgroups_threadsPerThreadgroup_(self, grid, threadgroup):
        self.fake.record("dispatchThreadgroups", grid=tuple(grid), threadgroup=tuple(threadgroup))
        function, bindings, lengths = self.pipeline.function, dict(self.bindings), dict(self.threadgroup_lengths)

        def run():  # on the simulator, when the command buffer is committed
            from triton_metal.sim import build_kernel
            buffers = {slot: value if isinstance(value, bytes) else value[0].address + value[1]
                       for slot, value in bindings.items()}
            build_kernel(function.source, function.name).dispatch(grid, threadgroup, buffers, lengths)
        self.command_buffer.dispatches.append(run)

    def endEncoding(self):
        self.fake.record("endEncoding")
