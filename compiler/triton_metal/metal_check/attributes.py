"""Kernel signatures and their ``[[attributes]]``, checked against Apple's tables.

clang ignores attributes it does not know (``[[buffer(0)]]`` is only a warning), so they are read
and validated here, in Python, and replaced by spaces before clang parses the text (same columns,
same lines). The table is MSL 3.1's section 5.2.3.6, "Kernel Function Input Attributes"; buffer
and threadgroup indices come from 5.2.1, "Locating Buffer, Texture, and Sampler Arguments" (the
argument tables have 31 entries, indices 0-30). Both tables are abi's; kernels and their parameter
lists are found by msl_signature, the reader the simulator uses too.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from triton_metal import abi
from triton_metal.msl_signature import kernel_signatures, split_top_level

# attribute -> parameter types it accepts (MSL 3.1, Table 5.8, kernel function input attributes).
KERNEL_INPUT_ATTRIBUTES = abi.KERNEL_BUILTIN_TYPES

# 5.2.3.6: "If [these] are vector types, the number of components need to match"; and the pairs
# below must use the same element type (uint or ushort).
SAME_LENGTH = ("thread_position_in_grid", "threads_per_grid", "thread_position_in_threadgroup",
               "threads_per_threadgroup", "threadgroup_position_in_grid", "dispatch_threads_per_threadgroup",
               "threadgroups_per_grid")
SAME_ELEMENT = (("thread_position_in_grid", "threads_per_grid"),
                ("thread_position_in_threadgroup", "threads_per_threadgroup", "dispatch_threads_per_threadgroup"))

# Attributes allowed outside a kernel's parameter list (function attributes).
FUNCTION_ATTRIBUTES = {"kernel", "max_total_threads_per_threadgroup", "host_name"}

_ATTRIBUTE = re.compile(r"\[\[\s*(?P<name>\w+)\s*(?:\((?P<args>[^()\]]*)\))?\s*\]\]")


@dataclass(frozen=True)
class Problem:
    offset: int  # character offset in the source
    message: str


@dataclass(frozen=True)
class Param:
    text: str  # the declaration without its attribute, whitespace normalised
    type: str
    name: str
    attribute: str | None
    args: str | None
    offset: int


def blank_attributes(source: str) -> str:
    """``source`` with every ``[[...]]`` replaced by spaces (``[[kernel]]`` by ``kernel``): lines and
    columns are unchanged, so clang's positions are the original ones."""
    def blank(m):
        text = m.group(0)
        if m.group("name") == "kernel":
            return "kernel" + " " * (len(text) - len("kernel"))
        return re.sub(r"[^\n]", " ", text)
    return _ATTRIBUTE.sub(blank, source)


def _split_params(source: str, start: int, end: int):
    """(segment, offset) per parameter of ``source[start:end]``: commas outside (), [] and <> separate
    parameters; a blank last segment (a trailing comma, an empty list) is none."""
    spans = split_top_level(source, start, end, opens="([<")
    if not source[spans[-1][0]:spans[-1][1]].strip():
        spans.pop()
    return [(source[a:b], a) for a, b in spans]


def _parse_param(segment: str, offset: int) -> Param:
    attrs = list(_ATTRIBUTE.finditer(segment))
    bare = " ".join(_ATTRIBUTE.sub(" ", segment).split())
    m = re.match(r"^(?P<type>.*?)\s*\b(?P<name>\w+)$", bare)
    ptype, name = (m.group("type"), m.group("name")) if m else (bare, "")
    attr = attrs[0] if attrs else None
    return Param(bare, " ".join(ptype.replace("*", " * ").replace("&", " & ").split()), name,
                 attr.group("name") if attr else None, attr.group("args") if attr else None,
                 offset + (attr.start() if attr else 0))


def kernel_params(source: str, kernel_name: str | None = None):
    """[(kernel name, [Param, ...], offset of the kernel)] for the kernels in ``source``."""
    kernels = []
    for k in kernel_signatures(source):
        if kernel_name and k.name != kernel_name:
            continue
        # An unclosed list runs to the end of the source, its last character excluded (as the `)` would be).
        close = k.close_paren if k.close_paren is not None else len(source) - 1
        params = [_parse_param(seg, off) for seg, off in _split_params(source, k.open_paren + 1, close)]
        kernels.append((k.name, params, k.start))
    return kernels


def _address_space(ptype: str) -> str | None:
    for space in ("device", "constant", "threadgroup", "thread"):
        if re.search(rf"\b{space}\b", ptype):
            return space
    return None


def _element_and_length(ptype: str):
    m = re.fullmatch(r"(?:const\s+)?(uint|ushort)([23]?)", ptype)
    return (m.group(1), int(m.group(2) or 1)) if m else (None, None)


def check_kernel(params, kernel_offset: int) -> list:
    """Problems of one kernel's parameter list."""
    problems, slots, builtin = [], {}, {}
    for p in params:
        where = f"parameter '{p.name}'"
        if p.attribute is None:
            problems.append(Problem(p.offset, f"{where} has no [[attribute]]: every kernel parameter needs "
                                              "[[buffer(n)]], [[threadgroup(n)]] or a kernel input attribute"))
            continue
        if p.attribute in ("buffer", "threadgroup"):
            problems += _check_binding(p, where, slots)
        elif p.attribute in KERNEL_INPUT_ATTRIBUTES:
            allowed = KERNEL_INPUT_ATTRIBUTES[p.attribute]
            bare = re.sub(r"^const\s+", "", p.type)
            if bare not in allowed:
                problems.append(Problem(p.offset, f"{where}: [[{p.attribute}]] takes {' or '.join(allowed)}, "
                                                  f"not '{p.type}'"))
            if p.attribute in builtin:
                problems.append(Problem(p.offset, f"{where}: [[{p.attribute}]] is already given to "
                                                  f"'{builtin[p.attribute].name}'"))
            builtin[p.attribute] = p
        else:
            problems.append(Problem(p.offset, f"{where}: [[{p.attribute}]] is not a kernel function input "
                                              "attribute of MSL 3.1"))
    lengths = {a: _element_and_length(builtin[a].type)[1] for a in SAME_LENGTH if a in builtin}
    if len(set(lengths.values())) > 1:
        problems.append(Problem(kernel_offset, "kernel: the vector lengths of "
                                + ", ".join(f"[[{a}]] ({n})" for a, n in lengths.items()) + " must match"))
    for group in SAME_ELEMENT:
        elements = {a: _element_and_length(builtin[a].type)[0] for a in group if a in builtin}
        if len(set(elements.values())) > 1:
            problems.append(Problem(kernel_offset, "kernel: " + ", ".join(f"[[{a}]] ({t})" for a, t in elements.items())
                                    + " must have the same element type"))
    return problems


def _check_binding(p: Param, where: str, slots: dict) -> list:
    problems = []
    space = _address_space(p.type)
    is_indirect = p.type.endswith("*") or p.type.endswith("&")
    wanted = ("device", "constant") if p.attribute == "buffer" else ("threadgroup",)
    if not is_indirect or space not in wanted:
        problems.append(Problem(p.offset, f"{where}: [[{p.attribute}(n)]] needs a pointer or reference in the "
                                          f"{' or '.join(wanted)} address space, not '{p.type}'"))
    if p.attribute == "threadgroup" and p.type.endswith("&"):
        problems.append(Problem(p.offset, f"{where}: [[threadgroup(n)]] needs a pointer"))
    if p.args is None or not p.args.strip().isdigit():
        problems.append(Problem(p.offset, f"{where}: [[{p.attribute}(n)]] needs an integer index"))
        return problems
    index, slots_in_table = int(p.args), abi.ARGUMENT_TABLE_SLOTS[p.attribute]
    if index >= slots_in_table:
        problems.append(Problem(p.offset, f"{where}: [[{p.attribute}({index})]]: the argument table has indices "
                                          f"0-{slots_in_table - 1} only"))
    key = (p.attribute, index)
    if key in slots:
        problems.append(Problem(p.offset, f"{where}: [[{p.attribute}({index})]] is already used by "
                                          f"'{slots[key].name}'"))
    slots[key] = p
    return problems


def check_attributes(source: str, kernel_name: str | None = None) -> list:
    """Problems with the attributes of ``source``: kernel parameters, and any other ``[[...]]``."""
    problems = []
    kernels = kernel_params(source, kernel_name)
    if kernel_name and not kernels:
        problems.append(Problem(0, f"no 'kernel void {kernel_name}(' in the source"))
    signature_ranges = []
    for _, params, offset in kernels:
        problems += check_kernel(params, offset)
        signature_ranges += [(p.offset, p.offset + 1) for p in params if p.attribute]
    parameter_offsets = {start for start, _ in signature_ranges}
    for m in _ATTRIBUTE.finditer(source):
        if m.start() in parameter_offsets or m.group("name") in FUNCTION_ATTRIBUTES:
            continue
        if m.group("name") in KERNEL_INPUT_ATTRIBUTES or m.group("name") in ("buffer", "threadgroup"):
            continue  # a parameter of a kernel other than kernel_name
        problems.append(Problem(m.start(), f"[[{m.group('name')}]] is not an attribute this check knows"))
    return problems
