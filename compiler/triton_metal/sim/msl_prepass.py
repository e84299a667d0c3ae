"""The mechanical rewrite that lets g++ compile MSL against the shim (metal_shim.h).

1. ``[[attributes]]`` are stripped (they contain words that are macros in the shim, such as
   ``threadgroup``); the kernel's parameter attributes are parsed first, so the trampoline knows
   which parameter is which buffer slot, threadgroup slot or builtin.
2. Kernel-scope ``threadgroup T name[N];`` becomes a reference into the threadgroup's shared
   memory block. With an empty ``threadgroup`` macro it would silently become a per-thread local.
3. Program-scope ``constant T x = ...;`` becomes ``static const T x = ...;`` so it stays a constant.
   ``coherent(device)`` qualifiers (MSL 3.2, 4.8) are blanked: CPU memory is coherent already.

Instrumented builds (strict mode, traffic counters; ``instrument=True``) also get:

4. ``device T*``, ``threadgroup T*`` and ``constant T*`` become ``__tm::device_ptr<T>`` /
   ``__tm::threadgroup_ptr<T>`` / ``__tm::constant_ptr<T>`` (tm_instrument.h), kernel-scope
   threadgroup arrays such pointers (or refs for scalars), and ``constant T&`` a ``const T&``.
5. A marker ``__TM_SITE(line);`` after each statement boundary of the kernel body, so every access
   knows the MSL line of its statement.

Every edit keeps the line count, so g++'s line numbers are the ``.metal`` file's lines.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# Metal builtins the trampoline can provide.
BUILTINS = frozenset({
    "thread_position_in_grid", "thread_position_in_threadgroup", "thread_index_in_threadgroup",
    "threadgroup_position_in_grid", "threadgroups_per_grid", "threads_per_threadgroup", "threads_per_grid",
    "thread_index_in_simdgroup", "simdgroup_index_in_threadgroup", "simdgroups_per_threadgroup",
    "threads_per_simdgroup", "thread_execution_width", "dispatch_threads_per_threadgroup",
    "dispatch_simdgroups_per_threadgroup", "grid_size", "grid_origin", "thread_index_in_quadgroup",
    "quadgroup_index_in_threadgroup", "quadgroups_per_threadgroup",
})

# Standard C++ attributes are left alone; every other [[...]] is Metal's and is stripped.
_CXX_ATTRIBUTES = re.compile(r"\s*(maybe_unused|nodiscard|likely|unlikely|fallthrough|noreturn|deprecated|gnu::)")
_ATTRIBUTE = re.compile(r"\[\[(.*?)\]\]", re.DOTALL)
_COHERENT = re.compile(r"\bcoherent\s*\(\s*\w+\s*\)")
_KERNEL = re.compile(r"\bkernel\s+void\s+([A-Za-z_]\w*)\s*\(")
_IDENT = re.compile(r"[A-Za-z_]\w*")
_DECLARATOR = re.compile(r"(?P<type>.*?)\b(?P<name>[A-Za-z_]\w*)\s*(?P<dims>(?:\[[^\]]*\]\s*)*)$", re.DOTALL)
_SLOT = re.compile(r"(buffer|threadgroup)\s*\(\s*(\d+)\s*\)$")
_MAX_THREADS = re.compile(r"max_total_threads_per_threadgroup\s*\(\s*(\d+)\s*\)")
_OPEN = {"(": ")", "[": "]", "{": "}", "<": ">"}


class PrepassError(ValueError):
    """The MSL is not something the simulator can take; ``line`` is 1-based."""

    def __init__(self, message: str, line: int):
        self.line = line
        super().__init__(message)


@dataclass(frozen=True)
class KernelParam:
    """One kernel parameter. ``index`` is the slot of a buffer or threadgroup parameter."""

    name: str
    kind: str  # 'buffer' | 'threadgroup' | 'builtin'
    index: int | None
    builtin: str | None
    type_text: str
    position: int  # 0-based position in the signature


@dataclass(frozen=True)
class PrepassResult:
    text: str  # C++ with the .metal file's line numbering
    params: list
    n_static_decls: int  # kernel-scope threadgroup declarations of the kernel
    max_threads: int | None  # [[max_total_threads_per_threadgroup(N)]], if given


def mask(src: str) -> str:
    """``src`` with comments and string/char literals blanked out (same length and lines)."""
    out = list(src)
    i, n = 0, len(src)

    def blank(a: int, b: int) -> None:
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = src[i]
        if c == "/" and src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
        elif c == "/" and src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
        elif c == '"' or (c == "'" and not (i and (src[i - 1].isalnum() or src[i - 1] == "_"))):
            j = i + 1
            while j < n and src[j] != c and src[j] != "\n":
                j += 2 if src[j] == "\\" else 1
            j = min(j + 1, n)
        else:
            i += 1
            continue
        blank(i, j)
        i = j
    return "".join(out)


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _keep_lines(replacement: str, original: str) -> str:
    return replacement + "\n" * original.count("\n")


def _split_top(text: str, sep: str = ",") -> list:
    """(start, end) of the parts of ``text`` between depth-0 separators."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        if c in "([{<":
            depth += 1
        elif c in ")]}>":
            depth -= 1
        elif c == sep and depth == 0:
            parts.append((start, i))
            start = i + 1
    parts.append((start, len(text)))
    return parts


def _match_close(text: str, open_pos: int) -> int:
    """Index of the bracket closing the one at ``open_pos`` (only that bracket kind counts)."""
    o, c = text[open_pos], _OPEN[text[open_pos]]
    depth = 0
    for i in range(open_pos, len(text)):
        if text[i] == o:
            depth += 1
        elif text[i] == c:
            depth -= 1
            if depth == 0:
                return i
    raise PrepassError(f"unbalanced '{o}'", _line(text, open_pos))


def _parse_param(masked: str, start: int, end: int, position: int) -> KernelParam:
    raw = masked[start:end]
    attrs = [m.group(1).strip() for m in _ATTRIBUTE.finditer(raw)]
    decl = " ".join(_ATTRIBUTE.sub(" ", raw).split())
    line = _line(masked, start + len(raw) - len(raw.lstrip()))
    names = _IDENT.findall(decl)
    if not names:
        raise PrepassError(f"cannot parse kernel parameter '{decl}'", line)
    name = names[-1]
    type_text = decl[: decl.rfind(name)].strip()
    for attr in attrs:
        m = _SLOT.match(attr)
        if m:
            return KernelParam(name, m.group(1), int(m.group(2)), None, type_text, position)
        if attr in BUILTINS:
            return KernelParam(name, "builtin", None, attr, type_text, position)
    if attrs:
        raise PrepassError(
            f"kernel parameter '{name}' has attribute [[{attrs[0]}]], which the Metal simulator does not "
            "support (it runs compute kernels with buffer, threadgroup and builtin parameters)", line)
    raise PrepassError(
        f"kernel parameter '{name}' has no [[buffer(i)]], [[threadgroup(i)]] or builtin attribute", line)


def _threadgroup_decls(masked: str, body_start: int, body_end: int, edits: list, instrument: bool = False) -> int:
    """Queue rewrites of the threadgroup declarations in one kernel body; returns their count."""
    count = 0
    for m in re.finditer(r"\bthreadgroup\b", masked[body_start:body_end]):
        pos = body_start + m.start()
        if _previous_char(masked, pos) not in "{};":
            continue  # not at the start of a statement: a cast, a parameter ...
        semi = masked.find(";", pos, body_end)
        if semi < 0:
            continue
        stmt = masked[pos + len("threadgroup"):semi]
        depth0 = top_level(stmt)
        if any(c in depth0 for c in "*&=("):
            continue  # a pointer or reference into threadgroup memory: a per-thread variable
        out, type_text = [], None
        for a, b in _split_top(stmt):
            part = stmt[a:b]
            if type_text is None:
                d = _DECLARATOR.match(part.strip())
                if not d or not d.group("type").strip():
                    raise PrepassError(f"cannot parse threadgroup declaration '{' '.join(stmt.split())}'",
                                       _line(masked, pos))
                type_text = " ".join(d.group("type").split())
            else:
                d = re.match(r"\s*(?P<name>[A-Za-z_]\w*)\s*(?P<dims>(?:\[[^\]]*\]\s*)*)$", part, re.DOTALL)
                if not d:
                    raise PrepassError(f"cannot parse threadgroup declarator '{part.strip()}'", _line(masked, pos))
            t = f"__tm_tg_t{count}"
            dims = "".join(d.group("dims").split())
            alloc = f"tm_rt_tg_alloc({count}, sizeof({t}), alignof({t}))"
            if instrument:
                out.append(f"using {t} = {type_text} {dims}; auto {d.group('name')} = "
                           f"__tm::threadgroup_decl<{t}>({alloc});")
            else:
                out.append(f"using {t} = {type_text} {dims}; {t}& {d.group('name')} = *static_cast<{t}*>({alloc});")
            count += 1
        edits.append((pos, semi + 1, _keep_lines(" ".join(out), masked[pos:semi + 1])))
    return count


def _previous_char(text: str, pos: int) -> str:
    """The last non-blank character before ``pos`` ('' at the start)."""
    while pos > 0 and text[pos - 1].isspace():
        pos -= 1
    return text[pos - 1] if pos else ""


def top_level(text: str) -> str:
    """The characters of ``text`` outside every bracket pair (the brackets themselves included)."""
    return "".join(c for c, d in zip(text, _depths(text)) if d == 0)


def _depths(text: str) -> list:
    """Bracket depth at each character of ``text``."""
    depth, out = 0, []
    for c in text:
        if c in ")]}>":
            depth -= 1
        out.append(depth)
        if c in "([{<":
            depth += 1
    return out


def _program_scope_constants(masked: str, edits: list) -> None:
    """``constant T x = v;`` at program scope -> ``static const T x = v;``."""
    braces, parens = [], 0  # braces: one flag per open '{', True for a namespace's
    for m in re.finditer(r"[{}()]|(?:\bconst\s+)?\bconstant\b(?:\s+const\b)?", masked):
        tok = m.group(0)
        if tok == "{":
            braces.append(bool(re.search(r"\bnamespace\b[\w\s:]*$", masked[max(0, m.start() - 200):m.start()])))
        elif tok == "}":
            if braces:
                braces.pop()
        elif tok == "(":
            parens += 1
        elif tok == ")":
            parens -= 1
        elif parens == 0 and all(braces):
            edits.append((m.start(), m.end(), "static const"))


# `device T*` / `threadgroup T*` with const on either side (instrumented builds).
_SPACE_POINTER = re.compile(
    r"(?P<c1>\bconst\s+)?\b(?P<space>device|threadgroup|constant)\s+(?P<c2>const\s+)?"
    r"(?P<type>(?:metal::)?[A-Za-z_]\w*(?:\s*<[^<>;{}]*>)?)\s*(?P<c3>const\s*)?\*")
_SPACE_TYPES = {"device": "__tm::device_ptr", "threadgroup": "__tm::threadgroup_ptr",
                "constant": "__tm::constant_ptr"}
# `constant T&` (scalar arguments): a reference to const, so an assignment does not compile.
_CONSTANT_REF = re.compile(r"(?:\bconst\s+)?\bconstant\s+(?:const\s+)?(?P<type>(?:metal::)?[A-Za-z_]\w*"
                           r"(?:\s*<[^<>;{}]*>)?)\s*&")


# `device T* threadgroup*`: a pointer to threadgroup memory holding device pointers (a staged tensor of
# pointers, codegen types.threadgroup_pointer).
_POINTER_TO_SPACE_POINTER = re.compile(
    r"\b(?P<space>device|threadgroup|constant)\s+(?P<type>(?:metal::)?[A-Za-z_]\w*)\s*\*\s*"
    r"(?P<outer>device|threadgroup|constant)\s*\*")


def _space_pointers(masked: str, edits: list) -> None:
    taken = {start for start, _, _ in edits}  # program-scope `constant` declarations are rewritten already
    nested = []
    for m in _POINTER_TO_SPACE_POINTER.finditer(masked):
        inner = f"{_SPACE_TYPES[m.group('space')]}<{m.group('type')}>"
        text = f"{_SPACE_TYPES[m.group('outer')]}<{inner}>"
        edits.append((m.start(), m.end(), _keep_lines(text, masked[m.start():m.end()])))
        nested.append((m.start(), m.end()))
    for m in _SPACE_POINTER.finditer(masked):
        if {m.start(), m.start("space")} & taken or any(a <= m.start() < b for a, b in nested):
            continue
        const = "const " if m.group("c1") or m.group("c2") or m.group("c3") else ""
        text = f"{_SPACE_TYPES[m.group('space')]}<{const}{' '.join(m.group('type').split())}>"
        edits.append((m.start(), m.end(), _keep_lines(text, masked[m.start():m.end()])))
    for m in _CONSTANT_REF.finditer(masked):
        if m.start() not in taken:
            edits.append((m.start(), m.end(), _keep_lines(f"const {' '.join(m.group('type').split())}&",
                                                          masked[m.start():m.end()])))


_BLOCK_WORDS = re.compile(r"\b(else|do)\s*$")
_NO_MARKER_BEFORE = re.compile(r"(else|while)\b|[})\],;:#]")


def _site_markers(masked: str, body_start: int, body_end: int, edits: list) -> None:
    """``__TM_SITE(line);`` after each ``;``, block ``{`` and block ``}`` of the body at statement level,
    where ``line`` is the line of the statement that follows."""
    blocks, parens = [], 0  # blocks: one flag per open '{', True for a statement block
    for i in range(body_start, body_end):
        c = masked[i]
        boundary = False
        if c == "(":
            parens += 1
        elif c == ")":
            parens -= 1
        elif c == "{":
            block = i == body_start or _previous_char(masked, i) in "){};" or bool(
                _BLOCK_WORDS.search(masked[max(0, i - 8):i]))
            blocks.append(block)
            boundary = block and parens == 0
        elif c == "}":
            boundary = blocks.pop() if blocks else False
            boundary = boundary and parens == 0
        elif c == ";":
            boundary = parens == 0 and all(blocks)
        if not boundary:
            continue
        j = i + 1
        while j < body_end and masked[j].isspace():
            j += 1
        if j >= body_end or _NO_MARKER_BEFORE.match(masked, j):
            continue
        edits.append((i + 1, i + 1, f" __TM_SITE({_line(masked, j)});"))


def rewrite(msl: str, kernel_name: str, instrument: bool = False) -> PrepassResult:
    """Rewrite ``msl`` for g++ and parse the signature of kernel ``kernel_name`` (``instrument``:
    for the strict / counting build, see the module docstring)."""
    msl = _COHERENT.sub(lambda m: " " * len(m.group(0)), msl)
    masked = mask(msl)
    edits = []  # (start, end, replacement) on msl, non-overlapping

    # [[kernel]] void f(...) is the same as kernel void f(...).
    for m in re.finditer(r"\[\[\s*kernel\s*\]\]", masked):
        edits.append((m.start(), m.end(), "kernel".ljust(m.end() - m.start())))
    masked_k = re.sub(r"\[\[\s*kernel\s*\]\]", lambda m: "kernel".ljust(len(m.group(0))), masked)

    kernels = {m.group(1): m for m in _KERNEL.finditer(masked_k)}
    if kernel_name not in kernels:
        found = ", ".join(sorted(kernels)) or "none"
        raise PrepassError(f"kernel '{kernel_name}' not found in the MSL (kernels found: {found})", 1)

    params, n_decls, max_threads = [], 0, None
    for name, m in kernels.items():
        open_paren = m.end() - 1
        close_paren = _match_close(masked_k, open_paren)
        brace = masked_k.find("{", close_paren)
        if brace < 0 or masked_k[close_paren + 1:brace].strip():
            if name == kernel_name:
                raise PrepassError(f"kernel '{name}' has no body", _line(masked, m.start()))
            continue
        body_end = _match_close(masked_k, brace)
        decls = _threadgroup_decls(masked_k, brace, body_end, edits, instrument)
        if name != kernel_name:
            continue
        if instrument:
            _site_markers(masked_k, brace, body_end, edits)
        n_decls = decls
        signature = masked_k[open_paren + 1:close_paren]
        if signature.strip() and signature.strip() != "void":
            for pos, (a, b) in enumerate(_split_top(signature)):
                params.append(_parse_param(masked_k, open_paren + 1 + a, open_paren + 1 + b, pos))
        prev_end = max(masked_k.rfind(c, 0, m.start()) for c in ";}")
        for attr in _ATTRIBUTE.finditer(masked_k, prev_end + 1, m.start()):
            limit = _MAX_THREADS.search(attr.group(1))
            if limit:
                max_threads = int(limit.group(1))

    _check_slots(params, masked_k, kernels[kernel_name].start())

    for m in _ATTRIBUTE.finditer(masked_k):
        if not _CXX_ATTRIBUTES.match(m.group(1)):
            edits.append((m.start(), m.end(), _keep_lines("", masked[m.start():m.end()])))
    _program_scope_constants(masked_k, edits)
    if instrument:
        _space_pointers(masked_k, edits)

    out = msl
    for start, end, text in sorted(edits, reverse=True):
        out = out[:start] + text + out[end:]
    return PrepassResult(out, params, n_decls, max_threads)


# Argument table sizes of Apple GPUs (Metal feature set tables): 31 buffers, 31 threadgroup slots.
MAX_SLOTS = {"buffer": 31, "threadgroup": 31}


def _check_slots(params: list, masked: str, kernel_pos: int) -> None:
    seen = set()
    for p in params:
        if p.kind == "builtin":
            continue
        if p.index >= MAX_SLOTS[p.kind]:
            raise PrepassError(
                f"kernel parameter '{p.name}' uses [[{p.kind}({p.index})]], but Metal has {MAX_SLOTS[p.kind]} "
                f"{p.kind} argument slots (indices 0 to {MAX_SLOTS[p.kind] - 1}): pass fewer arguments, e.g. "
                "pack scalars into one struct", _line(masked, kernel_pos))
        if (p.kind, p.index) in seen:
            raise PrepassError(f"two kernel parameters use [[{p.kind}({p.index})]]", _line(masked, kernel_pos))
        seen.add((p.kind, p.index))
