"""Reading MSL text: finding kernels and splitting their parameter lists, for every reader of MSL.

MSL is C++: a kernel is ``kernel void name(parameters) { body }`` (or ``[[kernel]] void ...``), and
its parameters are separated by commas outside brackets, each carrying ``[[attributes]]``. The
functions here find kernels, match brackets, split at top-level separators and blank comments and
literals, all by position in the text given, so callers report the lines and offsets of the
original file. What a parameter's attributes mean is each reader's own business: the simulator binds
them (sim/msl_prepass.py), the front-end check validates them against Apple's tables
(metal_check/attributes.py).

Imports nothing of ours: the simulator reads MSL with it and must not depend on the code generator.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# `kernel void name(` or `[[kernel]] void name(`; the match ends just after the `(`.
KERNEL = re.compile(r"(?:\bkernel\b|\[\[\s*kernel\s*\]\])\s+void\s+(?P<name>[A-Za-z_]\w*)\s*\(")
BRACKETS = {"(": ")", "[": "]", "{": "}", "<": ">"}
ALL_OPENS = "([{<"


@dataclass(frozen=True)
class KernelSignature:
    """Where one kernel's signature is in a text."""

    name: str
    start: int  # where `kernel` (or `[[kernel]]`) begins
    open_paren: int  # the `(` of the parameter list
    close_paren: int | None  # its `)`; None when the list is never closed


def kernel_signatures(text: str) -> list:
    """Every kernel of ``text`` in order, as KernelSignature. Pass masked text (``mask``) unless a
    ``kernel void f(`` inside a comment should count."""
    out = []
    for m in KERNEL.finditer(text):
        open_paren = m.end() - 1
        out.append(KernelSignature(m.group("name"), m.start(), open_paren, match_close(text, open_paren)))
    return out


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


def line_of(text: str, pos: int) -> int:
    """The 1-based line of position ``pos``."""
    return text.count("\n", 0, pos) + 1


def match_close(text: str, open_pos: int) -> int | None:
    """Index of the bracket closing the one at ``open_pos`` (only that bracket kind counts), or None
    when it is never closed."""
    o, c = text[open_pos], BRACKETS[text[open_pos]]
    depth = 0
    for i in range(open_pos, len(text)):
        if text[i] == o:
            depth += 1
        elif text[i] == c:
            depth -= 1
            if depth == 0:
                return i
    return None


def split_top_level(text: str, start: int = 0, end: int | None = None, sep: str = ",",
                    opens: str = ALL_OPENS) -> list:
    """(start, end) positions of the parts of ``text[start:end]`` between separators outside the
    brackets ``opens`` (a parameter list: all four kinds; call arguments: ``"(["``, since ``<`` may
    compare there). Empty parts are kept: the caller decides what an empty parameter means."""
    end = len(text) if end is None else max(end, start)
    closes = "".join(BRACKETS[o] for o in opens)
    parts, depth, begin = [], 0, start
    for i in range(start, end):
        c = text[i]
        if c in opens:
            depth += 1
        elif c in closes:
            depth -= 1
        elif c == sep and depth == 0:
            parts.append((begin, i))
            begin = i + 1
    parts.append((begin, end))
    return parts


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
        if c in ALL_OPENS:
            depth += 1
    return out
