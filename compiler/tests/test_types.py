from triton_metal.codegen.types import msl_scalar, msl_type_of_signature, parse_type


def test_parse_scalar():
    ty = parse_type("i32")
    assert (ty.shape, ty.element, ty.is_tensor) == ((), "i32", False)


def test_parse_tensor_of_pointers_with_layout():
    ty = parse_type("tensor<16x64x!tt.ptr<f16>, #ttg.blocked<{sizePerThread = [1, 4], order = [1, 0]}>>")
    assert ty.shape == (16, 64)
    assert ty.element == "!tt.ptr<f16>" and ty.is_pointer and ty.pointee == "f16"
    assert ty.encoding.startswith("#ttg.blocked")


def test_msl_spellings():
    assert msl_scalar("f16") == "half"
    assert msl_scalar("i32", unsigned=True) == "uint"
    assert msl_scalar("!tt.ptr<bf16>") == "device bfloat*"
    assert msl_type_of_signature("*fp32") == "device float*"
