"""Reads a TTGIR module through Triton's Python bindings into a small tree we can lower.

The bindings walk ops post-order and expose operands, results, attributes and regions, but not
the ordered op list of a block, dense constant payloads or parsed layouts. We rebuild the block
structure from the walk (ops of a block are visited in order), read constants from the module
text (constants are visited in text order), and get layouts as typed linear layouts from Gluon's
builder.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from triton._C.libtriton import gluon_ir

from triton_metal.codegen.layout import LinearLayout
from triton_metal.codegen.layout_parse import layout_from_encoding
from triton_metal.codegen.types import TensorType, parse_type


@dataclass
class Value:
    id: int
    type: TensorType
    name_hint: str = ""
    layout: LinearLayout | None = None
    location: str = ""


@dataclass
class Block:
    args: list
    ops: list = field(default_factory=list)

    @property
    def terminator(self):
        return self.ops[-1]


@dataclass
class Op:
    name: str
    handle: object  # the binding's operation, for attribute look-ups
    operands: list
    results: list
    regions: list  # of Block: the entry block of each region (scf regions have only that one)
    location: str = ""
    constant_text: str = ""
    text: str = ""  # the op's line in the module text (for attributes the bindings do not expose)
    # cf.br / cf.cond_br: (target Block, the operands it receives as block arguments) per successor;
    # the other blocks of a function body are reached only through these (early returns).
    successors: list = field(default_factory=list)
    callee: Op | None = None  # tt.call: the tt.func it calls

    def int_attr(self, name: str):
        return self.handle.get_int_attr(name)

    def bool_attr(self, name: str):
        return self.handle.get_bool_attr(name)

    def str_attr(self, name: str):
        return self.handle.get_str_attr(name)


# A name location, `"x"(` (MLIR writes the UTF-8 bytes of a non-ASCII name as `\XX` escapes).
_LOC_NAME = re.compile(r'"((?:[^"\\]|\\.)+)"\(')
_ESCAPE = re.compile(rb"\\([0-9A-Fa-f]{2}|.)")
_LOC_FILE = re.compile(r'"([^"]+)":(\d+):(\d+)')
_CONSTANT_LINE = re.compile(r"=\s*arith\.constant\s+(.*?)\s*(?:loc\(|$)")


def kernel_blocks(func):
    """Every block of `func` (a tt.func Op) and of the functions it calls, each once: the entry
    blocks of its regions, the blocks its branches reach (early returns) and the callees' bodies."""
    seen: set = set()
    pending = list(func.regions)
    while pending:
        block = pending.pop()
        if id(block) in seen:
            continue
        seen.add(id(block))
        yield block
        for op in block.ops:
            pending.extend(op.regions)
            pending.extend(target for target, _ in op.successors)
            if op.callee is not None:
                pending.extend(op.callee.regions)


def kernel_ops(func):
    """Every op of `func` and of the functions it calls (kernel_blocks), each once."""
    for block in kernel_blocks(func):
        yield from block.ops


def location_of(loc_text: str) -> str:
    """`file:line:col` of the innermost user frame of an MLIR location (the last one printed)."""
    frames = _LOC_FILE.findall(loc_text)
    user = [f for f in frames if "/triton/language/" not in f[0]]
    path, line, col = (user or frames or [("", 0, 0)])[-1]
    return f"{path}:{line}:{col}" if path else ""


def name_hint_of(loc_text: str) -> str:
    """The variable name a location gives (`loc("x"(...))`), as the user wrote it (unicode included)."""
    m = _LOC_NAME.search(loc_text)
    if not m:
        return ""
    raw = _ESCAPE.sub(lambda e: bytes([int(e[1], 16)]) if len(e[1]) == 2 else e[1], m.group(1).encode())
    return raw.decode("utf-8", errors="replace")


_LOC_ALIAS = re.compile(r"^(#loc\d*) = (loc\(.*\))$")
_OP_LINE = re.compile(r'^\s*(?:%[\w:#]+(?:, %[\w:#]+)* = )?"?([a-z_]+\.[a-z_.]+)"?.* (loc\(.*\))$')


def op_locations(module_text: str) -> dict:
    """Location text of every op line, by op name in text order, with `#loc` aliases expanded.

    Ops without results have no location in the bindings; for ops without regions the k-th
    occurrence of a name in the text is the k-th one the walk visits.
    """
    lines = module_text.splitlines()
    aliases = dict(m.groups() for m in map(_LOC_ALIAS.match, lines) if m)

    def expand(text, depth=0):
        if depth > 20:
            return text
        return re.sub(r"#loc\d*", lambda m: expand(aliases.get(m.group(0), ""), depth + 1), text)

    found: dict = {}
    for line in lines:
        m = _OP_LINE.match(line)
        if m:
            found.setdefault(m.group(1), []).append(expand(m.group(2)))
    return found


# Ops whose attributes codegen reads from the text (array and enum attributes).
TEXT_OPS = {"tt.trans", "tt.atomic_rmw", "tt.atomic_cas", "tt.atomic_poll", "tt.atomic_load", "tt.atomic_store",
            "tt.print", "tt.assert", "cf.br", "cf.cond_br", "tt.fp_to_fp",
            "tt.reshape",  # tt.reshape: its unit attribute allow_reorder
            "tt.dot_scaled"}  # its lhs/rhs formats, which operands carry a scale, k_pack
_TEXT_LINE = re.compile(r'^\s*(?:%[\w:#]+(?:, %[\w:#]+)* = )?"?([a-z_]+\.[a-z_.]+)"?')


def op_texts(module_text: str) -> dict:
    """Lines of the ops in TEXT_OPS, by op name in text order (= walk order for ops without regions)."""
    found: dict = {}
    for line in module_text.splitlines():
        m = _TEXT_LINE.match(line)
        if m and m.group(1) in TEXT_OPS:
            found.setdefault(m.group(1), []).append(line.strip())
    return found


_SUCCESSOR = re.compile(r"\^bb(\d+)(?:\(([^)]*)\))?")


def successor_labels(text: str) -> list:
    """(block number in its region, number of block arguments) of each successor of a cf branch
    line such as ``cf.cond_br %5, ^bb1(%6, %7 : i32, f32), ^bb2``; MLIR numbers blocks per region."""
    return [(int(m.group(1)), (m.group(2) or "").split(":")[0].count("%")) for m in _SUCCESSOR.finditer(text)]


class ModuleReader:

    def __init__(self, mod):
        self.mod = mod
        self._builder = None  # Gluon's builder, created only for encodings we do not compute
        self.values: dict[int, Value] = {}
        self._layouts: dict[tuple, LinearLayout] = {}
        self.functions: dict[str, Op] = {}  # every tt.func by symbol name (noinline callees)

    def value(self, handle) -> Value:
        vid = handle.id()
        if vid not in self.values:
            type_text = str(handle.get_type())
            ty = parse_type(type_text)
            layout = None
            if ty.is_tensor and ty.encoding:
                layout = self._layout(handle, ty)
            loc = str(handle.get_loc())
            self.values[vid] = Value(vid, ty, name_hint_of(loc), layout, location_of(loc))
        return self.values[vid]

    def _layout(self, handle, ty: TensorType) -> LinearLayout:
        key = (ty.encoding, ty.shape)
        if key not in self._layouts:
            self._layouts[key] = layout_from_encoding(ty.encoding, ty.shape) or self.gluon_layout(handle, ty)
        return self._layouts[key]

    def gluon_layout(self, handle, ty: TensorType) -> LinearLayout:
        """Any distributed layout, through Gluon's builder (see layout_parse for why not always)."""
        if self._builder is None:
            self._builder = gluon_ir.GluonOpBuilder(self.mod.context)
        b = self._builder
        ll = b.to_linear_layout(b.get_gluon_layout_from_tensor(handle)._to_ir(b), list(ty.shape))
        return LinearLayout.from_bases(ty.shape, ll.reg_bases, ll.lane_bases, ll.warp_bases)

    def read(self):
        """Returns the tt.func Op of the entry kernel; every function is in ``self.functions``."""
        blocks: dict[int, list] = {}  # region id -> its blocks in order, each block once
        block_of: dict[int, Block] = {}  # block id -> Block
        branches: dict[int, list] = {}  # region id -> (cf op, successor labels): resolved with the region
        constants = [m.group(1) for m in map(_CONSTANT_LINE.search, self.mod.str_nodebug().splitlines()) if m]
        const_iter = iter(constants)
        locations = {name: iter(locs) for name, locs in op_locations(str(self.mod)).items()}
        texts = {name: iter(lines) for name, lines in op_texts(self.mod.str_nodebug()).items()}
        calls = []
        entry = self.mod.get_entry_func_name()

        def visit(h):
            name = h.get_name()
            if name == "builtin.module":
                return
            block = h.get_block()
            region_id = block.get_parent().id()
            if block.id() not in block_of:
                args = [self.value(block.arg(i)) for i in range(block.get_num_arguments())]
                block_of[block.id()] = Block(args)
                blocks.setdefault(region_id, []).append(block_of[block.id()])
            results = [self.value(h.get_result(i)) for i in range(h.get_num_results())]
            operands = [self.value(h.get_operand(i)) for i in range(h.get_num_operands())]
            regions = []
            for i in range(h.get_num_regions()):
                rid = h.get_region(i).id()
                region_blocks = blocks.pop(rid, [Block([])])
                for branch, labels in branches.pop(rid, []):
                    _resolve(branch, labels, region_blocks)
                regions.append(region_blocks[0])
            if h.get_num_regions() == 0 and name in locations:
                loc = location_of(next(locations[name], ""))
            else:
                loc = location_of(str(h.get_result(0).get_loc())) if results else ""
            op = Op(name, h, operands, results, regions, loc)
            if h.get_num_regions() == 0 and name in TEXT_OPS:
                op.text = next(texts.get(name, iter(())), "")
            if name in ("cf.br", "cf.cond_br"):
                branches.setdefault(region_id, []).append((op, successor_labels(op.text)))
            if name == "arith.constant":
                op.constant_text = next(const_iter, "")
            if name == "tt.call":
                calls.append(op)
            if name == "tt.func":
                self.functions[h.get_str_attr("sym_name")] = op
            else:
                block_of[block.id()].ops.append(op)

        self.mod.walk(visit)
        self._builder = None
        for call in calls:
            call.callee = self.functions[call.handle.get_flat_symbol_ref_attr("callee")]
        return self.functions.get(entry) or next(iter(self.functions.values()))


def _resolve(op, labels, region_blocks):
    """Successor blocks of a cf branch and their operands ([condition] + true args + false args)."""
    first = 1 if op.name == "cf.cond_br" else 0
    op.successors = []
    for number, nargs in labels:
        op.successors.append((region_blocks[number], op.operands[first:first + nargs]))
        first += nargs
