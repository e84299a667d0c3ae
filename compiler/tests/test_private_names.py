"""No module of the package reaches into another's private names (issue 19): what several modules
share is public API of the module that owns it (e.g. KernelEmitter.add_helper, layout.linear_index,
types.sizeof), so a module's private names can change without breaking another."""
from __future__ import annotations

import ast
from pathlib import Path

import triton_metal

PACKAGE = Path(triton_metal.__file__).parent
EMITTER = PACKAGE / "codegen" / "emitter.py"


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_uses(path: Path, root: Path = PACKAGE) -> list:
    """`file:line: what` for each private name of another module that `path` imports or reads: an
    import of one, an attribute of an imported module of ours, or (in codegen) of the emitter `em`."""
    tree = ast.parse(path.read_text(), str(path))
    found, modules = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("triton_metal"):
            found += [f"from {node.module} import {a.name}" for a in node.names if _private(a.name)]
            modules.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.Import):
            modules.update((a.asname or a.name).split(".")[0] for a in node.names if a.name.startswith("triton_metal"))
    readers = modules | ({"em"} if "codegen" in path.parts and path != EMITTER else set())
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name) \
                and node.value.id in readers:
            found.append(f"{node.value.id}.{node.attr}")
    return [f"{path.relative_to(root)}: {what}" for what in found]


def test_no_module_uses_a_private_name_of_another():
    assert [use for path in sorted(PACKAGE.rglob("*.py")) for use in private_uses(path)] == []


def test_the_check_sees_private_imports_and_attributes(tmp_path):
    module = tmp_path / "codegen" / "lower_x.py"
    module.parent.mkdir()
    module.write_text("from triton_metal.codegen.layout import _linear\nfrom triton_metal.codegen import types\n"
                      "def f(em):\n    return types._SIZES, em._used_names\n")
    assert private_uses(module, tmp_path) == [
        "codegen/lower_x.py: from triton_metal.codegen.layout import _linear",
        "codegen/lower_x.py: types._SIZES", "codegen/lower_x.py: em._used_names"]
