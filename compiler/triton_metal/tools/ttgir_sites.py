"""Memory-access sites of a kernel: TTGIR load/store ops with their layouts and source lines,
matched to the MSL lines the simulator's counters report.

The code generator precedes each global access (and each ``tt.dot``) in the MSL with a comment
``// file.py:LINE: source text``; those comments appear in the same order as the ops in the TTGIR,
so the k-th comment for a source line belongs to the k-th such op on that line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

COMMENTED_OPS = ("tt.load", "tt.store", "tt.atomic_rmw", "tt.atomic_cas", "tt.dot")
_LOC_DEF = re.compile(r'^(#loc\d*) = loc\((.*)\)\s*$')
_FILE_LOC = re.compile(r'"([^"]+)":(\d+):(\d+)')
_NAMED_LOC = re.compile(r'"[^"]*"\((#loc\d*)\)')
_LAYOUT_DEF = re.compile(r'^(#[A-Za-z_][\w]*) = (#ttg\.[\w]+<.*>)\s*$')
_OP = re.compile(r'^\s*(?:%[\w#:, %]+ = )?(tt\.(?:load|store|atomic_rmw|atomic_cas|dot))\b(.*)$')
_COMMENT = re.compile(r'^\s*// (\S+?):(\d+): ')
_INT_LIST = r'\[([\d,\s]*)\]'


@dataclass
class TTGIROp:
    name: str
    file: str          # base name of the source file
    line: int
    layout: str        # the layout attribute's text, "" for scalars
    element_bytes: int | None
    elements_per_thread: int | None  # contiguous elements per thread along the fastest axis

    def describe_layout(self) -> str:
        if not self.layout:
            return "scalar access (one address for the whole program)"
        if self.elements_per_thread is None:
            return self.layout
        vec = self.elements_per_thread * (self.element_bytes or 0)
        return (f"{self.elements_per_thread} contiguous element(s) per thread"
                + (f" ({vec}-byte vectors)" if vec else "") + f"; {self.layout}")


_ELEMENT_BYTES = {"f32": 4, "i32": 4, "f16": 2, "bf16": 2, "i16": 2, "i8": 1, "i1": 1, "f64": 8, "i64": 8}


def _resolve_locations(text: str) -> dict:
    raw = {}
    for line in text.splitlines():
        m = _LOC_DEF.match(line.strip())
        if m:
            raw[m.group(1)] = m.group(2)

    def resolve(name, depth=0):
        body = raw.get(name, "")
        m = _FILE_LOC.search(body)
        if m:
            return m.group(1).rsplit("/", 1)[-1], int(m.group(2))
        m = _NAMED_LOC.search(body)
        if m and depth < 16:
            return resolve(m.group(1), depth + 1)
        return None

    return {name: resolve(name) for name in raw}


def _layouts(text: str) -> dict:
    out = {}
    for line in text.splitlines():
        m = _LAYOUT_DEF.match(line.strip())
        if m:
            out[m.group(1)] = m.group(2)
    return out


def _elements_per_thread(layout: str) -> int | None:
    spt = re.search(r"sizePerThread = " + _INT_LIST, layout)
    order = re.search(r"order = " + _INT_LIST, layout)
    if not spt or not order:
        return None
    sizes = [int(v) for v in spt.group(1).split(",")]
    fastest = int(order.group(1).split(",")[0])
    return sizes[fastest]


def parse_ttgir_ops(text: str) -> list:
    """The ops of COMMENTED_OPS in program order, with source line and layout."""
    locs = _resolve_locations(text)
    layouts = _layouts(text)
    ops = []
    for line in text.splitlines():
        m = _OP.match(line)
        if not m:
            continue
        rest = m.group(2)
        loc = re.search(r"loc\((#loc\d*)\)\s*$", rest)
        where = locs.get(loc.group(1)) if loc else None
        if where is None:
            inline = _FILE_LOC.search(rest)
            where = (inline.group(1).rsplit("/", 1)[-1], int(inline.group(2))) if inline else ("?", 0)
        ptr_type = re.search(r"(?:tensor<[\dx]*!tt\.ptr<(\w+)>(?:, (#\w+))?>|!tt\.ptr<(\w+)>)", rest)
        element = layout_name = None
        if ptr_type:
            element = ptr_type.group(1) or ptr_type.group(3)
            layout_name = ptr_type.group(2)
        layout = layouts.get(layout_name, layout_name or "")
        ops.append(TTGIROp(m.group(1), where[0], where[1], layout, _ELEMENT_BYTES.get(element),
                           _elements_per_thread(layout) if layout else None))
    return ops


def site_ops(msl: str, ttgir: str | None) -> dict:
    """MSL line (1-based) of each source comment -> (file, line, source text, TTGIROp or None)."""
    ops = parse_ttgir_ops(ttgir) if ttgir else []
    by_line: dict = {}
    for op in ops:
        by_line.setdefault((op.file, op.line), []).append(op)
    seen: dict = {}
    out = {}
    for number, text in enumerate(msl.splitlines(), start=1):
        m = _COMMENT.match(text)
        if not m:
            continue
        key = (m.group(1), int(m.group(2)))
        k = seen.get(key, 0)
        seen[key] = k + 1
        candidates = by_line.get(key, [])
        out[number] = (key[0], key[1], text.split(": ", 1)[1] if ": " in text else "",
                       candidates[k] if k < len(candidates) else None)
    return out


def comment_for(line: int, comments: dict):
    """The source comment governing MSL line ``line``: the closest one at or above it."""
    above = [n for n in comments if n <= line]
    return comments[max(above)] if above else None
