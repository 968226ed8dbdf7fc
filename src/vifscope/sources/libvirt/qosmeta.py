"""The vifscope QoS metadata element of a domain (``virDomainSetMetadata`` under
``https://vifscope.dev/xmlns/qos/1``): render and parse. Pure.

    <qos>
      <vif mac='52:54:00:..' backend='tc'>
        <inbound average='2500' peak='2500' burst='64'/>
        <outbound average='2500'/>
        <created dev='vnet3' root='yes' ingress='yes' ifb='vsq-12'/>
      </vif>
    </qos>

libvirt hands the element back without a namespace prefix (``virsh metadata`` prints it so),
and inside the domain XML with the ``vifscope:`` prefix; both parse.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from vifscope.model.qos import BandwidthRate
from vifscope.model.qospolicy import QOS_NS, Created, VifPolicy
from vifscope.sources.libvirt.bandwidth import _rate

_FIELDS = ("average", "peak", "burst")


class QosMetaError(ValueError):
    """The metadata element is not a readable vifscope QoS document."""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(elem: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in elem if _local(c.tag) == name), None)


def _plain(elem: ET.Element) -> ET.Element:
    """A copy without namespaces, so one lookup code serves both spellings."""
    out = ET.Element(_local(elem.tag), dict(elem.attrib))
    out.extend(_plain(c) for c in elem)
    return out


def parse_policies(text: str | None) -> dict[str, VifPolicy]:
    """The vifs of a ``<qos>`` element by lower-case MAC (None or empty: none)."""
    if not text or not text.strip():
        return {}
    try:
        root = _plain(ET.fromstring(text))
    except ET.ParseError as exc:
        raise QosMetaError(f"vifscope QoS metadata: {exc}") from exc
    out = {}
    for vif in root.iter("vif"):
        mac = (vif.get("mac") or "").lower()
        if not mac:
            continue
        made = _child(vif, "created")
        created = None
        if made is not None and made.get("dev"):
            created = Created(
                made.get("dev", ""), made.get("root") == "yes", made.get("ingress") == "yes", made.get("ifb") or None
            )
        out[mac] = VifPolicy(
            mac, _rate(vif.find("inbound")), _rate(vif.find("outbound")), vif.get("backend", "tc"), created
        )
    return out


def policies_in_domain_xml(text: str) -> dict[str, VifPolicy]:
    """The policies of a full domain document's ``<metadata>`` (none: absent)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise QosMetaError(f"domain XML: {exc}") from exc
    return policies_in_element(root)


def policies_in_element(root: ET.Element) -> dict[str, VifPolicy]:
    """The policies of a parsed ``<domain>`` element's ``<metadata>`` (none: absent)."""
    meta = root.find("metadata")
    elem = meta.find(f"{{{QOS_NS}}}qos") if meta is not None else None
    return parse_policies(ET.tostring(elem, encoding="unicode")) if elem is not None else {}


def _rate_attrs(rate: BandwidthRate) -> dict[str, str]:
    return {f: str(getattr(rate, f)) for f in _FIELDS if getattr(rate, f) is not None}


def render_policies(policies: dict[str, VifPolicy]) -> str:
    """The ``<qos>`` element for ``virsh metadata --set`` (vifs in MAC order)."""
    root = ET.Element("qos")
    for mac in sorted(policies):
        p = policies[mac]
        vif = ET.SubElement(root, "vif", {"mac": mac, "backend": p.backend})
        for name, rate in (("inbound", p.inbound), ("outbound", p.outbound)):
            if rate is not None:
                ET.SubElement(vif, name, _rate_attrs(rate))
        c = p.created
        if c is not None:
            attrs = {"dev": c.dev, "root": "yes" if c.root else "no", "ingress": "yes" if c.ingress else "no"}
            ET.SubElement(vif, "created", {**attrs, **({"ifb": c.ifb} if c.ifb else {})})
    return ET.tostring(root, encoding="unicode")
