"""Memory-access sites of a kernel: TTGIR load/store ops with their layouts and source lines,
matched to the MSL lines the simulator's counters report.

The code generator precedes the MSL of each op of ``SOURCE_COMMENTED_OPS`` (global accesses,
atomics, ``tt.dot``, prints) with a comment ``// file.py:LINE: source text``; those comments appear
in the same order as the ops in the TTGIR, so the k-th comment for a source line belongs to the k-th
such op on that line. The source line of an op is read as the code generator reads it
(``ir_reader.op_locations`` / ``location_of``), so the two agree on every op, inlined ones included.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from triton_metal.codegen.emitter import SOURCE_COMMENTED_OPS
from triton_metal.codegen.ir_reader import location_of, op_locations

_LAYOUT_DEF = re.compile(r'^(#[A-Za-z_][\w]*) = (#ttg\.[\w]+<.*>)\s*$')
# An op line of SOURCE_COMMENTED_OPS (longest names first, so no name matches a prefix of another).
_OP_NAMES = "|".join(map(re.escape, sorted(SOURCE_COMMENTED_OPS, key=len, reverse=True)))
_OP = re.compile(rf'^\s*(?:%[\w#:, %]+ = )?({_OP_NAMES})\b(.*)$')
# A location ending the line: op_locations reads the lines that have one (and only those).
_LOCATED = re.compile(r' loc\(.*\)$')
_FILE_LINE = re.compile(r'(.*):(\d+):\d+$')
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


def _file_and_line(location: str) -> tuple:
    """(base name of the file, line) of a ``location_of`` string; ("?", 0) without one."""
    m = _FILE_LINE.match(location)
    return (m.group(1).rsplit("/", 1)[-1], int(m.group(2))) if m else ("?", 0)


def parse_ttgir_ops(text: str) -> list:
    """The ops of SOURCE_COMMENTED_OPS in program order, with source line and layout."""
    locations = {name: iter(locs) for name, locs in op_locations(text).items()}
    layouts = _layouts(text)
    ops = []
    for line in text.splitlines():
        m = _OP.match(line)
        if not m:
            continue
        rest = m.group(2)
        located = _LOCATED.search(line) and m.group(1) in locations
        where = _file_and_line(location_of(next(locations[m.group(1)], ""))) if located else ("?", 0)
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
