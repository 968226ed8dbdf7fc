"""The vifscope DSCP-mark metadata element of a domain: render, parse, read. Its own element
(``https://vifscope.dev/xmlns/qos-mark/1``, key ``vifscope-mark``) beside the rates' ``<qos>``:
``qos set`` rewrites the rates' element whole, and the mark must survive that (and vice versa).

    <marks><vif mac='52:54:00:..' dscp='46'/></marks>
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

MARK_NS = "https://vifscope.dev/xmlns/qos-mark/1"
MARK_KEY = "vifscope-mark"


def parse_marks(text: str | None) -> dict[str, int]:
    """DSCP by lower-case MAC (None / empty / unreadable values: none)."""
    if not text or not text.strip():
        return {}
    root = ET.fromstring(text)
    out: dict[str, int] = {}
    for vif in root.iter():
        if vif.tag.rsplit("}", 1)[-1] == "vif" and (vif.get("dscp") or "").isdigit() and vif.get("mac"):
            out[(vif.get("mac") or "").lower()] = int(vif.get("dscp") or "0")
    return out


def marks_in_element(root: ET.Element) -> dict[str, int]:
    """The marks of a parsed ``<domain>``'s ``<metadata>`` (unreadable values: skipped)."""
    meta = root.find("metadata")
    elem = meta.find(f"{{{MARK_NS}}}marks") if meta is not None else None
    return parse_marks(ET.tostring(elem, encoding="unicode")) if elem is not None else {}


def render_marks(marks: dict[str, int]) -> str:
    root = ET.Element("marks")
    for mac in sorted(marks):
        ET.SubElement(root, "vif", {"mac": mac, "dscp": str(marks[mac])})
    return ET.tostring(root, encoding="unicode")


def read_marks(dom: object, live: bool = True) -> dict[str, int]:
    """The marks a libvirt domain's (live or persistent) metadata declares."""
    import libvirt

    flag = libvirt.VIR_DOMAIN_AFFECT_LIVE if live else libvirt.VIR_DOMAIN_AFFECT_CONFIG
    try:
        text = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, MARK_NS, flag)  # type: ignore[attr-defined]
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN_METADATA:
            return {}
        raise
    return parse_marks(str(text))
