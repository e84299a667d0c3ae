"""The graph of a function body's blocks joined by branches (cf.br / cf.cond_br), as lower_control
needs it to rebuild nested ``if``s: a topological order, dominators, and which blocks several
edges reach (*merges*). Nodes are any objects (compared by identity) with a successor function.
"""
from __future__ import annotations


class BranchCycle(ValueError):
    """The graph has a cycle (Triton builds loops as scf ops, so its early returns never do)."""

    def __init__(self, node):
        super().__init__("branch cycle")
        self.node = node


class BranchGraph:

    def __init__(self, entry, successors):
        self.entry = entry
        self._succ = {}  # id -> successor nodes, one per edge (cond_br may name a block twice)
        self.order = self._reverse_postorder(entry, successors)
        self.index = {id(n): k for k, n in enumerate(self.order)}
        self.in_edges = {id(n): 0 for n in self.order}
        for n in self.order:
            for s in self._succ[id(n)]:
                self.in_edges[id(s)] += 1
        self.idom = {id(entry): None}
        preds = {id(n): [] for n in self.order}
        for n in self.order:
            for s in self._succ[id(n)]:
                preds[id(s)].append(n)
        for n in self.order[1:]:  # acyclic: every predecessor comes first in this order
            dom = preds[id(n)][0]
            for p in preds[id(n)][1:]:
                dom = self._common_dominator(dom, p)
            self.idom[id(n)] = dom
        self.children = {id(n): [] for n in self.order}
        for n in self.order[1:]:
            self.children[id(self.idom[id(n)])].append(n)

    def _reverse_postorder(self, entry, successors):
        post, on_path, stack = [], set(), []

        def enter(node):
            on_path.add(id(node))
            self._succ[id(node)] = list(successors(node))
            stack.append((node, iter(self._succ[id(node)])))

        enter(entry)
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                on_path.discard(id(node))
                post.append(node)
            elif id(nxt) in on_path:
                raise BranchCycle(nxt)
            elif id(nxt) not in self._succ:
                enter(nxt)
        return post[::-1]

    def _common_dominator(self, a, b):
        while a is not b:
            while self.index[id(a)] > self.index[id(b)]:
                a = self.idom[id(a)]
            while self.index[id(b)] > self.index[id(a)]:
                b = self.idom[id(b)]
        return a

    def successors(self, node) -> list:
        return self._succ[id(node)]

    def is_merge(self, node) -> bool:
        return self.in_edges[id(node)] > 1

    def merges_under(self, node) -> list:
        """The merges `node` immediately dominates, in topological order: emitted after its branch."""
        return [c for c in self.children[id(node)] if self.is_merge(c)]

    def dominated(self, node) -> set:
        """ids of the blocks `node` dominates (itself included)."""
        out, stack = set(), [node]
        while stack:
            n = stack.pop()
            out.add(id(n))
            stack += self.children[id(n)]
        return out

    def needs_flag(self, node, merge) -> bool:
        """Whether control can reach the place of `merge` (after the code of `node`, its dominator,
        and of the merges under `node` before it) without having branched to `merge`: through a
        merge under `node` that comes after it, or out of `node`'s blocks to an outer merge."""
        before = self.dominated(node)
        for later in self.merges_under(node):
            if self.index[id(later)] >= self.index[id(merge)]:
                before -= self.dominated(later)
        seen, stack = set(), list(self.successors(node))
        while stack:
            n = stack.pop()
            if n is merge or id(n) in seen:
                continue
            if id(n) not in before:
                return True
            seen.add(id(n))
            stack += self.successors(n)
        return False

    def always_returns(self, node) -> bool:
        """Whether every path from `node` returns before reaching a merge: the code of `node` then
        never falls through, so the other side of its branch needs no `else`."""
        if self.is_merge(node):
            return False
        stack = [node]
        while stack:
            n = stack.pop()
            for s in self.successors(n):
                if self.is_merge(s):
                    return False
                stack.append(s)
        return True
