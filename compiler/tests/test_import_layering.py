"""The package's import structure: every module imports on its own, no import cycle (private names:
test_private_names.py).

- **Each module imported first.** An import cycle hidden by import order (a function-level import,
  or a module that happens to be imported earlier by someone else) shows only when a module of the
  cycle is the first of the package to be imported. Each module is imported in a process of its own
  that has imported Triton and nothing of ours: one interpreter loads Triton once (its backend
  discovery told not to import our compiler and driver, ``TRITON_BACKENDS_IN_TREE=1``), then forks a
  child per module.
- **No cycle among top-level imports** (read with ``ast``): the statements run when a module is
  imported, i.e. outside functions and ``if TYPE_CHECKING:``. An edge goes to the module named, not
  to its parent packages (those are initialised first, whatever the order).
- **No cycle through function-level imports either**: an import moved into a function hides a cycle
  from the interpreter, not from the reader (arg_checks, cache, launcher, runtime and mlx_runtime
  once formed one that way).
"""
from __future__ import annotations

import ast
import importlib.util
import json
import os
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import triton_metal

PACKAGE = "triton_metal"

# Modules whose import is refused on purpose, with what the refusal says.
REFUSED_ON_PURPOSE = {
    # A command (python -m ...), refusing to be imported so the facade's check_environment() stays callable.
    "triton_metal.backends.metal.check_environment": "python -m triton_metal.backends.metal.check_environment",
}


def package_modules() -> list:
    """Every module of the package except ``__main__`` ones (importing those runs a command)."""
    names = [PACKAGE] + [m.name for m in pkgutil.walk_packages(triton_metal.__path__, PACKAGE + ".")]
    return [n for n in names if not n.endswith(".__main__")]


# ---- each module imported first, in a fresh interpreter ----------------------------------------

_IMPORT_EACH_FIRST = textwrap.dedent('''
    import importlib, json, os, sys, traceback
    os.environ["TRITON_BACKENDS_IN_TREE"] = "1"  # Triton's backend discovery must not import us first
    import triton  # noqa: F401  (loaded once; every child starts from here)
    ours = [m for m in sys.modules if m == "triton_metal" or m.startswith("triton_metal.")]
    assert not ours, f"importing triton imported {ours}"
    results = {}
    for name in json.loads(sys.stdin.read()):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            try:
                importlib.import_module(name)
                message = ""
            except BaseException as e:  # noqa: BLE001  (reported by the test)
                message = f"{type(e).__name__}: {e}\\n" + traceback.format_exc()
            with os.fdopen(write_end, "w") as out:
                out.write(message)
            os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end) as inp:
            results[name] = inp.read()
        os.waitpid(pid, 0)
    print(json.dumps(results))
''')


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks one child per module")
def test_every_module_imports_when_it_is_the_first_of_the_package():
    modules = package_modules()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(triton_metal.__file__).parents[1]),
                                                       os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", _IMPORT_EACH_FIRST], input=json.dumps(modules), text=True,
                          capture_output=True, env=env, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sorted(results) == sorted(modules)
    failures = {}
    for name, error in results.items():
        expected = REFUSED_ON_PURPOSE.get(name)
        if expected is not None:
            assert error.startswith("ImportError") and expected in error, f"{name}: {error or 'imported'}"
        elif error:
            failures[name] = error
    assert not failures, "modules that fail when imported first:\n" + "\n".join(
        f"--- {name}\n{error}" for name, error in sorted(failures.items()))


# ---- the static import graph -------------------------------------------------------------------

def _source_path(name: str) -> Path:
    return Path(importlib.util.find_spec(name).origin)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_time_statements(body: list):
    """The import statements a module runs when it is imported (class bodies run too; functions do not)."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node):
                yield from _import_time_statements(node.body)
            yield from _import_time_statements(node.orelse)
        elif isinstance(node, ast.Try):
            for part in (node.body, *(h.body for h in node.handlers), node.orelse, node.finalbody):
                yield from _import_time_statements(part)
        elif isinstance(node, (ast.With, ast.ClassDef)):
            yield from _import_time_statements(node.body)


def _from_module(name: str, node: ast.ImportFrom, is_package: bool) -> str:
    """The absolute module of ``from <module> import ...`` in module ``name``."""
    if not node.level:
        return node.module or ""
    parts = name.split(".")
    base = parts if is_package else parts[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(name: str, node, modules: set, is_package: bool) -> list:
    """The modules of ours an import statement imports (the deepest module each name resolves to)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in modules]
    source = _from_module(name, node, is_package)
    if source not in modules:
        return []
    return [f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source for a in node.names]


def import_graph(function_level: bool = False) -> dict:
    """Module -> the modules of ours it imports: when it is imported, or (``function_level``) anywhere."""
    modules = set(package_modules())
    graph = {}
    for name in sorted(modules):
        path = _source_path(name)
        tree = ast.parse(path.read_text(), str(path))
        is_package = path.name == "__init__.py"
        statements = (n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))) if function_level \
            else _import_time_statements(tree.body)
        edges = set()
        for node in statements:
            edges.update(_targets(name, node, modules, is_package))
        graph[name] = sorted(edges - {name})
    return graph


def _cycle_from(node, graph: dict, done: set, path: list, on_path: dict) -> list | None:
    """Depth-first from ``node``: the first cycle met, as a path; nodes fully explored go to ``done``."""
    on_path[node] = len(path)
    path.append(node)
    for nxt in graph.get(node, ()):
        if nxt in on_path:
            return path[on_path[nxt]:] + [nxt]
        if nxt not in done:
            cycle = _cycle_from(nxt, graph, done, path, on_path)
            if cycle:
                return cycle
    path.pop()
    del on_path[node]
    done.add(node)
    return None


def cycles(graph: dict) -> list:
    """One cycle per knot of ``graph``, each as a path whose first node is repeated at the end (searched
    in sorted order, so a failure reads the same every run)."""
    found, done = [], set()
    for start in sorted(graph):
        if start not in done:
            cycle = _cycle_from(start, graph, done, [], {})
            if cycle:
                found.append(cycle)
                done.update(cycle)  # one report per knot: its members are not searched again
    return found


def test_the_cycle_finder_finds_each_cycle_and_accepts_a_tree():
    assert cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"], "e": ["f"], "f": ["e"]}) == [
        ["a", "b", "c", "a"], ["e", "f", "e"]]
    assert cycles({"a": ["b", "c"], "b": ["c"], "c": []}) == []


def _describe(found: list) -> str:
    return "\n".join(" -> ".join(cycle) for cycle in found)


def test_no_import_cycle_among_the_packages_modules():
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + _describe(found)


def test_no_import_cycle_hidden_in_a_function():
    found = cycles(import_graph(function_level=True))
    assert not found, "import cycles, counting imports inside functions:\n" + _describe(found)


# ---- floors (docs/architecture.md) ----------------------------------------------------------------

# The first name under triton_metal -> its floor. A module imports from its own floor and below.
FLOORS = {
    "abi": 0,
    "errors": 1, "refusals": 1, "numerics": 1, "debug": 1, "msl_signature": 1, "arguments": 1,
    "codegen": 2, "sim": 2,
    "runtime": 3,
    "metal_check": 4, "compiler": 4, "driver": 4, "launcher": 4, "arg_checks": 4, "cache": 4, "device_print": 4,
    "libdevice": 4, "tuning": 4, "language": 4, "fp8e4b15": 4,
    "tools": 5, "backends": 5,
    PACKAGE: 0,  # __version__; its lazy attributes (triton_metal.jit, triton_metal.backends) are named below
}
# Upward imports the architecture page names: the driver's load hook (shader dump, hardware log) and the
# package's lazy attributes.
UPWARD_ON_PURPOSE = {("triton_metal.driver", "triton_metal.tools.shaders"), (PACKAGE, "triton_metal.tuning"),
                     (PACKAGE, "triton_metal.backends.metal")}


def _floor(module: str) -> int:
    parts = module.split(".")
    return FLOORS[parts[1] if len(parts) > 1 else PACKAGE]


def test_every_part_of_the_package_has_a_floor():
    assert {m.split(".")[1] for m in package_modules() if "." in m} <= set(FLOORS)


def test_no_module_imports_from_a_floor_above_its_own():
    graph = import_graph(function_level=True)
    upward = sorted(f"{source} (floor {_floor(source)}) imports {target} (floor {_floor(target)})"
                    for source, targets in graph.items() for target in targets
                    if _floor(target) > _floor(source) and (source, target) not in UPWARD_ON_PURPOSE)
    assert not upward, "imports against docs/architecture.md's floors:\n" + "\n".join(upward)
