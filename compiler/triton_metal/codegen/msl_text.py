"""The only ways text from outside the code generator reaches MSL: as an identifier, or as a comment.

Kernel source lines, file paths, kernel, function, argument and variable names are the user's; none
may change what the generated code means. A comment must stay one comment on one line: a ``\\`` at
the end of a line (or before trailing spaces), the trigraph ``??/`` (a backslash in C++14, which MSL
is) and a carriage return would all join the next MSL line to it; ``/*`` and ``*/`` would open or
close a block comment around generated code. Apple's compiler reads UTF-8, PyTorch's loader ASCII:
non-ASCII and control characters are written as ``<U+XXXX>``. mx.fast.metal_kernel scans the body,
comments included, for Metal attribute names (``msl_words.MLX_ATTRIBUTES``): those are broken by
dropping their first underscore, in comments and identifiers alike (``thread_position_in_grid`` ->
``threadposition_in_grid``).

Identifiers come in two namespaces of spellings that cannot meet (issue 22):

- a **user's name** (a variable, argument, kernel or noinline function of the Triton source) goes
  through ``identifier``: kept as written when it is safe, else prefixed (``vertex`` -> ``v_vertex``).
  It is never a C++/MSL keyword, a name of <metal_stdlib> or of the specification's library, a macro
  of Metal or of the simulator's C headers (msl_words.RESERVED_WORDS), and never begins with
  ``tm_`` in any letter case;
- every name the **code generator introduces** (loop indices, accumulators, scratch pointers,
  builtin parameters, helper functions) begins with ``tm_`` (``own``; KernelEmitter.fresh_own for
  names allocated per kernel), which no word of those tables does.

Within each namespace, KernelEmitter allocates every per-kernel name once (``fresh``/``fresh_own``).
``check_generated`` is the guard behind all of this: ``generate_msl`` runs it on every kernel, and it
rejects any identifier that is none of: a reserved word, a fixed ``tm_`` name (``OWN_FIXED``), a name
the emitter allocated. So a lowering cannot write a bare name of its own (``for (uint j = ...``) unseen.
"""
from __future__ import annotations

import re

from triton_metal.codegen.msl_words import FORBIDDEN_SUBSTRINGS, OWN_PREFIX, RESERVED_WORDS
from triton_metal.errors import MetalError

COMMENT_LIMIT = 160  # source characters kept in one comment; the rest is counted, not copied
_NAMED = {"\\": "<backslash>"}  # characters replaced by a name rather than their code point
_FORBIDDEN = re.compile("|".join(map(re.escape, sorted(FORBIDDEN_SUBSTRINGS, key=len, reverse=True))))
_COMMENT_BREAKS = re.compile(r"\?(?=\?)|/(?=\*)|\*(?=/)")  # `??` trigraph starts, `/*`, `*/`: a space between


def break_forbidden(text: str) -> str:
    """`text` without any of msl_words.FORBIDDEN_SUBSTRINGS: each occurrence loses its first underscore.

    Joining two of their words never forms another one, and every step shortens the text, so this ends."""
    while (m := _FORBIDDEN.search(text)) is not None:
        cut = m.start() + m.group().index("_")
        text = text[:cut] + text[cut + 1:]
    return text


def _escape(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    if ch == "\t":
        return " "
    return ch if " " <= ch <= "~" else f"<U+{ord(ch):04X}>"


def comment_text(text: str, limit: int = COMMENT_LIMIT) -> str:
    """`text` made safe to follow `//` on one line of MSL (see the module docstring)."""
    text = str(text)
    tail = ""
    if len(text) > limit:
        tail = f" [... {len(text) - limit} more characters]"
        text = text[:limit]
    text = "".join(map(_escape, text))
    return break_forbidden(_COMMENT_BREAKS.sub(lambda m: m.group() + " ", text)) + tail


def comment(text: str) -> str:
    """A whole `// ...` comment line (without indentation) holding `text`."""
    return f"// {comment_text(text)}"


def paren(expr: str) -> str:
    """`expr` (generated MSL) as an operand of a binary operator: wrapped unless atomic or already wrapped."""
    if re.fullmatch(r"[A-Za-z0-9_.\[\]]+", expr):
        return expr
    if expr.startswith("(") and expr.endswith(")"):
        depth = 0
        for k, ch in enumerate(expr):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and k < len(expr) - 1:
                break
        else:
            return expr
    return f"({expr})"


def _spell(ch: str) -> str:
    if ch.isascii():
        return ch if ch.isalnum() or ch == "_" else "_"
    return f"u{ord(ch):x}" if ch.isalnum() else "_"  # Python identifiers may hold any letter or digit


def is_own(name: str) -> bool:
    """Whether `name` is in the code generator's namespace (begins with `tm_`, in any letter case)."""
    return name[:len(OWN_PREFIX)].lower() == OWN_PREFIX


def identifier(hint: str, reserved=frozenset(), default: str = "v") -> str:
    """The MSL spelling of a user's name: keeps `hint` readable and cannot be a reserved word (also the
    caller's `reserved`), a name of the code generator's namespace (`tm_...`), an identifier C++
    reserves (leading `_`, `__`), or contain a forbidden substring.

    Idempotent: a name it returned comes back unchanged."""
    name = re.sub(r"_+", "_", "".join(map(_spell, hint or ""))) or default
    name = break_forbidden(name)
    if name[0].isdigit() or name[0] == "_" or name in RESERVED_WORDS or name in reserved or is_own(name):
        name = f"{default}_{name.lstrip('_')}" if name.strip("_") else default
    return name


# Every fixed name of the code generator's namespace: the own() constants and the names static
# helper texts define (own_helper). Names allocated per kernel (KernelEmitter.fresh_own) avoid them.
OWN_FIXED: set = set()
_OWN_WORD = re.compile(r"[a-z][a-z0-9_]*")
_OWN_NAME = re.compile(rf"\b{OWN_PREFIX}\w+")


def own(word: str) -> str:
    """The spelling of a fixed name the code generator introduces: `tm_<word>` (e.g. own("i"), the
    register index of per-register loops), and with a number after it (`tm_acc0`, `tm_acc1` ... for
    numbered parameters). `word` is lower case, with no `__` and no forbidden substring."""
    if not _OWN_WORD.fullmatch(word) or "__" in word or word.endswith("_") or break_forbidden(word) != word:
        raise ValueError(f"not a word of the code generator's namespace: {word!r}")
    OWN_FIXED.add(OWN_PREFIX + word)
    return OWN_PREFIX + word


def is_fixed_own(name: str) -> bool:
    """Whether `name` is a fixed name of the code generator's (own(), own_helper()), or one numbered."""
    return name in OWN_FIXED or (name[-1:].isdigit() and name.rstrip("0123456789") in OWN_FIXED)


def own_helper(text: str) -> str:
    """`text`, a helper function the code generator adds as written (e.g. tm_erf): the `tm_` names it
    defines are registered as fixed (per-kernel names never take them). Its other names are local to it."""
    OWN_FIXED.update(_OWN_NAME.findall(text))
    return text


def own_spelling(hint: str) -> str:
    """The base spelling of a code-generator name allocated after `hint` (which may hold a user's name):
    `tm_` + the hint spelled as identifier() spells it. Never a fixed name's prefix `tm_rt_` (the
    simulator's runtime calls, which its pre-pass writes into kernel bodies)."""
    if is_own(hint or ""):  # built from another own name, e.g. f"{acc}_peer"
        hint = hint[len(OWN_PREFIX):]
    word = identifier(hint or "t", default="t")
    if word.startswith("rt_"):
        word = f"t_{word}"
    return OWN_PREFIX + word


def _body(msl: str, kernel_name: str) -> str:
    m = re.search(rf"\bkernel\s+void\s+{re.escape(kernel_name)}\s*\([^{{]*\{{", msl)
    return msl[m.end():] if m else ""


# Tokens of MSL text for the identifier audit: what is skipped, and the names.
_TOKENS = re.compile(r"""
      //[^\n]*                                # a comment
    | ^[ \t]*\#[^\n]*                          # a preprocessor line
    | \[\[.*?\]\]                               # an attribute
    | \.?[0-9](?:[eEpP][+-]|[\w.])*            # a number, with its suffix
    | (?:\.|->|::)\s*[A-Za-z_]\w*               # a member, or a name qualified by a namespace or type
    | (?P<name>[A-Za-z_]\w*)
""", re.VERBOSE | re.MULTILINE)


def unaccounted_identifiers(msl: str, allocated) -> list:
    """The identifiers of `msl` that are neither reserved words (Metal, C++: the names generated code
    may use as they are), nor fixed names of the code generator's own (OWN_FIXED), nor in `allocated`
    (the names the emitter gave out, user's and own): each a name some lowering spelled by itself."""
    seen = []
    for m in _TOKENS.finditer(msl):
        name = m.group("name")
        if name and name not in RESERVED_WORDS and not is_fixed_own(name) and name not in allocated \
                and name not in seen:
            seen.append(name)
    return seen


def check_generated(msl: str, kernel_name: str, allocated=None, static_helpers=()) -> None:
    """Raises if generated MSL holds text that could change its meaning, or that MLX would read as an
    attribute: a lowering emitted text that did not go through this module (a bug in triton-metal).

    With `allocated` (the names the emitter gave out), also if an identifier outside the helpers in
    `static_helpers` (texts added as written, whose names are local to them) is none of: a reserved
    word, a fixed `tm_` name, an allocated name (see the module docstring)."""
    if allocated is not None:
        audited = msl
        for text in static_helpers:
            audited = audited.replace(text, "")
        stray = unaccounted_identifiers(audited, allocated)
        if stray:
            raise MetalError(
                f"internal error: the MSL generated for kernel '{kernel_name}' uses the identifier(s) "
                f"{', '.join(map(repr, stray[:5]))}, which are neither Metal/C++ names (msl_words), nor the code "
                "generator's own (tm_..., msl_text.own / KernelEmitter.fresh_own), nor names the emitter gave out "
                "(KernelEmitter.fresh): a lowering spelled a name itself, which a user's name could meet. "
                "Please report this with the kernel.")
    problems = []
    for number, line in enumerate(msl.splitlines(), 1):
        if not all(" " <= ch <= "~" for ch in line):
            problems.append((number, "a character outside printable ASCII"))
        elif line.rstrip().endswith("\\") or "??" in line or "/*" in line or "*/" in line:
            problems.append((number, "a line continuation, trigraph or block comment delimiter"))
    body = _body(msl, kernel_name)
    for word in FORBIDDEN_SUBSTRINGS:  # MLX would declare a parameter for it (see msl_words)
        if word in body:
            problems.append((0, f"'{word}' in the kernel body"))
    if problems:
        number, what = problems[0]
        where = f"line {number}: {msl.splitlines()[number - 1]!r}" if number else "the kernel body"
        raise MetalError(f"internal error: the MSL generated for kernel '{kernel_name}' holds {what} ({where}); "
                         "a lowering wrote text that bypassed triton_metal/codegen/msl_text.py. Please report "
                         "this with the kernel.")
