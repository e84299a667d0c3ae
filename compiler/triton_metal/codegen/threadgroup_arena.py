"""One threadgroup arena per kernel, its bytes shared by liveness.

Every ``ttg.local_alloc`` buffer and every op's scratch (the threadgroup memory a layout conversion,
reduction, scan or dot uses while it runs) is a *block*: a size and a live range over the op order
of the kernel (ops numbered in program order, nested regions inside their op). Blocks whose live
ranges overlap get disjoint bytes; the others may share them. The MSL declares one array,

    threadgroup float4 tm_arena_storage[N / 16];  // float4: 16-byte aligned
    threadgroup uchar* tm_arena = (threadgroup uchar*)tm_arena_storage;

and each block is a typed pointer at a byte offset, ``(threadgroup half*)(tm_arena + 4096)`` (MSL, like
C++, converts between pointer types of one address space with a cast; the front-end check and the
simulator's g++ compile it). No ``alignas``: the simulator's prepass rewrites only declarations that
start with ``threadgroup``.

Live range of a buffer: from its ``local_alloc`` to the last use of any value that may be it (its
memdesc views and sub-views, loop-carried and ``scf.if``-yielded memdescs) or of a ``local_load`` of
it (tt.dot reads its operands where they were loaded from); a buffer used inside a loop it was not
allocated in is live for the whole loop, a loop-carried one too; ``local_dealloc`` is its last use.
Scratch is live during its op. Buffers are placed before lowering (their sizes are in the IR), so a
lowering knows how much memory is free at its op (``Arena.bytes_live``); scratch is placed around
them when the kernel is complete (``finish``). A buffer a lowering adds for itself (not a local_alloc:
a reduction's partials) keeps its own bytes for the whole kernel, as it did before the arena.

When the buffers do not fit, a loop-invariant buffer written from registers and only read through
``local_load`` (attention's q) is written again before each read instead (``rematerialize``): it is
then live only from that read to its reader, at the cost of a copy per iteration.

When the kernel does not fit even so, codegen plans it again with ``stream_dot_operands``: a buffer
written from registers whose loads only tt.dot reads, as operand A or B, gets no bytes at all; the dot
stages it from those registers K chunk by K chunk (lower_dot), in the memory left at the dot.

Reusing bytes needs a barrier between the last read of the old block and the first write of the new
one. Writers of a buffer (local_alloc with a value, local_store, async copies) start with a barrier;
scratch users may not, so after the op that ends a buffer's range a *release* barrier is emitted when
scratch later takes some of its bytes (later in the kernel, or in a later iteration of a loop).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from triton_metal.abi import MAX_THREADGROUP_MEMORY
from triton_metal.codegen.types import BITWIDTH
from triton_metal.errors import check_threadgroup_memory

ALIGN = 16  # every block starts 16-byte aligned: the widest MSL scalar vector (float4) needs it
END = 1 << 62  # "until the kernel ends": ranges of blocks whose op is not in the order
LOOPS = frozenset({"scf.for", "scf.while"})
_TOKEN = re.compile(r"@arena(\d+)\+(\d+)@")  # a byte offset decided in finish(): block, offset in it
_RELEASE = re.compile(r"^(\s*)@release(\d+)@$")


def align_up(n: int, alignment: int = ALIGN) -> int:
    return -(-n // alignment) * alignment


@dataclass
class Block:
    """`size` bytes live over ops [start, end] (inclusive); `offset` once placed."""
    name: str
    size: int
    start: int
    end: int
    offset: int | None = None
    is_buffer: bool = True  # a local_alloc buffer (its writers start with a barrier); else scratch

    def lives_with(self, other: Block) -> bool:
        return self.start <= other.end and other.start <= self.end

    def shares_bytes(self, other: Block) -> bool:
        return self.offset < other.offset + other.size and other.offset < self.offset + self.size


def first_fit(blocks, placed=()) -> int:
    """Give each block of `blocks` the lowest 16-byte aligned offset whose bytes no block living at the
    same time (in `placed` or placed before it) uses; largest first (fewer holes). Returns the end of the
    highest block (the arena's size)."""
    done = list(placed)
    for block in sorted(blocks, key=lambda b: (-b.size, b.start, b.name)):
        offset = 0
        for other in sorted((o for o in done if o.lives_with(block)), key=lambda o: o.offset):
            if offset + block.size <= other.offset:
                break  # the hole below `other` holds it
            offset = max(offset, align_up(other.offset + other.size))
        block.offset = offset
        done.append(block)
    return max((b.offset + b.size for b in done), default=0)


# ---- the op order and the live ranges of buffers -----------------------------------------------------
def _is_memdesc(value) -> bool:
    return value.type.element.startswith("!ttg.memdesc<")


class OpOrder:
    """Ops of a structured kernel body numbered in program order: op -> [first, last], where `last` is
    the number of its last nested op; each op's enclosing op and the ops of its block."""

    def __init__(self, entry_block):
        self.span: dict = {}  # id(op) -> (first, last)
        self.parent: dict = {}  # id(op) -> the op whose region holds it (None at the top)
        self.siblings: dict = {}  # id(op) -> the ops of its block
        self.ops: list = []
        self.count = 0
        self._number(entry_block, None)

    def _number(self, block, parent) -> None:
        for op in block.ops:
            first = self.count
            self.count += 1
            self.ops.append(op)
            self.parent[id(op)] = parent
            self.siblings[id(op)] = block.ops
            for region in op.regions:
                self._number(region, op)
            self.span[id(op)] = (first, self.count - 1)

    def ancestors(self, op):
        parent = self.parent.get(id(op))
        while parent is not None:
            yield parent
            parent = self.parent.get(id(parent))


def is_structured(func) -> bool:
    """Whether the body is one block of nested regions (no cf branches of early returns)."""
    def walk(block):
        return all(not op.successors and all(walk(r) for r in op.regions) for op in block.ops)
    return walk(func.regions[0])


class _Aliases:
    """Union-find over memdesc value ids: the values that may be the same buffer."""

    def __init__(self):
        self.up: dict = {}

    def find(self, v: int) -> int:
        while self.up.get(v, v) != v:
            v = self.up[v]
        return v

    def union(self, values) -> None:
        roots = [self.find(v.id) for v in values if _is_memdesc(v)]
        for r in roots[1:]:
            self.up[r] = roots[0]


def _alias_classes(ops) -> _Aliases:
    """Views share their source's buffer; region arguments, results and yielded values of an op with
    regions may be any of its memdesc operands (merging too much only makes ranges longer)."""
    aliases = _Aliases()
    for op in ops:
        if op.name == "ttg.local_alloc":
            continue
        linked = list(op.operands) + list(op.results)
        for region in op.regions:
            linked += list(region.args)
            if region.ops:
                linked += list(region.ops[-1].operands)
        if any(_is_memdesc(v) for v in op.results) or op.regions:
            aliases.union(linked)
    return aliases


@dataclass
class LiveRange:
    start: int
    end: int
    release_after: object = None  # the op after which the buffer is dead (None: never within the kernel)
    # A buffer written once from registers and only read by local_loads: (local_load, the ops reading its
    # result) for each; such a buffer can be written again at each load instead (Arena.rematerialize).
    loads: list | None = None


def buffer_ranges(func, order: OpOrder) -> dict:
    """local_alloc result id -> LiveRange, for the allocs of the kernel body (not its callees)."""
    aliases = _alias_classes(order.ops)
    allocs: dict = {}  # class root -> [alloc ops]
    for op in order.ops:
        if op.name == "ttg.local_alloc":
            allocs.setdefault(aliases.find(op.results[0].id), []).append(op)
    if not allocs:
        return {}
    uses: dict = {root: [] for root in allocs}  # class root -> ops using a value of the class
    direct: dict = {root: [] for root in allocs}  # class root -> ops with a memdesc operand of the class
    carriers: dict = {root: [] for root in allocs}  # class root -> loops carrying a value of the class
    readers: dict = {}  # local_load result id -> the ops reading it
    # tt.dot reads its operands from the buffer their local_load read (lower_shared.shared_source):
    # the readers of a local_load's result use the buffer too.
    loaded: dict = {}  # local_load result id -> class root
    for op in order.ops:
        for v in op.operands:
            root = aliases.find(v.id) if _is_memdesc(v) else loaded.get(v.id)
            if root not in uses:
                continue
            uses[root].append(op)
            if _is_memdesc(v):
                direct[root].append(op)
                if op.name == "ttg.local_load":
                    loaded[op.results[0].id] = root
                    readers[op.results[0].id] = []
            else:
                readers[v.id].append(op)
        if op.name in LOOPS:
            carried = list(op.results) + [a for r in op.regions for a in r.args]
            for v in carried:
                if _is_memdesc(v) and aliases.find(v.id) in carriers:
                    carriers[aliases.find(v.id)].append(op)
    ranges = {}
    for root, alloc_ops in allocs.items():
        start, end = _extent(order, alloc_ops, uses[root])
        for loop in carriers[root]:
            lfirst, llast = order.span[id(loop)]
            start, end = min(start, lfirst), max(end, llast)
        live = LiveRange(start, end, _release_op(order, alloc_ops[0], end))
        alone = len(alloc_ops) == 1 and not any(aliases.find(v) == root for v in aliases.up)
        if alone and alloc_ops[0].operands and all(op.name == "ttg.local_load" for op in direct[root]):
            live.loads = [(load, readers[load.results[0].id]) for load in direct[root]]
        for a in alloc_ops:
            ranges[a.results[0].id] = live
    return ranges


def _read_only_as_dot_operand(live: LiveRange) -> bool:
    """Whether a buffer written once from registers is only read by local_loads whose results only tt.dot
    reads, as operand A or B (then the dot can stage those registers itself)."""
    if not live.loads:
        return False
    for load, readers in live.loads:
        loaded = load.results[0].id
        if not readers or any(op.name != "tt.dot" or any(v.id == loaded for v in op.operands[2:])
                              for op in readers):
            return False
    return True


def _extent(order: OpOrder, defs, uses) -> tuple:
    """[start, end] from the ops `defs` to the last of `uses`; a use in a loop that does not hold the first
    def is re-run by the loop, so the range covers the whole loop."""
    start = min(order.span[id(d)][0] for d in defs)
    end = max(order.span[id(d)][1] for d in defs)
    for use in uses:
        first, last = order.span[id(use)]
        start, end = min(start, first), max(end, last)
        for loop in order.ancestors(use):
            lfirst, llast = order.span[id(loop)]
            if loop.name in LOOPS and not lfirst <= order.span[id(defs[0])][0] <= llast:
                end = max(end, llast)
    return start, end


def _release_op(order: OpOrder, alloc, end: int):
    """The op, in the alloc's block or one enclosing it, whose span holds the buffer's last use."""
    op = alloc
    while op is not None:
        for sibling in order.siblings[id(op)]:
            first, last = order.span[id(sibling)]
            if first <= end <= last:
                return sibling
        op = order.parent.get(id(op))
    return None


# ---- the arena of one kernel --------------------------------------------------------------------
@dataclass
class Arena:
    """The blocks of one kernel. Without an op order (a kernel with early-return branches, or an
    emitter made without a function) every block lives for the whole kernel."""
    order: OpOrder | None = None
    ranges: dict = field(default_factory=dict)  # local_alloc result id -> LiveRange
    buffers: dict = field(default_factory=dict)  # local_alloc result id -> its placed Block
    late: list = field(default_factory=list)  # scratch and lowerings' own buffers: placed in finish()
    scratch_of: dict = field(default_factory=dict)  # id(op) (or None) -> its scratch Block
    released: dict = field(default_factory=dict)  # release number -> the Blocks dead after that point
    rematerialized: set = field(default_factory=set)  # local_alloc result ids written again at each load
    streamed: set = field(default_factory=set)  # local_alloc result ids their tt.dot stages in K chunks
    size: int = 0

    @classmethod
    def of_function(cls, func, allocs=(), stream_dot_operands: bool = False):
        """Plans the local_alloc ops `allocs` of `func` (a tt.func Op) and the functions it calls. Those of
        the functions (emitted once for all calls) live for the whole kernel. With `stream_dot_operands`,
        the buffers only tt.dot reads (as A or B) get no bytes: the dot stages them from registers."""
        order = OpOrder(func.regions[0]) if is_structured(func) else None
        ranges = buffer_ranges(func, order) if order is not None else {}
        arena = cls(order, ranges)
        if stream_dot_operands:
            arena.streamed = {vid for vid, live in ranges.items() if _read_only_as_dot_operand(live)}
            arena.ranges = {vid: live for vid, live in ranges.items() if vid not in arena.streamed}
        for op in allocs:
            if op.results[0].id in arena.streamed:
                continue
            live = ranges.get(op.results[0].id, LiveRange(0, END))
            arena.buffers[op.results[0].id] = Block(op.results[0].name_hint or "smem", _bytes_of(op.results[0]),
                                                    live.start, live.end)
        arena.size = first_fit(arena.buffers.values())
        if arena.size > MAX_THREADGROUP_MEMORY:
            arena.rematerialize()
        return arena

    def rematerialize(self) -> None:
        """When the buffers do not fit: a buffer written once from registers before a loop and read in
        it (a loop-invariant dot operand, as q in attention) is written again before each read instead,
        so that it is live only from there to its reader. Costs a copy per read: only when it helps."""
        chosen = {vid: live for vid, live in self.ranges.items()
                  if live.loads and any(self._in_loop_without(load, self.order.ops[live.start])
                                        for load, _ in live.loads)}
        blocks = {vid: b for vid, b in self.buffers.items() if vid not in chosen}
        ranges = {vid: live for vid, live in self.ranges.items() if vid not in chosen}
        for vid, live in chosen.items():
            for load, readers in live.loads:
                start, end = _extent(self.order, [load], readers)
                key = load.results[0].id
                ranges[key] = LiveRange(start, end, _release_op(self.order, load, end))
                blocks[key] = Block(f"{self.buffers[vid].name} (again)", self.buffers[vid].size, start, end)
        for b in blocks.values():
            b.offset = None
        size = first_fit(blocks.values())
        if size < self.size:
            self.buffers, self.ranges, self.size = blocks, ranges, size
            self.rematerialized = set(chosen)
        else:
            first_fit(self.buffers.values())  # (the offsets of the plan kept)

    def _in_loop_without(self, op, alloc) -> bool:
        first = self.span(alloc)[0]
        return any(loop.name in LOOPS and not self.span(loop)[0] <= first <= self.span(loop)[1]
                   for loop in self.order.ancestors(op))

    # ---- ranges -----------------------------------------------------------------------------
    def span(self, op) -> tuple:
        """[first, last] of `op` in the order; the whole kernel when it is not in it."""
        if op is None or self.order is None or id(op) not in self.order.span:
            return (0, END)
        return self.order.span[id(op)]

    def bytes_live(self, op) -> int:
        """Bytes up to which blocks living during `op` may reach: a lowering's scratch of at most
        MAX_THREADGROUP_MEMORY minus this fits."""
        first, last = self.span(op)
        probe = Block("", 0, first, last)
        own = self.scratch_of.get(id(op) if op is not None else None)  # (not the op's own scratch)
        reach = max((b.offset + b.size for b in self.buffers.values() if b.lives_with(probe)), default=0)
        return reach + sum(b.size for b in self.late if b is not own and b.lives_with(probe))

    def free_bytes(self, op) -> int:
        return MAX_THREADGROUP_MEMORY - self.bytes_live(op)

    # ---- blocks -----------------------------------------------------------------------------
    def buffer_offset(self, value_id: int) -> int | None:
        block = self.buffers.get(value_id)
        return None if block is None else block.offset

    def buffer_range(self, value_id: int) -> LiveRange | None:
        return self.ranges.get(value_id)

    def own_buffer(self, name: str, nbytes: int) -> str:
        """A buffer a lowering adds (not a local_alloc): its own bytes for the whole kernel, as its
        lowering may write it without a barrier first and read it without one after. Returns the
        offset token."""
        block = Block(name, align_up(nbytes), 0, END, is_buffer=False)
        self.late.append(block)
        return _token(len(self.late) - 1, 0)

    def scratch(self, op, nbytes: int, offset: int) -> str:
        """The offset token of byte `offset` of `op`'s scratch, which is at least `nbytes` long."""
        key = id(op) if op is not None else None
        block = self.scratch_of.get(key)
        if block is None:
            first, last = self.span(op)
            block = self.scratch_of[key] = Block(f"scratch of {getattr(op, 'name', 'the kernel')}", 0, first, last,
                                                 is_buffer=False)
            self.late.append(block)
        block.size = max(block.size, align_up(max(nbytes, 1)))
        return _token(self.late.index(block), offset)

    def release_point(self, op) -> str | None:
        """A placeholder line to emit after lowering `op` when it ends buffers' ranges, else None."""
        dead = [self.buffers[vid] for vid, live in self.ranges.items() if live.release_after is op]
        if not dead:
            return None
        number = len(self.released)
        self.released[number] = (dead, op)
        return f"@release{number}@"

    def _reused(self, dead, op) -> bool:
        """Whether scratch takes bytes of the `dead` buffers after `op`: later in the kernel, or in a
        later iteration of a loop around `op`."""
        loops = [self.span(loop) for loop in self.order.ancestors(op) if loop.name in LOOPS] if self.order else []
        for late in self.late:
            if not late.size or late.is_buffer:
                continue
            for b in dead:
                later = late.start > b.end or any(first <= late.start <= last for first, last in loops)
                if later and late.shares_bytes(b):
                    return True
        return False

    # ---- the end of the kernel --------------------------------------------------------------
    def finish(self, source: str, barrier: str) -> tuple:
        """Places the late blocks, checks the total against Metal's limit, and writes the offsets and
        the release barriers (`barrier`, a statement) into `source`. Returns (source, arena bytes)."""
        size = first_fit([b for b in self.late if b.size], self.buffers.values())
        self.size = align_up(max(size, self.size))
        check_threadgroup_memory(self.size)
        source = _TOKEN.sub(lambda m: str(self.late[int(m.group(1))].offset + int(m.group(2))), source)
        lines = []
        for line in source.split("\n"):
            m = _RELEASE.match(line)
            if not m:
                lines.append(line)
                continue
            dead, op = self.released[int(m.group(2))]
            if self._reused(dead, op) and not (lines and lines[-1].strip() == barrier):
                names = ", ".join(b.name for b in dead)
                lines.append(f"{m.group(1)}{barrier}  // {names}: last use; scratch reuses the bytes")
        return "\n".join(lines), self.size


def _token(block: int, offset: int) -> str:
    return f"@arena{block}+{offset}@"


_MEMDESC = re.compile(r"^!ttg\.memdesc<((?:[0-9]+x)*)([a-z][A-Za-z0-9]*)\s*(,.*)?>$")  # f8E5M2: upper case


def memdesc_type(value) -> tuple:
    """(shape, element type) of a `!ttg.memdesc<...>` value."""
    m = _MEMDESC.match(value.type.element.strip())
    if not m:
        raise ValueError(f"not a memdesc type: {value.type.element}")
    dims = tuple(int(d) for d in m.group(1).split("x") if d)
    return dims, m.group(2)


def element_bytes(element: str) -> int:
    return max(BITWIDTH[element] // 8, 1)


def _bytes_of(value) -> int:
    shape, element = memdesc_type(value)
    numel = 1
    for n in shape:
        numel *= n
    return align_up(numel * element_bytes(element))
