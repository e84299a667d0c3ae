"""Dropping threadgroup barriers that order nothing, in straight-line MSL.

Lowerings place barriers locally: a buffer writer puts one before its write (an earlier reader may
still read) and one after (a later reader must see it). In a matmul K loop that is barrier, write A,
barrier, (global loads of B), barrier, write B, barrier: four per step where two order the same
accesses. A barrier B between barriers P (before it) and N (after it), all three in one block
(no block boundary, other barrier or early exit between them), is redundant when

* no threadgroup memory is touched between P and B, or between B and N (P or N orders the same
  accesses); or
* everything touched between P and B and between B and N is writes to different buffers, and each
  buffer written before B is read after N. Then N orders those writes before their reads, and the
  writes do not conflict: two buffers both live at B's place get disjoint bytes (the threadgroup
  arena allocates by liveness), and the buffer written before B is live from its write to its read.

Accesses are read off the text: a threadgroup name is a kernel-scope `threadgroup` array or pointer;
a line naming one is a *write* when it is `[loop headers] name[index] = value;` with no threadgroup
name in the index or the value, and a *read* (the conservative reading) otherwise, as is any other
line spelling `threadgroup` (a cast into the arena) except a pointer declaration.
"""
from __future__ import annotations

import re

BARRIER = "threadgroup_barrier(mem_flags::mem_threadgroup);"
_DECLARED = re.compile(r"\bthreadgroup\s+[\w:<>]+(?:\s*\*)?\s*(?:const\s+)?(\w+)\s*(?:\[|=)")
_WRITE = re.compile(r"^(?:for \([^;]*;[^;]*;[^)]*\) )*(\w+)\[(.*)\] = (.*);$")
_STOPS = re.compile(r"\b(?:return|break|continue|goto)\b|threadgroup_barrier|@release\d+@")
_NAME = re.compile(r"\w+")
_THREADGROUP = re.compile(r"\bthreadgroup\b")


def threadgroup_names(lines) -> set:
    """Names of the kernel-scope threadgroup arrays and pointers declared in `lines`."""
    names = set()
    for line in lines:
        names.update(m.group(1) for m in _DECLARED.finditer(line))
    return names


def _depth(line: str) -> int:
    return (len(line) - len(line.lstrip(" "))) // 4


class _Access:
    """What one line does to threadgroup memory: names it writes, names it reads, whether to stop there."""

    def __init__(self, line: str, names: set):
        text = line.strip()
        used = set(_NAME.findall(text)) & names
        if _DECLARED.search(text):
            used = set()  # a pointer declaration (into the arena) touches no memory
        elif _THREADGROUP.search(text):
            used.add("threadgroup")  # an address of threadgroup memory built in place: a read, conservatively
        self.stop = "\n" in line or (text != BARRIER and bool(_STOPS.search(text)))
        self.writes, self.read = set(), used  # names written; names otherwise used (read, conservatively)
        m = _WRITE.match(text)
        if used and m and m.group(1) in names and not (set(_NAME.findall(m.group(2) + m.group(3))) & names):
            self.writes, self.read = {m.group(1)}, set()


def _segment(lines, accesses, start: int, step: int, depth: int):
    """From `start` (exclusive) in direction `step`: (index of the next barrier of this block or None,
    names written, whether anything was read)."""
    writes, reads = set(), False
    i = start + step
    while 0 <= i < len(lines):
        line = lines[i]
        if line.strip() and _depth(line) < depth:
            return None, writes, reads  # the block ends
        if lines[i].strip() == BARRIER:
            return (i if _depth(line) == depth else None), writes, reads
        access = accesses[i]
        if access.stop:
            return None, writes, reads
        writes |= access.writes
        reads = reads or bool(access.read)
        i += step
    return None, writes, reads


def coalesce(lines: list, names: set) -> list:
    """`lines` without the redundant barriers (see the module docstring); `names` the threadgroup names."""
    lines = list(lines)
    changed = True
    while changed:
        changed = False
        accesses = [_Access(line, names) for line in lines]
        for b, line in enumerate(lines):
            if line.strip() != BARRIER:
                continue
            depth = _depth(line)
            p, before_w, before_r = _segment(lines, accesses, b, -1, depth)
            n, after_w, after_r = _segment(lines, accesses, b, 1, depth)
            untouched = (p is not None and not before_w and not before_r) or \
                        (n is not None and not after_w and not after_r)
            disjoint_writes = (p is not None and n is not None and not before_r and not after_r
                               and not (before_w & after_w) and all(_read_after(accesses, n, w) for w in before_w))
            if untouched or disjoint_writes:
                del lines[b]
                changed = True
                break
    return lines


def _read_after(accesses, n: int, name: str) -> bool:
    return any(name in access.read for access in accesses[n + 1:])


_RELEASE = re.compile(r"^@release\d+@$")  # threadgroup_arena's maybe-barrier after a buffer's last use


def rotate_loop(lines: list, names: set) -> list:
    """A loop (`lines`: its header, body, closing brace) whose body starts with a barrier, nothing in
    threadgroup memory before it, gets that barrier before the loop and at the end of its body instead:
    the same order between iterations (X B Y X B Y = B X Y B X Y B), and the end barrier also serves
    as the arena's release barrier after the body's last op (its placeholder follows, and is dropped
    then), so a K loop staging its operands keeps two barriers per step. Else `lines` as they are."""
    if len(lines) < 3:
        return lines
    depth = _depth(lines[0]) + 1
    accesses = [_Access(line, names) for line in lines]
    first = next((i for i in range(1, len(lines) - 1) if lines[i].strip() == BARRIER), None)
    if first is None or _depth(lines[first]) != depth:
        return lines
    if any(a.stop or a.read or a.writes for a in accesses[1:first]):
        return lines
    end = len(lines) - 1
    while end > first + 1 and _depth(lines[end - 1]) == depth and _RELEASE.match(lines[end - 1].strip()):
        end -= 1
    indent = lines[0][:len(lines[0]) - len(lines[0].lstrip(" "))]
    body_end = [] if lines[end - 1].strip() == BARRIER else [indent + "    " + BARRIER]
    return [indent + BARRIER, lines[0], *lines[1:first], *lines[first + 1:end], *body_end, *lines[end:]]
