"""Names MSL reserves, and C++ that MSL does not have: rejected by the front-end check.

clang in C++-for-OpenCL mode does not know MSL's own keywords, so a variable called ``vertex``
would parse; Apple's compiler rejects it. OpenCL's keywords that are ordinary identifiers in MSL
are the opposite case: they are renamed away before parsing (``OPENCL_ONLY_KEYWORDS``).
"""
from __future__ import annotations

# MSL function qualifiers and address spaces (MSL 3.1, sections 4 and 5.1).
MSL_KEYWORDS = frozenset({
    "kernel", "vertex", "fragment", "device", "constant", "thread", "threadgroup", "threadgroup_imageblock",
    "ray_data", "object_data",
})
# Names of function and argument qualifiers that are attributes in MSL 3.1 but keywords in some
# versions or contexts. STRICTER: rejected as identifiers, so generated code never depends on it.
MSL_QUALIFIER_NAMES = frozenset({"visible", "stitchable", "intersection", "mesh", "object", "patch", "coherent"})

RESERVED_IDENTIFIERS = MSL_KEYWORDS | MSL_QUALIFIER_NAMES

# C++ that MSL 3.1 does not support (section 1, the C++14 features Metal leaves out: exceptions,
# RTTI, virtual functions, dynamic memory, thread_local; 2.1: no long long / long double).
UNSUPPORTED_KEYWORDS = {
    "virtual": "virtual functions are not supported in MSL",
    "throw": "exceptions are not supported in MSL",
    "try": "exceptions are not supported in MSL",
    "catch": "exceptions are not supported in MSL",
    "typeid": "RTTI is not supported in MSL",
    "dynamic_cast": "RTTI is not supported in MSL",
    "thread_local": "thread_local is not supported in MSL",
    "goto": "goto is not supported in MSL (stricter than Apple in doubt)",
}
UNSUPPORTED_PAIRS = {
    ("long", "long"): "MSL has no 'long long' (use long, which is 64-bit)",
    ("long", "double"): "MSL has no 'long double'",
}

# OpenCL C++ keywords that are plain identifiers in MSL: each is renamed by a -D macro so valid
# MSL is not rejected (messages show the original name). `private` is C++'s, so it stays.
OPENCL_ONLY_KEYWORDS = ("global", "local", "generic", "read_only", "write_only", "read_write", "pipe",
                        "addrspace_cast", "uniform", "nosvm")
RENAMED_PREFIX = "__mc_id_"
