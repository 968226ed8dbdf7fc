"""``vifscope graph``: the layered layout, and the Mermaid / Graphviz renderings (the DOT is
rendered by the real Graphviz ``dot``)."""

from __future__ import annotations

import itertools
import re
import subprocess
from collections import defaultdict
from xml.etree import ElementTree

import pytest

from tests.unit.ipjson import bridge, snapshot, tap
from tests.unit.test_topology import host, vif
from vifscope.bind.join import bind
from vifscope.report.graph import graph_document, render_dot, render_mermaid
from vifscope.report.layout import ROW_GAP, crossings, layout, order_columns, total_crossings
from vifscope.report.topology import EdgeKind, Node, NodeKind, Topology, build_topology

SVG = "{http://www.w3.org/2000/svg}"


def _topo() -> Topology:
    snap = host()
    return build_topology(snap, bind(snap))


def test_crossings_are_counted_exactly() -> None:
    nbrs = {"a": ["y"], "b": ["x"], "x": ["b"], "y": ["a"]}
    assert crossings(["a", "b"], ["x", "y"], nbrs) == 1
    assert crossings(["a", "b"], ["y", "x"], nbrs) == 0
    # K(2,2) always crosses once; three parallel edges never
    full = {"a": ["x", "y"], "b": ["x", "y"]}
    assert crossings(["a", "b"], ["x", "y"], full) == 1


def test_ordering_removes_avoidable_crossings() -> None:
    # two switches whose vifs were listed in the opposite order
    nbrs = defaultdict(list)
    for s, v in (("s1", "v3"), ("s1", "v4"), ("s2", "v1"), ("s2", "v2")):
        nbrs[s].append(v)
        nbrs[v].append(s)
    cols = [["s1", "s2"], ["v1", "v2", "v3", "v4"]]
    assert total_crossings(cols, nbrs) == 4
    assert total_crossings(order_columns(cols, nbrs), nbrs) == 0


def test_layout_places_every_node_without_overlap() -> None:
    topo = _topo()
    lay = layout(topo)
    placed = {nid: (x, y) for nid, x, y in lay.positions}
    assert set(placed) == {n.id for n in topo.nodes}
    columns: dict[float, list[float]] = defaultdict(list)
    for x, y in placed.values():
        columns[x].append(y)
        assert 0 <= x <= lay.width and 0 <= y <= lay.height
    for ys in columns.values():
        ys.sort()
        assert all(b - a >= ROW_GAP - 0.01 for a, b in itertools.pairwise(ys))
    # columns run left to right in layer order: host first, domains last
    xs = {n.kind: placed[n.id][0] for n in topo.nodes}
    assert xs[NodeKind.HOST] < xs[NodeKind.UPLINK] < xs[NodeKind.BRIDGE] < xs[NodeKind.VIF] < xs[NodeKind.DOMAIN]
    assert layout(topo) == lay  # deterministic


def test_layout_of_the_test_host_has_no_crossings() -> None:
    topo = _topo()
    lay = layout(topo)
    order: dict[float, list[str]] = defaultdict(list)
    for nid, x, _y in sorted(lay.positions, key=lambda p: (p[1], p[2])):
        order[x].append(nid)
    nbrs = defaultdict(list)
    for e in topo.edges:
        nbrs[e.source].append(e.target)
        nbrs[e.target].append(e.source)
    assert total_crossings([order[x] for x in sorted(order)], nbrs) == 0


def _odd_names() -> Topology:
    """Names with every character DOT and Mermaid treat specially."""
    snap = snapshot([vif('we"b<1>#&\\x', "bridge", "br0", "vnet0")], [bridge("br0"), tap("vnet0")])
    return build_topology(snap, bind(snap))


@pytest.mark.parametrize("topo", [_topo(), _odd_names()], ids=["host", "odd-names"])
def test_dot_renders_with_graphviz(topo: Topology) -> None:
    text = render_dot(topo)
    proc = subprocess.run(["dot", "-Tsvg"], input=text, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    root = ElementTree.fromstring(proc.stdout)
    groups = [g for g in root.iter(f"{SVG}g") if g.get("class") in ("node", "edge")]
    assert sum(g.get("class") == "node" for g in groups) == len(topo.nodes)
    assert sum(g.get("class") == "edge" for g in groups) == len(topo.edges)
    texts = " | ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    for n in topo.nodes:
        assert n.label in texts


def test_dot_marks_broken_and_actual_edges() -> None:
    text = render_dot(_topo())
    assert len(re.findall(r"style=dashed color=\"#d62728\" label=\"declared, not plugged\"", text)) == 3
    assert len(re.findall(r"style=bold", text)) == 1  # the misbound vif's real bridge


def test_mermaid_defines_each_node_once_and_escapes_labels() -> None:
    topo = _odd_names()
    text = render_mermaid(topo)
    assert text.startswith("flowchart LR\n")
    defined = re.findall(r"^  (n\d+)[\[\(\{>]", text, flags=re.M)
    assert len(defined) == len(set(defined)) == len(topo.nodes)
    line = next(x for x in text.splitlines() if "we" in x and "b" in x and "n" in x and "#" in x)
    assert '"' not in line.split('"', 1)[1].rsplit('"', 1)[0]  # no raw quote inside the label
    assert "#34;" in line and "#60;" in line and "#62;" in line


def test_mermaid_styles_every_status() -> None:
    topo = _topo()
    text = render_mermaid(topo)
    for status in {n.status for n in topo.nodes}:
        assert f"classDef st_{status} " in text
    broken = sum(1 for e in topo.edges if e.state == "broken" and e.kind is EdgeKind.DECLARED)
    assert text.count("-.->|") == broken


def test_json_document_carries_the_layout() -> None:
    snap = host()
    bindings = bind(snap)
    topo = build_topology(snap, bindings)
    doc = graph_document(snap, bindings, topo)
    assert set(doc["layout"]["positions"]) == {n["id"] for n in doc["nodes"]}
    assert isinstance(topo.nodes[0], Node)
