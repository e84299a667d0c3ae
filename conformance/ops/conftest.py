import pytest


@pytest.fixture
def compile_refusal():
    """Compile a kernel that must be refused; returns the first line of the UnsupportedOperationError."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from triton_metal.errors import UnsupportedOperationError

    def run(fn, signature, constexprs=None):
        with pytest.raises(Exception) as info:
            triton.compile(ASTSource(fn, signature, constexprs or {}), target=GPUTarget("metal", "apple-m1", 32))
        err = info.value
        while err is not None and not isinstance(err, UnsupportedOperationError):
            err = err.__cause__ or err.__context__
        assert err is not None, f"not refused by the Metal backend: {info.value!r}"
        return str(err).split("\n")[0]
    return run
