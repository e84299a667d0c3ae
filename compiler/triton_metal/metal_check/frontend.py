"""The Metal front-end check: a kernel's MSL parsed by a real clang front end against our model of
Apple's ``<metal_stdlib>`` (include/metal_stdlib), plus the checks clang cannot make in this mode.

libclang (pip ``libclang``) parses the text as C++ for OpenCL (``-x cl -cl-std=clc++2021``) for a
64-bit SPIR target with no OpenCL extension but half, so that:
- ``device``/``threadgroup``/``thread``/``constant`` are four distinct address spaces (macros to
  OpenCL's ``__global``/``__local``/``__private`` and its own ``__constant``);
- ``double`` is an error (no cl_khr_fp64), and program-scope variables must be ``constant``;
- a pointer or reference without an address space is OpenCL's ``__generic``, which MSL does not
  have: reported here from the AST (``_generic_address_spaces``).
What clang cannot see is checked in Python: kernel attributes (attributes.py), MSL's reserved
words and the C++ it leaves out (reserved.py), and recursion (MSL has no recursive calls).
"""
from __future__ import annotations

import atexit
import functools
import hashlib
import os
import re
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from triton_metal.errors import MetalError
from triton_metal.metal_check import attributes, reserved

INCLUDE_DIR = Path(__file__).parent / "include"
HEADER = INCLUDE_DIR / "metal_stdlib"
MSL_VERSIONS = {"3.0": 300, "3.1": 310, "3.2": 320}
DEFAULT_MSL_VERSION = "3.1"  # macOS 14+, what the metal runtime asks for (bfloat needs it)
MAIN_FILE = "kernel.metal"
MAX_LISTED = 20  # errors listed in one MetalFrontEndError
ATOMIC_TYPEDEFS = {"atomic_int": "int", "atomic_uint": "uint", "atomic_bool": "bool", "atomic_float": "float",
                   "atomic_ulong": "ulong"}
# Diagnostics that are artefacts of the model, not of the kernel: bfloat is a class here, and C++
# for OpenCL cannot unify a `device bfloat` lvalue with a `bfloat` value in `c ? a : b` (the address
# spaces of class objects differ); Apple's bfloat is a builtin type, for which this is fine.
MODEL_ARTEFACTS = (
    re.compile(r"^conditional expression is ambiguous; '(?:__\w+ )?bfloat' and '(?:__\w+ )?bfloat' can be "
               r"converted to several common types$"),
)

_SOURCE_COMMENT = re.compile(r"^\s*//\s*(?P<loc>[^\s:][^:\n]*:\d+):\s?(?P<text>.*)$")
_VECTOR_CONSTRUCTOR = re.compile(r"(?<![\w.>:])((?:char|uchar|short|ushort|int|uint|long|ulong|half|float)[234])\(")
# OpenCL spellings in clang's messages -> MSL's.
_MESSAGE_SPELLINGS = (("__global", "device"), ("__local", "threadgroup"), ("__private", "thread"),
                      ("__constant", "constant"), ("__generic", "<no address space>"), ("__mc_id_", ""))


@dataclass(frozen=True)
class Diagnostic:
    severity: str  # "error" or "warning"
    line: int      # 1-based line of the checked text (0: the whole text)
    column: int
    message: str
    msl_text: str = ""       # that line's text
    source: str = ""         # "file.py:LINE: text" of the nearest kernel source comment above it
    variant: str = "metal"   # which text: "metal", "torch" or "mlx"

    def render(self) -> str:
        lines = [f"{self.severity}: {self.message}"]
        if self.line:
            lines.append(f"  MSL line {self.line}: {self.msl_text.strip()}")
        lines.append(f"  kernel source: {self.source or '(no source line above it)'}")
        return "\n".join(lines)


class MetalFrontEndError(MetalError):
    """Generated MSL that the front-end check rejects: what Apple's compiler would reject (or where
    our model is stricter than Apple)."""

    def __init__(self, kernel_name: str, diagnostics: list, msl_version: str = DEFAULT_MSL_VERSION):
        self.kernel_name = kernel_name
        self.diagnostics = list(diagnostics)
        errors = [d for d in self.diagnostics if d.severity == "error"]
        shown = "\n".join(f"[{d.variant}] {d.render()}" for d in errors[:MAX_LISTED])
        more = f"\n... and {len(errors) - MAX_LISTED} more" if len(errors) > MAX_LISTED else ""
        super().__init__(
            f"Metal front-end check: kernel '{kernel_name}' has {len(errors)} error(s) against MSL {msl_version} "
            f"(the MSL Apple's compiler would be given; see triton_metal/metal_check):\n{shown}{more}\n"
            "This is a bug of the code generator: please report it with the kernel. "
            "TRITON_METAL_FRONTEND_CHECK=0 turns the check off.")


def available() -> bool:
    try:
        import clang.cindex  # noqa: F401
    except ImportError:
        return False
    return True


@functools.lru_cache(None)
def header_hash() -> str:
    """sha256 of the model of <metal_stdlib> and of this checker: part of the backend's cache key."""
    h = hashlib.sha256()
    for path in sorted([*INCLUDE_DIR.iterdir(), *Path(__file__).parent.glob("*.py")]):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def clang_arguments(msl_version: str = DEFAULT_MSL_VERSION) -> list:
    if msl_version not in MSL_VERSIONS:
        raise ValueError(f"MSL version {msl_version!r}: the check models {', '.join(MSL_VERSIONS)}")
    args = ["-x", "cl", "-cl-std=clc++2021", "-cl-no-stdinc", "-nostdinc", "--target=spir64",
            "-Xclang", "-cl-ext=-all,+cl_khr_fp16,+__opencl_c_generic_address_space",
            f"-I{INCLUDE_DIR}", f"-D__METAL_VERSION__={MSL_VERSIONS[msl_version]}",
            "-Ddevice=__global", "-Dthreadgroup=__local", "-Dthread=__private",
            # MSL 3.x is C++14, where trigraphs are replaced (C++17 dropped them): `??/` is a backslash.
            "-trigraphs", "-ferror-limit=0", "-Wno-unused-value",
            "-Wcomment", "-Wtrigraphs", "-Wuninitialized", "-Wsometimes-uninitialized", "-Wreturn-type"]
    args += [f"-D{word}={reserved.RENAMED_PREFIX}{word}" for word in reserved.OPENCL_ONLY_KEYWORDS]
    if MSL_VERSIONS[msl_version] >= 320:  # 4.8 Memory Coherency: `coherent(device) device T* p`
        args.append("-Dcoherent(scope)=")  # accepted; what coherence means is not modelled
    # OpenCL 2.0's atomic_int ... are clang builtins at global scope: MSL's names resolve to ours.
    args += [f"-D{name}=metal::atomic<{t}>" for name, t in ATOMIC_TYPEDEFS.items()]
    return args


# ---- precompiled header: parsing <metal_stdlib> dominates the time of a small kernel ----------
@functools.lru_cache(None)
def _precompiled_header(msl_version: str) -> str | None:
    """Path of a PCH of the model for this libclang and MSL version, built once per process
    (written beside other processes' through a unique temporary name and an atomic rename)."""
    import clang.cindex as ci
    key = hashlib.sha256((header_hash() + " ".join(clang_arguments(msl_version)) + ci.__file__).encode())
    directory = Path(os.environ.get("TRITON_METAL_FRONTEND_CHECK_PCH_DIR") or tempfile.gettempdir())
    path = directory / f"triton_metal_metal_stdlib_{key.hexdigest()[:20]}.pch"
    if path.exists():
        return str(path)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tu = _index().parse(str(HEADER), args=[*clang_arguments(msl_version), "-Xclang", "-emit-pch"],
                            options=ci.TranslationUnit.PARSE_INCOMPLETE)
        if any(d.severity >= ci.Diagnostic.Error for d in tu.diagnostics):
            raise RuntimeError("; ".join(d.spelling for d in tu.diagnostics))
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".pch.tmp")
        os.close(fd)
        tu.save(tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError, ci.TranslationUnitLoadError, ci.TranslationUnitSaveError):
        # the check still runs, only slower, without a PCH
        return None
    return str(path)


_local = threading.local()
_indexes = []  # every thread's, disposed of at exit before cindex's module state goes


def _dispose_indexes() -> None:
    _indexes.clear()
    _local.__dict__.clear()


def _index():
    """This thread's libclang index (one per thread: parses may run in Triton's compile threads)."""
    index = getattr(_local, "index", None)
    if index is None:
        import clang.cindex as ci
        index = _local.index = ci.Index.create()
        if not _indexes:
            atexit.register(_dispose_indexes)
        _indexes.append(index)
    return index


# ---- text preparation (lines and line numbers are kept) --------------------------------------
def prepare(source: str) -> str:
    """The text clang parses: attributes blanked, ``float4(a, b)`` -> ``(float4)(a, b)``."""
    text = attributes.blank_attributes(source)
    return _VECTOR_CONSTRUCTOR.sub(r"(\1)(", text)


def source_comments(text: str) -> dict:
    """line -> 'file.py:LINE: text' of the nearest kernel source comment at or above it in the same
    function (a line starting in column 0, e.g. a new function's signature, ends the previous one's)."""
    mapping, current, previous = {}, "", None
    for n, line in enumerate(text.splitlines(), 1):
        m = _SOURCE_COMMENT.match(line)
        if m:
            current = f"{m.group('loc')}: {m.group('text').strip()}"
        elif (line[:1].isalpha() or line.startswith("[")) and not previous:
            current = ""  # a new function, unless the comment right above describes it
        mapping[n], previous = current, m
    return mapping


def _msl_message(message: str) -> str:
    for old, new in _MESSAGE_SPELLINGS:
        message = message.replace(old, new)
    return message


# ---- the check --------------------------------------------------------------------------------
@dataclass
class _Collector:
    text: str
    variant: str
    items: list = field(default_factory=list)

    def __post_init__(self):
        self.lines = self.text.splitlines()
        self.comments = source_comments(self.text)

    def add(self, severity: str, line: int, column: int, message: str) -> None:
        msl = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        self.items.append(Diagnostic(severity, line, column, _msl_message(message), msl,
                                     self.comments.get(line, ""), self.variant))

    def add_offset(self, severity: str, offset: int, message: str) -> None:
        line = self.text.count("\n", 0, offset) + 1
        self.add(severity, line, offset - (self.text.rfind("\n", 0, offset) + 1) + 1, message)


def check_msl(source: str, kernel_name: str | None = None, msl_version: str = DEFAULT_MSL_VERSION,
              variant: str = "metal") -> list:
    """Diagnostics (errors and the warnings we keep) of one MSL text; empty when it passes."""
    import clang.cindex as ci
    out = _Collector(source, variant)
    for problem in attributes.check_attributes(source, kernel_name):
        out.add_offset("error", problem.offset, problem.message)
    args = clang_arguments(msl_version)
    text = prepare(source)
    pch = _precompiled_header(msl_version)
    try:
        tu = _index().parse(MAIN_FILE, args=[*args, "-include-pch", pch] if pch else args,
                            unsaved_files=[(MAIN_FILE, text)], options=0)
    except ci.TranslationUnitLoadError:
        if not pch:
            raise
        tu = _index().parse(MAIN_FILE, args=args, unsaved_files=[(MAIN_FILE, text)], options=0)  # a bad PCH
    for d in tu.diagnostics:
        if d.severity < ci.Diagnostic.Warning:
            continue
        if d.severity < ci.Diagnostic.Error and not _keep_warning(d):
            continue  # a warning of a kind that does not change what Apple builds
        if any(p.match(d.spelling) for p in MODEL_ARTEFACTS):
            continue
        line, column = _main_file_location(d)
        note = next((c.spelling for c in d.children if c.location.file is not None
                     and d.spelling.startswith(("no matching", "no viable", "call to"))), "")
        out.add("error", line, column, d.spelling + (f" ({note})" if note else ""))
    _ast_checks(tu, out)
    return out.items


# Warnings that mean Apple's compiler would reject or miscompile the code: kept, as errors.
_WARNINGS_AS_ERRORS = {
    "-Wuninitialized", "-Wsometimes-uninitialized", "-Wreturn-type", "-Wreturn-stack-address",
    "-Wdangling", "-Wcomment", "-Wbackslash-newline-escape", "-Wtrigraphs",
    "-Wshift-count-overflow", "-Wshift-count-negative", "-Winteger-overflow", "-Wdivision-by-zero",
    "-Wimplicit-function-declaration", "-Wincompatible-pointer-types", "-Wint-conversion",
    "-Wunknown-pragmas", "-Wignored-attributes", "-Wunknown-attributes", "-Wnull-dereference",
}


def _keep_warning(d) -> bool:
    return d.option in _WARNINGS_AS_ERRORS


def _main_file_location(d):
    """Line and column of a diagnostic in the kernel's text: its own, or (for one inside the model
    header, e.g. a failed static_assert) the first of its notes that points into the kernel."""
    loc = d.location
    if loc.file is not None and loc.file.name == MAIN_FILE:
        return loc.line, loc.column
    for child in d.children:
        if child.location.file is not None and child.location.file.name == MAIN_FILE:
            return child.location.line, child.location.column
    return 0, 0


def _in_main_file(cursor) -> bool:
    return cursor.location.file is not None and cursor.location.file.name == MAIN_FILE


def _descendants(cursor, kinds: set):
    """The descendants of ``cursor`` whose kind id is in ``kinds``, in one C-side recursive visit:
    a Python call per AST node is cheap only if it does nothing but compare an integer."""
    import clang.cindex as ci
    found = []

    def visit(child, parent, data):
        if child._kind_id in kinds:
            child._tu = cursor._tu
            found.append(child)
        return 2  # CXChildVisit_Recurse
    ci.conf.lib.clang_visitChildren(cursor, ci.callbacks["cursor_visit"](visit), None)
    return found


def _ast_checks(tu, out: _Collector) -> None:
    import clang.cindex as ci
    K = ci.CursorKind
    typed = {K.VAR_DECL, K.PARM_DECL, K.FIELD_DECL, K.TYPEDEF_DECL, K.TYPE_ALIAS_DECL, K.CSTYLE_CAST_EXPR,
             K.CXX_FUNCTIONAL_CAST_EXPR, K.CXX_STATIC_CAST_EXPR, K.CXX_REINTERPRET_CAST_EXPR, K.CXX_CONST_CAST_EXPR}
    declarations = {K.VAR_DECL, K.PARM_DECL, K.FIELD_DECL, K.FUNCTION_DECL, K.TYPEDEF_DECL, K.TYPE_ALIAS_DECL,
                    K.STRUCT_DECL, K.CLASS_DECL, K.UNION_DECL, K.ENUM_DECL, K.ENUM_CONSTANT_DECL,
                    K.FUNCTION_TEMPLATE, K.CLASS_TEMPLATE, K.NAMESPACE, K.CXX_METHOD}
    function_kinds = {K.FUNCTION_DECL, K.FUNCTION_TEMPLATE, K.CXX_METHOD}
    wanted = {k.value for k in typed | declarations | function_kinds | {K.CALL_EXPR}}
    functions, calls = {}, []
    for top in tu.cursor.get_children():
        if not _in_main_file(top):
            continue
        for cursor in [top, *_descendants(top, wanted)]:
            kind = cursor.kind
            if kind in typed:
                _generic_address_spaces(cursor, cursor.type.spelling, out)
            elif kind in function_kinds:
                _generic_address_spaces(cursor, cursor.result_type.spelling, out)
            if kind in declarations and cursor.spelling in reserved.RESERVED_IDENTIFIERS:
                out.add("error", cursor.location.line, cursor.location.column,
                        f"'{cursor.spelling}' is a reserved word in MSL and cannot name a declaration")
            if kind in function_kinds and cursor.is_definition():
                usr = cursor.get_usr()
                functions[usr] = cursor
                for call in _descendants(cursor, {K.CALL_EXPR.value}):
                    if call.referenced is not None:
                        calls.append((usr, call.referenced.get_usr(), call))
    _recursion(functions, calls, out)
    _unsupported_words(out)
def _generic_address_spaces(cursor, spelling: str, out: _Collector) -> None:
    if "__generic" in spelling:
        what = "a reference" if "&" in spelling.split("__generic", 1)[1][:3] else "a pointer"
        out.add("error", cursor.location.line, cursor.location.column,
                f"'{cursor.spelling or cursor.kind.name.lower()}' has type '{_msl_message(spelling)}': {what} "
                "without an address space; MSL needs device, constant, threadgroup or thread")


def _recursion(functions: dict, calls: list, out: _Collector) -> None:
    """MSL has no recursion: report each call that closes a cycle of the call graph."""
    graph = {}
    for caller, callee, cursor in calls:
        if callee in functions:
            graph.setdefault(caller, []).append((callee, cursor))
    state, reported = {}, set()

    def visit(node, path):
        state[node] = 1
        for callee, cursor in graph.get(node, []):
            if state.get(callee) == 1:
                cycle = path[path.index(callee):] + [callee]
                names = " -> ".join(functions[f].spelling for f in cycle)
                key = (cursor.location.line, cursor.location.column)
                if key not in reported:
                    reported.add(key)
                    out.add("error", cursor.location.line, cursor.location.column,
                            f"recursive call ({names}): MSL does not support recursion")
            elif state.get(callee) is None:
                visit(callee, path + [callee])
        state[node] = 2

    for f in list(functions):
        if state.get(f) is None:
            visit(f, [f])


_COMMENT_OR_STRING = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.DOTALL)


def _code_only(text: str) -> str:
    """``text`` with comments and literals blanked (newlines kept)."""
    return _COMMENT_OR_STRING.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


_UNSUPPORTED = re.compile(r"\b(?:" + "|".join(reserved.UNSUPPORTED_KEYWORDS) + r")\b|"
                          + "|".join(rf"\b{a}\s+{b}\b" for a, b in reserved.UNSUPPORTED_PAIRS))


def _unsupported_words(out: _Collector) -> None:
    for m in _UNSUPPORTED.finditer(_code_only(out.text)):
        words = tuple(m.group(0).split())
        message = reserved.UNSUPPORTED_KEYWORDS.get(words[0]) if len(words) == 1 else reserved.UNSUPPORTED_PAIRS[words]
        out.add_offset("error", m.start(), message)


def errors_of(diagnostics) -> list:
    return [d for d in diagnostics if d.severity == "error"]
