"""Branch graphs (early returns) rebuilt as nested ifs: the graph analysis, and random acyclic
graphs emitted by lower_control and run on the simulator against a walk of the graph in Python."""
import itertools
import random
import types

import numpy as np
import pytest
from triton_metal.codegen.branch_graph import BranchCycle, BranchGraph
from triton_metal.codegen.emitter import LOWERINGS, KernelEmitter, Var
from triton_metal.codegen.ir_reader import Block, Op, Value
from triton_metal.codegen.ops import lower_control
from triton_metal.codegen.types import parse_type


class Node:
    def __init__(self, name):
        self.name, self.succ = name, []


def graph(edges: str):
    """Nodes from 'a>b a>c b>d ...'; returns (entry, {name: node})."""
    nodes = {}
    for edge in edges.split():
        src, dst = edge.split(">")
        nodes.setdefault(src, Node(src)).succ.append(nodes.setdefault(dst, Node(dst)))
    return nodes[edges.split(">")[0]], nodes


def test_dominators_and_merges():
    entry, n = graph("a>b a>c b>d b>e c>f d>f")  # e returns; f joins d and c
    g = BranchGraph(entry, lambda x: x.succ)
    assert g.order[0] is entry and g.order.index(n["f"]) > g.order.index(n["d"])
    assert g.idom[id(n["f"])] is n["a"] and g.idom[id(n["e"])] is n["b"]
    assert g.merges_under(n["a"]) == [n["f"]] and not g.is_merge(n["e"])
    assert not g.needs_flag(n["a"], n["f"])  # every path from a that does not return reaches f
    assert g.always_returns(n["e"]) and not g.always_returns(n["b"])


def test_flag_when_a_path_skips_the_merge():
    # b's merge d is reached from c, but c can also go on to a's merge e: control may fall through
    # d's place without going to d.
    entry, n = graph("a>b a>e b>c b>d c>d c>e d>e")
    g = BranchGraph(entry, lambda x: x.succ)
    assert g.merges_under(n["b"]) == [n["d"]]
    assert g.needs_flag(n["b"], n["d"])
    assert not g.needs_flag(n["a"], n["e"])


def test_cycles_are_detected():
    entry, n = graph("a>b b>c c>b")
    with pytest.raises(BranchCycle) as info:
        BranchGraph(entry, lambda x: x.succ)
    assert info.value.node is n["b"]


# ---- random graphs on the simulator ---------------------------------------------------------

_ids = itertools.count(1 << 40)


def _value(ctype_text="i32"):
    return Value(next(_ids), parse_type(ctype_text))


def _op(name, operands=(), text=""):
    return Op(name, None, list(operands), [], [], text=text)


def random_graph(rng: random.Random, size: int):
    """Blocks 0..size-1 in topological order: cf.br / cf.cond_br to later blocks, or tt.return.
    Each block after the first may take one i32 argument; each edge passes a distinct constant.
    Returns (blocks, description for the Python walk)."""
    blocks = [Block([_value()] if k and rng.random() < 0.5 else []) for k in range(size)]
    spec, edge_value, conds = [], itertools.count(1), 0
    for k, block in enumerate(blocks):
        block.ops.append(_op("test.visit", block.args, text=str(k)))
        kind = "return" if k == size - 1 or rng.random() < 0.2 else rng.choice(["br", "cond_br", "cond_br"])
        targets = [rng.randrange(k + 1, size) for _ in range({"return": 0, "br": 1, "cond_br": 2}[kind])]
        edges = [(t, next(edge_value) if blocks[t].args else None) for t in targets]
        operands = [[_value()] if v is not None else [] for _, v in edges]
        term = _op({"return": "tt.return", "br": "cf.br", "cond_br": "cf.cond_br"}[kind])
        term.successors = [(blocks[t], ops) for (t, _), ops in zip(edges, operands)]
        cond = None
        if kind == "cond_br":
            cond, conds = conds, conds + 1
            term.operands = [_value("i1")]
        block.ops.append(term)
        spec.append((kind, edges, cond, term.operands[:1], operands))
    return blocks, spec, conds


def walk(spec, cond_values):
    """What the blocks store: trace[k] = 1000 + argument (or 1) for every block visited."""
    trace, k, arg = [0] * len(spec), 0, None
    while True:
        trace[k] = 1 if arg is None else 1000 + arg
        kind, edges, cond, _, _ = spec[k]
        if kind == "return":
            return trace
        k, arg = edges[0] if kind == "br" or cond_values[cond] else edges[1]


def emit_kernel(blocks, spec, nconds):
    em = KernelEmitter("branch_graph", types.SimpleNamespace(num_warps=1))
    for kind, edges, cond, cond_operand, operands in spec:
        if cond is not None:
            em.vars[cond_operand[0].id] = Var(f"(conds[{cond}] != 0)", "bool")
        for (_, v), ops in zip(edges, operands):
            for value in ops:
                em.vars[value.id] = Var(str(v), "int")
    lower_control.lower_body(em, blocks[0])
    return "\n".join([
        "#include <metal_stdlib>", "using namespace metal;",
        "kernel void branch_graph(device int* all_conds [[buffer(0)]], device int* all_trace [[buffer(1)]],",
        "                         uint3 program_id [[threadgroup_position_in_grid]]) {",
        f"    device int* conds = all_conds + program_id.x * {max(nconds, 1)};",
        f"    device int* trace = all_trace + program_id.x * {len(blocks)};",
        *em.lines, "}", ""])


def _visit(em, op):
    arg = em.var(op.operands[0]).name if op.operands else None
    em.emit(f"trace[{op.text}] = {f'1000 + {arg}' if arg else '1'};")


SEEDS = range(24)  # seeds 13, 15 and 16 need reach_* flags


@pytest.mark.parametrize("seed", SEEDS)
def test_random_branch_graphs_run_as_their_walk(seed, monkeypatch):
    from triton_metal.sim import build_kernel
    monkeypatch.setitem(LOWERINGS, "test.visit", _visit)
    rng = random.Random(seed)
    blocks, spec, nconds = random_graph(rng, rng.randrange(6, 13))
    msl = emit_kernel(blocks, spec, nconds)
    combos = np.array(list(itertools.product([0, 1], repeat=nconds)) or [[0]], np.int32)
    trace = np.zeros((len(combos), len(blocks)), np.int32)
    build_kernel(msl, "branch_graph").dispatch((len(combos), 1, 1), (1, 1, 1),
                                               {0: combos.ctypes.data, 1: trace.ctypes.data})
    expected = np.array([walk(spec, c) for c in combos], np.int32)
    np.testing.assert_array_equal(trace, expected, err_msg=msl)


def test_random_graphs_include_flags_and_arguments(monkeypatch):
    """The seeds above cover the guarded merges and block arguments, not only if/else trees."""
    monkeypatch.setitem(LOWERINGS, "test.visit", _visit)
    texts = []
    for seed in SEEDS:
        rng = random.Random(seed)
        blocks, spec, nconds = random_graph(rng, rng.randrange(6, 13))
        texts.append(emit_kernel(blocks, spec, nconds))
    assert any("reach_bb" in t for t in texts)
    assert any("1000 + " in t for t in texts)


def test_a_branch_cycle_is_refused_from_the_catalog():
    from triton_metal.errors import UnsupportedOperationError
    from triton_metal.refusals import refusal
    a, b = Block([]), Block([])
    for src, dst in ((a, b), (b, a)):
        term = _op("cf.br")
        term.successors = [(dst, [])]
        src.ops.append(term)
    em = KernelEmitter("cycle", types.SimpleNamespace(num_warps=1))
    with pytest.raises(UnsupportedOperationError) as info:
        lower_control.lower_body(em, a)
    assert str(info.value).split("\n")[0] == refusal("branch_cycle").message()
