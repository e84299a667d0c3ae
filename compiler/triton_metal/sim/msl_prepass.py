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

Every edit keeps the line count, so g++'s line numbers are the ``.metal`` file's lines. Kernels and
their parameter lists are found with triton_metal.msl_signature (the front-end check's reader too);
the builtin attributes and argument table sizes are triton_metal.abi's.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from triton_metal import abi
from triton_metal.msl_signature import kernel_signatures, line_of, mask, match_close, split_top_level, top_level

# Metal builtins the trampoline provides: every kernel builtin attribute (trampoline.BUILTIN_VALUES).
BUILTINS = frozenset(abi.KERNEL_BUILTINS)

# Standard C++ attributes are left alone; every other [[...]] is Metal's and is stripped.
_CXX_ATTRIBUTES = re.compile(r"\s*(maybe_unused|nodiscard|likely|unlikely|fallthrough|noreturn|deprecated|gnu::)")
_ATTRIBUTE = re.compile(r"\[\[(.*?)\]\]", re.DOTALL)
_COHERENT = re.compile(r"\bcoherent\s*\(\s*\w+\s*\)")
_IDENT = re.compile(r"[A-Za-z_]\w*")
_DECLARATOR = re.compile(r"(?P<type>.*?)\b(?P<name>[A-Za-z_]\w*)\s*(?P<dims>(?:\[[^\]]*\]\s*)*)$", re.DOTALL)
_SLOT = re.compile(r"(buffer|threadgroup)\s*\(\s*(\d+)\s*\)$")
_MAX_THREADS = re.compile(r"max_total_threads_per_threadgroup\s*\(\s*(\d+)\s*\)")


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


def _keep_lines(replacement: str, original: str) -> str:
    return replacement + "\n" * original.count("\n")


def _close(text: str, open_pos: int) -> int:
    """Index of the bracket closing the one at ``open_pos``; PrepassError when there is none."""
    close = match_close(text, open_pos)
    if close is None:
        raise PrepassError(f"unbalanced '{text[open_pos]}'", line_of(text, open_pos))
    return close


def _parse_param(masked: str, start: int, end: int, position: int) -> KernelParam:
    raw = masked[start:end]
    attrs = [m.group(1).strip() for m in _ATTRIBUTE.finditer(raw)]
    decl = " ".join(_ATTRIBUTE.sub(" ", raw).split())
    line = line_of(masked, start + len(raw) - len(raw.lstrip()))
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
        for a, b in split_top_level(stmt):
            part = stmt[a:b]
            if type_text is None:
                d = _DECLARATOR.match(part.strip())
                if not d or not d.group("type").strip():
                    raise PrepassError(f"cannot parse threadgroup declaration '{' '.join(stmt.split())}'",
                                       line_of(masked, pos))
                type_text = " ".join(d.group("type").split())
            else:
                d = re.match(r"\s*(?P<name>[A-Za-z_]\w*)\s*(?P<dims>(?:\[[^\]]*\]\s*)*)$", part, re.DOTALL)
                if not d:
                    raise PrepassError(f"cannot parse threadgroup declarator '{part.strip()}'", line_of(masked, pos))
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
        edits.append((i + 1, i + 1, f" __TM_SITE({line_of(masked, j)});"))


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

    kernels = {k.name: k for k in kernel_signatures(masked_k)}
    if kernel_name not in kernels:
        found = ", ".join(sorted(kernels)) or "none"
        raise PrepassError(f"kernel '{kernel_name}' not found in the MSL (kernels found: {found})", 1)

    params, n_decls, max_threads = [], 0, None
    for name, k in kernels.items():
        open_paren = k.open_paren
        close_paren = _close(masked_k, open_paren)
        brace = masked_k.find("{", close_paren)
        if brace < 0 or masked_k[close_paren + 1:brace].strip():
            if name == kernel_name:
                raise PrepassError(f"kernel '{name}' has no body", line_of(masked, k.start))
            continue
        body_end = _close(masked_k, brace)
        decls = _threadgroup_decls(masked_k, brace, body_end, edits, instrument)
        if name != kernel_name:
            continue
        if instrument:
            _site_markers(masked_k, brace, body_end, edits)
        n_decls = decls
        signature = masked_k[open_paren + 1:close_paren]
        if signature.strip() and signature.strip() != "void":
            for pos, (a, b) in enumerate(split_top_level(masked_k, open_paren + 1, close_paren)):
                params.append(_parse_param(masked_k, a, b, pos))
        prev_end = max(masked_k.rfind(c, 0, k.start) for c in ";}")
        for attr in _ATTRIBUTE.finditer(masked_k, prev_end + 1, k.start):
            limit = _MAX_THREADS.search(attr.group(1))
            if limit:
                max_threads = int(limit.group(1))

    _check_slots(params, masked_k, kernels[kernel_name].start)

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


# Argument table sizes of Apple GPUs, by binding attribute.
MAX_SLOTS = abi.ARGUMENT_TABLE_SLOTS


def _check_slots(params: list, masked: str, kernel_pos: int) -> None:
    seen = set()
    for p in params:
        if p.kind == "builtin":
            continue
        if p.index >= MAX_SLOTS[p.kind]:
            raise PrepassError(
                f"kernel parameter '{p.name}' uses [[{p.kind}({p.index})]], but Metal has {MAX_SLOTS[p.kind]} "
                f"{p.kind} argument slots (indices 0 to {MAX_SLOTS[p.kind] - 1}): pass fewer arguments, e.g. "
                "pack scalars into one struct", line_of(masked, kernel_pos))
        if (p.kind, p.index) in seen:
            raise PrepassError(f"two kernel parameters use [[{p.kind}({p.index})]]", line_of(masked, kernel_pos))
        seen.add((p.kind, p.index))
