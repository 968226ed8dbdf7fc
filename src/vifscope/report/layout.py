"""A small layered (Sugiyama-style) layout of the topology graph, left to right. Pure.

Columns are the node layers (host, uplinks, switches, vifs, domains; empty ones dropped).
The order inside each column comes from barycenter sweeps, keeping the order with the fewest
edge crossings seen (counted exactly between adjacent columns). Then, starting from the
tallest column, each node's y is pulled toward the mean y of its already placed neighbours
while keeping a minimum gap, so a domain sits beside its vifs and a bridge beside its ports.
Deterministic: the same topology always gets the same picture.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vifscope.report.topology import Topology

COLUMN_GAP = 230.0  # px between columns: room for a label like "vs-isobr (isolated)"
ROW_GAP = 36.0  # px between nodes of one column
MARGIN = 40.0
SWEEPS = 8


@dataclass(frozen=True)
class Layout:
    width: float
    height: float
    positions: tuple[tuple[str, float, float], ...]  # (node id, x, y): the node's centre

    def position(self, node_id: str) -> tuple[float, float] | None:
        return next(((x, y) for nid, x, y in self.positions if nid == node_id), None)


Columns = list[list[str]]
Neighbours = dict[str, list[str]]


def _columns(topo: Topology) -> Columns:
    by_layer: dict[int, list[str]] = defaultdict(list)
    for node in sorted(topo.nodes, key=lambda n: (n.layer, n.label, n.id)):
        by_layer[node.layer].append(node.id)
    return [by_layer[layer] for layer in sorted(by_layer)]


def _neighbours(topo: Topology) -> Neighbours:
    out: Neighbours = defaultdict(list)
    for e in topo.edges:
        out[e.source].append(e.target)
        out[e.target].append(e.source)
    return out


def _inversions(values: list[int], size: int) -> int:
    """Pairs i < j with values[i] > values[j] (Fenwick tree: O(n log n))."""
    tree = [0] * (size + 1)
    count = 0
    for seen, v in enumerate(values):
        i = v + 1
        not_greater = 0
        while i > 0:
            not_greater += tree[i]
            i -= i & -i
        count += seen - not_greater
        i = v + 1
        while i <= size:
            tree[i] += 1
            i += i & -i
    return count


def crossings(left: Sequence[str], right: Sequence[str], nbrs: Neighbours) -> int:
    """Edge crossings between two adjacent columns in these orders."""
    where = {nid: i for i, nid in enumerate(right)}
    ends = sorted((i, where[m]) for i, nid in enumerate(left) for m in nbrs.get(nid, ()) if m in where)
    return _inversions([r for _, r in ends], len(right))


def total_crossings(cols: Columns, nbrs: Neighbours) -> int:
    return sum(crossings(cols[i], cols[i + 1], nbrs) for i in range(len(cols) - 1))


def _reorder(col: list[str], ref: list[str], nbrs: Neighbours) -> list[str]:
    """Sort a column by the mean index of each node's neighbours in ``ref`` (stable)."""
    where = {nid: i for i, nid in enumerate(ref)}
    scale = len(ref) / max(1, len(col))

    def key(item: tuple[int, str]) -> float:
        i, nid = item
        idx = [where[m] for m in nbrs.get(nid, ()) if m in where]
        return sum(idx) / len(idx) if idx else i * scale

    return [nid for _, nid in sorted(enumerate(col), key=key)]


def order_columns(cols: Columns, nbrs: Neighbours) -> Columns:
    """Barycenter sweeps down and up; the order with the fewest crossings wins."""
    best, best_n = [list(c) for c in cols], total_crossings(cols, nbrs)
    cur = [list(c) for c in cols]
    for _ in range(SWEEPS):
        if best_n == 0:
            break
        for i in range(1, len(cur)):
            cur[i] = _reorder(cur[i], cur[i - 1], nbrs)
        for i in range(len(cur) - 2, -1, -1):
            cur[i] = _reorder(cur[i], cur[i + 1], nbrs)
        n = total_crossings(cur, nbrs)
        if n < best_n:
            best, best_n = [list(c) for c in cur], n
    return best


def _place_column(col: list[str], ys: dict[str, float], nbrs: Neighbours) -> None:
    """Each node as near the mean y of its placed neighbours as the gap allows, in order."""
    last = MARGIN - ROW_GAP
    for i, nid in enumerate(col):
        placed = [ys[m] for m in nbrs.get(nid, ()) if m in ys]
        want = sum(placed) / len(placed) if placed else last + ROW_GAP if i else MARGIN
        last = max(want, last + ROW_GAP)
        ys[nid] = last


def layout(topo: Topology) -> Layout:
    """Positions for every node (x by column, y by order and neighbours)."""
    nbrs = _neighbours(topo)
    cols = order_columns(_columns(topo), nbrs)
    if not cols:
        return Layout(2 * MARGIN, 2 * MARGIN, ())
    tallest = max(range(len(cols)), key=lambda i: (len(cols[i]), -i))
    ys: dict[str, float] = {nid: MARGIN + i * ROW_GAP for i, nid in enumerate(cols[tallest])}
    for i in sorted(range(len(cols)), key=lambda i: (abs(i - tallest), i)):
        if i != tallest:
            _place_column(cols[i], ys, nbrs)
    xs = {nid: MARGIN + i * COLUMN_GAP for i, col in enumerate(cols) for nid in col}
    order = [nid for col in cols for nid in col]
    positions = tuple((nid, xs[nid], round(ys[nid], 1)) for nid in order)
    height = max(y for _, _, y in positions) + MARGIN
    width = MARGIN * 2 + COLUMN_GAP * (len(cols) - 1)
    return Layout(width, height, positions)


def layout_dict(lay: Layout) -> dict[str, Any]:
    return {
        "width": lay.width,
        "height": lay.height,
        "positions": {nid: {"x": x, "y": y} for nid, x, y in lay.positions},
    }
