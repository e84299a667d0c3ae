import pytest
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource


@pytest.fixture
def compile_msl():
    """Compile a @triton.jit function to MSL text without running it."""
    def compile(fn, signature, constexprs=None, **options):
        src = ASTSource(fn, signature, constexprs or {})
        kernel = triton.compile(src, target=GPUTarget("metal", "apple-m1", 32), options=options)
        return kernel.asm["msl"].decode(), kernel.metadata
    return compile


@pytest.fixture(scope="session")
def device():
    return triton.runtime.driver.active.get_active_torch_device()


# The Metal front-end check on every kernel this session compiles (triton_metal/metal_check): on for
# the session, one summary line at the end and build/conformance/metal_check.json.
def pytest_configure(config):
    from triton_metal.metal_check import pytest_plugin
    pytest_plugin.register(config)
