"""The host's virtual network as a graph document: Mermaid and Graphviz text, and the JSON
topology plus layout that ``vifscope graph --format json`` and the API's ``/api/v1/graph`` share.
Pure functions of a Topology.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vifscope.report.layout import layout, layout_dict
from vifscope.report.topology import Edge, EdgeKind, Node, NodeKind, Topology, topology_dict

# Fill colours by status (vif verdicts, domain states, switch/uplink states): red is broken.
COLOURS: dict[str, str] = {
    "bound": "#7fd18b",
    "up": "#cfe8d3",
    "running": "#dfe7f5",
    "down": "#f7c266",
    "missing": "#f08080",
    "detached": "#f08080",
    "misbound": "#f08080",
    "unverified": "#b9c6e4",
    "unknown": "#e4e4e4",
    "inactive": "#d9d9d9",
    "shutoff": "#d9d9d9",
}
DEFAULT_COLOUR = "#eeeeee"
EDGE_STYLE: dict[str, tuple[str, str]] = {  # state → (dot style, dot colour)
    "ok": ("solid", "#555555"),
    "broken": ("dashed", "#d62728"),
    "inactive": ("dotted", "#999999"),
    "unknown": ("dotted", "#555555"),
}
DOT_SHAPES: dict[NodeKind, str] = {
    NodeKind.HOST: "box3d",
    NodeKind.UPLINK: "cds",
    NodeKind.BRIDGE: "box",
    NodeKind.OVS_BRIDGE: "box",
    NodeKind.NETWORK: "folder",
    NodeKind.MACVTAP: "trapezium",
    NodeKind.VIF: "ellipse",
    NodeKind.DOMAIN: "component",
}
MERMAID_SHAPES: dict[NodeKind, tuple[str, str]] = {
    NodeKind.HOST: ("{{", "}}"),
    NodeKind.UPLINK: ("([", "])"),
    NodeKind.BRIDGE: ("[", "]"),
    NodeKind.OVS_BRIDGE: ("[", "]"),
    NodeKind.NETWORK: ("[(", ")]"),
    NodeKind.MACVTAP: ("[/", "\\]"),
    NodeKind.VIF: ("(", ")"),
    NodeKind.DOMAIN: ("[[", "]]"),
}


def _short_ids(topo: Topology) -> dict[str, str]:
    """Node ids hold UUIDs and colons: n0, n1... are safe in both languages."""
    return {n.id: f"n{i}" for i, n in enumerate(topo.nodes)}


def _caption(n: Node) -> str:
    return f"{n.label} ({n.status})" if n.kind is not NodeKind.HOST else n.label


def _edge_label(e: Edge) -> str:
    if e.kind is EdgeKind.ACTUAL:
        return "actually here"
    if e.state == "broken":
        return "declared, not plugged"
    return "routed" if e.kind is EdgeKind.ROUTED else ""


def _dot_quote(text: str) -> str:
    """A DOT string; a NUL (which ends Graphviz's scan of the file) becomes U+FFFD."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\0", "\ufffd") + '"'


def render_dot(topo: Topology) -> str:
    ids = _short_ids(topo)
    lines = ["digraph vifscope {", "  rankdir=LR;", '  node [style=filled fontname="Helvetica" fontsize=10];']
    for n in topo.nodes:
        attrs = f"label={_dot_quote(_caption(n))} shape={DOT_SHAPES[n.kind]}"
        lines.append(f"  {ids[n.id]} [{attrs} fillcolor={_dot_quote(COLOURS.get(n.status, DEFAULT_COLOUR))}];")
    for layer in sorted({n.layer for n in topo.nodes}):
        same = " ".join(f"{ids[n.id]};" for n in topo.nodes if n.layer == layer)
        lines.append(f"  {{ rank=same; {same} }}")
    for e in topo.edges:
        style, colour = EDGE_STYLE.get(e.state, EDGE_STYLE["ok"])
        if e.kind is EdgeKind.ACTUAL:
            style, colour = "bold", "#d62728"
        label = f" label={_dot_quote(_edge_label(e))}" if _edge_label(e) else ""
        lines.append(f"  {ids[e.source]} -> {ids[e.target]} [style={style} color={_dot_quote(colour)}{label}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    """Mermaid labels are quoted; quotes, markup and control characters become entity codes
    (a newline in a name would otherwise end the statement: a domain name can hold one)."""
    return "".join(f"#{ord(c)};" if c in '"<>#&' or not c.isprintable() else c for c in text)


def render_mermaid(topo: Topology) -> str:
    ids = _short_ids(topo)
    lines = ["flowchart LR"]
    for n in topo.nodes:
        left, right = MERMAID_SHAPES[n.kind]
        lines.append(f'  {ids[n.id]}{left}"{_mermaid_text(_caption(n))}"{right}')
    for e in topo.edges:
        label = _edge_label(e)
        arrow = "==>" if e.kind is EdgeKind.ACTUAL else ("-.->" if e.state != "ok" else "-->")
        text = f'|"{_mermaid_text(label)}"|' if label else ""
        lines.append(f"  {ids[e.source]} {arrow}{text} {ids[e.target]}")
    statuses = sorted({n.status for n in topo.nodes})
    for status in statuses:
        lines.append(f"  classDef st_{status} fill:{COLOURS.get(status, DEFAULT_COLOUR)},stroke:#333")
        members = ",".join(ids[n.id] for n in topo.nodes if n.status == status)
        lines.append(f"  class {members} st_{status}")
    return "\n".join(lines) + "\n"


def graph_document(snap: Any, bindings: Any, topo: Topology) -> dict[str, Any]:
    """The JSON topology plus the layout the web page uses (one shape for graph and the API)."""
    doc = topology_dict(snap, bindings, topo)
    doc["layout"] = layout_dict(layout(topo))
    return doc


RENDERERS: dict[str, Callable[[Topology], str]] = {"mermaid": render_mermaid, "dot": render_dot}
