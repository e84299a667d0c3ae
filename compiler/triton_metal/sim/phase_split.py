"""Splits a kernel body at its top-level barriers and simd collectives into phases.

A threadgroup whose collectives all sit at the top level of the kernel body can run without fibers:
the runtime runs phase 0 for every thread, then phase 1 for every thread, and so on. A phase ends
where a ``threadgroup_barrier`` stood (every thread finished the phase before any starts the next:
the barrier's meaning) or just before a statement with a simd collective: each thread deposits
the collective's value at the end of the phase, and the statement, re-run at the start of the
next phase, reads the complete snapshot of its simdgroup (``tm_rt_simd_exchange`` does not wait
in a phased launch). No context switch is left, which makes reductions several times cheaper.

Locals that live across phases move into a per-thread struct (``__tm_locals``): the declaration
becomes a member, the definition an assignment, and each later phase binds the name to the member
with ``auto& name = __tm_s.name;``, so the statements themselves are kept verbatim (each after a
``#line`` giving its line in the ``.metal`` file). Kernel-scope threadgroup declarations (already
``tm_rt_tg_alloc`` references after the prepass) are repeated at the top of every phase.

Anything else keeps the fiber runtime (``split`` returns None): a collective inside a loop, a
branch or a helper function, an early ``return``, a collective whose value expression could have
side effects, or a declaration that cannot become a member (a reference, ``auto``, a brace
initializer). Instrumented builds (strict mode, traffic counters) always use fibers.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from triton_metal.msl_signature import kernel_signatures, line_of, mask, match_close, split_top_level, top_level

# Collectives whose value is their first argument, taken by value as a deduced `T` in the shim.
_VALUE_COLLECTIVES = frozenset({
    "simd_sum", "simd_product", "simd_min", "simd_max", "simd_and", "simd_or", "simd_xor",
    "simd_prefix_inclusive_sum", "simd_prefix_exclusive_sum", "simd_prefix_inclusive_product",
    "simd_prefix_exclusive_product", "simd_shuffle", "simd_broadcast", "simd_shuffle_xor",
    "simd_shuffle_up", "simd_shuffle_down", "simd_shuffle_rotate_up", "simd_shuffle_rotate_down",
    "simd_broadcast_first",
})
_BARRIERS = frozenset({"threadgroup_barrier", "simdgroup_barrier"})
_COLLECTIVE = re.compile(r"\b(simd_\w+|quad_\w+|simdgroup_\w+|threadgroup_barrier)\s*\(")
_IDENT = re.compile(r"[A-Za-z_]\w*")
_STATEMENT_KEYWORDS = frozenset({"if", "for", "while", "do", "switch", "else", "case", "default"})
_REJECTED_WORDS = re.compile(r"\b(return|goto|static|constexpr|thread_local|typedef|auto|operator)\b|\[\s*[&=]")
# A value expression that is safe to evaluate twice: no assignment, increment or call other than a cast.
_ASSIGNMENT = re.compile(r"(?<![=!<>])=(?!=)|\+\+|--")
_CALL = re.compile(r"([A-Za-z_][\w:]*)\s*(?:<[^<>()]*>)?\s*\(")
_PURE_CALLS = re.compile(r"(float|half|bfloat|int|uint|short|ushort|char|uchar|long|ulong|bool|as_type|select"
                         r"|static_cast|reinterpret_cast)\d*$")
_TG_ALIAS = re.compile(r"using\s+__tm_tg_t\d+\s*=")
_TG_REF = re.compile(r"__tm_tg_t\d+\s*&\s*[A-Za-z_]\w*\s*=")
# A declaration; a pointer's address space may follow its `*` (`device float* threadgroup* p`, a
# pointer to threadgroup memory holding device pointers: types.threadgroup_pointer).
_DECL = re.compile(
    r"(?P<const>const\s+)?(?P<type>[A-Za-z_][\w:]*(?:\s*<[^;{}]*?>)?(?:\s+[A-Za-z_][\w:]*)*(?:\s*\*(?:\s*(?:const|device|threadgroup|constant|thread)\b)?)*)"
    r"\s+(?P<name>[A-Za-z_]\w*)\s*(?P<dims>(?:\[[^\]]*\]\s*)*)(?:=(?P<init>.*))?;$", re.DOTALL)


@dataclass(frozen=True)
class PhasedKernel:
    text: str     # the prepass text, kernel body split (kernel signature + two parameters)
    phases: int
    locals_type: str  # the struct of cross-phase locals (the trampoline needs its size)


@dataclass
class _Statement:
    start: int        # slice of the text: leading comments and blanks, then the statement
    code_start: int
    end: int
    kind: str = "plain"  # plain | barrier | collective | tg_decl
    value: str = ""      # collective: the value expression (first argument)


def split(text: str, kernel_name: str) -> PhasedKernel | None:
    """``text`` (prepass output) with kernel ``kernel_name`` split into phases, or None."""
    masked = mask(text)
    kernel = next((k for k in kernel_signatures(masked) if k.name == kernel_name), None)
    if kernel is None or kernel.close_paren is None:
        return None
    close_paren = kernel.close_paren
    brace = masked.find("{", close_paren)
    body_end = match_close(masked, brace) if brace >= 0 else None
    if body_end is None:
        return None
    body = masked[brace + 1:body_end]
    collectives = [m.start() for m in _COLLECTIVE.finditer(masked)]
    if not collectives or any(not brace < c < body_end for c in collectives):
        return None  # nothing to gain, or a collective in another function
    if _REJECTED_WORDS.search(body) or "#" in body:
        return None
    statements = _statements(masked, brace + 1, body_end)
    if statements is None or not all(_classify(masked, s) for s in statements):
        return None
    phases = _phases(statements)
    hoisted = _hoisted(masked, phases)
    if hoisted is None:
        return None
    return _emit(text, masked, kernel, close_paren, brace, body_end, phases, hoisted)


def _statements(masked: str, start: int, end: int) -> list | None:
    """Top-level statements of the body [start, end): split at depth-0 ';' and at the '}' ending a
    block statement (unless `else` or `while` continues it)."""
    out, depth, parens, begin = [], 0, 0, start
    i = start
    while i < end:
        c = masked[i]
        if c == "(":
            parens += 1
        elif c == ")":
            parens -= 1
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        if depth < 0 or parens < 0:
            return None
        done = depth == 0 and parens == 0 and (c == ";" or c == "}")
        if done and c == "}":
            rest = masked[i + 1:end].lstrip()
            done = not (rest.startswith(";") or re.match(r"(else|while)\b", rest))
        if done:
            code = begin + len(masked[begin:i + 1]) - len(masked[begin:i + 1].lstrip())
            out.append(_Statement(begin, code, i + 1))
            begin = i + 1
        i += 1
    if masked[begin:end].strip():
        return None
    # `if (c) a; else b;` splits after `a;`: the `else` part belongs to the statement before it.
    merged = []
    for s in out:
        if merged and re.match(r"else\b", masked[s.code_start:s.end]):
            merged[-1].end = s.end
        else:
            merged.append(s)
    return merged


def _classify(masked: str, s: _Statement) -> bool:
    """Sets ``s.kind``; False when the statement keeps the kernel on fibers."""
    code = masked[s.code_start:s.end]
    calls = list(_COLLECTIVE.finditer(code))
    if _TG_ALIAS.match(code) or _TG_REF.match(code):
        s.kind = "tg_decl"
        return not calls
    if not calls:
        return True
    first_word = _IDENT.match(code)
    if len(calls) > 1 or (first_word and first_word.group(0) in _STATEMENT_KEYWORDS) or "{" in code:
        return False  # several collectives, or one inside a branch or loop
    name = calls[0].group(1)
    if name in _BARRIERS:
        s.kind = "barrier"
        return code.startswith(name) and code.rstrip().endswith(");")
    if name not in _VALUE_COLLECTIVES:
        return False
    open_paren = calls[0].end() - 1
    close = match_close(code, open_paren)
    if close is None:
        return False
    # The first argument ends at a comma outside () and [] (`<` may compare).
    first, end = split_top_level(code, open_paren + 1, close, opens="([")[0]
    value = code[first:end].strip()
    if not value or _ASSIGNMENT.search(value) or any(not _PURE_CALLS.match(m.group(1)) for m in _CALL.finditer(value)):
        return False
    s.kind, s.value = "collective", value
    return True


def _phases(statements: list) -> list:
    """[(statements, deposited value or None)] in execution order."""
    phases, current = [], []
    for s in statements:
        if s.kind == "barrier":
            phases.append((current, None))
            current = []
        elif s.kind == "collective":
            phases.append((current, s.value))
            current = [s]
        else:
            current.append(s)
    phases.append((current, None))
    return phases


@dataclass(frozen=True)
class _Hoist:
    name: str
    member: str       # the struct member declaration
    assignment: str   # what the declaration becomes ('' without an initializer)


def _hoisted(masked: str, phases: list) -> dict | None:
    """{statement start: _Hoist} for the declarations used in a later phase than their own."""
    used_after = []  # used_after[p]: identifiers of phases p+1 ...
    seen: set = set()
    for stmts, value in reversed(phases):
        used_after.append(set(seen))
        for s in stmts:
            seen.update(_IDENT.findall(masked[s.code_start:s.end]))
        seen.update(_IDENT.findall(value or ""))
    used_after.reverse()
    out = {}
    for p, (stmts, value) in enumerate(phases):
        later = used_after[p]
        for s in stmts:
            if s.kind not in ("plain", "collective"):
                continue
            code = " ".join(masked[s.code_start:s.end].split())
            d = _DECL.match(code)
            if not d or d.group("type").split()[0] in _STATEMENT_KEYWORDS or d.group("name") not in later:
                continue
            init = (d.group("init") or "").strip()
            name, dims = d.group("name"), "".join(d.group("dims").split())
            if "," in top_level(d.group("type") + d.group("dims")) or "," in top_level(init):
                return None  # several declarators
            if re.fullmatch(r"\{\s*\}", init):  # value-initialised: zero bytes for every type we emit
                assignment = f"__builtin_memset(&{name}, 0, sizeof({name}));"
            elif init.startswith("{") or (dims and init):
                return None  # a brace or array initializer
            else:
                assignment = f"{name} = {init};" if init else ""
            out[s.start] = _Hoist(name, f"{d.group('type')} {name}{dims};", assignment)
    return out


def _emit(text, masked, kernel, close_paren, brace, body_end, phases, hoisted) -> PhasedKernel:
    name = kernel.name
    locals_type = f"__tm_locals_{name}"
    members = " ".join(h.member for h in hoisted.values()) or "char __tm_unused;"
    aliases = " ".join(f"[[maybe_unused]] auto& {h.name} = __tm_s.{h.name};" for h in hoisted.values())
    tg_decls = " ".join(" ".join(masked[s.code_start:s.end].split()) for stmts, _ in phases for s in stmts
                        if s.kind == "tg_decl")
    body = [f"{{ {locals_type}& __tm_s = *static_cast<{locals_type}*>(__tm_lp); (void)__tm_s;",
            "switch (__tm_phase) {"]
    for p, (stmts, value) in enumerate(phases):
        body.append(f"case {p}: {{ {aliases} {tg_decls}")
        for s in stmts:
            if s.kind == "tg_decl":
                continue
            h = hoisted.get(s.start)
            code = h.assignment if h else text[s.code_start:s.end]
            body.append(f"#line {line_of(text, s.code_start)}\n{code}")
        if value is not None:
            body.append(f"metal::__simd::deposit({value});")
        body.append("} break;")
    body.append("}\n}")
    signature_end = f", void* __tm_lp, uint32_t __tm_phase){text[close_paren + 1:brace]}"
    out = "".join([
        text[:kernel.start],
        f"struct {locals_type} {{ {members} }}; ",
        text[kernel.start:close_paren],
        signature_end,
        "\n".join(body),
        f"\n#line {line_of(text, body_end + 1)}\n",
        text[body_end + 1:],
    ])
    return PhasedKernel(out, len(phases), locals_type)
