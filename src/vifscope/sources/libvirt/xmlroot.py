"""The root element of one libvirt XML document, or the parser's typed error. Pure.

Every libvirt XML reader (domain, network, nwfilter) starts the same way: well-formed, and the
root is the element it reads. Each raises its own error class so callers can tell which
document was bad.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET


def xml_root(text: str, tag: str, error: type[ValueError]) -> ET.Element:
    """``<tag>`` parsed from ``text``; ``error`` when it is not well-formed or has another root."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise error(f"not well-formed XML: {exc}") from exc
    if root.tag != tag:
        raise error(f"root element is <{root.tag}>, expected <{tag}>")
    return root
