"""Static memory plan: every activation tensor gets an offset in one arena, decided at compile time.

Tensors that must share memory (a RESHAPE output is its input) form one buffer. A buffer lives from
the op that writes it to the last op that reads it (graph inputs from the start, graph outputs to the
end). Buffers whose lifetimes do not overlap may share bytes; an op's output may reuse its input's
bytes when the kernel allows it (element-wise kernels) and that input dies at that op. Each op's
scratch is a buffer living during that op only. Placement is greedy: largest first, lowest offset
that fits (the same idea as TFLM's greedy planner, but done here, once, ahead of time).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kws.compile.ir import Graph
from kws.compile.lower import Lowered

ALIGN = 8


@dataclass
class Buffer:
    tensors: list[int]
    size: int
    first: int
    last: int
    offset: int = -1
    pinned: bool = False        # graph input/output: never overwritten in place
    scratch_of: int | None = None
    members_inplace: list[int] = field(default_factory=list)


@dataclass
class Plan:
    arena_bytes: int
    offsets: dict[int, int]            # tensor index -> arena offset
    scratch: dict[int, int]            # op index -> arena offset of its scratch
    buffers: list[Buffer]
    live_bytes: list[int]              # per op: bytes of buffers live during it
    state_offsets: dict[str, int]      # variable key -> offset in the state buffer
    state_bytes: int


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan(graph: Graph, lowered: list[Lowered]) -> Plan:
    n_ops = len(graph.ops)
    needs = set()
    for op in graph.ops:
        for i in op.inputs + op.outputs:
            if i >= 0:
                t = graph.tensors[i]
                if not t.is_const and t.dtype != "resource":
                    needs.add(i)
    needs |= set(graph.inputs) | set(graph.outputs)

    parent = {i: i for i in needs}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for low in lowered:
        if low.alias is not None:
            a, b = low.alias
            parent[find(b)] = find(a)

    first = {i: n_ops for i in needs}
    last = {i: -1 for i in needs}
    for op in graph.ops:
        for i in op.inputs:
            if i in needs:
                last[i] = max(last[i], op.index)
                first[i] = min(first[i], op.index)
        for i in op.outputs:
            if i in needs:
                first[i] = min(first[i], op.index)
                last[i] = max(last[i], op.index)
    for i in graph.inputs:
        first[i] = -1
    for i in graph.outputs:
        last[i] = n_ops

    groups: dict[int, Buffer] = {}
    for i in sorted(needs):
        r = find(i)
        size = graph.tensors[i].nbytes
        b = groups.get(r)
        if b is None:
            groups[r] = Buffer([i], size, first[i], last[i])
        else:
            b.tensors.append(i)
            b.size = max(b.size, size)
            b.first = min(b.first, first[i])
            b.last = max(b.last, last[i])
    for i in list(graph.inputs) + list(graph.outputs):
        groups[find(i)].pinned = True

    # In place: an element-wise op may write its output over an input that dies at this op.
    for low, op in zip(lowered, graph.ops):
        for a, b in low.inplace:
            if a not in needs or b not in needs:
                continue
            ra, rb = find(a), find(b)
            if ra == rb:
                continue
            ga, gb = groups[ra], groups[rb]
            if ga.pinned or gb.pinned or ga.last != op.index or gb.first != op.index or gb.size > ga.size:
                continue
            parent[rb] = ra
            ga.tensors += gb.tensors
            ga.last = gb.last
            ga.members_inplace.append(b)
            del groups[rb]

    buffers = list(groups.values())
    for low, op in zip(lowered, graph.ops):
        if low.scratch_bytes > 0:
            buffers.append(Buffer([], low.scratch_bytes, op.index, op.index, scratch_of=op.index))

    placed: list[Buffer] = []
    for b in sorted(buffers, key=lambda b: (-b.size, b.first, b.tensors[:1])):
        overlapping = sorted((p for p in placed if not (p.last < b.first or b.last < p.first)),
                             key=lambda p: p.offset)
        offset = 0
        for p in overlapping:
            if offset + b.size <= p.offset:
                break
            offset = max(offset, _align(p.offset + p.size))
        b.offset = offset
        placed.append(b)

    arena = _align(max((b.offset + b.size for b in buffers), default=0))
    offsets = {i: b.offset for b in buffers for i in b.tensors}
    scratch = {b.scratch_of: b.offset for b in buffers if b.scratch_of is not None}
    live = [sum(b.size for b in buffers if b.first <= k <= b.last) for k in range(n_ops)]

    state_offsets, at = {}, 0
    for key, v in graph.variables.items():
        state_offsets[key] = at
        at = _align(at + v.nbytes)
    return Plan(arena, offsets, scratch, buffers, live, state_offsets, at)


def check(graph: Graph, p: Plan) -> None:
    """Assert the plan's invariant: buffers that are live at the same time never overlap."""
    bs = p.buffers
    for x in range(len(bs)):
        for y in range(x + 1, len(bs)):
            a, b = bs[x], bs[y]
            if a.last < b.first or b.last < a.first:
                continue
            if a.offset < b.offset + b.size and b.offset < a.offset + a.size:
                raise AssertionError(f"memory plan overlap: tensors {a.tensors} and {b.tensors}")
